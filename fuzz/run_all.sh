#!/usr/bin/env bash
# Build every fuzz target once, then run each for SECONDS (default 10), one after another.
# Logs go to fuzz/logs/<target>.log; a summary line per target is printed and written
# to fuzz/logs/summary.tsv (target, executions, seconds, crashes), which
# `cargo run -p model-archive-bench --bin reliability-report -- --fuzz-summary
# fuzz/logs/summary.tsv` reads.
# A crash stops the run with a non-zero exit; its input is under fuzz/artifacts/<target>/.
#   fuzz/run_all.sh 60          # the longer local run
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-10}
export RUSTC_BOOTSTRAP=1
flags=(--fuzz-dir . -s none -a)
targets=$(cargo fuzz list --fuzz-dir .)
[ -d corpus ] || ./seed.sh >/dev/null
cargo fuzz build "${flags[@]}"
mkdir -p logs
printf 'target\texecutions\tseconds\tcrashes\n' > logs/summary.tsv
failed=0
for t in $targets; do
    mkdir -p "corpus/$t"
    rc=0
    cargo fuzz run "${flags[@]}" "$t" -- -max_total_time="$secs" -print_final_stats=1 \
        > "logs/$t.log" 2>&1 || rc=$?
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "logs/$t.log" | grep -oE '[0-9]+$' || echo 0)
    took=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "logs/$t.log" | grep -oE 'in [0-9]+' | grep -oE '[0-9]+' || echo "$secs")
    crashes=0
    [ "$rc" -eq 0 ] || { crashes=1; failed=1; }
    printf '%s\t%s\t%s\t%s\n' "$t" "$runs" "$took" "$crashes" | tee -a logs/summary.tsv
done
exit $failed
