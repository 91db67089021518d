//! Issue 5: nothing acknowledged is ever lost, nothing corrupt is ever served. Kill -9 of
//! `archive put` at random moments, byte flips in every part of a frame, the crash image at
//! every sync point of a workload, a full disk, and threads doing everything at once. The
//! workloads live in tests/reliability_common.rs, which `benches/reliability_report.rs` runs
//! longer; here they run small and every figure is asserted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use model_archive::{
    Archive, Codec, Dtype, Error, Object, ObjectHash, PutOptions, Record, Shape, TensorView, Value,
};

use crate::contention_common::contention;
use crate::reliability_common::{
    Checked, SmallFs, archive_bin, check_acknowledged, corruption_loop, disk_full_rounds,
    index_damage_loop, kill_loop, noise, segment_sizes,
};
use crate::util::TempStore;

/// 100 SIGKILLs of `archive put` (text, raw and zstd tensors, JSON records with a tensor: a
/// batch of frames) at random moments; small inputs keep each kill cheap.
#[test]
fn a_hundred_killed_puts_lose_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let k = kill_loop(&archive_bin(), dir.path(), 100, 64 << 10, 25, 5);
    assert_eq!(k.tried, 100);
    assert_eq!(k.survived, k.tried, "{k:?}");
    assert_eq!((k.acked.lost, k.acked.wrong), (0, 0), "{k:?}");
    // At least the 100 in-process puts between kills were acknowledged and checked.
    assert!(k.acked.checked >= 99, "{k:?}");
}

#[test]
fn every_flipped_frame_byte_is_refused_and_reported_never_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = corruption_loop(dir.path(), 40, 11);
    assert_eq!(c.injected, 40);
    assert_eq!(c.wrong, 0, "{c:?}");
    assert_eq!(c.detected, c.injected, "{c:?}");
}

/// Issue 10: damage to the derived index (a flipped or cut lookup table, `lookup/` replaced by a
/// file, a table removed) made packed objects "not found" until a manual `reindex`.
#[test]
fn every_damage_to_the_derived_index_heals_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = index_damage_loop(dir.path(), 24, 7);
    assert_eq!(d.injected, 24);
    assert_eq!(d.missing, 0, "{d:?}");
    assert_eq!(d.healed, d.injected, "{d:?}");
}

/// One step of the crash-image workload, acknowledged when it returned.
fn workload_step(a: &Archive, step: u32) -> Vec<ObjectHash> {
    let data = noise(3000 + step as usize * 500, u64::from(step));
    let shape = Shape::new(vec![data.len() as u64]);
    let view = TensorView::new(Dtype::U8, &shape, &data).expect("view");
    match step % 4 {
        0 => vec![a.put_text(&format!("step {step}"), &[]).expect("put")],
        1 => {
            let opts = PutOptions {
                codec: Some(Codec::Zstd),
                level: None,
            };
            vec![a.put_tensor_with(&view, &[], &opts).expect("put")]
        }
        2 => {
            let mut w = a.writer();
            let mut hs = vec![w.put_tensor(&view, &[("step", "2")]).expect("put")];
            let rec = Record::new()
                .with("data", Value::Ref(hs[0]))
                .and_then(|r| r.with("step", Value::Int(i64::from(step))))
                .expect("record");
            hs.push(w.put_record(&rec, &[]).expect("put"));
            hs.push(w.put_text("a duplicate", &[]).expect("put"));
            w.commit().expect("commit");
            hs
        }
        _ => vec![
            a.put_bytes(&data[..100], Some("image/png"), &[])
                .expect("put"),
        ],
    }
}

