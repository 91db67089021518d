"""Archive.rm: removed entries leave query results at once; stats count them."""

import pytest

import model_archive as ma


def test_rm_removes_what_the_query_matches(tmp_path):
    a = ma.Archive.create(str(tmp_path / "s"))
    with a.writer() as w:
        for i in range(12):
            w.put({"id": i}, tags={"run": f"r{i % 3}"})
    dry = a.rm('run = "r1"', dry_run=True)
    assert (dry["entries"], dry["dry_run"]) == (4, True)
    assert len(a.query('run = "r1"')) == 4
    r = a.rm('run = "r1"')
    assert (r["entries"], r["objects"]) == (4, 4)
    assert a.query('run = "r1"') == []
    assert len(a.query('run = "r0"')) == 4
    s = a.stats()
    assert (s["entries"], s["removed_entries"]) == (12, 4)
    assert a.verify() == []
    with pytest.raises(ValueError, match="needs a query"):
        a.rm("  ")


def test_gc_gives_the_space_back_and_a_dropped_object_is_removed(tmp_path):
    import numpy as np

    a = ma.Archive.create(str(tmp_path / "s"))
    rng = np.random.default_rng(0)
    arrays = {run: rng.random((256, 64), dtype=np.float32) for run in ("keep", "debug")}
    hashes = {run: a.put(x, tags={"run": run}) for run, x in arrays.items()}
    kept = a.get(hashes["keep"])
    a.rm('run = "debug"')
    dry = a.gc(dry_run=True)
    assert dry["dry_run"] and dry["bytes_reclaimed"] > 0
    r = a.gc()
    assert (r["segments_replaced"], r["objects_collected"]) == (1, 1)
    assert r["bytes_reclaimed"] >= arrays["debug"].nbytes // 2
    with pytest.raises(ma.Removed, match="was removed"):
        a.get(hashes["debug"])
    # Removed is a NotFound: code that catches that keeps working.
    with pytest.raises(ma.NotFound):
        a.get(hashes["debug"])
    np.testing.assert_array_equal(a.get(hashes["keep"]), arrays["keep"])
    np.testing.assert_array_equal(kept, arrays["keep"])
    assert a.verify() == []
    assert a.gc()["garbage_bytes"] == 0
