//! `merge`: stores written elsewhere folded into one, objects once, entries with their times
//! and tags, idempotent, refusing itself and non-stores, stopping cleanly at a corrupt object.

use std::collections::HashSet;

use model_archive::merge::{merge, merge_in_batches};
use model_archive::{
    Archive, Codec, Dtype, EntryInfo, Error, Object, ObjectHash, PutOptions, Record, Shape,
    TensorView, Value,
};

use predicates::prelude::*;

use crate::util::{TempStore, noise, stdout_of};

fn no_progress(_: u64, _: u64) {}

/// An entry as merge compares them: object, time, tags.
type Entry = (ObjectHash, i64, Vec<(String, String)>);

/// Entries oldest first.
fn entries(a: &Archive) -> Vec<Entry> {
    let mut v: Vec<EntryInfo> = a.entries().map(|e| e.expect("entry")).collect();
    v.reverse();
    v.into_iter().map(|e| (e.hash, e.time_ns, e.tags)).collect()
}

fn tensor(a: &Archive, seed: u64, tags: &[(&str, &str)]) -> ObjectHash {
    let data = noise(4096, seed);
    let shape = Shape::new(vec![1024]);
    a.put_tensor(
        &TensorView::new(Dtype::F32, &shape, &data).expect("view"),
        tags,
    )
    .expect("put tensor")
}

/// Two stores that share two objects (one tensor, one text) and each hold their own.
fn two_machines() -> (TempStore, TempStore) {
    let (ta, tb) = (TempStore::new(), TempStore::new());
    let (a, b) = (ta.create(), tb.create());
    tensor(&a, 1, &[("run", "exp1"), ("node", "a")]);
    a.put_text("shared summary", &[("node", "a")])
        .expect("text");
    tensor(&a, 2, &[("node", "a")]);
    a.put_bytes(b"\x89PNG only on a", Some("image/png"), &[])
        .expect("bytes");
    let codes: Vec<u8> = [1u8, 0, 1].to_vec();
    let labels: Vec<String> = ["cat", "dog"].map(String::from).to_vec();
    a.put_categorical(
        &TensorView::new(Dtype::U8, &Shape::new(vec![3]), &codes).expect("codes"),
        &labels,
        &[("node", "a")],
    )
    .expect("categorical");
    tensor(&b, 1, &[("run", "exp1"), ("node", "b")]);
    b.put_text("shared summary", &[("node", "b")])
        .expect("text");
    b.put_text("only on b", &[]).expect("text");
    tensor(&b, 3, &[("node", "b")]);
    (ta, tb)
}

#[test]
fn two_overlapping_stores_merge_into_a_third_with_times_tags_and_shared_objects_once() {
    let (ta, tb) = two_machines();
    let (a, b) = (ta.open(), tb.open());
    let tc = TempStore::new();
    let c = tc.create();
    // Batches of 2 entries: several commits per store.
    let seen = std::cell::Cell::new((0, 0));
    let ra = merge_in_batches(&c, &a, 2, &|done, total| seen.set((done, total))).expect("merge a");
    assert_eq!(seen.get(), (5, 5), "progress counts entries to the end");
    let rb = merge_in_batches(&c, &b, 2, &no_progress).expect("merge b");
    assert_eq!((ra.entries_merged, ra.entries_skipped), (5, 0));
    assert_eq!((rb.entries_merged, rb.entries_skipped), (4, 0));
    assert_eq!(ra.batches, 3);
    // a: 4 objects with entries + the categorical's codes; b: 4, of which 2 are a's.
    assert_eq!(ra.new_objects, 6);
    assert_eq!(rb.new_objects, 2);

    // Every entry of both, in order, with the same time and tags.
    let mut want = entries(&a);
    want.extend(entries(&b));
    assert_eq!(entries(&c), want);

    let (sa, sb, sc) = (
        a.stats().expect("stats"),
        b.stats().expect("stats"),
        c.stats().expect("stats"),
    );
    let shared_raw = 4096 + "shared summary".len() as u64;
    assert_eq!(sc.objects, sa.objects + sb.objects - 2);
    assert_eq!(sc.entries, sa.entries + sb.entries);
    assert_eq!(sc.raw_bytes, sa.raw_bytes + sb.raw_bytes - shared_raw);
    assert_eq!(sc.logical_bytes, sa.logical_bytes + sb.logical_bytes);

    // Every object (parts included) gets back bit-exact.
    for source in [&a, &b] {
        for (h, _, _) in entries(source) {
            let object = source.get(&h).expect("source object");
            assert_eq!(c.get(&h).expect("merged object"), object);
            if let Object::Categorical(cat) = object {
                assert_eq!(
                    c.get(&cat.codes).expect("codes"),
                    source.get(&cat.codes).expect("codes")
                );
                assert!(c.entries_of(&cat.codes).expect("entries").is_empty());
            }
        }
    }
    assert!(c.verify(&no_progress).expect("verify").is_ok());
}

