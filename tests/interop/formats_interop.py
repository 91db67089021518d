"""Python side of the format interop test (tests/interop.rs): the real libraries write, the
archive stores and gives back, the real libraries read.

    python3 tests/interop/formats_interop.py write DIR        # fixtures + DIR/manifest.json
    python3 tests/interop/formats_interop.py check DIR OUT    # compare OUT/<file> with DIR/<file>

`write` makes one file per case with numpy, safetensors, msgpack + msgpack-numpy, json +
base64 and onnx (ml_dtypes for bfloat16 and float8), and `arrays/NAME.npy`, each array of the
cases in the archive's own layout (C order, little-endian), so that the test can check that an
array has the same content hash whichever format it came in by. The manifest lists, per case,
its file, its format, and where each array sits in it (a path of keys and indices; an empty
path is a lone tensor).

Where numpy itself cannot write a dtype readably (np.save and msgpack-numpy write ml_dtypes
arrays as void `<V2`), the fixture is written the way those libraries read it back: the
ml_dtypes name as the dtype (`bfloat16`), which np.load and msgpack_numpy.decode accept
wherever ml_dtypes is imported.

`check` loads each original and each round-tripped file with the same real library and
compares them: the same keys in the same order, scalars equal, arrays of the same dtype and
shape and equal bit for bit (after the conversions the archive makes on the way in, which the
interop section of FORMAT.md lists: big-endian to little-endian, Fortran to C order, numpy
scalars to 0-d arrays). It prints `N passed, M failed` and exits 1 on any failure.

`write` also writes bad/, files the real libraries produce that the archive must refuse
(pickled object arrays, void-typed ml_dtypes arrays, string tensors).
"""
import base64
import io
import json
import sys
import zipfile
from pathlib import Path

import ml_dtypes
import msgpack
import msgpack_numpy
import numpy as np
import onnx
import safetensors
import safetensors.numpy
from onnx import TensorProto, helper, numpy_helper

BF16 = np.dtype(ml_dtypes.bfloat16)
F8E4M3 = np.dtype(ml_dtypes.float8_e4m3fn)
F8E5M2 = np.dtype(ml_dtypes.float8_e5m2)
ML_DTYPES = {"bfloat16": BF16, "float8_e4m3fn": F8E4M3, "float8_e5m2": F8E5M2}
NUMPY_DTYPES = ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64",
                "int64", "float16", "float32", "float64", "complex64", "complex128"]


def sample(rng, dtype, shape):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    vals = rng.standard_normal(shape) * 10
    if dtype in ML_DTYPES.values():
        return vals.astype(np.float32).astype(dtype)
    return vals.astype(dtype)


def canonical(a):
    """The archive's layout: C order, little-endian (0-d stays 0-d)."""
    a = np.asarray(a)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return np.ascontiguousarray(a) if a.ndim else a.copy()


