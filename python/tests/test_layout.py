"""Arrays whose memory is not one C-ordered block (strided views, transposed, Fortran-ordered,
reversed, broadcast) are copied to C order before their bytes are read: they come back
bit-exact, C-ordered, and hash as their contiguous copy does. The bindings never read such a
buffer as if it were contiguous (they would store the wrong bytes, or read past its end)."""

import numpy as np
import pytest

from conftest import mapped_of

ml_dtypes = pytest.importorskip("ml_dtypes")


def random_bits(dtype, shape, seed=0):
    """Every bit pattern of the dtype, NaN payloads and negative zeros included."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape)) * dtype.itemsize
    raw = np.random.default_rng(seed).integers(0, 256, size=n, dtype=np.uint8)
    if dtype == np.bool_:
        raw &= 1  # numpy bools are 0 or 1
    return raw.view(dtype).reshape(shape)


LAYOUTS = {
    "every-other-column": lambda a: a[:, ::2],
    "transposed": lambda a: a.T,
    "fortran-ordered": np.asfortranarray,
    "reversed-rows": lambda a: a[::-1],
    "negative-column-step": lambda a: a[1:, ::-3],
    "broadcast-row": lambda a: np.broadcast_to(a[0], (5, a.shape[1])),
    "memoryview-of-strided": lambda a: memoryview(a[:, 1::2]),
}
DTYPES = [np.bool_, np.uint8, np.int16, np.float32, np.float64, np.complex128,
          ml_dtypes.bfloat16, ml_dtypes.float8_e5m2]


def c_order_bytes(x):
    return np.ascontiguousarray(np.asarray(x)).tobytes()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("layout", LAYOUTS, ids=str)
def test_non_contiguous_array_round_trips_bit_exact(archive, layout, dtype):
    if layout.startswith("memoryview") and np.dtype(dtype).num >= 256:
        pytest.skip("numpy exports no buffer of ml_dtypes' types")
    base = random_bits(dtype, (6, 10))
    x = LAYOUTS[layout](base)
    view = np.asarray(x)
    assert not view.flags.c_contiguous  # the case under test
    h = archive.put(x)
    y = archive.get(h)
    assert y.dtype == view.dtype
    assert y.shape == view.shape
    assert y.flags.c_contiguous
    assert y.tobytes() == c_order_bytes(view)
    # Element by element too, against the view itself (not a copy of it).
    assert all(
        y[(*idx, ...)].tobytes() == view[(*idx, ...)].tobytes() for idx in np.ndindex(view.shape)
    )
    assert archive.put(np.ascontiguousarray(view)) == h
    assert archive.stats()["objects"] == 1
    assert base.tobytes() == random_bits(dtype, (6, 10)).tobytes()  # the input is untouched


def test_values_of_a_strided_view_are_the_selected_ones(archive):
    a = np.arange(48, dtype=np.int32).reshape(4, 12)
    y = archive.get(archive.put(a[:, ::2]))
    assert y.tolist() == [[r * 12 + c for c in range(0, 12, 2)] for r in range(4)]
    t = archive.get(archive.put(a.T))
    assert t.shape == (12, 4)
    assert t[5].tolist() == [5, 17, 29, 41]


def test_big_endian_strided_view_is_stored_little_endian_in_c_order(archive):
    a = np.arange(60, dtype=">f8").reshape(6, 10)
    y = archive.get(archive.put(a[::2, ::-3]))
    assert y.dtype == np.dtype("<f8")
    assert y.tobytes() == np.ascontiguousarray(a[::2, ::-3]).astype("<f8").tobytes()


def test_raw_stored_strided_view_is_zero_copy_and_exact(archive):
    # Over 4 KiB and raw: `get` views the memory map, which holds the C-ordered copy.
    base = random_bits(np.float32, (512, 64), seed=3)
    x = base[:, ::2]
    h = archive.put(x, codec="raw")
    y = archive.get(h)
    assert archive.info(h)["codec"] == "raw"
    assert mapped_of(y).zero_copy
    assert y.tobytes() == c_order_bytes(x)


def test_non_contiguous_tensors_in_a_record_and_a_writer(archive):
    a = random_bits(np.float32, (8, 6), seed=1)
    with archive.writer() as w:
        h = w.put({"w": a.T, "cols": a[:, ::2], "f": np.asfortranarray(a), "n": 3})
    r = archive.get(h)
    assert r["n"] == 3
    for key, x in (("w", a.T), ("cols", a[:, ::2]), ("f", a)):
        assert r[key].shape == x.shape
        assert r[key].tobytes() == c_order_bytes(x), key


def test_strided_memoryview_of_bytes_is_a_uint8_tensor_of_the_selected_bytes(archive):
    mv = memoryview(b"abcdefgh")[::2]
    assert not mv.c_contiguous
    y = archive.get(archive.put(mv))
    assert y.dtype == np.uint8
    assert y.tobytes() == b"aceg"


def test_contiguous_bytes_still_round_trip(archive):
    h = archive.put(bytearray(b"\x00\xff" * 3000), media_type="application/octet-stream")
    assert archive.get(h) == b"\x00\xff" * 3000
    assert archive.get(archive.put(b"")) == b""
