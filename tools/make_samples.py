#!/usr/bin/env python3
"""Write the small set of real model outputs committed under ``samples/``.

Usage:
    pip install -r tools/requirements-samples.txt
    python3 tools/make_samples.py [OUTDIR]        # OUTDIR defaults to samples/

Everything comes from scikit-learn's bundled datasets (no network access):
a LogisticRegression and a one-hidden-layer MLPClassifier are trained on a
fixed train/test split of the 8x8 ``digits`` dataset, and their outputs on
the test split are written as .npy arrays, NDJSON and text.  Every source of
randomness has a fixed seed and BLAS runs single-threaded, so running the
script twice with the pinned versions on the same machine writes
byte-identical files.  (Other CPUs or library versions may change the last
bits of the floats; the archive's tests should not hard-code float values.)

``OUTDIR/README.md`` is generated too, so that it always describes exactly
what was written; edit this script rather than that file.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import classification_report
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

SEED = 0
TEST_SIZE = 0.25  # 1797 images -> 450 test rows
# Class vocabulary: words rather than "0".."9" so that a categorical view of
# the labels shows real names instead of repeating the integers.
CLASS_NAMES = ["zero", "one", "two", "three", "four",
               "five", "six", "seven", "eight", "nine"]
# Bundled datasets whose DESCR text is written to texts/<name>_descr.txt.
DESCR_DATASETS = ["digits", "iris", "wine", "breast_cancer", "diabetes", "linnerud"]
REGEN_CMD = "python3 tools/make_samples.py samples"


def write_text(path: Path, text: str) -> None:
    # Explicit encoding and "\n" newlines so output does not depend on the
    # platform or locale.
    path.write_text(text, encoding="utf-8", newline="\n")


def save_npy(path: Path, array: np.ndarray, dtype: str) -> np.ndarray:
    # Force an explicit little-endian dtype and C order so the .npy header is
    # the same everywhere (np.save records both in the header).
    out = np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<"))
    np.save(path, out, allow_pickle=False)
    return out


def train_models(x_train: np.ndarray, y_train: np.ndarray):
    # Treat a ConvergenceWarning as an error: the samples are meant to be the
    # outputs of properly trained models, so a silent non-converged fit would
    # be a bug worth noticing.
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        logreg = LogisticRegression(max_iter=5000, random_state=SEED)
        logreg.fit(x_train, y_train)
        mlp = MLPClassifier(hidden_layer_sizes=(64,), activation="relu",
                            max_iter=2000, random_state=SEED)
        mlp.fit(x_train, y_train)
    return logreg, mlp


def mlp_forward(mlp: MLPClassifier, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hidden activations after ReLU and output logits, from the weights.

    MLPClassifier has no public way to get intermediate layers, so the forward
    pass is recomputed from coefs_/intercepts_ (float64, like sklearn).
    """
    hidden = np.maximum(x @ mlp.coefs_[0] + mlp.intercepts_[0], 0.0)
    logits = hidden @ mlp.coefs_[1] + mlp.intercepts_[1]
    # Cross-check against sklearn's own forward pass: softmax(logits) must be
    # predict_proba, otherwise the recomputation above is wrong.
    shifted = logits - logits.max(axis=1, keepdims=True)
    softmax = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    if not np.allclose(softmax, mlp.predict_proba(x), rtol=0, atol=1e-9):
        raise AssertionError("recomputed MLP forward pass disagrees with predict_proba")
    return hidden, logits


def ndjson_lines(labels: np.ndarray, preds: np.ndarray, probs: np.ndarray) -> str:
    lines = []
    for i, (label, pred, row) in enumerate(zip(labels, preds, probs)):
        record = {
            "id": f"digits-test-{i:05d}",  # i = row index in the .npy arrays
            "label": int(label),
            "pred": int(pred),
            # Round the float32 values (as stored in digits_test_probs.npy) so
            # the file stays small and its text is stable.
            "probs": [round(float(p), 6) for p in row],
        }
        lines.append(json.dumps(record))
    return "\n".join(lines) + "\n"