/// redb's crash_consistency approach: record every segment's size at each sync point (each
/// acknowledged put or commit) of a short workload, then rebuild the store as a crash at that
/// point would leave it (segments cut to those sizes, no index) and check that exactly the
/// puts acknowledged by then are there and verify. Cuts between two sync points must keep
/// everything acknowledged at the first.
#[test]
fn the_crash_image_at_every_sync_point_holds_exactly_what_was_acknowledged() {
    let t = TempStore::new();
    let a = t.create();
    let mut points: Vec<(BTreeMap<String, u64>, Vec<ObjectHash>, u64)> =
        vec![(segment_sizes(&t.path()), Vec::new(), 0)];
    let mut acked: Vec<ObjectHash> = Vec::new();
    let mut entries = 0;
    for step in 0..16 {
        let hs = workload_step(&a, step);
        entries += hs.len() as u64;
        for h in hs {
            if !acked.contains(&h) {
                acked.push(h);
            }
        }
        points.push((segment_sizes(&t.path()), acked.clone(), entries));
    }
    drop(a);
    let finals: BTreeMap<String, Vec<u8>> = segment_sizes(&t.path())
        .into_keys()
        .map(|n| {
            let bytes = std::fs::read(t.path().join("segments").join(&n)).expect("read");
            (n, bytes)
        })
        .collect();
    let image = |sizes: &BTreeMap<String, u64>, extra: u64| {
        let img = tempfile::tempdir().expect("tempdir");
        let store = img.path().join("store");
        std::fs::create_dir_all(store.join("segments")).expect("mkdir");
        std::fs::copy(t.path().join("ARCHIVE"), store.join("ARCHIVE")).expect("copy");
        for (name, len) in sizes {
            let bytes = &finals[name];
            let end = ((*len + extra) as usize).min(bytes.len());
            std::fs::write(store.join("segments").join(name), &bytes[..end]).expect("image");
        }
        img
    };
    for (i, (sizes, acked_then, entries_then)) in points.iter().enumerate() {
        let img = image(sizes, 0);
        let a = Archive::open(img.path().join("store")).expect("open the crash image");
        let c = check_acknowledged(&a, acked_then);
        assert_eq!(
            c,
            Checked {
                checked: acked_then.len() as u64,
                lost: 0,
                wrong: 0
            },
            "{i}"
        );
        for later in acked.iter().filter(|h| !acked_then.contains(h)) {
            assert!(
                matches!(a.get(later), Err(Error::NotFound(_))),
                "sync point {i}: {later} was not acknowledged yet"
            );
        }
        assert_eq!(
            a.stats().expect("stats").entries,
            *entries_then,
            "sync point {i}"
        );
        let report = a.verify(&|_, _| {}).expect("verify");
        assert!(report.is_ok(), "sync point {i}: {:?}", report.problems);
        drop(a);
        // Torn writes of the next step: whatever part of it reached the disk.
        if let Some((next, _, _)) = points.get(i + 1) {
            let grown: u64 = next.values().sum::<u64>() - sizes.values().sum::<u64>();
            for cut in [1, grown / 3, grown / 2, grown.saturating_sub(1)] {
                if cut == 0 || cut >= grown {
                    continue;
                }
                let img = image(sizes, cut);
                let a = Archive::open(img.path().join("store")).expect("open a torn image");
                let c = check_acknowledged(&a, acked_then);
                assert_eq!((c.lost, c.wrong), (0, 0), "sync point {i} + {cut} bytes");
                assert!(a.verify(&|_, _| {}).expect("verify").is_ok());
            }
        }
    }
}

