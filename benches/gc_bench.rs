//! gc's figures (issue 16) in one markdown table, beside `cp` of the same bytes:
//!
//! ```text
//! cargo build --release --bin archive
//! cargo run --release -p model-archive-bench --bin gc-bench               # ~4 GiB, 1M records
//! cargo run --release -p model-archive-bench --bin gc-bench -- 200000 0.5 # smaller: records, GiB of tensors
//! cargo run --release -p model-archive-bench --bin gc-bench -- rm 10000000  # rm of 100k of 10M records
//! ```
//!
//! `rm N`: N records logged in 100 batches (`--tag batch=bK`, N/100 records each; the stream's
//! 1000 runs one after another); `archive rm 'batch = "b42"'` as a whole process, and
//! `archive query 'run = "r17"'` (N/1000 hits) before and after it, medians of 5.
//!
//! The store: N records (the log bench's msgpack stream: 10 float32 probabilities, a label,
//! an id, 1000 runs) logged by `archive log` in two halves tagged `half=keep` and
//! `half=drop`, and G GiB of 16 MiB float32 tensors (noise: they do not compress) put in
//! turn with `run=keep` and `run=drop`. `archive rm` removes the `drop` halves: half the bytes
//! are dead. Then, three times, on a fresh copy of that store: `archive gc` as a whole
//! process (its output durable and the index rebuilt when it exits), and `cp` of the segment
//! it wrote plus an fsync of the copy: the same live bytes written by the fastest tool there
//! is. Before each timed run the page cache is synced and, where the machine allows it
//! (root), dropped: both start from bytes on disk, as a user's gc of a store at rest does
//! (the table says which). Medians of three.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod bench_common;
use bench_common::{archive_bin, dir_size, record_stream, target_dir};

use model_archive::{Archive, Dtype, Shape, TensorView};

const TENSOR_BYTES: usize = 16 << 20;

fn main() {
    if std::env::args().nth(1).as_deref() == Some("rm") {
        let n = std::env::args()
            .nth(2)
            .map_or(10_000_000, |a| a.parse().expect("records"));
        return rm_bench(n);
    }
    let mut args = std::env::args().skip(1);
    let records: usize = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("records"));
    let gib: f64 = args
        .next()
        .map_or(3.5, |a| a.parse().expect("GiB of tensors"));
    let bin = archive_bin();
    let scratch = target_dir().join("gc-bench");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let store = scratch.join("store");
    eprintln!("building the store: {records} records, {gib} GiB of tensors …");
    build(&bin, &store, records, gib);
    let before = dir_size(&store.join("segments"));
    let dry = run_json(&bin, &store, &["gc", "--dry-run"]);
    let dead = dry["garbage_bytes"].as_u64().unwrap_or(0);

    let mut gc_times = Vec::new();
    let mut cp_times = Vec::new();
    let mut last = serde_json::Value::Null;
    let mut cold = false;
    for round in 0..3 {
        eprintln!("round {round} …");
        let copy = scratch.join(format!("round-{round}"));
        copy_dir(&store, &copy);
        cold = settle();
        let start = Instant::now();
        last = run_json(&bin, &copy, &["gc"]);
        gc_times.push(start.elapsed());
        let out = copy
            .join("segments")
            .join(last["output"].as_str().expect("an output segment"));
        let target = scratch.join("cp-target");
        settle();
        let start = Instant::now();
        cp_fsync(&out, &target);
        cp_times.push(start.elapsed());
        let _ = std::fs::remove_file(&target);
        if round < 2 {
            let _ = std::fs::remove_dir_all(&copy);
        }
    }
    let after = dir_size(&scratch.join("round-2").join("segments"));
    let written = last["bytes_written"].as_u64().unwrap_or(0);
    let gc = median(&mut gc_times);
    let cp = median(&mut cp_times);
    let rate = |d: Duration| written as f64 / d.as_secs_f64() / 1e6;
    println!("| measure | result |\n| --- | --- |");
    println!(
        "| store | {} in segments: {records} logged records, {gib} GiB of tensors; {} dead; {} |",
        mib(before),
        mib(dead),
        if cold {
            "page cache dropped before each timed run"
        } else {
            "page cache warm (it could not be dropped here)"
        }
    );
    println!(
        "| `archive gc`, whole process (mark, copy, fsync, rename, index rebuilt, old segments deleted) | {:.2} s median of 3: {:.0} MB/s of live bytes written ({}) |",
        gc.as_secs_f64(),
        rate(gc),
        mib(written)
    );
    println!(
        "| `cp` of the segment gc wrote + fsync | {:.2} s: {:.0} MB/s; gc / cp = {:.2}× |",
        cp.as_secs_f64(),
        rate(cp),
        cp.as_secs_f64() / gc.as_secs_f64()
    );
    println!(
        "| space given back / dead bytes | {} / {} = {:.1} % |",
        mib(before - after),
        mib(dead),
        100.0 * (before - after) as f64 / dead.max(1) as f64
    );
    println!(
        "| what gc did | {} segments replaced, {} objects dropped, {} removed entries left out, {} packs rebuilt |",
        last["segments_replaced"],
        last["copy"]["objects_collected"],
        last["copy"]["entries_dropped"],
        last["copy"]["packs_rebuilt"]
    );
    // GC_BENCH_KEEP=1 keeps target/gc-bench (the store, and round 2 after its gc) to profile.
    if std::env::var_os("GC_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
}

