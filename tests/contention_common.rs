//! The contention workload, shared by tests/reliability.rs (short) and the reliability report
//! (long): loggers streaming into one store while loops of `put`, `get`, `query`, `ls`,
//! `verify` and `stats` run beside them, each command a process as a user runs it. Every
//! command runs with `ARCHIVE_TRACE_WAITS=1` and says how long it waited for other processes
//! to hand over the index; the figures are those waits, each command's wall time, its
//! failures, and `put`'s rate beside the same loop run alone. Afterwards every record a logger
//! was given must have exactly one entry, and `verify` must pass. With `CONTENTION_KEEP=1`
//! the ids found per logger and their gaps are printed (and the ignored gc test keeps its
//! store), for looking into a failure.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use model_archive::Archive;
use model_archive::query::Query;

/// What the runs of one command met.
#[derive(Clone, Debug, Default)]
pub struct CmdRuns {
    /// Wall time of each run, ms.
    pub wall_ms: Vec<u64>,
    /// Longest wait for the index within each run, ms.
    pub wait_ms: Vec<u64>,
    /// Longest hold of the index within each run, ms.
    pub hold_ms: Vec<u64>,
    /// Runs that exited non-zero, and the first one's stderr.
    pub failed: u32,
    pub first_failure: Option<String>,
}

impl CmdRuns {
    pub fn max_wait_ms(&self) -> u64 {
        self.wait_ms.iter().copied().max().unwrap_or(0)
    }

    pub fn max_hold_ms(&self) -> u64 {
        self.hold_ms.iter().copied().max().unwrap_or(0)
    }

    pub fn median_wall_ms(&self) -> u64 {
        median(&self.wall_ms)
    }

    pub fn median_wait_ms(&self) -> u64 {
        median(&self.wait_ms)
    }
}

fn median(v: &[u64]) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// What a contention run found.
#[derive(Clone, Debug, Default)]
pub struct Contention {
    pub by_cmd: BTreeMap<&'static str, CmdRuns>,
    /// Records given to the loggers, and entries found for them afterwards.
    pub records_in: u64,
    pub entries_after: u64,
    /// Distinct ids among those entries.
    pub ids_after: u64,
    /// Loggers that exited non-zero.
    pub loggers_failed: u32,
    /// `put`s per second alone, and under the load.
    pub solo_puts_per_s: f64,
    pub mixed_puts_per_s: f64,
    /// What a last `verify` found wrong, if anything.
    pub verify_after: Option<String>,
}

