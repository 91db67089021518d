"""Pickles written by Python's own pickle, at every protocol, plain and compressed, and
malicious ones. The archive must read the first without running anything and refuse the rest
naming the global they call.

    pickle_interop.py write DIR         write NAME.pN.pkl (N = 0..5), NAME.zlib.pkl,
                                        NAME.gz.pkl, NAME.msgpack; evil/*.pkl + evil.txt
    pickle_interop.py check DIR OUT     compare OUT/NAME.msgpack (what `archive get` wrote)
                                        with pickle.load of the originals
"""
import gzip
import os
import pickle
import sys
import zlib

import msgpack
import msgpack_numpy as m
import numpy as np

rng = np.random.default_rng(5)
VALUES = {
    "probs": rng.random((4, 10), dtype=np.float32),
    "fortran": np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4)),
    "big_endian": np.arange(5, dtype=">f8") / 3,
    "scalar": np.float64(-2.25),
    "bools": np.array([True, False, True]),
    "u8": np.frombuffer(b"\x00\n\\\xff bytes with a newline", dtype=np.uint8).copy(),
    "categories": {"names": ["cat", "dog", "caf\u00e9"], "ids": np.arange(3, dtype=np.int64),
                   "threshold": 0.5, "ok": True, "none": None, "pair": (1, -(2 ** 40))},
    "batch": [np.zeros((2, 2), dtype=np.float16), {"x": np.int32(7)}],
    "labels": np.array([["cat", "caf\u00e9"], ["", "\U0001f642"]]),
    "raw_labels": np.array([b"ab", b"", b"x\x00y"]),
}


class Evil:
    def __init__(self, f, *args):
        self.f, self.args = f, args

    def __reduce__(self):
        return self.f, self.args


EVIL = {
    "os_system": (Evil(os.system, "echo pwned"), "system"),
    "eval": (Evil(eval, "1+1"), "eval"),
    "exec": (Evil(exec, "x=1"), "exec"),
    "getattr": (Evil(getattr, "text", "upper"), "getattr"),
    "np_load": (Evil(np.load, "/etc/passwd"), "numpy.load"),
    "nested": ({"probs": np.zeros(2), "evil": Evil(os.system, "true")}, "system"),
    "object_array": (np.array([Evil(os.system, "true")], dtype=object), "system"),
    "object_array_plain": (np.array(["a", 1], dtype=object), "Python objects"),
}


def write(d):
    os.makedirs(os.path.join(d, "evil"), exist_ok=True)
    for name, v in VALUES.items():
        for p in range(6):
            open(os.path.join(d, f"{name}.p{p}.pkl"), "wb").write(pickle.dumps(v, protocol=p))
        open(os.path.join(d, f"{name}.zlib.pkl"), "wb").write(zlib.compress(pickle.dumps(v)))
        open(os.path.join(d, f"{name}.gz.pkl"), "wb").write(gzip.compress(pickle.dumps(v, 2)))
        # np.float64 subclasses float, which msgpack packs as a plain float: as a 0-d array
        # it is the numpy scalar the pickle holds.
        same_value = np.asarray(v) if isinstance(v, np.float64) else v
        open(os.path.join(d, f"{name}.msgpack"), "wb").write(
            msgpack.packb(same_value, default=m.encode, use_bin_type=True))
    lines = []
    for name, (v, why) in EVIL.items():
        for p in (0, 2, 5):
            open(os.path.join(d, "evil", f"{name}.p{p}.pkl"), "wb").write(pickle.dumps(v, p))
            lines.append(f"{name}.p{p}.pkl\t{why}")
    open(os.path.join(d, "evil.txt"), "w").write("\n".join(lines) + "\n")


def same(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, (str, bool, type(None))) or type(a) is int or type(a) is float:
        return type(a) is type(b) and a == b
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype.newbyteorder("=") == b.dtype.newbyteorder("=") and a.shape == b.shape \
        and np.array_equal(a, b)


def check(d, out):
    bad = []
    for name in VALUES:
        back = msgpack.unpackb(open(os.path.join(out, f"{name}.msgpack"), "rb").read(),
                               object_hook=m.decode)
        for p in range(6):
            theirs = pickle.load(open(os.path.join(d, f"{name}.p{p}.pkl"), "rb"))
            if not same(theirs, back):
                bad.append(f"{name} protocol {p}: {back!r} != {theirs!r}")
    print("\n".join(bad) or "all equal")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    {"write": lambda: write(sys.argv[2]), "check": lambda: check(sys.argv[2], sys.argv[3])}[
        sys.argv[1]]()
