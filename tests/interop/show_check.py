"""`archive show`'s figures against numpy's, on real outputs (the samples) and arrays of every
dtype with NaN, infinities, empty and 0-d ones.

    show_check.py write DIR          write NAME.npy files
    show_check.py check DIR JSONDIR  compare JSONDIR/NAME.json (`archive --json show`)
    show_check.py pairs DIR          write a_NAME.npy, b_NAME.npy for `archive diff`
    show_check.py check_diff DIR JSONDIR  compare JSONDIR/NAME.json (`archive --json diff`)
"""
import json
import os
import sys

import ml_dtypes
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def arrays():
    rng = np.random.default_rng(3)
    out = {name[:-4]: np.load(os.path.join(ROOT, "samples", name))
           for name in os.listdir(os.path.join(ROOT, "samples")) if name.endswith(".npy")}
    base = rng.standard_normal(1000) * 3
    base[[5, 17]] = np.nan
    base[[9]] = np.inf
    base[[11]] = -np.inf
    base[[20, 21, 22]] = 0
    for dt in ["float16", "float32", "float64"]:
        out[dt] = base.astype(dt)
    for dt, ml in [("bfloat16", ml_dtypes.bfloat16), ("float8_e4m3fn", ml_dtypes.float8_e4m3fn),
                   ("float8_e5m2", ml_dtypes.float8_e5m2)]:
        out[dt] = np.clip(base, -400, 400).astype(ml) if dt == "float8_e4m3fn" else base.astype(ml)
    for dt in ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]:
        info = np.iinfo(dt)
        out[dt] = rng.integers(max(info.min, -10**6), min(info.max, 10**6), 500).astype(dt)
    out["bool"] = rng.random(100) > 0.3
    out["complex64"] = (rng.standard_normal(50) + 1j * rng.standard_normal(50)).astype(np.complex64)
    out["empty"] = np.zeros((0, 3), dtype=np.float32)
    out["scalar"] = np.array(2.5)
    out["constant"] = np.full((4, 4), 7.0)
    out["all_nan"] = np.full(3, np.nan)
    return out


# .npy loses ml_dtypes' types: those go as raw bytes, with `--dtype` and `--shape` in NAME.args.
RAW = {"bfloat16": "BF16", "float8_e4m3fn": "F8E4M3", "float8_e5m2": "F8E5M2"}


def write(d):
    os.makedirs(d, exist_ok=True)
    for name, a in arrays().items():
        if name in RAW:
            open(os.path.join(d, f"{name}.raw"), "wb").write(a.tobytes())
            shape = ",".join(map(str, a.shape))
            open(os.path.join(d, f"{name}.args"), "w").write(f"--dtype {RAW[name]} --shape {shape}")
        else:
            np.save(os.path.join(d, f"{name}.npy"), a)


def close(x, y):
    if x is None or y is None:
        return x is None and y is None
    return np.isclose(x, y, rtol=1e-9, atol=1e-12)


def check(d, jd):
    bad = []
    for name, a in arrays().items():
        f = json.load(open(os.path.join(jd, f"{name}.json")))
        # Magnitudes in float64 (numpy's abs of complex64 rounds them to float32).
        v = np.abs(a.astype(np.complex128)) if np.iscomplexobj(a) else a.astype(np.float64)
        v = v.ravel()
        fin = v[np.isfinite(v)]
        want = {
            "count": v.size, "nan": int(np.isnan(v).sum()),
            "pos_inf": int((v == np.inf).sum()), "neg_inf": int((v == -np.inf).sum()),
            "zeros": int((v == 0).sum()),
        }
        for k, w in want.items():
            if f[k] != w:
                bad.append(f"{name}: {k} {f[k]} != {w}")
        if fin.size:
            for k, w in [("min", fin.min()), ("max", fin.max()), ("mean", fin.mean()),
                         ("std", fin.std())]:
                if not close(f[k], w):
                    bad.append(f"{name}: {k} {f[k]} != {w}")
            for q in f["quantiles"]:
                w = np.quantile(fin, q["q"])
                if not close(q["value"], w):
                    bad.append(f"{name}: quantile {q['q']} {q['value']} != {w}")
            counts, _ = np.histogram(fin, bins=20)
            if f["histogram"]["counts"] != counts.tolist():
                bad.append(f"{name}: histogram {f['histogram']['counts']} != {counts.tolist()}")
        elif f["min"] is not None or f["quantiles"]:
            bad.append(f"{name}: figures of no finite values")
        if a.ndim >= 2 and name.endswith("probs"):
            want = np.bincount(a.reshape(-1, a.shape[-1]).argmax(-1), minlength=a.shape[-1])
            if f["argmax"] != want.tolist():
                bad.append(f"{name}: argmax {f['argmax']} != {want.tolist()}")
    print("\n".join(bad) or f"{len(arrays())} arrays: all figures agree")
    sys.exit(1 if bad else 0)


