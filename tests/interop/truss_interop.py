"""Baseten's truss, as a model server sends its outputs: a pydantic model with
truss_chains' NumpyArrayField arrays and datetime / date / time / timedelta / UUID / Decimal
values, dumped in binary mode (truss's msgpack serializer: msgpack-numpy arrays, and maps with
binary keys such as b"__uuid__" for the extended types) and in JSON mode (`data_b64`, `shape`,
`dtype`). Beside them, plain msgpack with what a record's fields alone cannot say: binary
values and keys, extension types, float32s, integer keys, map order.

    truss_interop.py write DIR      write the files
    truss_interop.py check DIR OUT  compare what `archive get` wrote back under OUT: the same
                                    bytes, and truss's own decoders give the same model back
"""
import datetime
import decimal
import os
import sys
import uuid

import msgpack
import numpy as np
import pydantic
import truss_chains.pydantic_numpy as pn
from truss.templates.shared import serialization


class Prediction(pydantic.BaseModel):
    probs: pn.NumpyArrayField
    logits: pn.NumpyArrayField
    tokens: pn.NumpyArrayField
    mask: pn.NumpyArrayField
    pixels: pn.NumpyArrayField
    half: pn.NumpyArrayField
    at: datetime.datetime
    day: datetime.date
    clock: datetime.time
    took: datetime.timedelta
    request: uuid.UUID
    price: decimal.Decimal
    label: str
    scores: list[float]


def model():
    rng = np.random.default_rng(11)
    return Prediction(
        probs=rng.random((2, 5), dtype=np.float32),
        logits=rng.standard_normal(7),
        tokens=np.arange(-3, 9, dtype=np.int64).reshape(3, 4),
        mask=np.array([True, False, True]),
        pixels=np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        half=np.linspace(-1, 1, 6).astype(np.float16),
        at=datetime.datetime(2026, 11, 30, 13, 45, 1, 250000, tzinfo=datetime.timezone.utc),
        day=datetime.date(2026, 11, 30),
        clock=datetime.time(23, 59, 58, 7),
        took=datetime.timedelta(days=2, seconds=5, microseconds=9),
        request=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        price=decimal.Decimal("19.990"),
        label="cat",
        scores=[0.5, 0.25, -0.0],
    )


def plain():
    """msgpack beyond records: bytes, ext types, float32, int and bytes keys, map order."""
    v = {
        "zeta": 1,
        "alpha": b"\x00\xffraw bytes",
        "hash32": bytes(range(32)),
        "ext": msgpack.ExtType(5, b"\x01\x02\x03"),
        "ext_big": msgpack.ExtType(127, bytes(300)),
        "when": msgpack.Timestamp(1_700_000_000, 5),
        "f32": 0.1,
        "ints": {1: "one", -2: "minus two", 300: [b"k", 2**40]},
        "mixed": {b"bin": 1, "str": 2},
        "nested": [{b"k": msgpack.ExtType(1, b"")}, [], {}],
        "big": 2**63 - 1,
        "bigger": 2**64 - 1,
        "neg": -(2**63),
    }
    return msgpack.packb(v, use_bin_type=True, use_single_float=True)


def write(d):
    os.makedirs(d, exist_ok=True)
    m = model()
    # As truss_chains sends a model with `use_binary`: dumped in python mode (arrays stay
    # arrays), then truss's msgpack serializer.
    binary = serialization.truss_msgpack_serialize(m.model_dump(mode="python"))
    open(os.path.join(d, "truss_binary.msgpack"), "wb").write(binary)
    open(os.path.join(d, "truss.json"), "w").write(m.model_dump_json())
    open(os.path.join(d, "plain.msgpack"), "wb").write(plain())


def same_model(a, b):
    for name in Prediction.model_fields:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, pn.NumpyArrayField):
            assert x.array.dtype == y.array.dtype, (name, x.array.dtype, y.array.dtype)
            assert x.array.shape == y.array.shape, (name, x.array.shape, y.array.shape)
            assert x.array.tobytes() == y.array.tobytes(), name
        else:
            assert type(x) is type(y) and x == y, (name, x, y)


def check(d, out):
    want = model()
    failed = 0
    for name in ["truss_binary.msgpack", "plain.msgpack"]:
        a = open(os.path.join(d, name), "rb").read()
        b = open(os.path.join(out, name), "rb").read()
        if a != b:
            failed += 1
            print(f"FAIL {name}: bytes differ ({len(a)} against {len(b)})")
    back = serialization.truss_msgpack_deserialize(
        open(os.path.join(out, "truss_binary.msgpack"), "rb").read()
    )
    same_model(want, Prediction.model_validate(back))
    same_model(want, Prediction.model_validate_json(open(os.path.join(out, "truss.json")).read()))
    print(f"{3 - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    {"write": lambda: write(sys.argv[2]), "check": lambda: check(sys.argv[2], sys.argv[3])}[
        sys.argv[1]
    ]()
