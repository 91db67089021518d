//! Issue 5's figures: the reliability workloads of tests/reliability.rs run longer, and one
//! table of what survived. Nothing here is timed.
//!
//! ```sh
//! cargo build --bin archive && fuzz/run_all.sh 60   # fuzz figures (optional)
//! cargo run -p model-archive-bench --bin reliability-report -- --kills 300 --corruptions 500 \
//!     --disk-full 10 --fuzz-summary fuzz/logs/summary.tsv
//! ```
//!
//! The kills need the `archive` binary of the same profile beside this program (`cargo build
//! --bin archive`, which `cargo run -p model-archive-bench` does not do by itself). Disk-full rounds mount a tmpfs, so they need
//! root; elsewhere the row says why it was skipped. Exits non-zero if anything acknowledged was
//! lost, any wrong data was served, or a case was not handled.

// Shared with the tests, which run the same workloads small.
#[path = "../tests/contention_common.rs"]
mod contention_common;
#[path = "../tests/gc_common.rs"]
mod gc_common;
#[path = "../tests/hostile_common.rs"]
mod hostile_common;
#[path = "../tests/reliability_common.rs"]
mod reliability_common;

use std::path::PathBuf;

use contention_common::contention;
use hostile_common::hostile_rounds;
use reliability_common::{
    archive_bin, corruption_loop, disk_full_rounds, index_damage_loop, kill_loop,
};

struct Args {
    kills: u64,
    corruptions: u64,
    disk_full: u64,
    index_damage: u64,
    contention: u64,
    hostile: u64,
    gc_kills: u64,
    gc_contention: u64,
    big: usize,
    fuzz_summary: Option<PathBuf>,
}

fn parse_args() -> Args {
    let mut a = Args {
        kills: 300,
        corruptions: 500,
        disk_full: 10,
        index_damage: 200,
        contention: 60,
        hostile: 25,
        gc_kills: 150,
        gc_contention: 20,
        big: 1 << 20,
        fuzz_summary: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        let mut num = || {
            let v = value();
            v.parse::<u64>()
                .unwrap_or_else(|_| usage(&format!("not a number: {v}")))
        };
        match flag.as_str() {
            "--kills" => a.kills = num(),
            "--corruptions" => a.corruptions = num(),
            "--disk-full" => a.disk_full = num(),
            "--index-damage" => a.index_damage = num(),
            "--big" => a.big = num() as usize,
            "--contention" => a.contention = num(),
            "--hostile" => a.hostile = num(),
            "--gc-kills" => a.gc_kills = num(),
            "--gc-contention" => a.gc_contention = num(),
            "--fuzz-summary" => a.fuzz_summary = Some(PathBuf::from(value())),
            _ => usage(&format!("unknown argument {flag}")),
        }
    }
    a
}

fn usage(why: &str) -> ! {
    eprintln!(
        "{why}\nusage: reliability-report [--kills N] [--corruptions N] [--disk-full N] \
         [--index-damage N] [--contention SECS] [--hostile N] [--gc-kills N] [--gc-contention ROUNDS] [--big BYTES] [--fuzz-summary fuzz/logs/summary.tsv]"
    );
    std::process::exit(2)
}

