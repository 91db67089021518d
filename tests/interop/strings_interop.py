"""String tensors as numpy, msgpack-numpy, the JSON form and ONNX write them: numpy's
fixed-width `<U` (text) and `S` (bytes) arrays, big-endian and Fortran-ordered ones, inside
`.npz`, msgpack-numpy and `{shape, dtype, data_b64}`; ONNX STRING tensors from onnx's own
backend test data and from `numpy_helper.from_array`. datetime64 and timedelta64 arrays,
which the archive refuses, are written too.

    strings_interop.py write DIR      write the files; prints their names, one per line
    strings_interop.py check DIR OUT  compare what `archive get` wrote back under OUT
"""
import base64
import glob
import json
import os
import shutil
import sys

import msgpack
import msgpack_numpy as m
import numpy as np
import onnx
from onnx import numpy_helper

TEXT = np.array([["cat", "dog", ""], ["bird", "é🙂", "x y"]])
BYTES = np.array([b"ab", b"", b"x\x00y", b"\xff\xfe"])


def onnx_strings():
    """onnx's own test data files that hold STRING tensors."""
    data = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
    out = []
    for f in sorted(glob.glob(os.path.join(data, "**", "*.pb"), recursive=True)):
        t = onnx.TensorProto()
        try:
            t.ParseFromString(open(f, "rb").read())
        except Exception:
            continue
        if t.data_type == onnx.TensorProto.STRING:
            out.append(f)
    return out


def write(d):
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, "text.npy"), TEXT)
    np.save(os.path.join(d, "text_be.npy"), TEXT.astype(">U4"))
    np.save(os.path.join(d, "text_f.npy"), np.asfortranarray(TEXT))
    np.save(os.path.join(d, "bytes.npy"), BYTES)
    np.save(os.path.join(d, "empty.npy"), np.array(["", ""]))
    np.savez(os.path.join(d, "mixed.npz"), labels=TEXT, probs=np.arange(3, dtype=np.float32))
    open(os.path.join(d, "text.msgpack"), "wb").write(msgpack.packb(TEXT, default=m.encode))
    open(os.path.join(d, "bytes.msgpack"), "wb").write(msgpack.packb(BYTES, default=m.encode))
    doc = {
        "shape": list(TEXT.shape),
        "dtype": str(TEXT.dtype),
        "data_b64": base64.b64encode(TEXT.tobytes()).decode(),
    }
    open(os.path.join(d, "text.json"), "w").write(json.dumps(doc))
    t = numpy_helper.from_array(np.array(["a", "bc", "déf"]), name="labels")
    open(os.path.join(d, "from_array.pb"), "wb").write(t.SerializeToString())
    names = []
    for i, f in enumerate(onnx_strings()):
        name = f"onnx_{i}.pb"
        shutil.copy(f, os.path.join(d, name))
        names.append(name)
    np.save(os.path.join(d, "when.npy"), np.array(["2026-11-30"], dtype="datetime64[ns]"))
    np.save(os.path.join(d, "took.npy"), np.array([5], dtype="timedelta64[s]"))
    print("\n".join(names))


def same(a, b, what):
    assert a.dtype == b.dtype and a.shape == b.shape, (what, a.dtype, b.dtype, a.shape, b.shape)
    assert (a == b).all(), (what, a, b)


def check(d, out):
    n = 0
    load = lambda name: np.load(os.path.join(out, name))
    # np.save of the same array: the same bytes.
    for name in ["text.npy", "bytes.npy", "empty.npy"]:
        a = open(os.path.join(d, name), "rb").read()
        assert a == open(os.path.join(out, name), "rb").read(), name
        n += 1
    # Stored little-endian, C order: the same values back.
    same(load("text_be.npy"), TEXT, "text_be.npy")
    same(load("text_f.npy"), TEXT, "text_f.npy")
    z = np.load(os.path.join(out, "mixed.npz"))
    same(z["labels"], TEXT, "mixed.npz labels")
    same(z["probs"], np.arange(3, dtype=np.float32), "mixed.npz probs")
    for name, want in [("text.msgpack", TEXT), ("bytes.msgpack", BYTES)]:
        got = msgpack.unpackb(open(os.path.join(out, name), "rb").read(), object_hook=m.decode)
        same(got, want, name)
    doc = json.load(open(os.path.join(out, "text.json")))
    got = np.frombuffer(base64.b64decode(doc["data_b64"]), dtype=doc["dtype"]).reshape(doc["shape"])
    same(got, TEXT, "text.json")
    n += 6
    # ONNX: byte for byte, and onnx reads the same strings.
    for name in sorted(os.listdir(d)):
        if name.endswith(".pb"):
            a = open(os.path.join(d, name), "rb").read()
            b = open(os.path.join(out, name), "rb").read()
            assert a == b, name
            t = onnx.TensorProto()
            t.ParseFromString(b)
            assert t.data_type == onnx.TensorProto.STRING, name
            n += 1
    print(f"{n} passed")


if __name__ == "__main__":
    {"write": lambda: write(sys.argv[2]), "check": lambda: check(sys.argv[2], sys.argv[3])}[
        sys.argv[1]
    ]()