/// Issue 5 (regression: a commit whose fsync failed waited on its own lock forever): put
/// incompressible tensors until the disk is full; the failing put names the segment,
/// nothing acknowledged is lost, the store verifies, and once space is freed puts work again.
/// Both a single put and a batch commit meet the full disk.
#[test]
fn a_full_disk_fails_the_put_clearly_and_loses_nothing() {
    let fs = match SmallFs::mount("8m") {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIPPED disk-full test: cannot mount a small tmpfs ({why})");
            return;
        }
    };
    let store = fs.path().join("store");
    let ballast = fs.path().join("ballast");
    std::fs::write(&ballast, vec![1u8; 3 << 20]).expect("ballast");
    let a = Archive::create(&store).expect("create");
    let mut acked = Vec::new();
    let raw = PutOptions {
        codec: Some(Codec::Raw),
        level: None,
    };
    let mut failure = None;
    for i in 0..100u64 {
        let data = noise(256 << 10, i);
        let shape = Shape::new(vec![data.len() as u64]);
        let view = TensorView::new(Dtype::U8, &shape, &data).expect("view");
        match a.put_tensor_with(&view, &[], &raw) {
            Ok(h) => acked.push(h),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let failure = failure.expect("the disk never filled");
    match &failure {
        Error::Io { path, source } => {
            assert_eq!(source.raw_os_error(), Some(28), "ENOSPC: {failure}");
            assert!(
                path.extension().is_some_and(|e| e == "seg"),
                "the error names the segment: {failure}"
            );
        }
        // sled can meet the full disk first, writing the index after the segment synced.
        Error::Index { reason, .. } => assert!(reason.contains("No space left"), "{failure}"),
        other => panic!("expected Error::Io naming the segment, got {other}"),
    }
    let sled_failed = matches!(failure, Error::Index { .. });
    // A batch on the full disk: its commit fails, and nothing of it is acknowledged.
    let mut w = a.writer();
    let batch: Vec<_> = (0..8u64)
        .filter_map(|i| {
            let data = noise(200 << 10, 1000 + i);
            let shape = Shape::new(vec![data.len() as u64]);
            let view = TensorView::new(Dtype::U8, &shape, &data).expect("view");
            w.put_tensor_with(&view, &[], &raw).ok()
        })
        .collect();
    let committed = w.commit();
    assert!(
        committed.is_err() || batch.len() < 8,
        "a batch of 1.6 MiB fit on a full disk"
    );
    if committed.is_ok() {
        acked.extend(batch);
    }
    drop(w);
    // The open store still serves everything acknowledged (unless sled failed: then what
    // only sled indexes waits for a reopen), and never wrong data.
    let all = Checked {
        checked: acked.len() as u64,
        lost: 0,
        wrong: 0,
    };
    let live = check_acknowledged(&a, &acked);
    assert_eq!(live.wrong, 0);
    if !sled_failed {
        assert_eq!(live, all);
        assert!(a.verify(&|_, _| {}).expect("verify").is_ok());
    }
    drop(a);
    // Reopening on the full disk may fail (the index needs room), but only with a clear error.
    if let Err(e) = Archive::open(&store) {
        assert!(e.to_string().contains("No space left"), "{e}");
    }
    std::fs::remove_file(&ballast).expect("free space");
    let a = Archive::open(&store).expect("reopen once space is freed");
    assert_eq!(check_acknowledged(&a, &acked), all);
    assert!(a.verify(&|_, _| {}).expect("verify").is_ok());
    let data = noise(256 << 10, 999);
    let shape = Shape::new(vec![data.len() as u64]);
    let view = TensorView::new(Dtype::U8, &shape, &data).expect("view");
    let h = a
        .put_tensor_with(&view, &[], &raw)
        .expect("a put after space was freed");
    let Object::Tensor(back) = a.get(&h).expect("get") else {
        panic!("not a tensor")
    };
    assert_eq!(back.data, data);
    acked.push(h);
    drop(a);
    let a = Archive::open(&store).expect("reopen");
    assert_eq!(check_acknowledged(&a, &acked).lost, 0);
    assert!(a.verify(&|_, _| {}).expect("verify").is_ok());
}

/// Issue 5 (regression: `verify` beside puts called objects committed after its scan damaged).
/// Threads putting, batch-writing, getting, mapping (verified and unchecked) and verifying at
/// once, for a bounded number of operations. Every object read back is the one put; a
/// watchdog aborts the test binary if the whole takes over a minute (a deadlock).
#[test]
fn threads_put_get_map_and_verify_at_once() {
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            for _ in 0..600 {
                if done.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            eprintln!("threads_put_get_map_and_verify_at_once: no progress in 60 s (deadlock?)");
            std::process::abort();
        })
    };
    let t = TempStore::new();
    let a = t.create();
    let known: Mutex<Vec<(ObjectHash, Vec<u8>)>> = Mutex::new(Vec::new());
    let tensor = |seed: u64| {
        let data = noise(4096 + (seed as usize % 7) * 1000, seed);
        (Shape::new(vec![data.len() as u64]), data)
    };
    std::thread::scope(|s| {
        for p in 0..2u64 {
            let (a, known) = (&a, &known);
            s.spawn(move || {
                for i in 0..40u64 {
                    let (shape, data) = tensor(p * 1000 + i);
                    let view = TensorView::new(Dtype::U8, &shape, &data).expect("view");
                    let h = a.put_tensor(&view, &[("thread", "put")]).expect("put");
                    known.lock().expect("lock").push((h, data));
                }
            });
        }
        {
            let (a, known) = (&a, &known);
            s.spawn(move || {
                for b in 0..8u64 {
                    let mut w = a.writer();
                    let mut mine = Vec::new();
                    for i in 0..5u64 {
                        let (shape, data) = tensor(50_000 + b * 10 + i);
                        let view = TensorView::new(Dtype::U8, &shape, &data).expect("view");
                        mine.push((w.put_tensor(&view, &[]).expect("put"), data));
                    }
                    w.commit().expect("commit");
                    known.lock().expect("lock").extend(mine);
                }
            });
        }
        for r in 0..3usize {
            let (a, known) = (&a, &known);
            s.spawn(move || {
                for i in 0..150usize {
                    let pick = {
                        let k = known.lock().expect("lock");
                        (!k.is_empty()).then(|| k[(i * 7 + r) % k.len()].clone())
                    };
                    let Some((h, data)) = pick else {
                        std::thread::yield_now();
                        continue;
                    };
                    match r {
                        0 => {
                            let Object::Tensor(t) = a.get(&h).expect("get") else {
                                panic!("not a tensor")
                            };
                            assert_eq!(t.data, data);
                        }
                        1 => assert_eq!(a.map(&h).expect("map").bytes(), &data[..]),
                        _ => assert_eq!(
                            a.map_unchecked(&h).expect("map_unchecked").bytes(),
                            &data[..]
                        ),
                    }
                }
            });
        }
        let a = &a;
        s.spawn(move || {
            for _ in 0..3 {
                let report = a.verify(&|_, _| {}).expect("verify");
                assert!(report.is_ok(), "{:?}", report.problems);
            }
        });
    });
    let known = known.into_inner().expect("lock");
    assert_eq!(known.len(), 2 * 40 + 8 * 5);
    let hashes: Vec<ObjectHash> = known.iter().map(|(h, _)| *h).collect();
    assert_eq!(check_acknowledged(&a, &hashes).lost, 0);
    assert_eq!(a.stats().expect("stats").entries, 2 * 40 + 8 * 5);
    drop(a);
    let a = t.open();
    let c = check_acknowledged(&a, &hashes);
    assert_eq!((c.lost, c.wrong), (0, 0));
    for (h, data) in &known {
        let Object::Tensor(t) = a.get(h).expect("get") else {
            panic!("not a tensor")
        };
        assert_eq!(&t.data, data);
        assert_eq!(Object::Tensor(t).address(), *h);
    }
    assert!(a.verify(&|_, _| {}).expect("verify").is_ok());
    done.store(true, Ordering::Relaxed);
    watchdog.join().expect("watchdog");
}

