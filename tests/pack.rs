//! Pack frames (schema v2): many small objects and entries in one frame. What goes in comes
//! back, entries keep their order, times and tags, tag queries read only their runs, and a
//! damaged pack costs that pack alone.

use model_archive::format::frame::{FrameHeader, FrameKind, SEGMENT_HEADER_LEN};
use model_archive::query::Query;
use model_archive::{
    Archive, ArchiveReader, Codec, Dtype, Error, Object, PutOptions, Record, Shape, TensorView,
    Value,
};

use crate::util::TempStore;

/// The kinds of the frames of every segment, in order.
fn frame_kinds(t: &TempStore) -> Vec<FrameKind> {
    let mut out = Vec::new();
    for seg in t.segments() {
        let bytes = std::fs::read(&seg).expect("segment");
        let mut at = SEGMENT_HEADER_LEN;
        while let Some(h) = bytes.get(at..).and_then(|b| FrameHeader::decode(b).ok()) {
            out.push(h.kind);
            at += h.frame_len() as usize;
        }
    }
    out
}

fn probs(i: u32) -> Vec<u8> {
    (0..10u32)
        .flat_map(|j| ((i * 10 + j) as f32 / 7.0).to_le_bytes())
        .collect()
}

#[test]
fn a_batch_of_small_puts_is_one_pack_and_reads_back() {
    let t = TempStore::new();
    let a = t.create();
    let shape = Shape::new(vec![10]);
    let mut w = a.writer();
    let mut put = Vec::new();
    for i in 0..300u32 {
        let data = probs(i);
        let run = format!("r{}", i / 100);
        let view = TensorView::new(Dtype::F32, &shape, &data).expect("view");
        let h = w.put_tensor(&view, &[("run", &run)]).expect("put");
        put.push((h, data, run));
    }
    let text = w.put_text("a caption", &[("run", "r0")]).expect("text");
    w.commit().expect("commit");
    drop(w);
    assert_eq!(
        frame_kinds(&t),
        vec![FrameKind::Pack],
        "one frame for 301 puts"
    );
    drop(a);
    let a = t.open();
    for (h, data, _) in &put {
        let Object::Tensor(got) = a.get(h).expect("get") else {
            panic!("not a tensor")
        };
        assert_eq!((&got.data, got.dtype), (data, Dtype::F32));
        let info = a.info(h).expect("info");
        assert_eq!((info.raw_len, info.shape.as_ref()), (40, Some(&shape)));
        // A packed object is copied out of its pack, not mapped.
        let m = a.map(h).expect("map");
        assert!(!m.is_zero_copy());
        assert_eq!(m.bytes(), &data[..]);
    }
    assert_eq!(
        a.get(&text).expect("text"),
        Object::Text("a caption".into())
    );
    // Entries newest first, with their tags; sequence order is put order.
    let entries: Vec<_> = a.entries().map(|e| e.expect("entry")).collect();
    assert_eq!(entries.len(), 301);
    assert_eq!(entries[0].hash, text);
    assert_eq!(entries[1].hash, put[299].0);
    assert_eq!(entries[300].hash, put[0].0);
    assert!(
        entries
            .windows(2)
            .all(|w| w[0].seq > w[1].seq && w[0].time_ns >= w[1].time_ns)
    );
    let q = Query::parse("run = \"r1\"").expect("query");
    let r1: Vec<_> = a.query(&q).map(|e| e.expect("entry").hash).collect();
    let want: Vec<_> = put[100..200].iter().rev().map(|p| p.0).collect();
    assert_eq!(r1, want);
    // Lock-free reads find packed objects through the lookup tables, prefixes too.
    let r = ArchiveReader::open(t.path())
        .expect("reader")
        .expect("tables");
    assert!(r.contains(&put[7].0));
    assert_eq!(
        r.resolve(&put[7].0.to_string()[..12]).expect("resolve"),
        Some(put[7].0)
    );
    assert_eq!(
        a.resolve(&put[7].0.to_string()[..12]).expect("resolve"),
        put[7].0
    );
    let report = a.verify(&|_, _| {}).expect("verify");
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.objects_checked, 301);
}