def readme(files: dict[str, np.ndarray], n_test: int, n_train: int,
           logreg_acc: float, mlp_acc: float) -> str:
    def npy(name: str) -> str:
        a = files[name]
        return f"`{name}` ({a.dtype.name}, shape {list(a.shape)})"

    return f"""# samples/

Real model outputs for the model-archive demo and tests. Generated by
`tools/make_samples.py` (do not edit by hand); regenerate everything with:

    pip install -r tools/requirements-samples.txt
    {REGEN_CMD}

All data comes from scikit-learn's bundled `digits` dataset (1797 8x8 grey
images of handwritten digits, values 0..16), split with
`train_test_split(test_size={TEST_SIZE}, stratify=y, random_state={SEED})` into
{n_train} training and {n_test} test images. Both models see the pixels divided
by 16. Seeds are fixed and BLAS runs single-threaded, so a rerun with the
pinned versions writes byte-identical files. Row `i` of every array, and line
`i` of `predictions.ndjson`, is the same test image.

- {npy("digits_test_probs.npy")}:
  class probabilities (`predict_proba`) of a
  `LogisticRegression(max_iter=5000)` on the test split; rows sum to 1.
  Test accuracy {logreg_acc:.4f}.
- {npy("digits_test_labels.npy")}:
  the true digit of each test image.
- {npy("digits_test_pred.npy")}:
  the LogisticRegression's predicted class (argmax of
  `digits_test_probs.npy`).
- {npy("mlp_hidden_relu.npy")}:
  hidden-layer activations, after ReLU, of an
  `MLPClassifier(hidden_layer_sizes=(64,), activation="relu",
  random_state={SEED})` on the test split, recomputed from its
  `coefs_`/`intercepts_`; sparse (many exact zeros). MLP test accuracy
  {mlp_acc:.4f}.
- {npy("mlp_logits.npy")}:
  the same MLP's output-layer logits (pre-softmax); softmax of a row
  equals the MLP's `predict_proba`.
- {npy("digits_test_images.npy")}:
  the test images themselves, values 0..16.
- `labels.json`: the class vocabulary as a JSON array of 10 strings,
  `"zero"` .. `"nine"`; class `k` is `labels[k]`.
- `predictions.ndjson`: one JSON object per test image, in test order:
  `{{"id": "digits-test-00017", "label": int, "pred": int, "probs": [10
  floats]}}`, with the LogisticRegression's probabilities rounded to 6
  decimals. `id` numbers are the row index in the arrays above.
- `texts/<name>_descr.txt`: the `DESCR` text of scikit-learn's bundled
  datasets, one file each, UTF-8 (in fact plain ASCII):
  {", ".join(DESCR_DATASETS)}.
- `texts/classification_report.txt`: scikit-learn's `classification_report`
  of the LogisticRegression on the test split, with the class names above.
"""


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if len(argv) > 2:
        print("usage: python3 tools/make_samples.py [OUTDIR]", file=sys.stderr)
        return 2
    outdir = Path(argv[1] if len(argv) == 2 else "samples")
    (outdir / "texts").mkdir(parents=True, exist_ok=True)

    digits = datasets.load_digits()
    images = digits.images  # float64 [1797, 8, 8], integer values 0..16
    x = digits.data / 16.0  # scale to [0, 1]: lbfgs and adam converge faster
    y = digits.target
    # Split indices rather than arrays so the test images can be written in
    # the same order as the model outputs.
    idx_train, idx_test = train_test_split(
        np.arange(len(y)), test_size=TEST_SIZE, stratify=y, random_state=SEED)

    # Single-threaded BLAS: the data is tiny, and it rules out any
    # thread-count dependence in the floating-point results.
    with threadpool_limits(limits=1):
        logreg, mlp = train_models(x[idx_train], y[idx_train])
        x_test, y_test = x[idx_test], y[idx_test]
        probs = logreg.predict_proba(x_test)
        hidden, logits = mlp_forward(mlp, x_test)

    files: dict[str, np.ndarray] = {}
    files["digits_test_probs.npy"] = save_npy(
        outdir / "digits_test_probs.npy", probs, "float32")
    files["digits_test_labels.npy"] = save_npy(
        outdir / "digits_test_labels.npy", y_test, "int64")
    # Predicted class = argmax of the probabilities actually stored, so the
    # two files can never disagree (predict() would argmax the float64 ones).
    pred = files["digits_test_probs.npy"].argmax(axis=1)
    files["digits_test_pred.npy"] = save_npy(
        outdir / "digits_test_pred.npy", pred, "int64")
    files["mlp_hidden_relu.npy"] = save_npy(
        outdir / "mlp_hidden_relu.npy", hidden, "float32")
    files["mlp_logits.npy"] = save_npy(outdir / "mlp_logits.npy", logits, "float32")
    files["digits_test_images.npy"] = save_npy(
        outdir / "digits_test_images.npy", images[idx_test], "uint8")

    write_text(outdir / "labels.json", json.dumps(CLASS_NAMES) + "\n")
    write_text(outdir / "predictions.ndjson",
               ndjson_lines(y_test, pred, files["digits_test_probs.npy"]))

    for name in DESCR_DATASETS:
        descr = getattr(datasets, f"load_{name}")().DESCR
        write_text(outdir / "texts" / f"{name}_descr.txt", descr)
    write_text(outdir / "texts" / "classification_report.txt",
               classification_report(y_test, pred, target_names=CLASS_NAMES, digits=4))

    logreg_acc = float((pred == y_test).mean())
    mlp_acc = float((logits.argmax(axis=1) == y_test).mean())
    write_text(outdir / "README.md",
               readme(files, len(idx_test), len(idx_train), logreg_acc, mlp_acc))

    for path in sorted(p for p in outdir.rglob("*") if p.is_file()):
        print(f"{path.stat().st_size:>9}  {path}")
    print(f"logistic regression test accuracy {logreg_acc:.4f}, "
          f"MLP test accuracy {mlp_acc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
