//! gc killed at random moments: `tests/gc.rs` runs a few rounds, the reliability report
//! (benches/) a hundred and more. Each round copies a store whose run `r0` was removed, starts
//! `archive gc` on the copy and kills it (SIGKILL) after a pseudo-random delay; then the store
//! must open with no manual step, list exactly the live entries, give every live object back
//! (a get re-hashes it), and verify; a second gc must finish the job (one segment left, the
//! garbage dropped) and the store verify again.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use model_archive::{Archive, Dtype, Error, GcOptions, ObjectHash, Record, Shape, TensorView};

use crate::reliability_common::{Rng, noise};

/// Every entry, as (hash, time, tags).
pub type Listing = BTreeSet<(ObjectHash, i64, Vec<(String, String)>)>;

/// Every entry of `a`.
pub fn listing(a: &Archive) -> Listing {
    a.entries()
        .map(|e| e.expect("entry"))
        .map(|e| (e.hash, e.time_ns, e.tags))
        .collect()
}

/// What the kills found.
#[derive(Clone, Debug, Default)]
pub struct GcKills {
    /// gc processes started and killed (or that finished first: counted in `finished`).
    pub tried: u64,
    /// Those that finished before the kill landed.
    pub finished: u64,
    /// Rounds after which everything held.
    pub survived: u64,
    /// What went wrong in the first round that did not hold.
    pub first_failure: Option<String>,
}

/// A store of 3 interleaved runs of records (packed), each with a tensor part, and tensors in
/// frames of their own; run r0 removed. Returns the tensors only r0 logged (garbage).
fn template(store: &Path, records: u64) -> Vec<ObjectHash> {
    let a = Archive::create(store).expect("create");
    let mut w = a.writer();
    for i in 0..records {
        let run = format!("r{}", i % 3);
        let data = noise(256, i);
        let shape = Shape::new(vec![64]);
        let view = TensorView::new(Dtype::F32, &shape, &data).expect("view");
        let part = w.put_tensor_part(&view).expect("part");
        let rec = Record::from_json("test", &serde_json::json!({"id": i}))
            .and_then(|r| r.with("probs", model_archive::Value::Ref(part)))
            .expect("record");
        w.put_record(&rec, &[("run", run.as_str())])
            .expect("record");
    }
    w.commit().expect("commit");
    let mut garbage = Vec::new();
    for i in 0..24u64 {
        let run = format!("r{}", i % 3);
        let data = noise(96 << 10, 1 << 20 | i);
        let shape = Shape::new(vec![24 << 10]);
        let view = TensorView::new(Dtype::F32, &shape, &data).expect("view");
        let h = a
            .put_tensor(&view, &[("run", run.as_str())])
            .expect("tensor");
        if i % 3 == 0 {
            garbage.push(h);
        }
    }
    let q = a.parse_query("run = \"r0\"").expect("query");
    a.rm(&q, "run = \"r0\"", false).expect("rm");
    garbage
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// Kill `archive gc` (the binary `bin`) `kills` times at pseudo-random moments, each on a fresh
/// copy of a store of `records` records, under `dir`.
pub fn gc_kill_loop(bin: &Path, dir: &Path, kills: u64, records: u64, seed: u64) -> GcKills {
    let template_dir = dir.join("template");
    let garbage = template(&template_dir, records);
    let a = Archive::open(&template_dir).expect("open template");
    let live = listing(&a);
    drop(a);
    // How long a whole gc takes here: the kills spread over that (a few land after the end).
    let warm = dir.join("warm");
    copy_dir(&template_dir, &warm);
    let started = Instant::now();
    let ok = gc_command(bin, &warm)
        .stdout(Stdio::null())
        .status()
        .expect("gc");
    assert!(ok.success(), "gc failed before any kill");
    let max_delay_us = started.elapsed().as_micros() as u64;
    let mut rng = Rng(seed);
    let mut k = GcKills::default();
    for i in 0..kills {
        let store = dir.join(format!("round-{i}"));
        copy_dir(&template_dir, &store);
        let mut child = gc_command(bin, &store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn gc");
        std::thread::sleep(Duration::from_micros(rng.below(max_delay_us + 1)));
        let _ = child.kill();
        let status = child.wait().expect("wait");
        k.tried += 1;
        k.finished += u64::from(status.success());
        match check_round(&store, &live, &garbage) {
            Ok(()) => k.survived += 1,
            Err(why) => {
                k.first_failure.get_or_insert(format!("round {i}: {why}"));
            }
        }
        let _ = std::fs::remove_dir_all(&store);
    }
    k
}

fn gc_command(bin: &Path, store: &Path) -> Command {
    let mut c = Command::new(bin);
    c.arg("--store").arg(store).args(["gc", "--min-dead", "0"]);
    c
}

/// After a kill: the store opens, lists the live entries, gives every live object back,
/// verifies; a second gc leaves one segment and drops the garbage.
fn check_round(store: &Path, live: &Listing, garbage: &[ObjectHash]) -> Result<(), String> {
    let a = Archive::open(store).map_err(|e| format!("open: {e}"))?;
    let check = |a: &Archive, when: &str| -> Result<(), String> {
        if listing(a) != *live {
            return Err(format!("{when}: the listing changed"));
        }
        for (h, _, _) in live {
            a.get(h).map_err(|e| format!("{when}: {h}: {e}"))?;
        }
        let v = a.verify(&|_, _| {}).map_err(|e| e.to_string())?;
        if !v.is_ok() {
            return Err(format!("{when}: verify: {:?}", v.problems));
        }
        Ok(())
    };
    check(&a, "after the kill")?;
    let opts = GcOptions {
        dry_run: false,
        min_dead: 0.0,
    };
    a.gc(&opts, &|_, _, _| {})
        .map_err(|e| format!("second gc: {e}"))?;
    check(&a, "after a second gc")?;
    for h in garbage {
        if !matches!(a.get(h), Err(Error::Removed(_))) {
            return Err(format!("{h}: not dropped by the second gc"));
        }
    }
    let files = std::fs::read_dir(store.join("segments"))
        .map_err(|e| e.to_string())?
        .count();
    if files != 1 {
        return Err(format!("{files} files in segments/ after the second gc"));
    }
    Ok(())
}