#[test]
fn records_bring_their_parts_and_refs_resolve_in_the_target() {
    let (ta, tb) = (TempStore::new(), TempStore::new());
    let a = ta.create();
    let data = noise(8000, 7);
    let shape = Shape::new(vec![2, 1000]);
    let mut w = a.writer();
    let part = w
        .put_tensor_part(&TensorView::new(Dtype::F32, &shape, &data).expect("view"))
        .expect("part");
    // A record stored as a part of another record: parts are copied recursively.
    let inner = Record::new()
        .with("probs", Value::Ref(part))
        .and_then(|r| r.with("label", Value::Int(3)))
        .expect("inner");
    let inner_h = w
        .put_object(&Object::Record(inner.clone()), None)
        .expect("inner");
    let outer = Record::new()
        .with("inner", Value::Ref(inner_h))
        .and_then(|r| r.with("step", Value::Int(12)))
        .expect("outer");
    let outer_h = w.put_record(&outer, &[("run", "exp1")]).expect("outer");
    w.commit().expect("commit");

    let b = tb.create();
    let report = merge(&b, &a, &no_progress).expect("merge");
    assert_eq!((report.entries_merged, report.new_objects), (1, 3));
    assert_eq!(b.get(&outer_h).expect("outer"), Object::Record(outer));
    assert_eq!(b.get(&inner_h).expect("inner"), Object::Record(inner));
    let Object::Tensor(t) = b.get(&part).expect("ref resolves") else {
        panic!("the part is not a tensor")
    };
    assert_eq!((t.dtype, &t.shape, &t.data), (Dtype::F32, &shape, &data));
    assert!(b.entries_of(&part).expect("entries").is_empty());
    assert_eq!(entries(&b), entries(&a));
}

#[test]
fn merging_twice_adds_nothing_the_second_time() {
    let (ta, _tb) = two_machines();
    let a = ta.open();
    let tc = TempStore::new();
    let c = tc.create();
    let first = merge(&c, &a, &no_progress).expect("first merge");
    // The index's own size moves as sled writes its log in the background: not compared.
    let counts = |mut s: model_archive::Stats| {
        s.index_bytes = 0;
        s
    };
    let stats = counts(c.stats().expect("stats"));
    let segments = tc.snapshot();
    let second = merge(&c, &a, &no_progress).expect("second merge");
    assert_eq!(second.entries_merged, 0);
    assert_eq!(second.entries_skipped, first.entries_merged);
    assert_eq!((second.new_objects, second.batches), (0, 0));
    assert_eq!(counts(c.stats().expect("stats")), stats);
    assert_eq!(tc.snapshot(), segments, "nothing appended");

    // An entry of the same object at another time, or with other tags, is a new entry.
    let h = tensor(&a, 1, &[("run", "exp1"), ("node", "a"), ("retry", "1")]);
    let third = merge(&c, &a, &no_progress).expect("third merge");
    assert_eq!((third.entries_merged, third.new_objects), (1, 0));
    assert_eq!(c.entries_of(&h).expect("entries").len(), 2);
}

#[test]
fn a_store_is_not_merged_into_itself() {
    let (ta, _tb) = two_machines();
    let a = ta.open();
    let counts = |mut s: model_archive::Stats| {
        s.index_bytes = 0;
        s
    };
    let before = counts(a.stats().expect("stats"));
    let err = merge(&a, &a, &no_progress).expect_err("refused");
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    assert!(err.to_string().contains("into itself"), "{err}");
    assert_eq!(counts(a.stats().expect("stats")), before);
}

