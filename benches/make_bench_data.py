#!/usr/bin/env python3
"""Write ~64 MiB arrays of real model outputs for the benchmarks.

Usage:
    pip install -r tools/requirements-samples.txt
    python3 benches/make_bench_data.py OUTDIR [--force]

The benchmarks call it with OUTDIR = target/bench-data; nothing it writes is
committed.  Files that already exist are skipped unless --force is given.

The data is an endless, deterministic stream of augmented copies of the 1797
images of scikit-learn's bundled digits dataset (pixels / 16 as model input).
Pass 0 of the stream is the unmodified dataset; pass p >= 1 shifts every
image by (dx, dy) in -1..1 (cycling through the 9 shifts, zero fill), scales
its intensity by a random factor in [0.8, 1.2], adds Gaussian pixel noise
(sigma 0.5 on the 0..16 scale) and clips to 0..16.  The random numbers of
pass p come from default_rng([SEED, p]), so the stream does not depend on how
it is chunked.

The model is an MLPClassifier with one 256-unit ReLU hidden layer, trained on
passes 0..8 (one per shift) of a fixed 75% stratified training split of the
images.  Trained on the originals only, it gets under 40% of shifted images
right, which would make its outputs those of a broken model; trained this
way it is ~99.5% accurate over the stream and ~98% on the images it never saw
in any form, so the arrays look like outputs of a real, working classifier.
Written (all float32, little-endian, C order, np.save format):

  probs_64mib.npy        [1677721, 10]  predict_proba of the MLP on the first
                                        1677721 stream rows.  10 classes do
                                        not divide 2**24 elements, so this is
                                        16777210 elements: 64 MiB minus 24
                                        bytes of data (plus the .npy header).
  hidden_relu_64mib.npy  [65536, 256]   hidden-layer activations after ReLU
                                        on the first 65536 stream rows:
                                        exactly 2**24 elements = 64 MiB.
  hidden_pre_64mib.npy   [65536, 256]   the same layer before ReLU (dense,
                                        embedding-like), exactly 64 MiB.

Seeds are fixed and BLAS runs single-threaded, so reruns with the pinned
versions on one machine give byte-identical files.  Takes about 20 s on a
2-core machine, about half of it training the MLP.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

SEED = 0
HIDDEN = 256
N_CLASSES = 10
ELEMENTS = 1 << 24  # 16,777,216 float32 = 64 MiB
PROBS_ROWS = ELEMENTS // N_CLASSES  # 1,677,721 (see docstring)
HIDDEN_ROWS = ELEMENTS // HIDDEN  # 65,536, exact
# (dx, dy) pixel shifts, (0, 0) first so pass 0 can be the untouched dataset.
SHIFTS = [(0, 0)] + [(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                     if (dx, dy) != (0, 0)]
NOISE_SIGMA = 0.5  # on the 0..16 pixel scale
SCALE_RANGE = (0.8, 1.2)
TRAIN_PASSES = len(SHIFTS)  # train on every shift once

OUTPUTS = {
    "probs_64mib.npy": (PROBS_ROWS, N_CLASSES),
    "hidden_relu_64mib.npy": (HIDDEN_ROWS, HIDDEN),
    "hidden_pre_64mib.npy": (HIDDEN_ROWS, HIDDEN),
}


def shift_images(images: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Shift [n, 8, 8] images by dx columns and dy rows, filling with 0.

    np.roll would wrap pixels around the border, which real digits never do.
    """
    out = np.zeros_like(images)
    h, w = images.shape[1:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        images[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def augmented_passes(images: np.ndarray):
    """Yield pass 0, 1, 2, ... of the augmented stream as [n, 64] in [0, 1]."""
    n = len(images)
    p = 0
    while True:
        if p == 0:
            batch = images
        else:
            rng = np.random.default_rng([SEED, p])
            dx, dy = SHIFTS[p % len(SHIFTS)]
            batch = shift_images(images, dx, dy)
            scale = rng.uniform(*SCALE_RANGE, size=(n, 1, 1))
            noise = rng.normal(0.0, NOISE_SIGMA, size=images.shape)
            batch = np.clip(batch * scale + noise, 0.0, 16.0)
        yield batch.reshape(n, -1) / 16.0
        p += 1


def train_mlp(images: np.ndarray, target: np.ndarray) -> MLPClassifier:
    """Fit the MLP on the first TRAIN_PASSES passes of the training split."""
    idx_train, _ = train_test_split(np.arange(len(target)), test_size=0.25,
                                    stratify=target, random_state=SEED)
    passes = augmented_passes(images)
    x = np.vstack([next(passes)[idx_train] for _ in range(TRAIN_PASSES)])
    y = np.tile(target[idx_train], TRAIN_PASSES)
    # A non-converged fit would still produce arrays, just not the outputs of
    # a trained model; fail loudly instead.
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        mlp = MLPClassifier(hidden_layer_sizes=(HIDDEN,), activation="relu",
                            max_iter=2000, random_state=SEED)
        return mlp.fit(x, y)


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Write ~64 MiB float32 .npy arrays of real MLP outputs "
                    "on augmented digits, for the benchmarks.")
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--force", action="store_true",
                        help="rewrite files that already exist")
    args = parser.parse_args()

    args.outdir.mkdir(parents=True, exist_ok=True)
    todo = [name for name in OUTPUTS
            if args.force or not (args.outdir / name).exists()]
    for name in OUTPUTS:
        if name not in todo:
            print(f"skip   {args.outdir / name} (exists; --force rewrites it)")
    if not todo:
        return 0

    start = time.perf_counter()
    digits = load_digits()
    # Single-threaded BLAS: rules out thread-count dependence of the floats,
    # and on a 2-core machine costs little (the whole run is small).
    with threadpool_limits(limits=1):
        mlp = train_mlp(digits.images, digits.target)
        print(f"trained MLP({HIDDEN}) in {time.perf_counter() - start:.1f} s "
              f"({mlp.n_iter_} epochs)")

        # Write into .partial files and rename at the end, so an interrupted
        # run never leaves a truncated file that a later run would skip.
        arrays = {
            name: np.lib.format.open_memmap(
                args.outdir / f"{name}.partial", mode="w+",
                dtype=np.dtype("<f4"), shape=OUTPUTS[name])
            for name in todo
        }
        rows_needed = max(OUTPUTS[name][0] for name in todo)
        w0, b0 = mlp.coefs_[0], mlp.intercepts_[0]
        row = 0
        correct = 0
        for x in augmented_passes(digits.images):
            end = min(row + len(x), rows_needed)
            x = x[:end - row]
            if "probs_64mib.npy" in arrays:
                probs = mlp.predict_proba(x)
                arrays["probs_64mib.npy"][row:end] = probs
                correct += int((probs.argmax(axis=1) == digits.target[:len(x)]).sum())
            if row < HIDDEN_ROWS:
                # MLPClassifier exposes no hidden layer; recompute it from the
                # weights (float64, like sklearn), then store as float32.
                stop = min(end, HIDDEN_ROWS)
                pre = x[:stop - row] @ w0 + b0
                if "hidden_pre_64mib.npy" in arrays:
                    arrays["hidden_pre_64mib.npy"][row:stop] = pre
                if "hidden_relu_64mib.npy" in arrays:
                    arrays["hidden_relu_64mib.npy"][row:stop] = np.maximum(pre, 0.0)
            row = end
            if row == rows_needed:
                break
        if "probs_64mib.npy" in arrays:
            print(f"MLP accuracy over the {row} stream rows: {correct / row:.4f}")

    for array in arrays.values():
        array.flush()
    arrays.clear()  # drop the memmaps (closing the files) before renaming
    for name in todo:
        path = args.outdir / name
        os.replace(args.outdir / f"{name}.partial", path)
        shape = OUTPUTS[name]
        data_bytes = shape[0] * shape[1] * 4
        print(f"wrote  {path}  float32 {list(shape)}  data {data_bytes} bytes "
              f"({data_bytes / 2**20:.6f} MiB), file {path.stat().st_size} bytes")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
