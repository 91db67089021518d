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
