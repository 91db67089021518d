//! `gc`: garbage (what removed entries let go of) goes, everything live stays bit-exact, a
//! record's part stays while a live record refers to it, segments a writer holds are left
//! alone, maps taken before stay valid, a batch that logs stored content during gc stores it
//! again, and a gc killed at each of its sync points leaves a store that opens, verifies and
//! is finished by the next gc.

use std::collections::{BTreeSet, HashMap};

use model_archive::{
    Archive, Codec, Dtype, Error, GcOptions, ObjectHash, PutOptions, Record, Shape, TensorView,
    Value,
};

use crate::gc_common::listing;
use crate::util::{TempStore, noise, stdout_of};

fn rm(a: &Archive, q: &str) -> u64 {
    let query = a.parse_query(q).expect("query");
    a.rm(&query, q, false).expect("rm").entries
}

fn gc(a: &Archive, min_dead: f64) -> model_archive::GcReport {
    let opts = GcOptions {
        dry_run: false,
        min_dead,
    };
    a.gc(&opts, &|_, _, _| {}).expect("gc")
}

/// A tensor of noise: 32 KiB, or 1.5 MiB for seeds ending in 2 (over 1 MiB: gc has the kernel
/// copy it).
fn tensor(a: &Archive, seed: u64, tags: &[(&str, &str)], raw: bool) -> ObjectHash {
    let len = if seed % 10 == 2 { 3 << 19 } else { 32 << 10 };
    let data = noise(len, seed);
    let shape = Shape::new(vec![len as u64 / 4]);
    let view = TensorView::new(Dtype::F32, &shape, &data).expect("view");
    let opts = PutOptions {
        codec: raw.then_some(Codec::Raw),
        level: None,
    };
    a.put_tensor_with(&view, tags, &opts).expect("tensor")
}

/// What a test store holds, by role.
struct Made {
    /// Tensors logged by run r0 only (garbage once r0 is removed).
    r0_tensors: Vec<ObjectHash>,
    /// A part only r0's record refers to (garbage), one r0's and r1's records share (kept),
    /// and one no record refers to (kept: gc only drops what removals let go of).
    r0_part: ObjectHash,
    shared_part: ObjectHash,
    orphan_part: ObjectHash,
    /// The records referring to them.
    r0_record: ObjectHash,
    r1_record: ObjectHash,
}

/// Records of three interleaved runs (packed), a tensor per run in a frame of its own (raw,
/// so it can be mapped), records with tensor parts, and a text logged by r0 and r1.
fn store(t: &TempStore) -> Made {
    let a = t.create();
    let mut w = a.writer();
    for i in 0..60 {
        let run = format!("r{}", i % 3);
        let rec = Record::from_json("test", &serde_json::json!({"id": i, "label": i % 5}))
            .expect("record");
        w.put_record(&rec, &[("run", run.as_str())]).expect("put");
    }
    let part = |w: &mut model_archive::Writer<'_>, seed: u64| {
        let data = noise(2048, seed);
        let shape = Shape::new(vec![512]);
        let view = TensorView::new(Dtype::F32, &shape, &data).expect("view");
        w.put_tensor_part(&view).expect("part")
    };
    let r0_part = part(&mut w, 100);
    let shared_part = part(&mut w, 101);
    let orphan_part = part(&mut w, 102);
    let rec = |a: ObjectHash, b: ObjectHash| {
        Record::from_json("test", &serde_json::json!({"k": 1}))
            .and_then(|r| r.with("a", Value::Ref(a)))
            .and_then(|r| r.with("b", Value::Ref(b)))
            .expect("record")
    };
    let r0_record = w
        .put_record(&rec(r0_part, shared_part), &[("run", "r0")])
        .expect("r0 record");
    let r1_record = w
        .put_record(&rec(shared_part, shared_part), &[("run", "r1")])
        .expect("r1 record");
    w.commit().expect("commit");
    // The last of r0's (dropped) and r1's (kept) are over 1 MiB: gc has the kernel copy what
    // it keeps of those, reading exactly the live one.
    let r0_tensors = (0..3)
        .map(|i| tensor(&a, 10 + i, &[("run", "r0")], i == 0))
        .collect();
    tensor(&a, 22, &[("run", "r1")], false);
    a.put_text("shared caption", &[("run", "r0")])
        .expect("text");
    a.put_text("shared caption", &[("run", "r1")])
        .expect("text");
    Made {
        r0_tensors,
        r0_part,
        shared_part,
        orphan_part,
        r0_record,
        r1_record,
    }
}

