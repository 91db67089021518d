"""Errors are Python exceptions mirroring the Rust `Error`, with its messages."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import model_archive as ma


def test_every_exception_derives_from_archive_error():
    for name in ["NotFound", "Ambiguous", "Corrupt", "NeedsMigration", "TooNew", "Locked",
                 "InvalidInput", "NoStore", "AlreadyExists", "IoError", "IndexFailed"]:
        assert issubclass(getattr(ma, name), ma.ArchiveError)
    assert issubclass(ma.ArchiveError, Exception)


def test_not_found(archive):
    with pytest.raises(ma.NotFound, match="no object matches `abcd1234`"):
        archive.get("abcd1234")
    with pytest.raises(ma.NotFound):
        archive.info("0" * 64)


def test_invalid_input(archive):
    with pytest.raises(ma.InvalidInput, match="object arrays"):
        archive.put(np.array([{"a": 1}], dtype=object))
    with pytest.raises(ma.InvalidInput, match="dtype datetime64"):
        archive.put(np.array(["2024-01-01"], dtype="datetime64[D]"))
    with pytest.raises(ma.InvalidInput, match="a tag key cannot hold"):
        archive.put(np.zeros(2), tags={"a=b": "x"})
    with pytest.raises(ma.InvalidInput, match="64 bits"):
        archive.put({"big": 2**70})
    with pytest.raises(ma.InvalidInput, match="only refer to objects already in the archive"):
        archive.put({"r": ma.Ref("ab" * 32)})
    with pytest.raises(TypeError):
        archive.put(3)
    with pytest.raises(TypeError):
        archive.put([1, 2, 3])
    assert archive.stats()["entries"] == 0  # nothing refused was stored


def test_no_store_and_already_exists(tmp_path):
    with pytest.raises(ma.NoStore, match="no archive here"):
        ma.Archive.open(tmp_path / "missing")
    ma.Archive.create(tmp_path / "s").close()
    with pytest.raises(ma.AlreadyExists, match="already exists"):
        ma.Archive.create(tmp_path / "s")
    ma.Archive.open(tmp_path / "s").close()


def test_closed_archive_raises(tmp_path):
    a = ma.Archive(tmp_path / "s")
    a.close()
    a.close()
    with pytest.raises(ma.ArchiveError, match="closed"):
        a.put("x")


def test_locked_by_another_process(tmp_path):
    store = tmp_path / "s"
    ma.Archive.create(store).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, model_archive as ma
            a = ma.Archive({str(store)!r})
            print("ready", flush=True)
            sys.stdin.readline()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(ma.Locked, match=r"the index is in use by pid \d+") as e:
            ma.Archive(store, lock_timeout=0.2)
        assert "waited" in str(e.value)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    ma.Archive(store, lock_timeout=5).close()  # free again once the holder exits


def test_corrupt_payload_is_reported(tmp_path):
    store = tmp_path / "s"
    x = np.random.default_rng(3).integers(0, 256, size=1 << 16, dtype=np.uint8)
    with ma.Archive(store) as a:
        h = a.put(x)
        assert a.info(h)["codec"] == "raw"
    seg = next((store / "segments").iterdir())
    data = bytearray(seg.read_bytes())
    at = data.find(x[:64].tobytes())
    data[at + 100] ^= 0xFF
    seg.write_bytes(bytes(data))
    with ma.Archive(store) as a:
        with pytest.raises(ma.Corrupt, match="corrupt data at byte"):
            a.get(h)
        # Unverified, the get reads no byte of the payload, so it cannot notice.
        damaged = a.get(h, verify=False)
        assert damaged[100] == x[100] ^ 0xFF and np.sum(damaged != x) == 1
        assert a.verify()


def test_an_idle_archive_hands_the_index_over(tmp_path):
    store = tmp_path / "s"
    a = ma.Archive.create(store)
    h = a.put("kept")
    a.release_index()
    # Another process opens the index and writes through it while `a` stays open.
    other = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(f"""
            import model_archive as ma
            with ma.Archive({str(store)!r}, lock_timeout=5) as b:
                print(b.put("from another process", tags={{"who": "b"}}))
        """)],
        capture_output=True, text=True, timeout=60,
    )
    assert other.returncode == 0, other.stderr
    theirs = other.stdout.strip()
    # `a` takes the index again when it needs it, and sees the other process's entry.
    assert [e.hash for e in a.query('who = "b"')] == [theirs]
    assert a.get(h) == "kept"
    a.close()
