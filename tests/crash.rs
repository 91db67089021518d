//! Torn writes and garbage tails: whatever a killed process left behind, the store opens with
//! no manual step, keeps every earlier object, and takes new puts.

use std::fs::OpenOptions;
use std::io::Write;

use model_archive::{Dtype, Object, Shape, TensorView};

use crate::util::{TempStore, noise};

/// Two committed objects, then a third whose frame is the segment's last.
fn store_with_last_frame(t: &TempStore) -> (Vec<model_archive::ObjectHash>, u64, u64) {
    let a = t.create();
    let h1 = a.put_text("first", &[]).expect("put");
    let data = noise(300, 1);
    let shape = Shape::new(vec![300]);
    let h2 = a
        .put_tensor(&TensorView::new(Dtype::U8, &shape, &data).expect("v"), &[])
        .expect("put");
    let before = std::fs::metadata(&t.segments()[0]).expect("meta").len();
    let h3 = a.put_text("the last frame", &[("k", "v")]).expect("put");
    let after = std::fs::metadata(&t.segments()[0]).expect("meta").len();
    (vec![h1, h2, h3], before, after)
}

#[test]
fn last_frame_cut_at_every_offset_recovers_to_the_previous_frame() {
    let t = TempStore::new();
    let (hashes, start, end) = store_with_last_frame(&t);
    let seg = t.segments()[0].clone();
    let whole = std::fs::read(&seg).expect("read");
    for cut in start..end {
        std::fs::write(&seg, &whole[..cut as usize]).expect("cut");
        std::fs::remove_dir_all(t.path().join("index")).expect("drop index");
        let a = t.open();
        assert!(
            a.get(&hashes[0]).is_ok() && a.get(&hashes[1]).is_ok(),
            "cut at {cut}"
        );
        assert!(
            a.get(&hashes[2]).is_err(),
            "a torn frame is never served (cut at {cut})"
        );
        assert_eq!(
            std::fs::metadata(&seg).expect("meta").len(),
            start,
            "tail cut at {cut}: {:?}",
            a.warnings()
        );
        drop(a);
    }
    // And the store takes new puts after recovery.
    std::fs::write(&seg, &whole[..(start + 10) as usize]).expect("cut");
    let a = t.open();
    let h = a.put_text("after the crash", &[]).expect("put");
    assert_eq!(
        a.get(&h).expect("get"),
        Object::Text("after the crash".into())
    );
    assert!(a.verify(&|_, _| {}).expect("verify").is_ok());
}

#[test]
fn garbage_appended_after_the_last_frame_is_cut() {
    let t = TempStore::new();
    let (hashes, _, end) = store_with_last_frame(&t);
    let seg = t.segments()[0].clone();
    for (i, len) in [1usize, 7, 64, 1000, 70_000].into_iter().enumerate() {
        let mut f = OpenOptions::new().append(true).open(&seg).expect("open");
        f.write_all(&noise(len, i as u64)).expect("garbage");
        drop(f);
        let a = t.open();
        for h in &hashes {
            assert!(a.get(h).is_ok());
        }
        assert_eq!(std::fs::metadata(&seg).expect("meta").len(), end);
        assert!(a.verify(&|_, _| {}).expect("verify").is_ok());
    }
}

#[test]
fn acknowledged_puts_survive_a_lost_index_and_unsynced_index_updates() {
    let t = TempStore::new();
    let hashes: Vec<_> = {
        let a = t.create();
        (0..20)
            .map(|i| a.put_text(&format!("record {i}"), &[]).expect("put"))
            .collect()
    };
    // Simulate an index that lost its last updates: an empty index with the segments intact.
    std::fs::remove_dir_all(t.path().join("index")).expect("drop index");
    let a = t.open();
    for h in &hashes {
        assert!(a.get(h).is_ok());
    }
    assert_eq!(a.stats().expect("stats").entries, 20);
}

/// SIGKILL `archive put` of a big tensor at varied moments. After every kill the store opens
/// with no manual step (the dead process's locks are gone), every acknowledged put is there and
/// verifies, and `verify` finds nothing wrong.
#[test]
fn killed_puts_lose_nothing_acknowledged() {
    let t = TempStore::new();
    drop(t.create());
    let big = t.dir.path().join("big.bin");
    std::fs::write(&big, noise(24 << 20, 42)).expect("write");
    let mut acknowledged = Vec::new();
    for i in 0..12u64 {
        let out = t
            .cmd()
            .args(["put", "--text", &format!("acknowledged {i}")])
            .assert()
            .success();
        let h = String::from_utf8(out.get_output().stdout.clone()).expect("utf8");
        acknowledged.push(h.trim().parse::<model_archive::ObjectHash>().expect("hash"));
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("archive"))
            .arg("--store")
            .arg(t.path())
            .args(["put", "--codec", if i % 2 == 0 { "raw" } else { "zstd" }])
            .args([
                "--dtype",
                "U8",
                "--shape",
                &(24u64 << 20).to_string(),
                "--tag",
            ])
            .arg(format!("i={i}"))
            .arg(&big)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(15 * i));
        let _ = child.kill();
        let _ = child.wait();
        let a = t.open();
        for h in &acknowledged {
            assert!(a.get(h).is_ok(), "kill {i}: acknowledged {h} lost");
        }
        let report = a.verify(&|_, _| {}).expect("verify");
        assert!(report.is_ok(), "kill {i}: {:?}", report.problems);
    }
}

/// A commit moves the index's high-water mark only up to the first frame of another batch
/// still open in the same segment: if the process dies before that batch commits, its frames
/// (written, unacknowledged) are indexed on the next open rather than skipped forever.
#[test]
fn a_commit_does_not_mark_another_open_batch_as_indexed() {
    let t = TempStore::new();
    let a = t.create();
    let mut first = a.writer();
    let mut second = a.writer();
    // Texts past the pack limit, so each put appends a frame of its own at once (the batch's
    // pack would be written only at its commit).
    let text = |s: &str| format!("{s}{}", " ".repeat(5000));
    let h1 = first.put_text(&text("first batch, one"), &[]).expect("put");
    let h2 = second
        .put_text(&text("second batch, never committed"), &[])
        .expect("put");
    let h3 = first.put_text(&text("first batch, two"), &[]).expect("put");
    first.commit().expect("commit");
    // The process "dies" before the second batch commits (its frames were flushed on close).
    std::mem::forget(second);
    drop(first);
    drop(a);
    let a = t.open();
    for h in [h1, h2, h3] {
        assert!(a.get(&h).is_ok(), "{h} not indexed after reopening");
    }
    assert_eq!(a.stats().expect("stats").entries, 3);
}
