"""A raw-stored tensor comes back as a view of the memory map; compressed ones are decoded."""

import gc

import numpy as np
import pytest

import model_archive as ma
from conftest import mapped_of


def incompressible(n):
    return np.random.default_rng(7).integers(0, 256, size=n, dtype=np.uint8)


def test_raw_tensor_is_the_memory_map(archive):
    x = incompressible(1 << 20)
    h = archive.put(x)
    assert archive.info(h)["codec"] == "raw"
    a, b = archive.get(h), archive.get(h)
    assert np.shares_memory(a, b)  # both view the same mapped segment
    owner = mapped_of(a)
    assert isinstance(owner, ma.Mapped) and owner.zero_copy and owner.hash == h
    assert not a.flags.writeable
    with pytest.raises(ValueError):
        a[0] = 1


def test_mapped_array_outlives_the_archive(tmp_path):
    x = incompressible(1 << 16)
    with ma.Archive(tmp_path / "s") as a:
        y = a.get(a.put(x))
    assert a.closed
    del a
    gc.collect()
    assert np.array_equal(y, x)  # the array holds the map alive


def test_compressed_tensor_is_decoded_into_a_fresh_buffer(archive):
    x = np.zeros((256, 256), dtype=np.float32)
    h = archive.put(x)
    assert archive.info(h)["codec"] != "raw"
    a, b = archive.get(h), archive.get(h)
    assert not np.shares_memory(a, b)
    assert not mapped_of(a).zero_copy
    assert np.array_equal(a, x)


def test_an_archived_array_can_be_put_again(archive):
    x = incompressible(4096)
    h = archive.put(x)
    assert archive.put(archive.get(h)) == h  # read-only input is fine


def test_codec_raw_makes_a_compressible_tensor_zero_copy(archive):
    x = np.zeros((128, 128), dtype=np.float32)
    h = archive.put(x, codec="raw")
    assert archive.info(h)["codec"] == "raw"
    assert mapped_of(archive.get(h)).zero_copy
    with archive.writer(codec="zstd", level=5) as w:
        h2 = w.put(np.ones(4096, dtype=np.float64))
    assert archive.info(h2)["codec"] == "zstd"
    with pytest.raises(ma.InvalidInput, match="unknown codec"):
        archive.put(x, codec="lz4")
