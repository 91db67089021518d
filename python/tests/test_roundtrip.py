"""put then get is bit-exact for every dtype, shape and kind."""

import numpy as np
import pytest

import model_archive as ma

ml_dtypes = pytest.importorskip("ml_dtypes")

DTYPES = [
    np.bool_, np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16, np.int32,
    np.int64, np.float16, np.float32, np.float64, np.complex64, np.complex128,
    ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2,
]
ARCHIVE_NAMES = [
    "BOOL", "U8", "U16", "U32", "U64", "I8", "I16", "I32", "I64", "F16", "F32", "F64", "C64",
    "C128", "BF16", "F8_E4M3", "F8_E5M2",
]


def sample(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    if np.dtype(dtype) == np.bool_:
        return (rng.random(n) > 0.5).reshape(shape)
    if np.dtype(dtype).kind in "ui":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=n, dtype=dtype, endpoint=True).reshape(shape)
    if np.dtype(dtype).kind == "c":
        return (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(dtype).reshape(shape)
    return rng.standard_normal(n).astype(np.float32).astype(dtype).reshape(shape)


@pytest.mark.parametrize("dtype,name", list(zip(DTYPES, ARCHIVE_NAMES)), ids=ARCHIVE_NAMES)
@pytest.mark.parametrize("shape", [(3, 5), (), (0, 4), (2, 3, 4, 5)], ids=str)
def test_every_dtype_round_trips_bit_exact(archive, dtype, name, shape):
    x = sample(dtype, shape)
    h = archive.put(x, tags={"dtype": name})
    y = archive.get(h)
    assert isinstance(y, np.ndarray)
    assert y.dtype == np.dtype(dtype)
    assert y.shape == shape
    assert y.tobytes() == x.tobytes()
    assert not y.flags.writeable
    info = archive.info(h)
    assert info["kind"] == "tensor"
    assert info["dtype"] == name
    assert info["shape"] == shape


def test_same_array_gets_the_same_hash_whatever_its_layout(archive):
    x = np.arange(24, dtype=np.int32).reshape(4, 6)
    h = archive.put(x)
    assert archive.put(np.asfortranarray(x)) == h
    assert archive.put(x.astype(">i4")) == h  # big-endian input is converted
    strided = np.arange(48, dtype=np.int32).reshape(4, 12)[:, ::2]
    assert archive.put(strided) == archive.put(np.ascontiguousarray(strided))
    assert archive.stats()["objects"] == 2


def test_array_likes_are_accepted(archive):
    class Tensorish:  # what torch/jax CPU tensors look like to numpy
        def __array__(self, dtype=None, copy=None):
            return np.arange(6, dtype=np.float32).reshape(2, 3)

    h = archive.put(Tensorish())
    assert np.array_equal(archive.get(h), np.arange(6, dtype=np.float32).reshape(2, 3))
    mv = memoryview(np.arange(4, dtype=np.int16))
    assert np.array_equal(archive.get(archive.put(mv)), np.arange(4, dtype=np.int16))
    scalar = archive.get(archive.put(np.float32(2.5)))
    assert scalar.shape == () and scalar.dtype == np.float32 and scalar == 2.5


def test_text_and_bytes_round_trip(archive):
    h = archive.put("generated text ✓", tags={"run": "exp1"})
    assert archive.get(h) == "generated text ✓"
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    hb = archive.put(png, media_type="image/png")
    assert archive.get(hb) == png
    assert archive.get(hb, verify=False) == png
    assert archive.get(h, verify=False) == "generated text ✓"
    assert archive.info(hb)["desc"] == "image/png"
    assert archive.get(archive.put(bytearray(b"abc"))) == b"abc"
    with pytest.raises(TypeError, match="media_type"):
        archive.put("text", media_type="text/plain")


def test_record_round_trip(archive):
    probs = np.random.default_rng(1).random((8, 10), dtype=np.float32)
    text_hash = archive.put("a caption")
    rec = {
        "probs": probs,
        "label": 3,
        "argmax": np.int64(7),
        "score": 0.25,
        "text": "cat",
        "ok": True,
        "none": None,
        "list": [1, "two", 3.0, [False]],
        "nested": {"logits": np.arange(5, dtype=np.float16), "k": -1},
        "caption": ma.Ref(text_hash),
    }
    h = archive.put(rec, tags={"run": "exp1"})
    back = archive.get(h)
    assert list(back) == list(rec)
    assert np.array_equal(back["probs"], probs) and back["probs"].dtype == np.float32
    assert back["label"] == 3 and back["argmax"] == 7 and isinstance(back["argmax"], int)
    assert back["score"] == 0.25 and back["text"] == "cat" and back["ok"] is True
    assert back["none"] is None
    assert back["list"] == [1, "two", 3.0, [False]]
    assert np.array_equal(back["nested"]["logits"], np.arange(5, dtype=np.float16))
    assert back["nested"]["k"] == -1
    assert back["caption"] == ma.Ref(text_hash)
    assert archive.get(back["caption"].hash) == "a caption"
    unverified = archive.get(h, verify=False)
    assert np.array_equal(unverified["probs"], probs) and unverified["text"] == "cat"
    # Only the record gets an entry; its tensors are stored beside it.
    assert [e.hash for e in archive.entries(tags={"run": "exp1"})] == [h]


def test_prefix_resolves(archive):
    h = archive.put(np.zeros(3))
    assert archive.resolve(h[:10]) == h
    assert archive.get(h[:10]).shape == (3,)
    assert h in archive and "0" * 64 not in archive


def test_entries_filter_and_order(archive):
    hashes = [archive.put(np.full(2, i), tags={"run": f"r{i % 2}", "step": i}) for i in range(6)]
    es = archive.entries()
    assert [e.hash for e in es] == hashes[::-1]
    assert [e.seq for e in es] == sorted((e.seq for e in es), reverse=True)
    r1 = archive.entries(tags={"run": "r1"})
    assert [e.tags["step"] for e in r1] == ["5", "3", "1"]
    assert len(archive.entries(tags={"run": "r0"}, limit=2)) == 2
    assert archive.entries(tags={"run": "r0", "step": 4})[0].hash == hashes[4]
    t = es[0].time
    assert t.tzinfo is not None and t.utcoffset().total_seconds() == 0
    assert abs(t.timestamp() - es[0].time_ns / 1e9) < 1e-3
    assert [e.hash for e in archive.entries_of(hashes[0])] == [hashes[0]]


def test_missing_ml_dtypes_is_a_clear_error(tmp_path):
    import subprocess
    import sys

    with ma.Archive(tmp_path / "a") as a:
        h = a.put(np.ones(3, dtype=ml_dtypes.bfloat16))
    code = (
        "import sys; sys.modules['ml_dtypes'] = None\n"
        "import model_archive as ma\n"
        f"a = ma.Archive({str(tmp_path / 'a')!r})\n"
        "try:\n"
        f"    a.get({h!r})\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "BF16" in out.stdout and "pip install ml_dtypes" in out.stdout


def test_query(archive):
    probs = np.ones((2, 3), dtype=np.float32)
    h1 = archive.put(probs, tags={"run": "exp1", "split": "test", "step": 10})
    h2 = archive.put("a caption", tags={"run": "exp1", "split": "train", "step": 2})
    archive.put(probs, tags={"run": "exp2", "split": "test"})
    assert [e.hash for e in archive.query('run = "exp1" and split = "test"')] == [h1]
    assert [e.hash for e in archive.query("run = exp1")] == [h2, h1]
    assert [e.hash for e in archive.query("kind = tensor and run ~ 'exp*'".replace("'", '"'))][-1] == h1
    assert [e.hash for e in archive.query("step > 5")] == [h1]  # numeric, not lexical
    assert len(archive.query("", limit=2)) == 2
    with pytest.raises(ma.InvalidInput, match="column"):
        archive.query('run = "exp1" and and')


def test_query_on_record_fields(archive):
    probs = np.ones((2, 3), dtype=np.float32)
    a = archive.put({"probs": probs, "label": 3, "pred": 3, "meta": {"source": "cam1"}}, tags={"split": "test"})
    b = archive.put({"probs": probs, "label": 3, "pred": 5, "meta": {"source": "cam2"}}, tags={"split": "test"})
    c = archive.put({"probs": probs, "label": 1, "pred": 1, "meta": {"source": "cam2"}}, tags={"split": "val"})
    assert {e.hash for e in archive.query("label = 3")} == {a, b}
    assert [e.hash for e in archive.query('split = "test" and label != pred')] == [b]
    assert {e.hash for e in archive.query('meta.source = "cam2"')} == {b, c}
    assert [e.hash for e in archive.query("has meta.source and label < 2")] == [c]
    # Quoted, a field's name is a word.
    assert len(archive.query('label != "pred"')) == 3


def test_stack_gives_one_array_in_logging_order(archive):
    rows = [np.full(4, i, dtype=np.float32) for i in range(50)]
    with archive.writer() as w:
        for i, r in enumerate(rows):
            w.put({"probs": r, "label": i % 3}, tags={"run": "exp1"})
    got = archive.stack('run = "exp1"', "probs")
    assert got.shape == (50, 4) and got.dtype == np.float32
    assert np.array_equal(got, np.stack(rows))
    # Handed over without a copy: a writable view of the bytes the store stacked, which it
    # keeps alive after the archive and every other reference are gone.
    assert isinstance(got.base, ma.OwnedBytes) and len(got.base) == got.nbytes
    assert got.flags.writeable and not got.flags.owndata
    got[3] += 1
    assert got[3, 0] == 4.0 and got[2, 0] == 2.0
    view = archive.stack('run = "exp1"', "probs")[10:12]
    import gc
    gc.collect()
    assert view.tolist() == [[10.0] * 4, [11.0] * 4]
    assert np.array_equal(archive.stack("label = 2", "probs"), np.stack(rows[2::3]))
    with pytest.raises(ma.InvalidInput, match="no entries match"):
        archive.stack('run = "none"', "probs")
    with pytest.raises(ma.InvalidInput, match="not a tensor"):
        archive.stack('run = "exp1"', "label")