fn main() {
    let args = parse_args();
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut bad = false;

    let bin = archive_bin();
    if !bin.is_file() {
        usage(&format!(
            "{} is missing: run `cargo build --bin archive` first (with --release for a release build)",
            bin.display()
        ));
    }
    eprintln!("kills: {} …", args.kills);
    let dir = tempfile::tempdir().expect("tempdir");
    let k = kill_loop(&bin, dir.path(), args.kills, args.big, 50, 0x5eed);
    drop(dir);
    if let Some(why) = &k.first_failure {
        eprintln!("first failure: {why}");
    }
    bad |= k.survived != k.tried || k.acked.lost != 0 || k.acked.wrong != 0;
    rows.push((
        "kill -9 of `archive put` survived / tried".into(),
        format!(
            "{} / {} ({} finished before the kill; {} opens rebuilt a damaged sled index)",
            k.survived, k.tried, k.finished, k.index_rebuilds
        ),
    ));

    eprintln!("gc kills: {} …", args.gc_kills);
    let dir = tempfile::tempdir().expect("tempdir");
    let g = gc_common::gc_kill_loop(&bin, dir.path(), args.gc_kills, 3000, 0x6c);
    drop(dir);
    if let Some(why) = &g.first_failure {
        eprintln!("first failure: {why}");
    }
    bad |= g.survived != g.tried;
    rows.push((
        "kill -9 of `archive gc` at a random moment: store opens, lists and gives back every \
         live entry and object, verifies; the next gc finishes (held / tried)"
            .into(),
        format!(
            "{} / {} ({} finished before the kill)",
            g.survived, g.tried, g.finished
        ),
    ));

    eprintln!("corruptions: {} …", args.corruptions);
    let dir = tempfile::tempdir().expect("tempdir");
    let c = corruption_loop(dir.path(), args.corruptions, 0xc0ffee);
    drop(dir);
    bad |= c.detected != c.injected || c.wrong != 0;
    rows.push((
        "corruptions detected / injected (header, metadata, payload flips)".into(),
        format!("{} / {}", c.detected, c.injected),
    ));

    eprintln!("index damage: {} …", args.index_damage);
    let dir = tempfile::tempdir().expect("tempdir");
    let i = index_damage_loop(dir.path(), args.index_damage, 0x1dec);
    drop(dir);
    bad |= i.healed != i.injected || i.missing != 0;
    rows.push((
        "derived-index damages healed on open / injected (a lookup table flipped or cut, \
         `lookup/` a file, a table removed); objects missing after"
            .into(),
        format!("{} / {}; {}", i.healed, i.injected, i.missing),
    ));

    eprintln!("hostile rounds: {} …", args.hostile);
    let dir = tempfile::tempdir().expect("tempdir");
    let h = hostile_rounds(&bin, dir.path(), args.hostile, 0x10);
    drop(dir);
    if let Some(why) = &h.first_failure {
        eprintln!("first failure: {why}");
    }
    bad |= h.first_failure.is_some();
    for (what, (held, tried)) in [
        (
            "a symlink named like a segment: every command works, its target untouched, `verify` names it",
            h.symlinks,
        ),
        (
            "a frame of a newer schema: kept byte for byte through `ls`, `put`, `stats`, reported by `verify`",
            h.newer_frames,
        ),
        (
            "a query nested 65 to 20,064 deep: refused, exit 2",
            h.deep_queries,
        ),
        (
            "a run cut short, then the whole stream with `--resume-by id`: one entry per record",
            h.relogs,
        ),
    ] {
        rows.push((format!("{what}: held / tried"), format!("{held} / {tried}")));
    }

    if args.contention > 0 {
        eprintln!("contention: {} s …", args.contention);
        bad |= contention_rows(&bin, args.contention, &mut rows);
    }
    if args.gc_contention > 0 {
        eprintln!("gc beside loggers: {} rounds …", args.gc_contention);
        bad |= gc_contention_rows(&bin, args.gc_contention, &mut rows);
    }

    eprintln!("disk full: {} rounds …", args.disk_full);
    let (enospc, d_acked) = match disk_full_rounds(args.disk_full) {
        Ok(d) => {
            if let Some(why) = &d.first_unhandled {
                eprintln!("first unhandled ENOSPC case: {why}");
            }
            bad |= d.handled != d.cases || d.acked.lost != 0 || d.acked.wrong != 0;
            (
                format!(
                    "{} / {} handled ({} met in the sled index: the open handle then could not \
                     read {} acknowledged objects until reopened)",
                    d.handled, d.cases, d.index_failures, d.unreadable_until_reopen
                ),
                Some(d.acked),
            )
        }
        Err(why) => (format!("skipped: cannot mount a tmpfs ({why})"), None),
    };
    let mut acked = k.acked;
    if let Some(d) = d_acked {
        acked += d;
    }
    rows.push((
        "acknowledged records checked / lost (after the last kill; after each ENOSPC)".into(),
        format!("{} / {}", acked.checked, acked.lost),
    ));
    let wrong = k.acked.wrong + c.wrong + d_acked.map_or(0, |d| d.wrong);
    rows.push(("wrong data served (must be 0)".into(), wrong.to_string()));
    rows.push(("ENOSPC cases".into(), enospc));

    match &args.fuzz_summary {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => {
                for line in text.lines().skip(1) {
                    let f: Vec<&str> = line.split('\t').collect();
                    if let [target, runs, secs, crashes] = f[..] {
                        bad |= crashes != "0";
                        rows.push((
                            format!("fuzz `{target}`: executions in seconds, crashes"),
                            format!("{runs} in {secs} s, {crashes}"),
                        ));
                    }
                }
            }
            Err(e) => rows.push((
                "fuzz".into(),
                format!("{}: {e} (run fuzz/run_all.sh)", path.display()),
            )),
        },
        None => rows.push((
            "fuzz".into(),
            "not given (--fuzz-summary fuzz/logs/summary.tsv)".into(),
        )),
    }

    println!("| check | result |\n| --- | --- |");
    for (what, result) in &rows {
        println!("| {what} | {result} |");
    }
    if bad {
        eprintln!(
            "FAILED: something acknowledged was lost, wrong data was served, or a case was not handled"
        );
        std::process::exit(1);
    }
}