#[test]
fn a_corrupt_object_stops_the_merge_naming_it_and_keeps_earlier_batches() {
    let (ta, tb) = (TempStore::new(), TempStore::new());
    let a = ta.create();
    a.put_text("first", &[]).expect("put");
    a.put_text("second", &[]).expect("put");
    let data = noise(4000, 9);
    let shape = Shape::new(vec![1000]);
    let raw = PutOptions {
        codec: Some(Codec::Raw),
        level: None,
    };
    let bad = a
        .put_tensor_with(
            &TensorView::new(Dtype::F32, &shape, &data).expect("view"),
            &[],
            &raw,
        )
        .expect("put");
    let after = a.put_text("after", &[]).expect("put");
    let info = a.info(&bad).expect("info");
    let next = a.info(&after).expect("info").offset;
    drop(a);
    // The payload ends at most 7 bytes before the next frame.
    let seg = ta.segments()[0].clone();
    let mut bytes = std::fs::read(&seg).expect("read");
    bytes[(next - 8 - info.stored_len / 2) as usize] ^= 1;
    std::fs::write(&seg, bytes).expect("write");

    let a = ta.open();
    let b = tb.create();
    let err = merge_in_batches(&b, &a, 2, &no_progress).expect_err("corrupt");
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&bad.to_string()), "names the object: {msg}");
    assert!(
        msg.contains(&ta.path().display().to_string()),
        "names the store: {msg}"
    );
    // The first batch (two texts) stays; the failed batch left nothing behind.
    assert_eq!(b.stats().expect("stats").entries, 2);
    assert!(!b.contains(&bad).expect("contains"));
    assert!(b.verify(&no_progress).expect("verify").is_ok());
}

#[test]
fn cli_merges_two_stores_and_prints_one_json_object_each() {
    let (ta, tb) = two_machines();
    let want: HashSet<_> = {
        let (a, b) = (ta.open(), tb.open());
        entries(&a).into_iter().chain(entries(&b)).collect()
    };
    let tc = TempStore::new();
    tc.cmd().arg("init").arg(tc.path()).assert().success();
    let out = stdout_of(
        tc.cmd()
            .args(["--json", "merge"])
            .arg(ta.path())
            .arg(tb.path()),
    );
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["from"], ta.path().display().to_string());
    assert_eq!(lines[0]["entries_merged"], 5);
    assert_eq!(lines[0]["new_objects"], 6);
    assert_eq!(lines[1]["from"], tb.path().display().to_string());
    assert_eq!(lines[1]["entries_merged"], 4);
    assert_eq!(lines[1]["entries_skipped"], 0);
    assert_eq!(lines[1]["new_objects"], 2);
    let c = tc.open();
    let got: HashSet<_> = entries(&c).into_iter().collect();
    assert_eq!(got, want);
    drop(c);

    // Again: nothing new, said in words.
    tc.cmd()
        .arg("merge")
        .arg(ta.path())
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "0 entries merged, 5 already present",
        ));
}

#[test]
fn cli_refuses_a_non_store_and_the_store_itself_leaving_it_unchanged() {
    let (ta, tb) = two_machines();
    let before = ta.snapshot();
    let nowhere = ta.dir.path().join("not-a-store");
    std::fs::create_dir(&nowhere).expect("dir");
    ta.cmd().arg("merge").arg(&nowhere).assert().code(3).stderr(
        predicate::str::contains("not-a-store").and(predicate::str::contains("no archive here")),
    );
    // Checked before anything is merged: b is not merged either.
    ta.cmd()
        .arg("merge")
        .arg(tb.path())
        .arg(ta.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("itself"));
    assert_eq!(ta.snapshot(), before);
    assert_eq!(ta.open().stats().expect("stats").entries, 5);
}

#[test]
fn one_object_logged_many_times_keeps_every_distinct_entry() {
    let (ta, tb) = (TempStore::new(), TempStore::new());
    let a = ta.create();
    let ok = Object::Text("ok".into());
    let mut w = a.writer();
    for i in 0..50i64 {
        w.put_object(&ok, Some((&[("step", &i.to_string())], 1_000 + i)))
            .expect("put");
    }
    // The same object, time and tags twice in the source: one entry in the target.
    w.put_object(&ok, Some((&[("step", "0")], 1_000)))
        .expect("put");
    w.commit().expect("commit");
    let b = tb.create();
    let first = merge_in_batches(&b, &a, 7, &no_progress).expect("merge");
    assert_eq!((first.entries_merged, first.entries_skipped), (50, 1));
    assert_eq!(first.new_objects, 1);
    let again = merge(&b, &a, &no_progress).expect("merge again");
    assert_eq!((again.entries_merged, again.entries_skipped), (0, 51));
    assert_eq!(b.stats().expect("stats").entries, 50);
}