/// Whether it succeeded, its wall time, its longest wait for the index and its longest hold
/// of it (ms), and its stderr.
fn run_cmd(bin: &Path, store: &Path, args: &[String]) -> (bool, u64, u64, u64, String) {
    let start = Instant::now();
    let out = Command::new(bin)
        .arg("--store")
        .arg(store)
        .args(args)
        .env("ARCHIVE_TRACE_WAITS", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run archive");
    let wall = start.elapsed().as_millis() as u64;
    let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // A failure's report may be on stdout (verify's problems).
    if !out.status.success() {
        stderr.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    // "archive: index waits: N takes, T ms in all, longest L ms"
    let figure = |after: &str, before: &str| {
        stderr
            .lines()
            .filter_map(|l| l.split(after).nth(1)?.split(before).next())
            .filter_map(|t| t.trim().parse::<u64>().ok())
            .max()
            .unwrap_or(0)
    };
    let wait = figure("longest ", " ms");
    let hold = figure("index held ", " ms");
    (out.status.success(), wall, wait, hold, stderr)
}

/// The arguments of the `n`th run of command `what`.
fn args_of(what: &str, n: u64, hash: &str) -> Vec<String> {
    let v: Vec<&str> = match what {
        "get" => vec!["cat", hash],
        "query" => vec!["query", "run = \"log0\" and id = \"0-17\""],
        "ls" => vec!["ls", "--limit", "20"],
        "verify" => vec!["verify"],
        "stats" => vec!["stats"],
        // What the put loop wrote goes, and its space with it, while the loggers write.
        "rm" => vec!["rm", "src = \"put\""],
        "gc" => vec!["gc", "--min-dead", "0"],
        _ => vec![],
    };
    if what == "put" {
        let text = format!("put number {n}");
        return ["put", "--text", &text, "--tag", "src=put"]
            .map(String::from)
            .to_vec();
    }
    v.into_iter().map(String::from).collect()
}

/// Run `what` again and again until `deadline`; the number of runs.
fn command_loop(
    bin: &Path,
    store: &Path,
    what: &'static str,
    hash: &str,
    deadline: Instant,
    into: &Mutex<CmdRuns>,
) -> u64 {
    let mut n = 0;
    while Instant::now() < deadline {
        let (ok, wall, wait, hold, stderr) = run_cmd(bin, store, &args_of(what, n, hash));
        let mut r = into.lock().expect("runs");
        r.wall_ms.push(wall);
        r.wait_ms.push(wait);
        r.hold_ms.push(hold);
        if !ok {
            r.failed += 1;
            r.first_failure.get_or_insert(stderr);
        }
        n += 1;
        // gc now and then, as a user runs it (back to back, every long command beside it
        // would start over and over).
        if what == "gc" {
            std::thread::sleep(Duration::from_millis(1500));
        }
    }
    n
}

/// A logger process fed records `{"id": "k-i", "x": ...}` at about `rate` per second until
/// `deadline`; the number of records written to it.
fn logger(bin: &Path, store: &Path, k: usize, rate: u64, deadline: Instant) -> (u64, bool) {
    let mut child = Command::new(bin)
        .arg("--store")
        .arg(store)
        .args(["log", "--tag", &format!("run=log{k}"), "--tag-field", "id"])
        .args(["--batch", "500", "--interval", "0.2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn archive log");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut sent = 0u64;
    let start = Instant::now();
    while Instant::now() < deadline {
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        let mut buf = String::new();
        while sent < due {
            buf.push_str(&format!(
                "{{\"id\": \"{k}-{sent}\", \"label\": {}, \"score\": 0.{sent}}}\n",
                sent % 10
            ));
            sent += 1;
        }
        stdin.write_all(buf.as_bytes()).expect("feed archive log");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(stdin);
    let ok = child.wait().expect("wait archive log").success();
    (sent, ok)
}

/// Three (or `loggers`) loggers at `rate` records per second each, and a loop of every other
/// command (with `gc`: also `rm` of what the put loop wrote, and `gc` every 1.5 s), for `secs`
/// seconds, after a `put` loop alone for `secs / 4`.
pub fn contention(
    bin: &Path,
    dir: &Path,
    secs: f64,
    loggers: usize,
    rate: u64,
    gc: bool,
) -> Contention {
    let store: PathBuf = dir.join("store");
    Archive::create(&store).expect("create");
    let seeded = Command::new(bin)
        .arg("--store")
        .arg(&store)
        .args(["put", "--text", "the object every get reads"])
        .output()
        .expect("put");
    let hash = String::from_utf8_lossy(&seeded.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut c = Contention::default();

    let solo = Mutex::new(CmdRuns::default());
    let start = Instant::now();
    let n = command_loop(
        bin,
        &store,
        "put",
        &hash,
        start + Duration::from_secs_f64(secs / 4.0),
        &solo,
    );
    c.solo_puts_per_s = n as f64 / start.elapsed().as_secs_f64();

    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let all = ["put", "get", "query", "ls", "verify", "stats", "rm", "gc"];
    let cmds = if gc { &all[..] } else { &all[..6] };
    let runs: Vec<Arc<Mutex<CmdRuns>>> = cmds.iter().map(|_| Arc::default()).collect();
    let records = AtomicU64::new(0);
    let failed_loggers = AtomicU64::new(0);
    let put_start = Instant::now();
    let mut put_runs = 0;
    std::thread::scope(|s| {
        for k in 0..loggers {
            let (store, records, failed) = (&store, &records, &failed_loggers);
            s.spawn(move || {
                let (sent, ok) = logger(bin, store, k, rate, deadline);
                records.fetch_add(sent, Ordering::Relaxed);
                failed.fetch_add(u64::from(!ok), Ordering::Relaxed);
            });
        }
        let handles: Vec<_> = cmds
            .iter()
            .zip(&runs)
            .map(|(what, into)| {
                let (store, hash) = (&store, &hash);
                s.spawn(move || command_loop(bin, store, what, hash, deadline, into))
            })
            .collect();
        for (what, h) in cmds.iter().zip(handles) {
            let n = h.join().expect("command loop");
            if *what == "put" {
                put_runs = n;
            }
        }
    });
    c.mixed_puts_per_s = put_runs as f64 / put_start.elapsed().as_secs_f64();
    for (what, r) in cmds.iter().zip(runs) {
        c.by_cmd.insert(what, r.lock().expect("runs").clone());
    }
    c.records_in = records.into_inner();
    c.loggers_failed = failed_loggers.into_inner() as u32;
    let a = Archive::open(&store).expect("open after the run");
    let mut ids = std::collections::HashSet::new();
    for k in 0..loggers {
        let q = Query::parse(&format!("run = \"log{k}\"")).expect("query");
        for e in a.query(&q).flatten() {
            c.entries_after += 1;
            ids.extend(
                e.tags
                    .into_iter()
                    .filter(|(key, _)| key == "id")
                    .map(|(_, v)| v),
            );
        }
    }
    c.ids_after = ids.len() as u64;
    if std::env::var_os("CONTENTION_KEEP").is_some() {
        for k in 0..loggers {
            let mut nums: Vec<u64> = ids
                .iter()
                .filter_map(|i| i.strip_prefix(&format!("{k}-"))?.parse().ok())
                .collect();
            nums.sort_unstable();
            let mut gaps = Vec::new();
            let mut next = 0;
            for n in &nums {
                if *n != next {
                    gaps.push((next, *n));
                }
                next = n + 1;
            }
            eprintln!(
                "logger {k}: {} ids, max {:?}, gaps {:?}",
                nums.len(),
                nums.last(),
                gaps
            );
        }
    }
    c.verify_after = match a.verify(&|_, _| {}) {
        Ok(r) if r.is_ok() => None,
        Ok(r) => Some(format!("{:?}", r.problems)),
        Err(e) => Some(e.to_string()),
    };
    c
}
