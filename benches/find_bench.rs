//! Finding predictions (issue 12) in one markdown table, whole processes as a user runs them:
//!
//! ```text
//! cargo build --release --bin archive
//! cargo run --release -p model-archive-bench --bin find-bench              # 1,000,000 records
//! cargo run --release -p model-archive-bench --bin find-bench -- 10000000  # the issue's ten million
//! ```
//!
//! The stream is the issue's: per record 10 float32 probabilities (a msgpack-numpy array), an
//! int label and an int pred (equal for 9 in 10), a unique id `img-000000123`, a run
//! `run042` (10,000 records each, one after another) and a split (record i in split i % 3,
//! interleaved), logged with `archive log --format msgpack --tag-field run --tag-field split
//! --tag-field id` until it exits (the index caught up at its end), three times into a new store
//! (the median). Then each query, `stats`,
//! `cat` and `ls` as a new process, medians of 5, with the largest resident set of the 5.
//! Beside them: the same records as a Parquet file (pyarrow, zstd), written by
//! `tools/parquet_peer.py` when pyarrow is installed.
//!
//! The `archive` binary is `$ARCHIVE_BIN`, else `$CARGO_TARGET_DIR/release/archive`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod bench_common;
use bench_common::{archive_bin, dir_size, workspace_root};

const SPLITS: [&str; 3] = ["train", "val", "test"];

/// The records, as a msgpack stream.
fn stream(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 170);
    for i in 0..n {
        let label = (i * 7 + i / 13) % 10;
        let pred = if i % 10 == 3 { (label + 1) % 10 } else { label };
        rmp::encode::write_map_len(&mut out, 6).expect("vec");
        rmp::encode::write_str(&mut out, "probs").expect("vec");
        rmp::encode::write_map_len(&mut out, 5).expect("vec");
        for (k, v) in [("nd", None), ("type", Some("<f4")), ("kind", Some(""))] {
            rmp::encode::write_bin(&mut out, k.as_bytes()).expect("vec");
            match (k, v) {
                ("nd", _) => rmp::encode::write_bool(&mut out, true).expect("vec"),
                ("type", Some(t)) => rmp::encode::write_str(&mut out, t).expect("vec"),
                (_, _) => rmp::encode::write_bin(&mut out, b"").expect("vec"),
            }
        }
        rmp::encode::write_bin(&mut out, b"shape").expect("vec");
        rmp::encode::write_array_len(&mut out, 1).expect("vec");
        rmp::encode::write_uint(&mut out, 10).expect("vec");
        rmp::encode::write_bin(&mut out, b"data").expect("vec");
        let mut probs = [0f32; 10];
        let mut rest = 1.0f32;
        for (j, p) in probs.iter_mut().enumerate() {
            let x = ((i as u32).wrapping_mul(2_654_435_761) ^ (j as u32 * 40_503)) as f32
                / u32::MAX as f32;
            *p = rest * x * 0.2;
            rest -= *p;
        }
        if let Some(p) = probs.get_mut(pred) {
            *p += rest;
        }
        let data: Vec<u8> = probs.iter().flat_map(|p| p.to_le_bytes()).collect();
        rmp::encode::write_bin(&mut out, &data).expect("vec");
        rmp::encode::write_str(&mut out, "label").expect("vec");
        rmp::encode::write_uint(&mut out, label as u64).expect("vec");
        rmp::encode::write_str(&mut out, "pred").expect("vec");
        rmp::encode::write_uint(&mut out, pred as u64).expect("vec");
        rmp::encode::write_str(&mut out, "id").expect("vec");
        rmp::encode::write_str(&mut out, &format!("img-{i:09}")).expect("vec");
        rmp::encode::write_str(&mut out, "run").expect("vec");
        rmp::encode::write_str(&mut out, &format!("run{:03}", i / 10_000)).expect("vec");
        rmp::encode::write_str(&mut out, "split").expect("vec");
        rmp::encode::write_str(&mut out, SPLITS[i % 3]).expect("vec");
    }
    out
}

