"""A raw-stored tensor over 4 KiB comes back as a view of the memory map; compressed ones, and
small ones (packed with other small objects, schema v2), are decoded into a fresh buffer."""

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


@pytest.mark.parametrize("n", [1, 40, 4096])
def test_a_small_tensor_comes_back_exact_in_a_fresh_buffer(archive, n):
    x = incompressible(n)
    h = archive.put(x)
    a, b = archive.get(h), archive.get(h)
    assert np.array_equal(a, x) and a.dtype == x.dtype and a.shape == x.shape
    assert not mapped_of(a).zero_copy  # packed: copied out of its pack
    assert not np.shares_memory(a, b)
    assert not a.flags.writeable
    assert np.array_equal(archive.get(h, verify=False), x)


def test_just_over_4_kib_is_the_memory_map(archive):
    x = incompressible(4097)
    h = archive.put(x)
    assert archive.info(h)["codec"] == "raw"
    assert mapped_of(archive.get(h)).zero_copy


def test_get_without_verify_is_the_memory_map(archive):
    # Issue 6: get of a raw-stored tensor is an ndarray whose memory is the memory map.
    x = np.random.default_rng(8).standard_normal((64, 256)).astype(np.float32)  # 64 KiB
    h = archive.put(x, codec="raw")
    a, b = archive.get(h, verify=False), archive.get(h, verify=False)
    assert np.shares_memory(a, b)
    assert np.array_equal(a, x) and a.dtype == np.float32 and a.shape == (64, 256)
    assert np.shares_memory(a, archive.get(h))  # verified or not, the same mapped bytes
    assert isinstance(a.base, ma.Mapped) and a.base.zero_copy and not a.flags.writeable


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


def test_codec_raw_keeps_a_small_tensor_out_of_packs(archive):
    x = np.arange(10, dtype=np.float32)  # 40 bytes: packed unless a codec is asked for
    h = archive.put(x, codec="raw")
    y = archive.get(h)
    assert mapped_of(y).zero_copy and np.array_equal(y, x)