/// The bytes of every object a live entry or live record needs.
fn live_objects(a: &Archive, made: &Made) -> HashMap<ObjectHash, Vec<u8>> {
    let mut out = HashMap::new();
    let mut hashes: Vec<ObjectHash> = listing(a).into_iter().map(|(h, _, _)| h).collect();
    hashes.extend([made.shared_part, made.orphan_part]);
    for h in hashes {
        out.insert(h, a.map(&h).expect("live object").bytes().to_vec());
    }
    out
}

#[test]
fn gc_drops_garbage_and_keeps_everything_live_bit_exact() {
    let t = TempStore::new();
    let made = store(&t);
    let a = t.open();
    assert_eq!(rm(&a, "run = \"r0\""), 20 + 1 + 3 + 1);
    let live = listing(&a);
    let objects = live_objects(&a, &made);
    let before: u64 = t
        .segments()
        .iter()
        .map(|p| p.metadata().expect("meta").len())
        .sum();

    let r = gc(&a, 0.0);
    assert_eq!(r.segments_replaced, 1, "{r:?}");
    // 20 records, 3 tensors, r0's record and its own part.
    assert_eq!(r.copy.objects_collected, 25, "{r:?}");
    assert_eq!(r.copy.entries_dropped, 25, "{r:?}");
    assert_eq!(r.garbage_left, 0);
    let after: u64 = t
        .segments()
        .iter()
        .map(|p| p.metadata().expect("meta").len())
        .sum();
    assert_eq!(before - after, r.bytes_reclaimed);
    assert!(
        r.bytes_reclaimed >= 3 * (32 << 10),
        "three tensors' bytes: {r:?}"
    );

    assert_eq!(listing(&a), live, "the live entries, exactly");
    for (h, bytes) in &objects {
        assert_eq!(
            &a.map(h).expect("still there").bytes().to_vec(),
            bytes,
            "{h}"
        );
    }
    for h in made
        .r0_tensors
        .iter()
        .chain([&made.r0_part, &made.r0_record])
    {
        match a.get(h) {
            Err(Error::Removed(s)) => assert_eq!(s, h.to_string()),
            other => panic!("{h}: {:?}", other.map(|_| ())),
        }
    }
    assert!(a.get(&made.r1_record).is_ok());
    assert!(a.verify(&|_, _| {}).expect("verify").is_ok());
    let s = a.stats().expect("stats");
    assert_eq!((s.entries, s.removed_entries), (live.len() as u64, 0));
    assert_eq!(s.removable_bytes, 0);

    // Nothing is left to do; a reindex finds the same store.
    let again = gc(&a, 0.0);
    assert_eq!((again.garbage_bytes, again.segments_replaced), (0, 0));
    drop(a);
    let mut a = t.open();
    a.reindex(&|_, _| {}).expect("reindex");
    assert_eq!(listing(&a), live);
    assert!(matches!(a.get(&made.r0_part), Err(Error::Removed(_))));
}

#[test]
fn a_dry_run_changes_nothing_and_a_segment_below_min_dead_stays() {
    let t = TempStore::new();
    store(&t);
    let a = t.open();
    rm(&a, "run = \"r0\"");
    let snap = t.snapshot();
    let dry = a
        .gc(
            &GcOptions {
                dry_run: true,
                min_dead: 0.0,
            },
            &|_, _, _| {},
        )
        .expect("dry run");
    assert_eq!(t.snapshot(), snap);
    assert_eq!((dry.segments_replaced, dry.dry_run), (1, true));
    assert!(dry.bytes_reclaimed > 0 && dry.bytes_reclaimed == dry.garbage_bytes);
    let kept = gc(&a, 1.0);
    assert_eq!(t.snapshot(), snap, "no segment is all garbage");
    assert_eq!(kept.garbage_left, dry.garbage_bytes);
    let done = gc(&a, 0.0);
    assert!(done.bytes_reclaimed > 0, "{done:?}");
    assert!(done.bytes_reclaimed.abs_diff(dry.bytes_reclaimed) < dry.bytes_reclaimed / 5);
}