#[test]
fn duplicates_and_parts_keep_their_entries_and_order() {
    let t = TempStore::new();
    let a = t.create();
    let big = vec![7u8; 64 << 10];
    let mut w = a.writer();
    let small = w.put_text("small", &[("n", "1")]).expect("put");
    let again = w.put_text("small", &[("n", "2")]).expect("put again");
    assert_eq!(small, again);
    // An object with a frame of its own: the pack before it is written first, so entries
    // stay in put order.
    let b = w
        .put_bytes(&big, Some("application/octet-stream"), &[("n", "3")])
        .expect("big");
    let mut rec = Record::new();
    rec.insert("label", Value::Int(3)).expect("field");
    rec.insert("text", Value::Ref(small)).expect("field");
    let r = w.put_record(&rec, &[("n", "4")]).expect("record");
    w.commit().expect("commit");
    drop(w);
    assert_eq!(
        frame_kinds(&t),
        vec![FrameKind::Pack, FrameKind::Object, FrameKind::Pack]
    );
    drop(a);
    let a = t.open();
    let order: Vec<String> = a
        .entries()
        .map(|e| e.expect("entry").tags[0].1.clone())
        .collect();
    assert_eq!(order, ["4", "3", "2", "1"]);
    let of_small: Vec<String> = a
        .entries_of(&small)
        .expect("entries of")
        .into_iter()
        .map(|e| e.tags[0].1.clone())
        .collect();
    assert_eq!(of_small, ["1", "2"]);
    assert_eq!(a.entries_of(&r).expect("of record").len(), 1);
    assert_eq!(a.stats().expect("stats").objects, 3);
    let Object::Bytes { data, .. } = a.get(&b).expect("big") else {
        panic!("bytes")
    };
    assert_eq!(data, big);
}

#[test]
fn a_codec_asked_for_gives_a_frame_of_its_own() {
    let t = TempStore::new();
    let a = t.create();
    let shape = Shape::new(vec![10]);
    let data = probs(1);
    let view = TensorView::new(Dtype::F32, &shape, &data).expect("view");
    let opts = PutOptions {
        codec: Some(Codec::Raw),
        level: None,
    };
    let h = a.put_tensor_with(&view, &[], &opts).expect("put");
    assert_eq!(frame_kinds(&t), vec![FrameKind::Object]);
    assert!(a.map_unchecked(&h).expect("map").is_zero_copy());
}

#[test]
fn tag_and_time_queries_find_exactly_their_entries() {
    let t = TempStore::new();
    let a = t.create();
    let mut hashes = Vec::new();
    for run in 0..20 {
        let mut w = a.writer();
        for i in 0..50 {
            let run = format!("r{run}");
            let text = format!("{run} output {i}");
            hashes.push(
                w.put_text(&text, &[("run", &run), ("split", "test")])
                    .expect("put"),
            );
        }
        w.commit().expect("commit");
    }
    drop(a);
    let a = t.open();
    let count = |q: &str| a.query(&Query::parse(q).expect("parse")).count();
    assert_eq!(count("run = \"r3\""), 50);
    assert_eq!(count("run = \"r3\" and split = \"test\""), 50);
    assert_eq!(count("run = \"r3\" and split = \"train\""), 0);
    assert_eq!(count("run = \"r3\" or run = \"r4\""), 100);
    assert_eq!(count("run ~ \"r1*\""), 550);
    assert_eq!(count("not run = \"r3\""), 950);
    assert_eq!(count("time < 2000-01-01"), 0);
    assert_eq!(count("time > 2000-01-01 and run = \"r19\""), 50);
    let newest = a
        .query(&Query::parse("run = \"r19\"").expect("parse"))
        .next()
        .expect("one")
        .expect("entry");
    assert_eq!(newest.hash, *hashes.last().expect("last"));
}

