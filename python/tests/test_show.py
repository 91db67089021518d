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