#[test]
fn gc_leaves_a_segment_a_writer_holds_and_maps_taken_before_stay_valid() {
    let t = TempStore::new();
    let made = store(&t);
    let a = t.open();
    rm(&a, "run = \"r0\"");
    let raw = made.r0_tensors[0];
    let kept = a.map(&raw).expect("map").bytes().to_vec();
    drop(a);
    // A lock-free reader maps the raw tensor gc is about to drop, in place.
    let reader = model_archive::ArchiveReader::open(t.path())
        .expect("reader")
        .expect("tables");
    let mapped = reader.map(&raw, true).expect("map").expect("found");
    assert!(mapped.is_zero_copy());

    // A logger adopts the (small) segment and holds it: gc leaves it alone.
    let logger = Archive::builder().open_logger(t.path()).expect("logger");
    let text = logger
        .put_text("from the logger", &[("run", "r2")])
        .expect("put");
    let held = t.snapshot();
    let a = t.open();
    let r = gc(&a, 0.0);
    assert_eq!((r.segments_replaced, r.segments_busy), (0, 1), "{r:?}");
    for ((p, before), (q, now)) in held.iter().zip(t.snapshot().iter()) {
        assert_eq!(p, q);
        assert_eq!(&now[..before.len()], &before[..], "{} changed", p.display());
    }
    drop(logger);
    let r = gc(&a, 0.0);
    assert_eq!(r.segments_replaced, 1, "{r:?}");
    assert!(matches!(a.get(&raw), Err(Error::Removed(_))));
    // The segment is gone from the directory; the map still reads the bytes it had.
    assert!(
        t.segments()
            .iter()
            .all(|p| !held.iter().any(|(q, _)| q == p))
    );
    assert_eq!(mapped.bytes(), &kept[..]);
    assert!(listing(&a).iter().any(|(h, _, _)| *h == text));
}

#[test]
fn a_batch_logging_stored_content_while_gc_runs_stores_it_again() {
    let t = TempStore::new();
    let a = t.create();
    a.put_text("caption", &[("run", "a")]).expect("put");
    // As gc holds it.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(t.path().join("gc.lock"))
        .expect("gc.lock");
    lock.lock().expect("lock");
    let mut w = a.writer();
    w.put_text("caption", &[("run", "b")]).expect("put");
    w.commit().expect("commit");
    assert_eq!(
        (w.totals().new_objects, w.totals().duplicates),
        (1, 0),
        "stored again"
    );
    lock.unlock().expect("unlock");
    let mut w = a.writer();
    w.put_text("caption", &[("run", "c")]).expect("put");
    w.commit().expect("commit");
    assert_eq!((w.totals().new_objects, w.totals().duplicates), (0, 1));
}

/// The points gc can be killed at: after the copy (not renamed), after the rename, after the
/// index was rebuilt, after the old segments were deleted.
const CRASH_POINTS: [&str; 4] = ["copied", "renamed", "cleared", "deleted"];

#[test]
fn gc_killed_at_each_sync_point_leaves_a_store_the_next_gc_finishes() {
    for point in CRASH_POINTS {
        let t = TempStore::new();
        let made = store(&t);
        let a = t.open();
        rm(&a, "run = \"r0\"");
        let live = listing(&a);
        let objects = live_objects(&a, &made);
        drop(a);
        let out = t
            .cmd()
            .args(["gc", "--min-dead", "0"])
            .env("ARCHIVE_GC_CRASH_AT", point)
            .output()
            .expect("gc");
        assert!(!out.status.success(), "{point}: gc was to stop");

        let a = t.open();
        assert_eq!(listing(&a), live, "{point}: the live entries");
        for (h, bytes) in &objects {
            let got = a.map(h).unwrap_or_else(|e| panic!("{point}: {h}: {e}"));
            assert_eq!(&got.bytes().to_vec(), bytes, "{point}: {h}");
        }
        let v = a.verify(&|_, _| {}).expect("verify");
        assert!(v.is_ok(), "{point}: {:?}", v.problems);
        let r = gc(&a, 0.0);
        assert_eq!(listing(&a), live, "{point}: after a second gc");
        assert!(
            matches!(a.get(&made.r0_part), Err(Error::Removed(_))),
            "{point}"
        );
        assert_eq!(t.segments().len(), 1, "{point}: {r:?}");
        assert!(a.verify(&|_, _| {}).expect("verify").is_ok(), "{point}");
    }
}