/// Two more full disks: one met by single puts, one by batches (whose commit is refused as a
/// whole when a put of the batch failed).
#[test]
fn full_disks_met_by_puts_and_by_batches_are_handled() {
    match disk_full_rounds(2) {
        Ok(d) => {
            assert_eq!((d.cases, d.handled), (2, 2), "{d:?}");
            assert_eq!((d.acked.lost, d.acked.wrong), (0, 0), "{d:?}");
        }
        Err(why) => eprintln!("SKIPPED disk-full rounds: cannot mount a small tmpfs ({why})"),
    }
}

/// Issue 5 (regression): a writer killed between creating its segment file and writing the
/// header left an empty segment; the next writer adopted it, wrote frames after 64 zero bytes,
/// and `verify` reported "not a segment" from then on.
#[test]
fn an_empty_segment_left_by_a_killed_writer_is_not_adopted() {
    let t = TempStore::new();
    let first = t.create().put_text("before", &[]).expect("put");
    let empty = t
        .path()
        .join("segments")
        .join("ffffffffffffffff-000000.seg");
    std::fs::write(&empty, b"").expect("empty segment");
    let a = t.open();
    let second = a.put_text("after", &[]).expect("put");
    let report = a.verify(&|_, _| {}).expect("verify");
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(check_acknowledged(&a, &[first, second]).lost, 0);
    assert_eq!(std::fs::metadata(&empty).expect("meta").len(), 0);
}

