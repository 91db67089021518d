//! `rm`: removed entries leave every listing at once, stay removed through reindex, merge
//! and a re-run of merge, and the removal is a frame of its own (nothing written before
//! changes).

use model_archive::merge::merge;
use model_archive::query::Query;
use model_archive::{Archive, EntryInfo, ObjectHash};

use predicates::prelude::*;

use crate::util::{TempStore, stdout_of};

fn no_progress(_: u64, _: u64) {}

fn q(a: &Archive, src: &str) -> Query {
    a.parse_query(src).expect("query")
}

fn hits(a: &Archive, src: &str) -> Vec<EntryInfo> {
    a.query(&q(a, src)).map(|e| e.expect("entry")).collect()
}

/// 30 records of 3 interleaved runs (small, so they share packs), a tensor per run in a
/// frame of its own, and one text logged in two runs.
fn store() -> (TempStore, Vec<ObjectHash>) {
    let t = TempStore::new();
    let a = t.create();
    let mut w = a.writer();
    for i in 0..30 {
        let run = format!("r{}", i % 3);
        let rec =
            model_archive::Record::from_json("test", &serde_json::json!({"id": i, "label": i % 5}))
                .expect("record");
        w.put_record(&rec, &[("run", run.as_str())]).expect("put");
    }
    w.commit().expect("commit");
    let mut tensors = Vec::new();
    for r in 0..3u8 {
        let data = crate::util::noise(64 << 10, u64::from(r));
        let shape = model_archive::Shape::new(vec![16 << 10]);
        let view =
            model_archive::TensorView::new(model_archive::Dtype::F32, &shape, &data).expect("view");
        let run = format!("r{r}");
        tensors.push(
            a.put_tensor(&view, &[("run", run.as_str())])
                .expect("tensor"),
        );
    }
    a.put_text("shared caption", &[("run", "r0")])
        .expect("text");
    a.put_text("shared caption", &[("run", "r1")])
        .expect("text");
    (t, tensors)
}

#[test]
fn removed_entries_leave_every_listing_and_stay_removed_after_reindex() {
    let (t, tensors) = store();
    let a = t.open();
    let before = t.snapshot();
    let dry = a
        .rm(&q(&a, "run = \"r0\""), "run = \"r0\"", true)
        .expect("dry run");
    assert_eq!(
        (dry.entries, dry.dry_run),
        (12, true),
        "10 records, a tensor, a text"
    );
    assert_eq!(t.snapshot(), before, "a dry run writes nothing");
    assert_eq!(hits(&a, "run = \"r0\"").len(), 12);

    let r = a
        .rm(&q(&a, "run = \"r0\""), "run = \"r0\"", false)
        .expect("rm");
    assert_eq!(r.entries, 12);
    // The shared caption is still logged by r1: 10 records and the tensor are freed.
    assert_eq!(r.objects, 11);
    assert!(
        r.stored_bytes >= 64 << 10,
        "the tensor's bytes: {}",
        r.stored_bytes
    );
    // Every frame written before is unchanged: the removal is appended.
    for (path, bytes) in &before {
        let now = std::fs::read(path).expect("read");
        assert_eq!(&now[..bytes.len()], &bytes[..], "{}", path.display());
    }
    let check = |a: &Archive| {
        assert!(hits(a, "run = \"r0\"").is_empty());
        assert_eq!(hits(a, "run = \"r1\"").len(), 12);
        assert_eq!(a.entries().count(), 35 - 12);
        assert!(a.entries_of(&tensors[0]).expect("entries").is_empty());
        assert_eq!(a.entries_of(&tensors[1]).expect("entries").len(), 1);
        // A record field query reads packs directly: removed entries stay out there too.
        assert_eq!(
            hits(a, "label = 0").len(),
            4,
            "ids 5, 10, 20, 25 of r1, r2 minus r0's"
        );
        let s = a.stats().expect("stats");
        assert_eq!((s.entries, s.removed_entries), (35, 12));
        assert!(a.verify(&no_progress).expect("verify").is_ok());
        // The object is still there until gc.
        assert!(a.get(&tensors[0]).is_ok());
    };
    check(&a);
    drop(a);
    let mut a = t.open();
    a.reindex(&no_progress).expect("reindex");
    check(&a);

    // The same content logged again is a new entry, and it is live.
    let data = crate::util::noise(64 << 10, 0);
    let shape = model_archive::Shape::new(vec![16 << 10]);
    let view =
        model_archive::TensorView::new(model_archive::Dtype::F32, &shape, &data).expect("view");
    assert_eq!(
        a.put_tensor(&view, &[("run", "r0")]).expect("again"),
        tensors[0]
    );
    assert_eq!(hits(&a, "run = \"r0\"").len(), 1);

    let none = a
        .rm(&q(&a, "run = \"nope\""), "run = \"nope\"", false)
        .expect("rm");
    assert_eq!((none.entries, none.objects), (0, 0));
}

