#!/usr/bin/env python3
"""Issue 15's benchmarks, whole processes as a user runs them, beside numpy and pandas doing
the same work on data already in memory (the peers' load time is not counted: the ratio
favours them).

Usage (after `cargo build --release --bin archive`; numpy and pandas installed):
    python3 benches/show_diff_bench.py [--records 1000000] [--repeats 5]

  diff of two tensors  `archive diff A B` of two 64 MiB float32 tensors [65536, 256] (B is A
                       with noise on 1 % of its rows), against numpy computing the same
                       figures: np.isclose, |a-b| max and argmax, NaN changes, argmax flips.
  diff of two runs     `archive diff 'run = "a"' 'run = "b"' --by id` of two runs of N
                       records {id, probs: float32[10]} (1 % changed), against a pandas merge
                       on id plus the same per-row comparison (np.isclose, argmax).
  show --rows          `archive show H --rows 1000:1010` of a 256 MiB tensor, against a
                       whole `archive get` of it.

Medians of --repeats; the archive binary is $ARCHIVE_BIN, else target/release/archive.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("ARCHIVE_BIN") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "archive")


def archive(store, *args, ok=(0, 1)):
    p = subprocess.run([BIN, "--store", store, *args], capture_output=True, text=True)
    if p.returncode not in ok:
        sys.exit(f"archive {' '.join(args)}: exit {p.returncode}: {p.stderr}")
    return p.stdout


def timed(f, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def tensors(store, d, repeats):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((65536, 256), dtype=np.float32)
    b = a.copy()
    rows = rng.choice(65536, 655, replace=False)
    b[rows] += rng.standard_normal((655, 256), dtype=np.float32) * 1e-3
    for name, x in [("a", a), ("b", b)]:
        np.save(os.path.join(d, f"{name}.npy"), x)
    ha = archive(store, "put", os.path.join(d, "a.npy")).strip()
    hb = archive(store, "put", os.path.join(d, "b.npy")).strip()
    ours = timed(lambda: archive(store, "--json", "diff", ha, hb), repeats)

    def peer():
        x, y = a.astype(np.float64), b.astype(np.float64)
        close = np.isclose(x, y, rtol=1.3e-6, atol=1e-5, equal_nan=True)
        diff = np.abs(x - y)
        diff.argmax()
        int((~close).sum()), int((np.isnan(x) != np.isnan(y)).sum())
        (a.argmax(-1) != b.argmax(-1)).sum()
    return ours, timed(peer, repeats)


def runs(store, d, n, repeats):
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(10), n).astype(np.float32)
    other = probs.copy()
    changed = rng.choice(n, n // 100, replace=False)
    other[changed] = other[changed][:, ::-1]
    ids = [f"img-{i:09d}" for i in range(n)]
    for name, p in [("a", probs), ("b", other)]:
        path = os.path.join(d, f"{name}.ndjson")
        with open(path, "w") as f:
            for i, row in zip(ids, p.tolist()):
                f.write(json.dumps({"id": i, "probs": row}) + "\n")
        with open(path) as f:
            subprocess.run([BIN, "--store", store, "log", "--tag", f"run={name}", "--tag-field", "id",
                            "--tensor-field", "probs"], stdin=f, check=True, capture_output=True)
    ours = timed(lambda: archive(store, "--json", "diff", 'run = "a"', 'run = "b"', "--by", "id"),
                 repeats)
    left = pd.DataFrame({"id": ids, "a": list(probs)})
    right = pd.DataFrame({"id": ids, "b": list(other)})

    def peer():
        m = left.merge(right, on="id")
        x, y = np.stack(m["a"].to_numpy()), np.stack(m["b"].to_numpy())
        close = np.isclose(x, y, rtol=1.3e-6, atol=1e-5).all(-1)
        (~close).sum(), (x.argmax(-1) != y.argmax(-1)).sum(), np.abs(x - y).max(-1)
    return ours, timed(peer, repeats)


def rows(store, d, repeats):
    a = np.random.default_rng(3).standard_normal((65536, 1024), dtype=np.float32)
    np.save(os.path.join(d, "big.npy"), a)
    h = archive(store, "put", os.path.join(d, "big.npy")).strip()
    out = os.path.join(d, "back.npy")
    ours = timed(lambda: archive(store, "show", h, "--rows", "1000:1010"), repeats)
    whole = timed(lambda: archive(store, "get", h, "-o", out), repeats)
    return ours, whole


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        store = os.path.join(d, "store")
        archive(store, "init", store, ok=(0,))
        t_ours, t_peer = tensors(store, d, args.repeats)
        r_ours, r_peer = runs(store, d, args.records, args.repeats)
        s_ours, s_whole = rows(store, d, args.repeats)
    n = args.records
    print(f"`show_diff_bench.py --records {n}`: medians of {args.repeats}, whole processes\n")
    print("| measure | archive | peer | ratio (peer / archive) | goal |")
    print("|---|---:|---:|---:|---|")
    print(f"| diff of two 64 MiB float32 tensors | {t_ours:.3f} s | {t_peer:.3f} s (numpy, in memory) "
          f"| {t_peer / t_ours:.2f}x | ≥ 1x |")
    print(f"| diff of two runs of {n:,} records by id | {r_ours:.2f} s ({n / r_ours:,.0f} pairs/s) | "
          f"{r_peer:.2f} s (pandas merge + numpy, in memory) | {r_peer / r_ours:.2f}x | ≥ 500,000 pairs/s |")
    print(f"| show --rows 1000:1010 of a 256 MiB tensor | {s_ours * 1000:.0f} ms | {s_whole * 1000:.0f} ms "
          f"(archive get of all of it) | {s_whole / s_ours:.1f}x | — |")


if __name__ == "__main__":
    main()