/// Log the records in two halves, put the tensors, remove the `drop` halves.
fn build(bin: &Path, store: &Path, records: usize, gib: f64) {
    let ok = Command::new(bin)
        .arg("init")
        .arg(store)
        .stdout(Stdio::null())
        .status()
        .expect("init");
    assert!(ok.success());
    for (half, offset) in [("keep", 0), ("drop", records / 2)] {
        log(bin, store, records / 2, offset, &format!("half={half}"));
    }
    let a = Archive::open(store).expect("open");
    let n = ((gib * (1u64 << 30) as f64) / TENSOR_BYTES as f64) as usize;
    let shape = Shape::new(vec![(TENSOR_BYTES / 4) as u64]);
    for i in 0..n {
        let mut data = vec![0u8; TENSOR_BYTES];
        blake3::Hasher::new()
            .update(&(i as u64).to_le_bytes())
            .finalize_xof()
            .fill(&mut data);
        let view = TensorView::new(Dtype::F32, &shape, &data).expect("view");
        let run = if i % 2 == 0 { "keep" } else { "drop" };
        a.put_tensor(&view, &[("run", run)]).expect("put");
    }
    drop(a);
    for q in ["half = \"drop\"", "run = \"drop\""] {
        run_json(bin, store, &["rm", q]);
    }
}

/// `archive log` of `n` records of the stream from `offset`, tagged `tag` and by run and id.
fn log(bin: &Path, store: &Path, n: usize, offset: usize, tag: &str) {
    let stream = record_stream(n, offset, false);
    let mut child = Command::new(bin)
        .arg("--store")
        .arg(store)
        .args([
            "log",
            "--format",
            "msgpack",
            "--tag-field",
            "run",
            "--tag-field",
            "id",
        ])
        .args(["--tag", tag])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("log");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &stream).expect("stream");
    assert!(child.wait().expect("log").success());
}

fn run_json(bin: &Path, store: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(bin)
        .arg("--store")
        .arg(store)
        .arg("--json")
        .args(args)
        .output()
        .expect("archive");
    assert!(
        out.status.success(),
        "archive {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Sync, then drop the page cache if this machine lets us (root): each timed run starts from
/// a store at rest on disk, as a user's gc does. True if the cache was dropped.
fn settle() -> bool {
    assert!(Command::new("sync").status().expect("sync").success());
    std::fs::write("/proc/sys/vm/drop_caches", "1").is_ok()
}

fn cp_fsync(from: &Path, to: &Path) {
    assert!(
        Command::new("cp")
            .arg(from)
            .arg(to)
            .status()
            .expect("cp")
            .success()
    );
    std::fs::File::open(to)
        .and_then(|f| f.sync_all())
        .expect("fsync");
}

fn copy_dir(from: &Path, to: &Path) {
    assert!(
        Command::new("cp")
            .arg("-r")
            .arg(from)
            .arg(to)
            .status()
            .expect("cp -r")
            .success()
    );
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

/// `archive rm` of one batch of N/100 records out of N, and a query before and after.
fn rm_bench(n: usize) {
    let bin = archive_bin();
    let scratch = target_dir().join("gc-bench-rm");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let store = scratch.join("store");
    let ok = Command::new(&bin)
        .arg("init")
        .arg(&store)
        .stdout(Stdio::null())
        .status();
    assert!(ok.expect("init").success());
    eprintln!("logging {n} records in 100 batches …");
    let per = n / 100;
    for b in 0..100 {
        log(&bin, &store, per, b * per, &format!("batch=b{b}"));
    }
    // The index catches up with the loggers before anything is timed.
    run_json(&bin, &store, &["stats"]);
    let query = |store: &Path| {
        let mut t: Vec<Duration> = (0..5)
            .map(|_| {
                let start = Instant::now();
                let out = Command::new(&bin)
                    .arg("--store")
                    .arg(store)
                    .args(["query", "run = \"r17\"", "--hashes"])
                    .output()
                    .expect("query");
                assert!(out.status.success());
                start.elapsed()
            })
            .collect();
        median(&mut t)
    };
    let before = query(&store);
    let start = Instant::now();
    let r = run_json(&bin, &store, &["rm", "batch = \"b42\""]);
    let rm = start.elapsed();
    let after = query(&store);
    println!("| measure | result |\n| --- | --- |");
    println!(
        "| `archive rm 'batch = \"b42\"'` ({} of {n} entries), whole process | {:.2} s |",
        r["entries"],
        rm.as_secs_f64()
    );
    println!(
        "| `archive query 'run = \"r17\"'` ({} hits), whole process, median of 5 | {:.0} ms before, {:.0} ms after |",
        n / 1000,
        before.as_secs_f64() * 1e3,
        after.as_secs_f64() * 1e3
    );
    if std::env::var_os("GC_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
}
