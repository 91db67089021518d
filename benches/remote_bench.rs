//! Remotes (issue 14) in one markdown table, whole processes as a user runs them, against a
//! real S3 server on loopback (SeaweedFS, started here as the tests start it):
//!
//! ```text
//! cargo build --release --bin archive
//! pip install awscli boto3          # the peers: `aws s3 cp --recursive` and a boto3 ranged GET
//! cargo run --release -p model-archive-bench --bin remote-bench            # 1 GiB + 1M records
//! cargo run --release -p model-archive-bench --bin remote-bench -- 100000 256   # smaller
//! ```
//!
//! The store: 16 tensors of 64 MiB (random float32: they do not compress) and 1,000,000 logged
//! records (find-bench's stream), about 1.1 GiB of segments. Measured, medians of 3 (each run
//! into a fresh prefix of the bucket):
//! - `archive push` until it exits, against `aws s3 cp --recursive` of the same segment files;
//! - `archive clone` (download, check, index) against `aws s3 cp --recursive` back down;
//! - `archive get HASH --remote` of one 64 MiB tensor and of one small record: requests and
//!   wall time (the first with the tables to fetch, then cached), against a boto3 ranged GET of
//!   the same frame's bytes (`tools/s3_peer.py`, timed inside the process).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod bench_common;
#[path = "../tests/s3_common.rs"]
mod s3_common;
use bench_common::{archive_bin, dir_size, record_stream, workspace_root};
use s3_common::{BUCKET, KEY_ID, SECRET, Weed};

/// A command with the server's credentials.
fn cmd(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    c.env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_DEFAULT_REGION", "us-east-1");
    c
}

