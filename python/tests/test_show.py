"""Slices of big tensors (`get(rows=...)`) and a tensor's figures (`show`), against numpy."""
import numpy as np
import pytest


def test_rows_of_a_big_tensor_are_its_slice(archive):
    a = (np.arange(2_000 * 1_000, dtype=np.float32).reshape(2_000, 1_000) % 977) / 7
    h = archive.put(a)
    for rows in [slice(10, 20), slice(1_000, 1_300), slice(1_990, None), slice(None, 3),
                 slice(5_000, 6_000)]:
        got = archive.get(h, rows=rows)
        np.testing.assert_array_equal(got, a[rows])
        assert got.dtype == a.dtype
    with pytest.raises(ValueError, match="step"):
        archive.get(h, rows=slice(0, 10, 2))
    with pytest.raises(ValueError, match="negative"):
        archive.get(h, rows=slice(-5, None))


def test_show_gives_numpys_figures(archive):
    rng = np.random.default_rng(4)
    a = rng.standard_normal((300, 7))
    a[3, 3], a[4, 4], a[5, 5] = np.nan, np.inf, -np.inf
    f = archive.show(archive.put(a))
    fin = a[np.isfinite(a)]
    assert (f["count"], f["nan"], f["pos_inf"], f["neg_inf"]) == (a.size, 1, 1, 1)
    for k, v in [("min", fin.min()), ("max", fin.max()), ("mean", fin.mean()), ("std", fin.std())]:
        assert f[k] == pytest.approx(v, rel=1e-12), k
    for q, v in f["quantiles"].items():
        assert v == pytest.approx(np.quantile(fin, q), rel=1e-12)
    assert f["histogram"] == np.histogram(fin, bins=20)[0].tolist()
    probs = np.load(__import__("pathlib").Path(__file__).parents[2] / "samples" / "digits_test_probs.npy")
    g = archive.show(archive.put(probs))
    assert g["argmax"] == np.bincount(probs.argmax(-1), minlength=10).tolist()
    with pytest.raises(ValueError, match="not a tensor"):
        archive.show(archive.put("text"))


def test_diff_of_two_tensors_and_of_two_runs(archive):
    b = np.random.default_rng(8).standard_normal((100, 10))
    a = b.copy()
    a[7, 3] += 0.5
    d = archive.diff(archive.put(a), archive.put(b))
    assert (d["equal"], d["mismatched"], d["max_abs"]["index"]) == (False, 1, [7, 3])
    assert d["max_abs"]["value"] == pytest.approx(0.5)
    assert archive.diff(archive.put(b), archive.put(b))["identical"]
    with archive.writer(tags={"run": "x"}) as w:
        for i in range(20):
            w.put({"id": f"r{i}", "v": float(i)}, tags={"id": f"r{i}"})
    with archive.writer(tags={"run": "y"}) as w:
        for i in range(1, 21):
            w.put({"id": f"r{i}", "v": float(i) + (i == 4)}, tags={"id": f"r{i}"})
    r = archive.diff('run = "x"', 'run = "y"', by="id")
    assert (r["pairs"], r["only_in_a"], r["only_in_b"], r["different"], r["identical"]) == (19, 1, 1, 1, 18)


def test_diff_by_key_gives_a_pyarrow_table_of_every_pair(archive):
    import pyarrow as pa

    probs = np.random.default_rng(3).dirichlet(np.ones(4), size=30).astype(np.float32)
    with archive.writer(tags={"run": "a"}) as w:
        for i in range(30):
            w.put({"id": f"k{i}", "p": probs[i]}, tags={"id": f"k{i}"})
    # k3 moves a little mass (rows stay distributions), k17 is reversed (its argmax moves);
    # k0 is only in a, k30 only in b.
    b_rows = {}
    with archive.writer(tags={"run": "b"}) as w:
        for i in range(1, 31):
            p = probs[i % 30].copy()
            if i == 3:
                top = int(p.argmax())
                p[top] -= np.float32(0.01)
                p[(top + 1) % 4] += np.float32(0.01)
            if i == 17:
                p = p[::-1].copy()
            b_rows[i] = p
            w.put({"id": f"k{i}", "p": p}, tags={"id": f"k{i}"})
    r = archive.diff('run = "a"', 'run = "b"', by="id")
    t = r["table"]
    assert isinstance(t, pa.Table)
    assert t.column_names == ["key", "status", "a", "b", "max_abs", "mismatched", "argmax_flipped"]
    rows = {row["key"]: row for row in t.to_pylist()}
    assert len(rows) == 31
    statuses = t.column("status").to_pylist()
    assert statuses.count("identical") == 27 == r["identical"]
    assert statuses.count("different") == 2 == r["different"]
    assert (rows["k0"]["status"], rows["k0"]["b"]) == ("only_in_a", None)
    assert (rows["k30"]["status"], rows["k30"]["a"]) == ("only_in_b", None)
    for i in (3, 17):
        row, a, b = rows[f"k{i}"], probs[i], b_rows[i]
        assert row["status"] == "different"
        assert row["max_abs"] == pytest.approx(float(np.abs(a - b).max()), rel=1e-6)
        assert row["mismatched"] == int((~np.isclose(a, b, rtol=1.3e-6, atol=1e-5)).sum())
        assert row["argmax_flipped"] == int(np.argmax(a) != np.argmax(b))
    assert rows["k17"]["argmax_flipped"] == 1
    assert rows["k1"]["max_abs"] is None and rows["k1"]["a"] == rows["k1"]["b"]
    assert sum(t.column("argmax_flipped").to_pylist()) == r["argmax"]["flipped"]
    df = t.to_pandas()
    assert list(df.sort_values("max_abs", ascending=False)["key"][:2]) == ["k17", "k3"]
    assert "table" not in archive.diff('run = "a"', 'run = "b"', by="id", table=False)


def test_show_of_a_tensor_over_64_mib_reads_it_in_blocks_with_numpys_figures(archive):
    # 72 MB of float64: read a block of rows at a time, in a few walks, never whole.
    rng = np.random.default_rng(5)
    a = rng.standard_normal((900_000, 10))
    a[::1000, 3] = 0.0
    a[17, 2], a[800_000, 9] = np.nan, np.inf
    f = archive.show(archive.put(a))
    fin = a[np.isfinite(a)].astype(np.float64)
    assert (f["count"], f["nan"], f["pos_inf"], f["zeros"]) == (a.size, 1, 1, 900)
    for k, v in [("min", fin.min()), ("max", fin.max()), ("mean", fin.mean()), ("std", fin.std())]:
        assert f[k] == pytest.approx(v, rel=1e-9), k
    for q, v in f["quantiles"].items():
        assert v == np.quantile(fin, q), q
    assert f["histogram"] == np.histogram(fin, bins=20)[0].tolist()
