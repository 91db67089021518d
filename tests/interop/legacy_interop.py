"""Files written by other people's tools, old and odd: msgpack-numpy through msgpack's packer
before 1.0 (`use_bin_type=False`: keys and array data as raw strings), numpy's own test data
files (a header Python 2 wrote, object arrays, a structured dtype), ONNX sequences and
optionals of tensors (written by onnx.helper).

    legacy_interop.py write DIR         write old/new msgpack pairs, copy numpy's test files
    legacy_interop.py check DIR OUT     compare what `archive get` wrote back under OUT
"""
import os
import shutil
import sys

import msgpack
import msgpack_numpy as m
import numpy as np

np.random.seed(7)
VALUES = {
    "f32": (np.random.rand(3, 4) / 3).astype(np.float32),
    "u8": np.frombuffer(b"plain ascii bytes", dtype=np.uint8).copy(),
    "i64_be": np.arange(5, dtype=">i8"),
    "f64_scalar": np.float64(2.5),
    "complex": 1.5 - 2j,
    "record": {"probs": np.random.rand(10).astype(np.float32), "label": 3, "name": "cat"},
}


def old(v):
    return msgpack.packb(v, default=m.encode, use_bin_type=False)


def new(v):
    return msgpack.packb(v, default=m.encode, use_bin_type=True)


def write(d):
    os.makedirs(d, exist_ok=True)
    for name, v in VALUES.items():
        open(os.path.join(d, f"{name}.old.msgpack"), "wb").write(old(v))
        open(os.path.join(d, f"{name}.new.msgpack"), "wb").write(new(v))
    data = os.path.join(os.path.dirname(np.__file__), "lib", "tests", "data")
    for f in ["python3.npy", "win64python2.npy", "py2-objarr.npy", "py3-objarr.npy"]:
        shutil.copy(os.path.join(data, f), os.path.join(d, f))
    np.save(os.path.join(d, "structured.npy"), np.zeros(3, dtype=[("x", "<f4"), ("y", "<i8")]))
    # ONNX containers of tensors, which are not TensorProtos: stored as lists.
    from onnx import OptionalProto, SequenceProto, helper, numpy_helper
    t = numpy_helper.from_array(np.arange(3, dtype=np.float32))
    t2 = numpy_helper.from_array(np.arange(4, dtype=np.int64).reshape(2, 2) - 2)
    seq = helper.make_sequence("outputs", SequenceProto.TENSOR, [t, t2, t])
    open(os.path.join(d, "sequence.pb"), "wb").write(seq.SerializeToString())
    opt = helper.make_optional("maybe", OptionalProto.TENSOR, t)
    open(os.path.join(d, "optional.pb"), "wb").write(opt.SerializeToString())


def same(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype.newbyteorder("=") == b.dtype.newbyteorder("=") and a.shape == b.shape \
        and np.array_equal(a, b)


def check(d, out):
    bad = []
    for name, v in VALUES.items():
        back = msgpack.unpackb(open(os.path.join(out, f"{name}.msgpack"), "rb").read(),
                               object_hook=m.decode)
        # The old file itself, as msgpack-numpy reads it (raw=True), must be what came back.
        theirs = msgpack.unpackb(open(os.path.join(d, f"{name}.old.msgpack"), "rb").read(),
                                 raw=True, object_hook=m.decode)
        if isinstance(theirs, dict):
            theirs = {k.decode(): (x.decode() if isinstance(x, bytes) else x)
                      for k, x in theirs.items()}
        if not (same(back, v) and same(back, theirs)):
            bad.append(f"{name}: {back!r} != {v!r}")
    for f in ["python3.npy", "win64python2.npy"]:
        if not same(np.load(os.path.join(out, f)), np.load(os.path.join(d, f))):
            bad.append(f)
    print("\n".join(bad) or "all equal")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    {"write": lambda: write(sys.argv[2]), "check": lambda: check(sys.argv[2], sys.argv[3])}[
        sys.argv[1]]()