#[test]
fn a_damaged_pack_costs_that_pack_alone() {
    let t = TempStore::new();
    let a = t.create();
    let first = a.put_text("in the first pack", &[]).expect("put");
    let second = a.put_text("in the second pack", &[]).expect("put");
    drop(a);
    assert_eq!(frame_kinds(&t), vec![FrameKind::Pack, FrameKind::Pack]);
    // Flip a byte in the first pack's payload (its header and metadata stay good).
    let seg = t.segments().remove(0);
    let mut bytes = std::fs::read(&seg).expect("read");
    let h = FrameHeader::decode(&bytes[SEGMENT_HEADER_LEN..]).expect("header");
    let at = SEGMENT_HEADER_LEN + h.payload_off as usize + 1;
    bytes[at] ^= 0x40;
    std::fs::write(&seg, bytes).expect("write");
    let a = t.open();
    match a.get(&first) {
        Err(Error::Corrupt { .. }) => {}
        other => panic!("a damaged pack must be an error, got {other:?}"),
    }
    assert_eq!(
        a.get(&second).expect("the other pack"),
        Object::Text("in the second pack".into())
    );
    let report = a.verify(&|_, _| {}).expect("verify");
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    // Rebuilt from the segments, the index skips the damaged pack with a warning.
    drop(a);
    std::fs::remove_dir_all(t.path().join("index")).expect("drop index");
    let a = t.open();
    assert!(
        a.warnings().iter().any(|w| w.contains("damaged pack")),
        "{:?}",
        a.warnings()
    );
    assert!(matches!(a.get(&first), Err(Error::NotFound(_))));
    assert!(a.get(&second).is_ok());
    // Putting the lost content again stores it again.
    let again = a.put_text("in the first pack", &[]).expect("put again");
    assert_eq!(again, first);
    assert!(a.get(&first).is_ok());
}

#[test]
fn logger_packs_are_indexed_when_the_store_is_next_opened() {
    let t = TempStore::new();
    drop(t.create());
    let logger = Archive::builder().open_logger(t.path()).expect("logger");
    let mut w = logger.writer();
    let hashes: Vec<_> = (0..1000)
        .map(|i| {
            w.put_text(
                &format!("line {i}"),
                &[("run", if i < 500 { "a" } else { "b" })],
            )
            .expect("put")
        })
        .collect();
    w.commit().expect("commit");
    drop(w);
    drop(logger);
    let a = t.open();
    assert_eq!(a.stats().expect("stats").entries, 1000);
    assert_eq!(
        a.query(&Query::parse("run = \"b\"").expect("q")).count(),
        500
    );
    for h in &hashes {
        assert!(a.contains(h).expect("contains"));
    }
}

#[test]
fn interleaved_tags_are_found_past_the_per_run_key_limit() {
    let t = TempStore::new();
    let a = t.create();
    let mut w = a.writer();
    for i in 0..2000 {
        let run = format!("r{}", i % 100);
        w.put_text(&format!("record {i}"), &[("run", &run), ("split", "test")])
            .expect("put");
    }
    w.commit().expect("commit");
    drop(w);
    drop(a);
    let a = t.open();
    for run in ["r0", "r17", "r99"] {
        let q = Query::parse(&format!("run = \"{run}\" and split = \"test\"")).expect("q");
        let got: Vec<_> = a.query(&q).map(|e| e.expect("entry")).collect();
        assert_eq!(got.len(), 20, "{run}");
        assert!(got.iter().all(|e| e.tags[0].1 == run));
    }
    assert_eq!(
        a.query(&Query::parse("run = \"r100\"").expect("q")).count(),
        0
    );
    assert_eq!(
        a.query(&Query::parse("split = \"test\"").expect("q"))
            .count(),
        2000
    );
}

#[test]
fn put_entry_logs_stored_content_and_refuses_unknown_content() {
    let t = TempStore::new();
    let a = t.create();
    let h = a.put_text("stored once", &[("n", "1")]).expect("put");
    let mut w = a.writer();
    w.put_entry(&h, &[("n", "2")], 1_700_000_000_000_000_000)
        .expect("entry");
    let unknown = model_archive::ObjectHash([9; 32]);
    assert!(matches!(
        w.put_entry(&unknown, &[], 0),
        Err(Error::NotFound(_))
    ));
    w.commit().expect("commit");
    drop(w);
    let of: Vec<(i64, String)> = a
        .entries_of(&h)
        .expect("entries")
        .into_iter()
        .map(|e| (e.time_ns, e.tags[0].1.clone()))
        .collect();
    assert_eq!(of.len(), 2);
    assert_eq!(of[1], (1_700_000_000_000_000_000, "2".to_owned()));
    assert_eq!(a.stats().expect("stats").objects, 1);
}