/// Run to success; wall time and stdout, stderr.
fn timed(c: &mut Command) -> (Duration, String, String) {
    let start = Instant::now();
    let out = c.output().expect("run");
    let wall = start.elapsed();
    assert!(out.status.success(), "{c:?} failed: {out:?}");
    (
        wall,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn archive(bin: &Path, store: &Path) -> Command {
    let mut c = cmd(bin);
    c.arg("--store").arg(store);
    c
}

/// The store: `mib / 64` tensors of 64 MiB and `records` logged records.
fn build(bin: &Path, store: &Path, records: usize, mib: usize) {
    timed(cmd(bin).arg("init").arg(store));
    let tmp = store.with_extension("tensor");
    for k in 0..mib / 64 {
        std::fs::write(&tmp, bench_common_noise(64 << 20, k as u64)).expect("write");
        timed(archive(bin, store).arg("put").arg(&tmp).args([
            "--dtype",
            "F32",
            "--shape",
            &(16usize << 20).to_string(),
        ]));
    }
    let _ = std::fs::remove_file(&tmp);
    let mut log = archive(bin, store)
        .args(["log", "--format", "msgpack", "--tag-field", "run"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("log");
    {
        use std::io::Write;
        let mut stdin = log.stdin.take().expect("stdin");
        stdin
            .write_all(&record_stream(records, 0, false))
            .expect("stream");
    }
    assert!(log.wait().expect("log").success());
}

/// Random bytes (float32 noise does not compress: a fair transfer test).
fn bench_common_noise(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

/// `aws s3 cp --recursive FROM TO` against the server.
fn aws_cp(endpoint: &str, from: &str, to: &str) -> Duration {
    timed(cmd("aws").args([
        "s3",
        "cp",
        "--recursive",
        "--quiet",
        "--endpoint-url",
        endpoint,
        from,
        to,
    ]))
    .0
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}

/// `archive get HASH --remote r` to /dev/null: wall time and requests.
fn remote_get(bin: &Path, store: &Path, hash: &str) -> (Duration, u64) {
    let (wall, _, err) = timed(
        archive(bin, store)
            .args(["get", hash, "--remote", "r0", "-o", "-"])
            .env("ARCHIVE_TRACE_REMOTE", "1")
            .stdout(Stdio::null()),
    );
    let requests = err
        .split_whitespace()
        .zip(err.split_whitespace().skip(1))
        .find(|(_, w)| *w == "requests")
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0);
    (wall, requests)
}

/// boto3's ranged GET of `len` bytes at `offset` of `key` in the peer's copy: the GET alone
/// (timed inside the process) and the whole process (Python, boto3's import, the client).
fn boto3_get(endpoint: &str, key: &str, offset: u64, len: u64) -> Option<(Duration, Duration)> {
    let script = workspace_root().join("tools").join("s3_peer.py");
    let start = Instant::now();
    let out = cmd("python3")
        .arg(script)
        .args([
            endpoint,
            BUCKET,
            key,
            &offset.to_string(),
            &(offset + len).to_string(),
        ])
        .output()
        .ok()?;
    let whole = start.elapsed();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some((Duration::from_secs_f64(v["seconds"].as_f64()?), whole))
}

/// The object's segment, offset and stored size (`archive info --json`).
fn located(bin: &Path, store: &Path, hash: &str) -> (String, u64, u64) {
    let (_, out, _) = timed(archive(bin, store).args(["--json", "info", hash]));
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    (
        v["segment"].as_str().unwrap_or_default().to_owned(),
        v["offset"].as_u64().unwrap_or(0),
        v["stored_bytes"].as_u64().unwrap_or(0),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let records: usize = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mib: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1024);
    let bin = archive_bin();
    let work = tempfile::tempdir().expect("tempdir");
    let store: PathBuf = work.path().join("src.archive");
    eprintln!("building the store: {records} records, {mib} MiB of tensors");
    build(&bin, &store, records, mib);
    let seg_bytes = dir_size(&store.join("segments"));
    let weed = Weed::start();
    let endpoint = weed.endpoint();
    eprintln!("server up at {endpoint}; segments: {seg_bytes} bytes");

    let (mut push, mut peer_up, mut clone, mut peer_down) = (vec![], vec![], vec![], vec![]);
    for i in 0..3 {
        let url = weed.url(&format!("bench{i}"));
        timed(archive(&bin, &store).args([
            "remote",
            "add",
            &format!("r{i}"),
            &url,
            "--endpoint",
            &endpoint,
        ]));
        push.push(timed(archive(&bin, &store).args(["push", &format!("r{i}")])).0);
        let peer = format!("s3://{BUCKET}/peer{i}-{}", std::process::id());
        peer_up.push(aws_cp(
            &endpoint,
            &store.join("segments").display().to_string(),
            &peer,
        ));
        let copy = work.path().join(format!("clone{i}"));
        clone.push(
            timed(
                cmd(&bin)
                    .args(["clone", &url])
                    .arg(&copy)
                    .args(["--endpoint", &endpoint]),
            )
            .0,
        );
        let down = work.path().join(format!("peer-down{i}"));
        peer_down.push(aws_cp(&endpoint, &peer, &down.display().to_string()));
        let _ = std::fs::remove_dir_all(&copy);
        let _ = std::fs::remove_dir_all(&down);
    }
    let (push, peer_up, clone, peer_down) = (
        median(push),
        median(peer_up),
        median(clone),
        median(peer_down),
    );

    // One big tensor and one small record, read remotely from r0.
    let (_, listing, _) = timed(archive(&bin, &store).args(["--json", "ls", "--all"]));
    let entries: Vec<serde_json::Value> = listing
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let pick = |big: bool| -> String {
        entries
            .iter()
            .find(|v| (v["bytes"].as_u64().unwrap_or(0) >= 64 << 20) == big)
            .and_then(|v| v["hash"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let peer0 = format!("peer0-{}", std::process::id());
    println!("| measure | ours | peer | ratio (peer / ours) |");
    println!("|---|---:|---:|---:|");
    println!(
        "| push {:.0} MB (segments) | {:.2} s, {:.0} MB/s | `aws s3 cp --recursive`: {:.2} s, {:.0} MB/s | {:.2}× |",
        seg_bytes as f64 / 1e6,
        push.as_secs_f64(),
        mbps(seg_bytes, push),
        peer_up.as_secs_f64(),
        mbps(seg_bytes, peer_up),
        peer_up.as_secs_f64() / push.as_secs_f64()
    );
    println!(
        "| clone (download, check, index) | {:.2} s, {:.0} MB/s | `aws s3 cp --recursive` down: {:.2} s, {:.0} MB/s | {:.2}× |",
        clone.as_secs_f64(),
        mbps(seg_bytes, clone),
        peer_down.as_secs_f64(),
        mbps(seg_bytes, peer_down),
        peer_down.as_secs_f64() / clone.as_secs_f64()
    );
    let cache = store.join("remote-cache");
    for (what, hash) in [("64 MiB tensor", pick(true)), ("small record", pick(false))] {
        let _ = std::fs::remove_dir_all(&cache);
        let (cold, cold_req) = remote_get(&bin, &store, &hash);
        let warm: Vec<(Duration, u64)> = (0..5).map(|_| remote_get(&bin, &store, &hash)).collect();
        let warm_req = warm.first().map_or(0, |w| w.1);
        let warm = median(warm.into_iter().map(|w| w.0).collect());
        let (seg, offset, stored) = located(&bin, &store, &hash);
        let len = if stored >= 64 << 20 {
            stored + 4096
        } else {
            256 << 10
        };
        let peer: Vec<(Duration, Duration)> = (0..5)
            .filter_map(|_| boto3_get(&endpoint, &format!("{peer0}/{seg}"), offset, len))
            .collect();
        let whole = median(peer.iter().map(|p| p.1).collect());
        let peer = median(peer.into_iter().map(|p| p.0).collect());
        let ratio = |d: Duration| d.as_secs_f64() / warm.as_secs_f64().max(1e-9);
        println!(
            "| `get --remote`, {what} (whole process) | {:.0} ms, {warm_req} requests (first, tables to fetch: {:.0} ms, {cold_req} requests) | boto3 ranged GET of {len} bytes: {:.0} ms in-process, {:.0} ms as a process | {:.2}× in-process, {:.2}× as processes |",
            warm.as_secs_f64() * 1e3,
            cold.as_secs_f64() * 1e3,
            peer.as_secs_f64() * 1e3,
            whole.as_secs_f64() * 1e3,
            ratio(peer),
            ratio(whole)
        );
    }
}
