#!/usr/bin/env bash
# The demo: put and log real model outputs (samples/, made by tools/make_samples.py from
# scikit-learn classifiers on its bundled digits dataset) into a fresh store, find them by tags
# and record fields, read a run back as one array, and get every one back bit-exact. Run from
# anywhere: tools/demo.sh (ARCHIVE_BIN=path runs that binary instead of building a release one;
# CI runs the debug binary its tests built)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${ARCHIVE_BIN:-}" ]; then
    A=$ARCHIVE_BIN
else
    cargo build --release --quiet --bin archive
    A=${CARGO_TARGET_DIR:-$PWD/target}/release/archive   # where cargo just built it
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ARCHIVE_STORE=$work/demo.archive
S=samples

run() { printf '\n$ archive %s\n' "$*"; "$A" "$@"; }

run init "$ARCHIVE_STORE"
probs=$("$A" put $S/digits_test_probs.npy --tag model=logreg --tag split=test)
relu=$("$A" put $S/mlp_hidden_relu.npy --tag model=mlp --tag layer=hidden --tag split=test)
images=$("$A" put $S/digits_test_images.npy --tag split=test)
report=$("$A" put $S/texts/classification_report.txt --tag model=logreg)
preds=$("$A" put $S/digits_test_pred.npy --labels $S/labels.json --tag model=logreg --tag split=test)
# The same probabilities logged again by a second run: one object, two entries.
"$A" put $S/digits_test_probs.npy --tag model=logreg --tag split=test --tag run=2 >/dev/null

# Predictions logged one record per line, as a batch job streams them; then the misclassified
# ones, found by the records' own fields, and every probability vector back as one array.
printf '\n$ archive log --tag run=digits --tag-field id --tensor-field probs < predictions.ndjson\n'
"$A" log --tag run=digits --tag-field id --tensor-field probs < $S/predictions.ndjson
run query 'run = "digits" and label != pred' --limit 5
run export 'run = "digits"' --field probs -o "$work/probs.npy"
run export 'run = "digits"' -o "$work/predictions.parquet"
python3 -c 'import sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1]); print(t.schema.to_string(show_schema_metadata=False))
print(t.select(["id", "label", "pred"]).slice(0, 3).to_pandas())' "$work/predictions.parquet"

run ls --limit 12
run info "${probs:0:8}"
run show "${probs:0:8}"
run show "${relu:0:8}" --rows 0:2
run info "${relu:0:8}"
run info "${preds:0:8}"
printf '\n$ archive cat %s | head -4\n' "${report:0:8}"
"$A" cat "${report:0:8}" | head -4
printf '\n$ archive cat %s | head -3   # categorical: each code as its label\n' "${preds:0:8}"
"$A" cat "${preds:0:8}" | head -3

# A debug run logged by mistake, then removed: it leaves every listing, the removal is a frame.
python3 -c 'import json, random
for i in range(500):
    print(json.dumps({"id": f"dbg-{i}", "probs": [random.random() for _ in range(256)]}))' |
  "$A" log --tag run=debug --tensor-field probs
run rm 'run = "debug"' --dry-run
run rm 'run = "debug"'
run query 'run = "debug"'
# ... and its space given back; every other output still comes back bit-exact (below).
run gc

for pair in "$probs:digits_test_probs.npy" "$relu:mlp_hidden_relu.npy" \
            "$images:digits_test_images.npy" "$preds:digits_test_pred.npy"; do
  hash=${pair%%:*} file=${pair#*:}
  "$A" get "${hash:0:10}" -o "$work/$file"
  cmp "$work/$file" "$S/$file"
done
"$A" get "${report:0:10}" -o "$work/report.txt"
cmp "$work/report.txt" $S/texts/classification_report.txt

# Shared through a remote: a directory here; s3://BUCKET/PREFIX (--endpoint URL) the same way.
run remote add shared "file://$work/remote"
run push shared
run clone "file://$work/remote" "$work/copy.archive"
"$A" --store "$work/copy.archive" get "${probs:0:10}" -o "$work/probs_clone.npy"
cmp "$work/probs_clone.npy" "$S/digits_test_probs.npy"
printf '\n$ archive get %s --remote shared -o probs_remote.npy\n' "${probs:0:10}"
"$A" get "${probs:0:10}" --remote shared -o "$work/probs_remote.npy"
cmp "$work/probs_remote.npy" "$S/digits_test_probs.npy"

run verify
run stats
printf '\nevery output came back bit-exact, from the store, its clone and its remote\n'