/// Rows for three loggers beside loops of every other command: each command's longest wait
/// for the index and median wall time, `put`'s rate beside its rate alone. True if something
/// failed or was lost.
fn contention_rows(bin: &std::path::Path, secs: u64, rows: &mut Vec<(String, String)>) -> bool {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = contention(bin, dir.path(), secs as f64, 3, 5000, false);
    let mut bad = c.loggers_failed != 0
        || c.entries_after != c.records_in
        || c.ids_after != c.records_in
        || c.verify_after.is_some();
    for (what, r) in &c.by_cmd {
        bad |= r.failed != 0;
        if let Some(why) = &r.first_failure {
            eprintln!("{what} failed: {why}");
        }
        rows.push((
            format!("beside 3 loggers (5,000 rec/s each, {secs} s): `{what}`"),
            format!(
                "{} runs, {} failed; wait for the index: longest {} ms, median {} ms; longest \
                 hold {} ms; median wall {} ms",
                r.wall_ms.len(),
                r.failed,
                r.max_wait_ms(),
                r.median_wait_ms(),
                r.max_hold_ms(),
                r.median_wall_ms()
            ),
        ));
    }
    rows.push((
        "beside 3 loggers: `put`s per second, and alone".into(),
        format!("{:.1} / {:.1}", c.mixed_puts_per_s, c.solo_puts_per_s),
    ));
    rows.push((
        "beside 3 loggers: records logged / entries after / distinct ids; verify after".into(),
        format!(
            "{} / {} / {}; {}",
            c.records_in,
            c.entries_after,
            c.ids_after,
            c.verify_after.as_deref().unwrap_or("all good")
        ),
    ));
    bad
}

/// Rows for `rounds` runs of 6 s each of three loggers beside loops of every other command,
/// `rm` of what the put loop wrote and a `gc` every 1.5 s among them: rounds where nothing
/// failed and every logged record had one entry, records, and each command's runs and
/// failures in all. True if something failed or was lost.
fn gc_contention_rows(
    bin: &std::path::Path,
    rounds: u64,
    rows: &mut Vec<(String, String)>,
) -> bool {
    let (mut clean, mut records, mut entries, mut loggers_failed) = (0u64, 0u64, 0u64, 0u32);
    let mut runs: std::collections::BTreeMap<&str, (usize, u32)> = Default::default();
    let mut verify_after = None;
    for round in 0..rounds {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = contention(bin, dir.path(), 6.0, 3, 1500, true);
        let mut ok = c.loggers_failed == 0
            && c.entries_after == c.records_in
            && c.ids_after == c.records_in
            && c.verify_after.is_none();
        for (what, r) in &c.by_cmd {
            let n = runs.entry(what).or_default();
            n.0 += r.wall_ms.len();
            n.1 += r.failed;
            ok &= r.failed == 0;
            if let Some(why) = &r.first_failure {
                eprintln!("round {round}: {what} failed: {why}");
            }
        }
        clean += u64::from(ok);
        records += c.records_in;
        entries += c.entries_after;
        loggers_failed += c.loggers_failed;
        verify_after = verify_after.or(c.verify_after);
    }
    let commands: Vec<String> = runs
        .iter()
        .map(|(what, (n, failed))| format!("`{what}` {n} ({failed} failed)"))
        .collect();
    rows.push((
        format!(
            "gc beside 3 loggers (1,500 records/s each), loops of every command with `rm` and \
             `gc` every 1.5 s (`--gc-contention {rounds}`, 6 s rounds): rounds with nothing \
             lost or failed; records logged / entries after; commands run"
        ),
        format!(
            "{clean} / {rounds}; {records} / {entries}; {}{}",
            commands.join(", "),
            verify_after.map_or(String::new(), |v| format!("; verify after: {v}"))
        ),
    ));
    clean != rounds || loggers_failed != 0 || records != entries
}