/// Run `archive --store STORE ARGS` under `/usr/bin/time`: wall time, peak resident KiB, stdout.
fn run(bin: &Path, store: &Path, args: &[&str]) -> (Duration, u64, String) {
    let start = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(bin)
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .expect("run archive under /usr/bin/time");
    let wall = start.elapsed();
    assert!(out.status.success(), "archive {args:?} failed: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kib = stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    (wall, kib, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Median wall time and largest resident set of 5 runs.
fn measure(bin: &Path, store: &Path, args: &[&str]) -> (Duration, u64, String) {
    let mut runs: Vec<(Duration, u64, String)> = (0..5).map(|_| run(bin, store, args)).collect();
    let rss = runs.iter().map(|r| r.1).max().unwrap_or(0);
    runs.sort_by_key(|r| r.0);
    let (wall, _, out) = runs.swap_remove(2);
    (wall, rss, out)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// `tools/parquet_peer.py` with `args`: its JSON, if it ran (pyarrow installed) and succeeded.
fn peer(args: &[&std::ffi::OsStr]) -> Option<serde_json::Value> {
    let script = workspace_root().join("tools/parquet_peer.py");
    let o = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .ok()?;
    if !o.status.success() {
        eprintln!("parquet_peer.py: {}", String::from_utf8_lossy(&o.stderr));
        return None;
    }
    serde_json::from_slice(&o.stdout).ok()
}

/// The Parquet peer: bytes of the same records as a zstd Parquet file, as JSON from the script.
fn parquet_peer(stream: &Path, out: &Path) -> Option<serde_json::Value> {
    peer(&[stream.as_os_str(), out.as_os_str()])
}

/// `tools/parquet_peer.py --rewrite`: seconds pyarrow takes to write the table of `table`
/// again from memory, if pyarrow is installed.
fn rewrite(table: &Path, out: &Path) -> Option<f64> {
    let v = peer(&["--rewrite".as_ref(), table.as_os_str(), out.as_os_str()])?;
    v.get("write_s")?.as_f64()
}

/// `tools/parquet_peer.py --read`: Python's stack and table beside pyarrow, if the bindings
/// and pyarrow are installed.
fn python_reads(store: &Path, parquet: &Path) -> Option<serde_json::Value> {
    peer(&["--read".as_ref(), store.as_os_str(), parquet.as_os_str()])
}

/// One `archive log` of `input` into a new store at `store`, fed through a pipe: its wall
/// time and largest resident set (KiB).
fn log_once(bin: &Path, store: &Path, input: &[u8]) -> (Duration, u64) {
    let _ = std::fs::remove_dir_all(store);
    let ok = Command::new(bin)
        .arg("--store")
        .arg(store)
        .arg("init")
        .stdout(Stdio::null())
        .status()
        .expect("init");
    assert!(ok.success());
    let start = Instant::now();
    let mut child = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(bin)
        .arg("--store")
        .arg(store)
        .args(["log", "--format", "msgpack", "--batch", "10000"])
        .args([
            "--tag-field",
            "run",
            "--tag-field",
            "split",
            "--tag-field",
            "id",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn archive log");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("feed");
    let out = child.wait_with_output().expect("wait");
    let wall = start.elapsed();
    assert!(out.status.success(), "archive log failed");
    let rss = String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    (wall, rss)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let bin: PathBuf = archive_bin();
    let scratch = workspace_root().join("target/tmp/find-bench");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("scratch");
    let input = stream(n);
    let stream_path = scratch.join("stream.msgpack");
    std::fs::write(&stream_path, &input).expect("write the stream");
    let store = scratch.join("store");
    // archive log until it exits: durable, and the index caught up at its end. Three runs,
    // each into a new store (the last one stays for the queries): the median.
    let mut runs: Vec<(Duration, u64)> = (0..3).map(|_| log_once(&bin, &store, &input)).collect();
    let log_rss = runs.iter().map(|r| r.1).max().unwrap_or(0);
    runs.sort_by_key(|r| r.0);
    let log = runs[1].0;
    let per_record = dir_size(&store) as f64 / n as f64;
    let seg = dir_size(&store.join("segments")) as f64 / n as f64;
    let idx = dir_size(&store.join("index")) as f64 / n as f64;

    let parquet = parquet_peer(&stream_path, &scratch.join("peer.parquet"));
    let pq_bytes = parquet
        .as_ref()
        .and_then(|v| v.get("bytes")?.as_f64())
        .map(|b| b / n as f64);

    println!(
        "`find-bench {n}`: whole processes on this machine; `archive log` the median of 3 runs, the rest medians of 5\n"
    );
    println!("| measure | ours | peer | ratio | goal |");
    println!("|---|---:|---|---:|---|");
    println!(
        "| `archive log` of {n} records, until it exits (index caught up) | {:.0} rec/s ({:.1} s, {} MiB resident) | — | — | ≥ 300,000 rec/s |",
        n as f64 / log.as_secs_f64(),
        log.as_secs_f64(),
        log_rss / 1024
    );
    match pq_bytes {
        Some(pq) => println!(
            "| bytes on disk per record, index included | {per_record:.0} B ({seg:.0} segments + {idx:.0} index) | {pq:.0} B (Parquet, pyarrow zstd) | {:.2}× | ≤ 1.5× Parquet |",
            per_record / pq
        ),
        None => println!(
            "| bytes on disk per record, index included | {per_record:.0} B ({seg:.0} segments + {idx:.0} index) | (pyarrow not installed) | — | ≤ 1.5× Parquet |"
        ),
    }
    let mid = format!("id = \"img-{:09}\"", n / 2 + 7);
    // Issue 10's long disjunction: 1,000 ids spread over the whole stream.
    let many = (0..1000)
        .map(|k| format!("id = \"img-{:09}\"", k * (n / 1000) + 11))
        .collect::<Vec<_>>()
        .join(" or ");
    let queries: [(&str, Vec<&str>, &str); 7] = [
        ("a unique id (1 hit)", vec!["query", &mid], "< 50 ms"),
        (
            "1,000 unique ids `or`-ed (1,000 hits)",
            vec!["query", &many, "--limit", "2000"],
            "< 1 s",
        ),
        (
            "an interleaved tag, first 1,000",
            vec!["query", "split = \"val\"", "--limit", "1000"],
            "< 50 ms",
        ),
        (
            "a run (10,000 hits, sequential)",
            vec!["query", "run = \"run042\"", "--hashes"],
            "—",
        ),
        (
            "record fields: `label = 3 and split = \"val\"`, first 1,000",
            vec!["query", "label = 3 and split = \"val\"", "--limit", "1000"],
            "< 50 ms",
        ),
        (
            "two record fields: `split = \"test\" and label != pred`, first 1,000",
            vec![
                "query",
                "split = \"test\" and label != pred",
                "--limit",
                "1000",
            ],
            "—",
        ),
        ("`archive stats`", vec!["stats"], "< 100 ms"),
    ];
    for (what, args, goal) in &queries {
        let (wall, rss, out) = measure(&bin, &store, args);
        let hits = match args.first() {
            Some(&"query") => format!(", {} lines", out.lines().count()),
            _ => String::new(),
        };
        println!(
            "| {what} | {} ({} MiB{hits}) | — | — | {goal} |",
            ms(wall),
            rss / 1024
        );
    }
    let (_, _, first) = run(&bin, &store, &["query", &mid, "--hashes"]);
    let hash = first.lines().next().unwrap_or("").trim().to_owned();
    let (wall, rss, _) = measure(&bin, &store, &["cat", &hash]);
    println!(
        "| `archive cat HASH` (one record) | {} ({} MiB) | — | — | < 20 ms |",
        ms(wall),
        rss / 1024
    );
    let (wall, rss, _) = measure(&bin, &store, &["ls", "--limit", "20"]);
    println!(
        "| `archive ls --limit 20` | {} ({} MiB) | — | — | < 30 ms |",
        ms(wall),
        rss / 1024
    );
    // Reading back in bulk: every probability vector as one [N, 10] array, beside pyarrow
    // reading the same column of the Parquet file.
    let npy = scratch.join("probs.npy");
    let npy_arg = npy.display().to_string();
    let (wall, rss, _) = measure(
        &bin,
        &store,
        &["export", "", "--field", "probs", "-o", &npy_arg],
    );
    let pq_read = parquet
        .as_ref()
        .and_then(|v| v.get("read_probs_s")?.as_f64());
    match pq_read {
        Some(r) => println!(
            "| `archive export '' --field probs -o probs.npy` ({n} rows, whole process) | {} ({} MiB) | {:.1} ms (`pyarrow.parquet.read_table` of the column) | {:.2}× | ≥ 1× Parquet |",
            ms(wall),
            rss / 1024,
            r * 1e3,
            r / wall.as_secs_f64()
        ),
        None => println!(
            "| `archive export '' --field probs -o probs.npy` ({n} rows, whole process) | {} ({} MiB) | (pyarrow not installed) | — | ≥ 1× Parquet |",
            ms(wall),
            rss / 1024
        ),
    }
    let (wall, rss, _) = measure(
        &bin,
        &store,
        &[
            "export",
            "run = \"run042\"",
            "--field",
            "probs",
            "-o",
            &npy_arg,
        ],
    );
    println!(
        "| `archive export 'run = \"run042\"' --field probs` (10,000 rows) | {} ({} MiB) | — | — | — |",
        ms(wall),
        rss / 1024
    );
    // The whole table: every record field and tag, beside pyarrow writing the same table
    // (read back from the export into memory), and the peer's columns beside the peer's write.
    let all = scratch.join("all.parquet");
    let all_arg = all.display().to_string();
    let (wall, rss, _) = measure(&bin, &store, &["export", "", "-o", &all_arg]);
    let same = rewrite(&all, &scratch.join("rewritten.parquet"));
    println!(
        "| `archive export '' -o all.parquet` ({n} rows, 8 columns, whole process; {} MiB) | {} ({} MiB) | {} | {} | ≥ 0.5× pyarrow |",
        std::fs::metadata(&all).map(|m| m.len() >> 20).unwrap_or(0),
        ms(wall),
        rss / 1024,
        same.map_or("(pyarrow not installed)".into(), |w| format!(
            "{:.1} ms (`pyarrow.parquet.write_table` of the same table, in memory)",
            w * 1e3
        )),
        same.map_or("—".into(), |w| format!("{:.2}×", w / wall.as_secs_f64())),
    );
    let peer_columns = ["probs", "label", "pred", "id", "run", "split"];
    let mut args = vec!["export", "", "-o", &all_arg];
    for c in &peer_columns {
        args.extend(["--field", c]);
    }
    let (wall, rss, _) = measure(&bin, &store, &args);
    let pq_write = parquet.as_ref().and_then(|v| v.get("write_s")?.as_f64());
    println!(
        "| `archive export '' --field probs ... --field split -o x.parquet` ({n} rows, the peer's 6 columns) | {} ({} MiB) | {} | {} | ≥ 0.5× pyarrow |",
        ms(wall),
        rss / 1024,
        pq_write.map_or("(pyarrow not installed)".into(), |w| format!(
            "{:.1} ms (`ParquetWriter.write_table` of the peer's table in memory)",
            w * 1e3
        )),
        pq_write.map_or("—".into(), |w| format!("{:.2}×", w / wall.as_secs_f64())),
    );
    if let Some(r) = python_reads(&store, &scratch.join("peer.parquet")) {
        let f = |k: &str| r.get(k).and_then(|x| x.as_f64()).unwrap_or(f64::NAN);
        let (stack, table, read) = (f("stack_s"), f("table_s"), f("read_s"));
        println!(
            "| Python `a.stack('', \"probs\")` ({n} rows, store open) | {:.1} ms | {:.1} ms (`pq.read_table` of the column, same process) | {:.2}× | ≥ 1× |",
            stack * 1e3,
            read * 1e3,
            read / stack
        );
        println!(
            "| Python `a.table('', columns=[\"probs\"])` ({n} rows) | {:.1} ms | {:.1} ms | {:.2}× | — |",
            table * 1e3,
            read * 1e3,
            read / table
        );
        println!(
            "\n(the stacked array equals pyarrow's column: {})",
            r["equal"]
        );
    }
    if let Some(v) = parquet {
        println!(
            "\nParquet peer: {} rows written by pyarrow in {:.2} s; `read_table` of the probs column {:.3} s.",
            v.get("rows").and_then(|x| x.as_u64()).unwrap_or(0),
            v.get("write_s").and_then(|x| x.as_f64()).unwrap_or(0.0),
            v.get("read_probs_s")
                .and_then(|x| x.as_f64())
                .unwrap_or(0.0),
        );
    }
}
