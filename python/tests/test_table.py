"""Archive.table: the entries a query matches as a pyarrow.Table, read by pandas and polars."""

import numpy as np
import pyarrow as pa
import pytest

import model_archive as ma


def fill(archive, n=60):
    rows = []
    with archive.writer() as w:
        for i in range(n):
            probs = np.arange(i * 4, i * 4 + 4, dtype=np.float32) / 7
            rec = {"probs": probs, "label": i % 3, "id": f"img-{i}", "meta": {"score": i / 10}}
            w.put(rec, tags={"run": "exp1" if i < n // 2 else "exp2"})
            rows.append(rec)
    return rows


def test_table_gives_every_field_and_tag_oldest_first(archive):
    rows = fill(archive)
    t = archive.table('run = "exp2"')
    assert isinstance(t, pa.Table)
    assert t.column_names == ["time", "hash", "probs", "label", "id", "meta.score", "run"]
    assert t.num_rows == 30
    assert t.schema.field("probs").type == pa.list_(pa.float32(), 4)
    probs = t["probs"].combine_chunks().flatten().to_numpy().reshape(-1, 4)
    assert np.array_equal(probs, np.stack([r["probs"] for r in rows[30:]]))
    assert np.array_equal(probs, archive.stack('run = "exp2"', "probs"))
    assert t["id"].to_pylist() == [r["id"] for r in rows[30:]]
    assert t["meta.score"].to_pylist() == [r["meta"]["score"] for r in rows[30:]]
    entries = archive.query('run = "exp2"')[::-1]
    assert t["hash"].to_pylist() == [e.hash for e in entries]


def test_table_columns_pandas_and_polars(archive):
    import polars as pl

    rows = fill(archive)
    t = archive.table("label = 1", columns=["id", "label", "probs"])
    assert t.column_names == ["id", "label", "probs"]
    df = t.to_pandas()
    assert df["id"].tolist() == [r["id"] for r in rows if r["label"] == 1]
    f = pl.from_arrow(t)
    assert f["probs"].dtype == pl.Array(pl.Float32, 4)
    assert np.array_equal(f["probs"].to_numpy(), archive.stack("label = 1", "probs"))
    # A tag chosen as a column is read; with no tag among the columns none are.
    t = archive.table("", columns=["run", "label"])
    assert t["run"].to_pylist() == ["exp1"] * 30 + ["exp2"] * 30
    assert archive.table("", columns=["label"]).column_names == ["label"]


def test_table_errors_name_the_problem(archive):
    fill(archive, 4)
    archive.put({"probs": "not a tensor"}, tags={"run": "exp2"})
    with pytest.raises(ma.InvalidInput, match="column `probs`"):
        archive.table("")
    with pytest.raises(ma.InvalidInput, match="asked for twice"):
        archive.table("", columns=["id", "id"])
    # Nothing matches: an empty table of the columns asked for.
    t = archive.table('run = "none"', columns=["id"])
    assert t.num_rows == 0 and t.column_names == ["id"]
