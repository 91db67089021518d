//! Logging figures (issue 4) in one markdown table, each next to a baseline from the same run:
//!
//! ```text
//! cargo build --release --bin archive
//! cargo run --release -p model-archive-bench --bin log-bench              # 200,000 records
//! cargo run --release -p model-archive-bench --bin log-bench -- 1000000   # the issue's million
//! ```
//!
//! The `archive` binary it runs is `$ARCHIVE_BIN`, else `$CARGO_TARGET_DIR/release/archive`
//! (target/ in the repository by default); it is not built here.
//!
//! - `archive log --format msgpack` of N records (10 float32 probabilities as a msgpack-numpy
//!   array + an int label + an id string, the shape of samples/predictions.ndjson), durable at
//!   exit, with the index held by another process (so the time is the logging alone), against
//!   `cat` of the same stream into a file + fsync; bytes on disk per record.
//! - the index catching up with those N records (`archive ls --limit 1` opening the store).
//! - 4 `archive log` processes at once, N/4 records each, the index held elsewhere as for the
//!   one logger: aggregate records/s (and the catch-up after them).
//! - on the resulting store (tagged run=r0..r999, one run after another; set
//!   `LOG_BENCH_INTERLEAVED=1` for record i in run i % 1000): whole-process
//!   `archive query 'run = "r17"'` and `archive ls --limit 20`, medians of 5.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod bench_common;
use bench_common::{archive_bin, dir_size, workspace_root};

/// `n` records with ids from `offset` ([`bench_common::record_stream`]), in 1000 runs one
/// after another, or with `LOG_BENCH_INTERLEAVED=1` record i in run i % 1000.
fn stream(n: usize, offset: usize) -> Vec<u8> {
    let interleaved = std::env::var_os("LOG_BENCH_INTERLEAVED").is_some();
    bench_common::record_stream(n, offset, interleaved)
}

/// The `archive` binary, looked up once (the process exits naming the path if it is missing).
fn archive() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(archive_bin)
}

/// Create a store and hold its index lock, as another process reading it would: what is
/// timed while the lock is held is the logging alone.
fn init_held(store: &Path) -> std::fs::File {
    Command::new(archive())
        .args(["init"])
        .arg(store)
        .status()
        .expect("init");
    let holder = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(store.join("index.lock"))
        .expect("lock file");
    holder.lock().expect("hold the index lock");
    holder
}

fn run_log(store: &Path, input: &[u8], extra: &[&str]) -> Duration {
    let start = Instant::now();
    let mut child = Command::new(archive())
        .arg("--store")
        .arg(store)
        .args([
            "log",
            "--format",
            "msgpack",
            "--tag-field",
            "run",
            "--batch",
            "10000",
        ])
        .args(extra)
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn archive log");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("feed");
    assert!(child.wait().expect("wait").success(), "archive log failed");
    start.elapsed()
}

fn median_of(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    let mut v: Vec<Duration> = (0..runs).map(|_| f()).collect();
    v.sort();
    v.get(runs / 2).copied().unwrap_or_default()
}

fn timed(args: &[&str], store: &Path) -> Duration {
    let start = Instant::now();
    let out = Command::new(archive())
        .arg("--store")
        .arg(store)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("run archive");
    assert!(out.success(), "archive {args:?} failed");
    start.elapsed()
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let scratch = workspace_root().join("target/tmp/log-bench");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("scratch");
    let input = stream(n, 0);
    let raw_per_record = 40 + 8 + 20;

    // Baseline: cat the same stream to a file, fsync.
    let copy = scratch.join("stream.msgpack");
    let start = Instant::now();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cat > '{}' && sync '{}'",
            copy.display(),
            copy.display()
        ))
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().expect("stdin").write_all(&input)?;
            c.wait()
        })
        .expect("cat");
    assert!(status.success());
    let cat = start.elapsed();

    // One logger with the index held elsewhere: the logging alone.
    let store = scratch.join("one");
    let holder = init_held(&store);
    let log = run_log(&store, &input, &[]);
    drop(holder);
    // Opening the index indexes what the logger wrote; `ls --limit 1` adds almost nothing.
    let catch_up = timed(&["ls", "--limit", "1"], &store);
    let per_record = dir_size(&store) as f64 / n as f64;
    let seg_per_record = dir_size(&store.join("segments")) as f64 / n as f64;
    let idx_per_record = dir_size(&store.join("index")) as f64 / n as f64;

    // Four loggers at once, a quarter each.
    let store4 = scratch.join("four");
    let quarters: Vec<Vec<u8>> = (0..4).map(|q| stream(n / 4, q * n / 4 + n)).collect();
    // As for the one logger: the index held elsewhere, so the figure is the logging alone.
    let holder4 = init_held(&store4);
    let start = Instant::now();
    let handles: Vec<_> = quarters
        .into_iter()
        .map(|q| {
            let s = store4.clone();
            std::thread::spawn(move || run_log(&s, &q, &[]))
        })
        .collect();
    for h in handles {
        h.join().expect("logger");
    }
    let four = start.elapsed();
    drop(holder4);
    let catch_up4 = timed(&["ls", "--limit", "1"], &store4);

    let query = median_of(5, || timed(&["query", "run = \"r17\"", "--hashes"], &store));
    let ls = median_of(5, || timed(&["ls", "--limit", "20"], &store));

    let rate = |d: Duration, k: usize| k as f64 / d.as_secs_f64().max(1e-9);
    println!("| measure | ours | baseline | ratio | goal |");
    println!("|---|---:|---|---:|---|");
    println!(
        "| archive log, {n} records (msgpack), durable at exit | {:.0} rec/s | {:.0} rec/s (cat + fsync of the stream) | {:.3}× | ≥ 300,000 rec/s |",
        rate(log, n),
        rate(cat, n),
        cat.as_secs_f64() / log.as_secs_f64()
    );
    println!(
        "| index catching up with them (next open) | {:.0} rec/s ({:.2} s) | — | — | — |",
        rate(catch_up, n),
        catch_up.as_secs_f64()
    );
    println!(
        "| bytes on disk per record (segments + index) | {per_record:.0} B ({seg_per_record:.0} + {idx_per_record:.0}) | {raw_per_record} B raw; the msgpack stream: {:.0} B | {:.2}× | ≤ 2× |",
        input.len() as f64 / n as f64,
        per_record / raw_per_record as f64
    );
    println!(
        "| 4 loggers at once, {n} records in all | {:.0} rec/s (then indexed at {:.0} rec/s) | {:.0} rec/s (one logger) | {:.2}× | — |",
        rate(four, n),
        rate(catch_up4, n),
        rate(log, n),
        log.as_secs_f64() / four.as_secs_f64()
    );
    println!(
        "| `archive query 'run = \"r17\"'` on {n} entries, whole process | {:.0} ms | — | — | < 50 ms |",
        query.as_secs_f64() * 1000.0
    );
    println!(
        "| `archive ls --limit 20` on {n} entries, whole process | {:.0} ms | — | — | < 30 ms |",
        ls.as_secs_f64() * 1000.0
    );
}