def npy_bytes(a):
    """A .npy of `a` in C order; ml_dtypes arrays get their ml_dtypes name as descr."""
    a = canonical(a)
    name = a.dtype.name
    if name not in ML_DTYPES:
        buf = io.BytesIO()
        np.save(buf, a)
        return buf.getvalue()
    shape = a.shape
    lit = f"({shape[0]},)" if len(shape) == 1 else "(" + ", ".join(map(str, shape)) + ")"
    header = f"{{'descr': '{name}', 'fortran_order': False, 'shape': {lit}, }}"
    total = -(-(10 + len(header) + 1) // 64) * 64
    header = header + " " * (total - 10 - len(header) - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + a.tobytes()


class Fixtures:
    def __init__(self, d):
        self.d = d
        self.cases = []
        self.arrays = {}

    def array(self, name, a):
        self.arrays[name] = a
        (self.d / "arrays").mkdir(parents=True, exist_ok=True)
        (self.d / "arrays" / f"{name}.npy").write_bytes(npy_bytes(a))
        return name

    def case(self, file, fmt, arrays, **extra):
        self.cases.append({"file": file, "format": fmt, "arrays": arrays, **extra})


def write(d):
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    fx = Fixtures(d)
    every = {dt: sample(rng, dt, (3, 4)) for dt in NUMPY_DTYPES}
    ml = {n: sample(rng, dt, (2, 5)) for n, dt in ML_DTYPES.items()}
    for k, a in {**every, **ml}.items():
        fx.array(k, a)
    fx.array("scalar", np.array(3.5, dtype=np.float32))
    fx.array("empty", np.zeros((0, 7), dtype=np.int64))
    fx.array("large", rng.standard_normal((512, 1024)).astype(np.float32))
    fortran = np.asfortranarray(rng.standard_normal((5, 3, 2)).astype(np.float32))
    fx.array("fortran", fortran)
    big_endian = rng.standard_normal((4, 3)).astype(">f8")
    fx.array("big_endian", big_endian)
    big_i32 = np.arange(-5, 7, dtype=">i4").reshape(3, 4)
    fx.array("big_i32", big_i32)

    # .npy: bfloat16 and float8 by their ml_dtypes names (np.save cannot name them).
    for n, a in ml.items():
        (d / f"npy_{n}.npy").write_bytes(npy_bytes(a))
        fx.case(f"npy_{n}.npy", "npy", [[[], n]])

    # .npz: np.savez (stored), np.savez_compressed (deflated), and ml_dtypes members.
    members = {**every, "scalar": fx.arrays["scalar"], "empty": fx.arrays["empty"],
               "fortran": fortran, "big_endian": big_endian, "big_i32": big_i32}
    np.savez(d / "npz_stored.npz", **members)
    fx.case("npz_stored.npz", "npz", [[[k], k] for k in members])
    np.savez_compressed(d / "npz_deflated.npz", large=fx.arrays["large"], int8=every["int8"])
    fx.case("npz_deflated.npz", "npz", [[["large"], "large"], [["int8"], "int8"]])
    with zipfile.ZipFile(d / "npz_ml_dtypes.npz", "w", zipfile.ZIP_DEFLATED) as z:
        for n, a in ml.items():
            z.writestr(f"{n}.npy", npy_bytes(a))
    fx.case("npz_ml_dtypes.npz", "npz", [[[n], n] for n in ml])

    # .safetensors: every dtype it has, metadata, 0-d, empty, large, big-endian input.
    st = {k: a for k, a in every.items() if k != "complex128"}
    st.update(ml)
    st.update(scalar=fx.arrays["scalar"], empty=fx.arrays["empty"], large=fx.arrays["large"],
              big_endian=big_endian)
    safetensors.numpy.save_file(st, d / "st_all.safetensors",
                                metadata={"format": "np", "run": "exp1", "note": "ünïcode"})
    fx.case("st_all.safetensors", "safetensors", [[[k], k] for k in st])
    safetensors.numpy.save_file({"float32": every["float32"]}, d / "st_plain.safetensors")
    fx.case("st_plain.safetensors", "safetensors", [[["float32"], "float32"]])

    # msgpack-numpy: arrays nested in maps and lists, numpy scalars, a Python complex,
    # ordinary values of every msgpack kind; a lone array; ml_dtypes by name; a stream.
    nested = {
        "step": 3, "neg": -5, "big": 2 ** 40, "f": 0.1, "tiny": 5e-324, "name": "run-1",
        "ok": True, "none": None, "list": [1, "two", 3.0, [None, False]],
        "loss": np.float32(0.5),
        "z": complex(1.5, -2.0),
        "arrays": dict(every),
        "layers": [{"w": fortran}, {"w": big_endian}, {"w": big_i32}],
        "scalar": fx.arrays["scalar"], "empty": fx.arrays["empty"], "large": fx.arrays["large"],
    }
    fx.array("loss", np.array(0.5, dtype=np.float32))
    fx.array("z", np.array(complex(1.5, -2.0), dtype=np.complex128))
    (d / "mp_nested.msgpack").write_bytes(msgpack.packb(nested, default=msgpack_numpy.encode))
    paths = [[["arrays", k], k] for k in every]
    paths += [[["layers", 0, "w"], "fortran"], [["layers", 1, "w"], "big_endian"],
              [["layers", 2, "w"], "big_i32"], [["scalar"], "scalar"], [["empty"], "empty"],
              [["large"], "large"], [["loss"], "loss"], [["z"], "z"]]
    fx.case("mp_nested.msgpack", "msgpack", paths)
    (d / "mp_lone.msgpack").write_bytes(
        msgpack.packb(every["float64"], default=msgpack_numpy.encode))
    fx.case("mp_lone.msgpack", "msgpack", [[[], "float64"]])
    by_name = {n: {b"nd": True, b"type": n, b"kind": b"", b"shape": list(a.shape),
                   b"data": a.tobytes()} for n, a in ml.items()}
    (d / "mp_ml_dtypes.msgpack").write_bytes(msgpack.packb(by_name))
    fx.case("mp_ml_dtypes.msgpack", "msgpack", [[[n], n] for n in ml])
    packer = msgpack_numpy.Packer()
    with open(d / "mp_stream.msgpack", "wb") as f:
        for i in range(3):
            f.write(packer.pack({"i": i, "x": every["int16"][i]}))
    fx.case("mp_stream.msgpack", "msgpack", [], stream=3)

    # JSON with {shape, dtype, data_b64} tensors (pydantic numpy fields).
    def b64(a, dtype_name=None):
        return {"shape": list(a.shape), "dtype": dtype_name or a.dtype.name,
                "data_b64": base64.b64encode(a.tobytes()).decode()}
    doc = {"id": 7, "score": 0.1, "vals": [1, 2.5, -0.0, 1e300, "x", None, True],
           "out": {k: b64(a) for k, a in {**every, **ml}.items()},
           "scalar": b64(fx.arrays["scalar"]), "empty": b64(fx.arrays["empty"]),
           "big_endian": b64(big_endian, big_endian.dtype.str),
           "nested": [{"deep": {"large": b64(fx.arrays["large"])}}]}
    (d / "json_nested.json").write_text(json.dumps(doc))
    paths = [[["out", k], k] for k in {**every, **ml}]
    paths += [[["scalar"], "scalar"], [["empty"], "empty"], [["big_endian"], "big_endian"],
              [["nested", 0, "deep", "large"], "large"]]
    fx.case("json_nested.json", "json", paths)
    (d / "json_lone.json").write_text(json.dumps(b64(ml["bfloat16"])))
    fx.case("json_lone.json", "json", [[[], "bfloat16"]])

    # ONNX TensorProto: from_array (raw_data) and make_tensor (typed fields) for every
    # element type the archive shares with ONNX; named; 0-d, empty, large.
    onnx_types = [k for k in NUMPY_DTYPES] + list(ML_DTYPES)
    for k in onnx_types:
        a = {**every, **ml}[k]
        # One name for both files: the archive keeps a name per entry (its `name` tag) and
        # gives back the newest, and both files hold the same tensor.
        t = numpy_helper.from_array(a, name=f"t_{k}")
        (d / f"onnx_raw_{k}.pb").write_bytes(t.SerializeToString())
        fx.case(f"onnx_raw_{k}.pb", "onnx", [[[], k]])
        code = helper.np_dtype_to_tensor_dtype(a.dtype)
        vals = a.flatten().tolist() if k not in ML_DTYPES else a.astype(np.float32).flatten().tolist()
        t = helper.make_tensor(f"t_{k}", code, a.shape, vals)
        assert not t.raw_data, k
        (d / f"onnx_typed_{k}.pb").write_bytes(t.SerializeToString())
        fx.case(f"onnx_typed_{k}.pb", "onnx", [[[], k]])
    for k in ["scalar", "empty", "large", "fortran"]:
        t = numpy_helper.from_array(fx.arrays[k])
        (d / f"onnx_{k}.pb").write_bytes(t.SerializeToString())
        fx.case(f"onnx_{k}.pb", "onnx", [[[], k]])

    # Files the real libraries write that must be refused.
    bad = d / "bad"
    bad.mkdir(exist_ok=True)
    obj = np.array([{"a": 1}, None], dtype=object)
    np.savez(bad / "object.npz", ok=every["int8"], obj=obj)
    np.save(bad / "object.npy", obj, allow_pickle=True)
    (bad / "object.msgpack").write_bytes(msgpack.packb({"x": obj}, default=msgpack_numpy.encode))
    # msgpack-numpy cannot pack ml_dtypes arrays at all; viewed as void it writes kind 'V'.
    (bad / "void_bf16.msgpack").write_bytes(
        msgpack.packb({"x": ml["bfloat16"].view("V2")}, default=msgpack_numpy.encode))
    np.save(bad / "void_bf16.npy", ml["bfloat16"])
    # A STRING element ending in a zero byte, which numpy's fixed-width `S` would drop.
    strings = TensorProto(name="s", data_type=TensorProto.STRING, dims=[2])
    strings.string_data.extend([b"a", b"b\0"])
    (bad / "strings.pb").write_bytes(strings.SerializeToString())
    # A pickled model: an object of a class, which only running code could rebuild.
    (bad / "model.pkl").write_bytes(b"\x80\x02c__main__\nModel\nq\x00)\x81q\x01.")

    (d / "manifest.json").write_text(json.dumps({"cases": fx.cases}, indent=1))


# --- check ------------------------------------------------------------------------------------

def st_load(path):
    data = Path(path).read_bytes()
    out = {}
    for name, v in safetensors.deserialize(data):
        dt = {"BF16": BF16, "F8_E4M3": F8E4M3, "F8_E5M2": F8E5M2, "BOOL": np.bool_}.get(
            v["dtype"]) or np.dtype(safetensors.numpy._TYPES[v["dtype"]])
        out[name] = np.frombuffer(bytes(v["data"]), dtype=dt).reshape(v["shape"])
    with safetensors.safe_open(path, framework="np") as f:
        meta = f.metadata()
    # Neither the header's order nor the metadata's means anything (both are JSON objects).
    return {"tensors": dict(sorted(out.items())), "metadata": dict(sorted((meta or {}).items()))}


def json_load(path):
    def hook(obj):
        if set(obj) == {"shape", "dtype", "data_b64"}:
            dt = ML_DTYPES.get(obj["dtype"]) or np.dtype(obj["dtype"])
            return np.frombuffer(base64.b64decode(obj["data_b64"]), dtype=dt).reshape(
                obj["shape"])
        return obj
    return json.loads(Path(path).read_text(), object_hook=hook)


def onnx_load(path):
    t = TensorProto()
    t.ParseFromString(Path(path).read_bytes())
    return {"name": t.name, "array": numpy_helper.to_array(t)}


def load(fmt, path):
    if fmt == "npy":
        return np.load(path)
    if fmt == "npz":
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    if fmt == "safetensors":
        return st_load(path)
    if fmt == "msgpack":
        return msgpack.unpackb(Path(path).read_bytes(), object_hook=msgpack_numpy.decode)
    if fmt == "json":
        return json_load(path)
    if fmt == "onnx":
        return onnx_load(path)
    raise ValueError(fmt)


def diff(a, b, path="$"):
    """The first difference between a and b, or None."""
    if isinstance(a, (np.ndarray, np.generic, complex)) or isinstance(b, (np.ndarray, np.generic)):
        a, b = canonical(a), canonical(b)
        if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
            return f"{path}: {a.dtype}{a.shape} vs {b.dtype}{b.shape} or bytes differ"
        return None
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict):
        if list(a) != list(b):
            return f"{path}: keys {list(a)} vs {list(b)}"
        return next((d for k in a if (d := diff(a[k], b[k], f"{path}.{k}"))), None)
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} vs {len(b)} items"
        return next((d for i, (x, y) in enumerate(zip(a, b)) if (d := diff(x, y, f"{path}[{i}]"))),
                    None)
    if isinstance(a, float):
        same = np.float64(a).tobytes() == np.float64(b).tobytes()
        return None if same else f"{path}: {a!r} vs {b!r}"
    return None if a == b else f"{path}: {a!r} vs {b!r}"


def check(d, out):
    cases = json.loads((d / "manifest.json").read_text())["cases"]
    bad = 0
    for c in cases:
        f, fmt = c["file"], c["format"]
        if "stream" in c:
            with open(d / f, "rb") as fh:
                want = list(msgpack_numpy.Unpacker(fh))
            stem, ext = f.rsplit(".", 1)
            got = [load(fmt, out / f"{stem}.{i}.{ext}") for i in range(c["stream"])]
        else:
            want, got = load(fmt, d / f), load(fmt, out / f)
        problem = diff(want, got)
        if problem:
            print(f"{f}: {problem}")
            bad += 1
    print(f"{len(cases) - bad} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "write":
        write(Path(sys.argv[2]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "check":
        sys.exit(check(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        sys.exit(__doc__)
