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