/// Issue 5 (regression): sled sometimes finds its own files damaged after a SIGKILL ("Read
/// corrupted data"); opening then failed until a manual `archive reindex`. The index is
/// derived, so opening rebuilds it, and nothing is lost.
#[test]
fn a_damaged_sled_index_is_rebuilt_on_open() {
    let t = TempStore::new();
    let hashes: Vec<ObjectHash> = {
        let a = t.create();
        (0..30)
            .map(|i| a.put_text(&format!("indexed {i}"), &[]).expect("put"))
            .collect()
    };
    let mut rebuilt = 0;
    for (file, at) in [
        ("conf", 0usize),
        ("conf", 20),
        ("conf", 61),
        ("db", 0),
        ("db", 500),
    ]
    .into_iter()
    .chain((0..4096).step_by(97).map(|at| ("db", at)))
    {
        let db = t.path().join("index").join(file);
        let good = std::fs::read(&db).expect("read sled file");
        if at >= good.len() {
            continue;
        }
        let mut bad = good.clone();
        bad[at] ^= 0xff;
        std::fs::write(&db, &bad).expect("damage sled db");
        let a = Archive::open(t.path()).expect("open with a damaged index");
        if a.warnings()
            .iter()
            .any(|w| w.contains("damaged index rebuilt"))
        {
            rebuilt += 1;
        }
        let c = check_acknowledged(&a, &hashes);
        assert_eq!((c.lost, c.wrong), (0, 0), "flip at {at}");
        assert_eq!(a.stats().expect("stats").entries, 30, "flip at {at}");
        drop(a);
        std::fs::remove_dir_all(t.path().join("index")).expect("reset index");
        drop(t.open());
    }
    assert!(rebuilt > 0, "no flip made sled report damage");
}

/// Three loggers and loops of put, get, query, ls, verify and stats at once, each command a
/// process: none fails (none times out waiting for the index), and afterwards every record
/// given to a logger has exactly one entry and `verify` passes. How long the commands waited
/// is the reliability report's figure (timing is not asserted on a shared machine).
#[test]
fn commands_beside_three_loggers_all_succeed_and_nothing_logged_is_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = contention(&archive_bin(), dir.path(), 6.0, 3, 1500, false);
    check_contention(&c);
}

/// The same with `rm` of what the put loop wrote and a `gc` every 1.5 s beside the loggers:
/// gc replaces segments and rebuilds the index while every other command runs, and no command
/// fails, no logged record is lost or doubled, `verify` passes. (The reliability report runs
/// this 20 times, `--gc-contention`.)
#[test]
fn gc_beside_three_loggers_loses_nothing_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = contention(&archive_bin(), dir.path(), 6.0, 3, 1500, true);
    if std::env::var_os("CONTENTION_KEEP").is_some() {
        eprintln!("kept {}", dir.keep().display());
    }
    check_contention(&c);
}

fn check_contention(c: &crate::contention_common::Contention) {
    for (what, runs) in &c.by_cmd {
        assert!(!runs.wall_ms.is_empty(), "{what} never ran");
        assert_eq!(runs.failed, 0, "{what}: {:?}", runs.first_failure);
    }
    assert_eq!(c.loggers_failed, 0, "{c:?}");
    assert!(c.records_in > 0);
    assert_eq!(c.entries_after, c.records_in, "{c:?}");
    assert_eq!(c.ids_after, c.records_in, "{c:?}");
    assert_eq!(c.verify_after, None);
}