#[test]
fn cli_gc_reports_and_get_of_a_dropped_object_exits_7() {
    let t = TempStore::new();
    let made = store(&t);
    t.cmd().args(["rm", "run = \"r0\""]).assert().success();
    let dry = stdout_of(t.cmd().args(["gc", "--dry-run", "--min-dead", "0"]));
    assert!(dry.contains("would rewrite 1 segment"), "{dry}");
    t.cmd()
        .args(["gc", "--min-dead", "2"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--min-dead 2"));
    let json = stdout_of(t.cmd().args(["--json", "gc", "--min-dead", "0"]));
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("json");
    assert_eq!(v["segments_replaced"], 1);
    assert_eq!(v["copy"]["objects_collected"], 25);
    let h = made.r0_tensors[1].to_string();
    t.cmd()
        .args(["get", &h, "-o", "/dev/null"])
        .assert()
        .code(7)
        .stderr(predicates::str::contains("was removed"));
    let again = stdout_of(t.cmd().args(["gc"]));
    assert!(again.contains("no garbage"), "{again}");
}

#[test]
fn gc_killed_at_random_moments_loses_nothing_and_the_next_gc_finishes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = crate::reliability_common::archive_bin();
    let k = crate::gc_common::gc_kill_loop(&bin, dir.path(), 6, 600, 0x6c);
    assert_eq!(k.survived, k.tried, "{:?}", k.first_failure);
}

#[test]
fn gc_runs_while_archive_log_writes_and_loses_none_of_its_records() {
    use std::io::Write;
    let t = TempStore::new();
    let made = store(&t);
    let a = t.open();
    // Over 4 MiB: a logger starts a segment of its own rather than adopt this one.
    let big = noise(5 << 20, 7);
    let shape = Shape::new(vec![(5 << 20) / 4]);
    let view = TensorView::new(Dtype::F32, &shape, &big).expect("view");
    a.put_tensor(&view, &[("run", "r1")]).expect("big tensor");
    rm(&a, "run = \"r0\"");
    drop(a);
    let mut logger = std::process::Command::new(crate::reliability_common::archive_bin())
        .arg("--store")
        .arg(t.path())
        .args(["log", "--tag", "run=live", "--batch", "10"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("archive log");
    let mut input = logger.stdin.take().expect("stdin");
    let mut send = |from: usize, to: usize| {
        for i in from..to {
            writeln!(input, "{{\"id\": \"rec-{i}\", \"x\": {i}}}").expect("write");
        }
        input.flush().expect("flush");
    };
    send(0, 100);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let a = t.open();
    let r = gc(&a, 0.0);
    assert_eq!(
        r.segments_replaced, 1,
        "the old segment, not the logger's: {r:?}"
    );
    send(100, 200);
    drop(input);
    assert!(logger.wait().expect("log").success());
    drop(a);
    let a = t.open();
    let logged: BTreeSet<String> = a
        .query(&a.parse_query("run = \"live\"").expect("query"))
        .map(|e| a.get(&e.expect("entry").hash).expect("record"))
        .map(|o| format!("{o:?}"))
        .collect();
    assert_eq!(logged.len(), 200, "every record the logger was given");
    assert!(matches!(a.get(&made.r0_part), Err(Error::Removed(_))));
    assert!(a.verify(&|_, _| {}).expect("verify").is_ok());
}

#[test]
fn gc_on_a_store_it_cannot_lock_waits_then_names_the_holder() {
    use std::io::Write;
    let t = TempStore::new();
    store(&t);
    let mut holder = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(t.path().join("index.lock"))
        .expect("index.lock");
    holder.lock().expect("lock");
    holder
        .write_all(b"pid 4242 (archive export)")
        .expect("write");
    let snap = t.snapshot();
    let start = std::time::Instant::now();
    t.cmd()
        .args(["--wait", "0.5", "gc"])
        .assert()
        .code(5)
        .stderr(predicates::str::contains("pid 4242 (archive export)"));
    assert!(start.elapsed() >= std::time::Duration::from_millis(500));
    assert_eq!(t.snapshot(), snap);
}

/// A segment the index holds that is gone (a gc's replaced segment indexed by a process that
/// listed the segments before gc renamed its output, then deleted by gc; or one removed by
/// hand): the next open rebuilds the index without it, so no entry points at nothing.
#[test]
fn an_indexed_segment_that_is_gone_makes_open_rebuild_the_index() {
    let t = TempStore::new();
    let first = t.create();
    first.put_text("kept", &[("run", "a")]).expect("put");
    first.release_index();
    // The first archive keeps its segment: the second writes into one of its own.
    let second = t.open();
    let gone = second.put_text("gone", &[("run", "b")]).expect("put");
    drop(second);
    drop(first);
    let a = t.open();
    assert_eq!(a.stats().expect("stats").entries, 2);
    let gone_at = a.info(&gone).expect("info").segment;
    drop(a);
    std::fs::remove_file(t.path().join("segments").join(&gone_at)).expect("remove");
    let a = t.open();
    let runs: Vec<String> = a
        .entries()
        .map(|e| e.expect("entry").tags[0].1.clone())
        .collect();
    assert_eq!(runs, ["a"]);
    assert!(
        a.warnings().iter().any(|w| w.contains("index rebuilt")),
        "{:?}",
        a.warnings()
    );
    let report = a.verify(&|_, _| {}).expect("verify");
    assert!(report.is_ok(), "{:?}", report.problems);
}
