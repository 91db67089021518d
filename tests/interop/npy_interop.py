"""numpy side of the .npy interop test (tests/interop.rs).

    python3 tests/interop/npy_interop.py write DIR        # numpy writes the fixtures
    python3 tests/interop/npy_interop.py check DIR OUT    # numpy reads what `archive get` wrote back

`write` saves each case twice: `NAME.npy` as numpy lays it out (Fortran order, big-endian, ...)
and `NAME.c.npy`, the same values C-ordered and little-endian, which is how the archive stores
them, so both must get the same content hash. `check` loads `OUT/NAME.npy` and compares it bit
for bit with the original values. Exit status 1 on any mismatch.
"""
import sys
from pathlib import Path

import numpy as np


def cases():
    rng = np.random.default_rng(0)
    out = {}
    for dt in ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
               "float16", "float32", "float64", "complex64", "complex128"]:
        a = rng.integers(0, 2, size=(3, 4)).astype(dt) if dt == "bool" else \
            (rng.standard_normal((3, 4)) * 100).astype(dt)
        out[f"{dt}"] = a
    out["f32_fortran"] = np.asfortranarray(rng.standard_normal((5, 3, 2)).astype("float32"))
    out["f64_big_endian"] = rng.standard_normal((4, 3)).astype(">f8")
    out["c64_big_endian_fortran"] = np.asfortranarray(
        (rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))).astype(">c8"))
    out["i32_big_endian"] = np.arange(-5, 7, dtype=">i4").reshape(3, 4)
    out["scalar"] = np.array(3.5, dtype="float32")
    out["empty"] = np.zeros((0, 7), dtype="int64")
    out["large"] = rng.standard_normal((512, 1024)).astype("float32")
    return out


def canonical(a):
    # astype(order="C") keeps 0-d arrays 0-d (np.ascontiguousarray would make them 1-d).
    return a.astype(a.dtype.newbyteorder("<"), order="C")


def write(d):
    d.mkdir(parents=True, exist_ok=True)
    for name, a in cases().items():
        np.save(d / f"{name}.npy", a)
        np.save(d / f"{name}.c.npy", canonical(a))
    # Format 2.0 (u32 header length), as numpy writes for very wide structured headers.
    with open(d / "v2.npy", "wb") as f:
        np.lib.format.write_array(f, cases()["float32"], version=(2, 0))
    np.save(d / "v2.c.npy", canonical(cases()["float32"]))


def check(d, out):
    bad = 0
    names = list(cases()) + ["v2"]
    for name in names:
        want = np.load(d / f"{name}.c.npy")
        got = np.load(out / f"{name}.npy")
        same = got.dtype == want.dtype and got.shape == want.shape and got.tobytes() == want.tobytes()
        if not same:
            print(f"{name}: numpy read back {got.dtype} {got.shape}, expected {want.dtype} {want.shape}")
            bad += 1
    print(f"{len(names) - bad} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "write":
        write(Path(sys.argv[2]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "check":
        sys.exit(check(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        sys.exit(__doc__)