#[test]
fn merge_carries_removals_and_never_brings_a_removed_entry_back() {
    let (ta, _) = store();
    let a = ta.open();
    let tb = TempStore::new();
    let b = tb.create();
    merge(&b, &a, &no_progress).expect("first merge");
    assert_eq!(hits(&b, "run = \"r2\"").len(), 11);
    // Removed in the source after the first merge: the next merge removes it in the target.
    a.rm(&q(&a, "run = \"r2\""), "run = \"r2\"", false)
        .expect("rm in a");
    let r = merge(&b, &a, &no_progress).expect("second merge");
    assert_eq!((r.entries_merged, r.removals_carried), (0, 11));
    assert!(hits(&b, "run = \"r2\"").is_empty());
    let again = merge(&b, &a, &no_progress).expect("third merge");
    assert_eq!(again.removals_carried, 0, "carried once");
    // Removed in the target: merging a copy that still has it does not bring it back.
    b.rm(&q(&b, "run = \"r1\""), "run = \"r1\"", false)
        .expect("rm in b");
    let tc = TempStore::new();
    let c = tc.create();
    merge(&c, &b, &no_progress).expect("c from b");
    let r = merge(&b, &c, &no_progress).expect("b from c");
    assert_eq!(r.entries_merged, 0);
    assert!(hits(&b, "run = \"r1\"").is_empty());
    assert_eq!(hits(&b, "run = \"r0\"").len(), 12);
    // A store that never had the entries keeps the removal, so a later merge of them from
    // a third copy does not bring them back either.
    let td = TempStore::new();
    let d = td.create();
    merge(&d, &b, &no_progress).expect("d from b");
    assert!(hits(&d, "run = \"r1\"").is_empty());
    merge(&d, &a, &no_progress).expect("d from a, which still has r1");
    assert!(hits(&d, "run = \"r1\"").is_empty(), "r1 came back from a");
    assert_eq!(hits(&d, "run = \"r0\"").len(), 12);
}

#[test]
fn cli_rm_says_what_it_removed_and_refuses_an_empty_query() {
    let (t, _) = store();
    let out = stdout_of(t.cmd().args(["rm", "run = \"r2\"", "--dry-run"]));
    assert!(out.contains("would remove 11 entries"), "{out}");
    let out = stdout_of(t.cmd().args(["--json", "rm", "run = \"r2\""]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["entries"], 11);
    assert_eq!(v["dry_run"], false);
    let out = stdout_of(t.cmd().args(["query", "run = \"r2\""]));
    assert!(!out.contains("run=r2"), "{out}");
    t.cmd()
        .args(["rm", "run = \"r2\""])
        .assert()
        .success()
        .stdout(predicate::str::contains("nothing removed"));
    t.cmd()
        .args(["rm", " "])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("rm needs a query"));
    t.cmd().args(["rm", "run = "]).assert().code(2);
    let out = stdout_of(t.cmd().arg("stats"));
    assert!(out.contains("11 removed"), "{out}");
}
