"""Protobuf messages of a user's own schema (tests/interop/demo.proto), written by protobuf's
Python runtime from a schema built here by hand (not compiled by the archive's compiler).

    proto_interop.py write DIR       write DIR/NAME.pb messages, DIR/demo.binpb (a descriptor
                                     set of the same schema) and DIR/names.txt
    proto_interop.py check DIR OUT   parse OUT/NAME.pb (what `archive get` wrote) and compare
                                     each with the message written, field by field
"""
import os
import sys

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto


def schema() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(name="demo.proto", package="demo", syntax="proto3")
    kind = fdp.enum_type.add(name="Kind")
    for i, n in enumerate(["UNKNOWN", "CAT", "DOG"]):
        kind.value.add(name=n, number=i)

    def fields(msg, spec):
        for name, num, typ, rep, type_name in spec:
            f = msg.field.add(name=name, number=num, type=typ)
            f.label = F.LABEL_REPEATED if rep else F.LABEL_OPTIONAL
            if type_name:
                f.type_name = type_name

    fields(fdp.message_type.add(name="MyArray"), [("data", 1, F.TYPE_FLOAT, True, None)])
    fields(fdp.message_type.add(name="Meta"), [
        ("source", 1, F.TYPE_STRING, False, None), ("step", 2, F.TYPE_FIXED64, False, None)])
    fields(fdp.message_type.add(name="Prediction"), [
        ("id", 1, F.TYPE_STRING, False, None), ("probs", 2, F.TYPE_FLOAT, True, None),
        ("label", 3, F.TYPE_INT32, False, None), ("shape", 4, F.TYPE_INT64, True, None),
        ("score", 5, F.TYPE_DOUBLE, False, None), ("raw", 6, F.TYPE_BYTES, False, None),
        ("meta", 7, F.TYPE_MESSAGE, False, ".demo.Meta"),
        ("topk", 8, F.TYPE_STRING, True, None), ("deltas", 9, F.TYPE_SINT32, True, None),
        ("ok", 10, F.TYPE_BOOL, False, None), ("kind", 11, F.TYPE_ENUM, False, ".demo.Kind"),
        ("history", 12, F.TYPE_MESSAGE, True, ".demo.Meta"),
        ("count", 13, F.TYPE_UINT32, False, None)])
    return fdp


def classes():
    pool = descriptor_pool.DescriptorPool()
    pool.Add(schema())
    get = lambda n: message_factory.GetMessageClass(pool.FindMessageTypeByName("demo." + n))
    return get("MyArray"), get("Prediction")


def messages(MyArray, Prediction):
    rng = np.random.default_rng(7)
    out = {"myarray": MyArray(data=rng.random(1000, dtype=np.float32).tolist())}
    for i in range(4):
        p = Prediction(id=f"img-{i:06d}", probs=rng.random(10, dtype=np.float32).tolist(),
                       label=i - 1, shape=[1, 10], score=float(rng.random()), ok=i % 2 == 0,
                       raw=bytes([0, 10, 255, i]), topk=["cat", "dog", "caf\u00e9"][: i + 1],
                       deltas=[-5, 0, 2 ** 30, -(2 ** 31)], kind=i % 3, count=2 ** 32 - 1 - i)
        p.meta.source = f"cam{i}"
        p.meta.step = 2 ** 63 - 1 - i
        for j in range(i):
            p.history.add(source=f"h{j}", step=j)
        out[f"pred{i}"] = p
    out["sparse"] = Prediction(probs=[0.5, -0.0, float("inf")])
    out["empty"] = Prediction()
    return out


def main() -> None:
    cmd, d = sys.argv[1], sys.argv[2]
    MyArray, Prediction = classes()
    msgs = messages(MyArray, Prediction)
    if cmd == "write":
        for name, m in msgs.items():
            with open(os.path.join(d, name + ".pb"), "wb") as f:
                f.write(m.SerializeToString())
        fds = descriptor_pb2.FileDescriptorSet(file=[schema()])
        with open(os.path.join(d, "demo.binpb"), "wb") as f:
            f.write(fds.SerializeToString())
        with open(os.path.join(d, "names.txt"), "w") as f:
            f.write("\n".join(msgs))
        return
    out = sys.argv[3]
    for name, m in msgs.items():
        back = (MyArray if name == "myarray" else Prediction)()
        with open(os.path.join(out, name + ".pb"), "rb") as f:
            back.ParseFromString(f.read())
        assert back == m, (name, back, m)
    print(f"{len(msgs)} messages equal")


if __name__ == "__main__":
    main()