def pairs():
    """(a, b) pairs for `archive diff`: a is b changed a little, here and there."""
    rng = np.random.default_rng(11)
    probs = np.load(os.path.join(ROOT, "samples", "digits_test_probs.npy"))
    out = {}
    a = probs.copy()
    a[3, 2] += 1e-4
    a[7] = a[7][::-1]
    a[10:20] = np.roll(a[10:20], 1, axis=1)
    out["probs"] = (a, probs)
    b = rng.standard_normal((64, 32)).astype(np.float32)
    a = b + rng.standard_normal(b.shape).astype(np.float32) * 1e-5
    a[0, 0] = np.nan
    b[1, 1] = np.nan
    a[2, 2] = b[2, 2] = np.nan
    a[3, 3] = np.inf
    out["noisy"] = (a, b)
    b = rng.standard_normal(1000)
    out["f64"] = (b * (1 + 1e-8), b)
    b = rng.integers(0, 100, 300)
    a = b.copy()
    a[::7] += 1
    out["ints"] = (a, b)
    b = rng.standard_normal(100).astype(np.float16)
    out["f16"] = ((b.astype(np.float32) * 1.002).astype(np.float16), b)
    return out


DEFAULT_TOL = {"float16": (1e-3, 1e-5), "float32": (1.3e-6, 1e-5), "float64": (1e-7, 1e-7)}


def write_pairs(d):
    os.makedirs(d, exist_ok=True)
    for name, (a, b) in pairs().items():
        np.save(os.path.join(d, f"a_{name}.npy"), a)
        np.save(os.path.join(d, f"b_{name}.npy"), b)


def check_diff(d, jd):
    bad = []
    for name, (a, b) in pairs().items():
        f = json.load(open(os.path.join(jd, f"{name}.json")))
        rtol, atol = DEFAULT_TOL.get(a.dtype.name, (0.0, 0.0))
        x, y = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
        close = np.isclose(x, y, rtol=rtol, atol=atol, equal_nan=True)
        if f["mismatched"] != int((~close).sum()):
            bad.append(f"{name}: mismatched {f['mismatched']} != {int((~close).sum())}")
        if f["nan_changed"] != int((np.isnan(x) != np.isnan(y)).sum()):
            bad.append(f"{name}: nan_changed {f['nan_changed']}")
        both = np.isfinite(x) & np.isfinite(y)
        diff = np.where(both, np.abs(x - y), -1)
        i = int(diff.argmax())
        if not np.isclose(f["max_abs"]["value"], diff[i], rtol=1e-12, atol=0) or \
                f["max_abs"]["index"] != list(np.unravel_index(i, a.shape)):
            bad.append(f"{name}: max_abs {f['max_abs']} != {diff[i]} at {i}")
        if name == "probs":
            flips = int((a.argmax(-1) != b.argmax(-1)).sum())
            if f["argmax"] != {"rows": a.shape[0], "flipped": flips}:
                bad.append(f"{name}: argmax {f['argmax']} != {flips}")
    print("\n".join(bad) or f"{len(pairs())} pairs: all figures agree")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    {"write": lambda: write(sys.argv[2]), "check": lambda: check(sys.argv[2], sys.argv[3]),
     "pairs": lambda: write_pairs(sys.argv[2]),
     "check_diff": lambda: check_diff(sys.argv[2], sys.argv[3])}[sys.argv[1]]()
