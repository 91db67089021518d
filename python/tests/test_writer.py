"""Batch logging: many puts, one commit."""

import numpy as np
import pytest

import model_archive as ma


def test_writer_commits_at_the_end_of_the_block(archive):
    with archive.writer(tags={"run": "exp1"}) as w:
        hashes = [w.put(np.full(4, i, dtype=np.float32), tags={"step": i}) for i in range(100)]
        assert w.pending == 100
        assert archive.stats()["entries"] == 0  # not visible before the commit
    assert archive.stats()["entries"] == 100
    es = archive.entries(tags={"run": "exp1"})
    assert [e.hash for e in es] == hashes[::-1]
    assert es[0].tags == {"run": "exp1", "step": "99"}
    assert np.array_equal(archive.get(hashes[7]), np.full(4, 7, dtype=np.float32))


def test_put_tags_override_writer_tags(archive):
    with archive.writer(tags={"run": "exp1", "split": "train"}) as w:
        w.put("x", tags={"split": "test"})
    assert archive.entries()[0].tags == {"run": "exp1", "split": "test"}


def test_commit_midway_and_mixed_kinds(archive):
    w = archive.writer()
    w.put(np.arange(3))
    w.put({"label": 1, "probs": np.ones(2)})
    w.commit()
    assert w.pending == 0 and archive.stats()["entries"] == 2
    w.put("text")
    w.put(b"bytes", media_type="application/octet-stream")
    w.close()
    assert archive.stats()["entries"] == 4
    with pytest.raises(ma.ArchiveError, match="closed"):
        w.put("late")


def test_discard_leaves_the_store_as_it_was(archive):
    archive.put("kept")
    before = archive.stats()
    w = archive.writer()
    for i in range(10):
        w.put(np.full(1000, i))
    w.discard()
    # The index's size on disk is sled's to change as it flushes on its own; the rest is the
    # store's contents.
    after = archive.stats()
    before.pop("index_bytes")
    after.pop("index_bytes")
    assert after == before


def test_an_exception_in_the_block_still_commits_what_was_logged(archive):
    with pytest.raises(RuntimeError):
        with archive.writer() as w:
            w.put("before the crash")
            raise RuntimeError("model failed")
    assert archive.get(archive.entries()[0].hash) == "before the crash"
