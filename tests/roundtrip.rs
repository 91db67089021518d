//! Put then get, for every kind, dtype and codec; content addressing; memory maps; the batch
//! writer; threads.

use std::sync::Arc;

use model_archive::{
    Archive, Codec, Dtype, Error, Object, PutOptions, Record, Shape, TensorView, Value,
};
use proptest::prelude::*;

use crate::util::{TempStore, noise, sample_tensor};

#[test]
fn real_outputs_round_trip_bit_exact() {
    let t = TempStore::new();
    let a = t.create();
    for name in [
        "digits_test_probs.npy",
        "mlp_hidden_relu.npy",
        "digits_test_images.npy",
    ] {
        let (dtype, shape, data) = sample_tensor(name);
        let h = a
            .put_tensor(
                &TensorView::new(dtype, &shape, &data).expect("view"),
                &[("f", name)],
            )
            .expect("put");
        let Object::Tensor(back) = a.get(&h).expect("get") else {
            panic!("not a tensor")
        };
        assert_eq!(
            (back.dtype, &back.shape, &back.data),
            (dtype, &shape, &data),
            "{name}"
        );
    }
}

#[test]
fn every_dtype_scalar_and_empty_shape_round_trips() {
    let t = TempStore::new();
    let a = t.create();
    for dtype in Dtype::ALL {
        for dims in [vec![], vec![0], vec![3, 0, 2], vec![5], vec![2, 3, 4]] {
            let shape = Shape::new(dims);
            let len = shape.byte_len(dtype).expect("len") as usize;
            let data = noise(len, len as u64);
            let h = a
                .put_tensor(&TensorView::new(dtype, &shape, &data).expect("view"), &[])
                .expect("put");
            let Object::Tensor(back) = a.get(&h).expect("get") else {
                panic!("not a tensor")
            };
            assert_eq!((back.dtype, back.shape, back.data), (dtype, shape, data));
        }
    }
}

#[test]
fn text_bytes_records_and_categoricals_round_trip() {
    let t = TempStore::new();
    let a = t.create();
    let text = "größer — 模型输出 ✓";
    let ht = a.put_text(text, &[("lang", "mixed")]).expect("text");
    assert_eq!(a.get(&ht).expect("get"), Object::Text(text.into()));
    let png = b"\x89PNG\r\n\x1a\nnot really";
    let hb = a.put_bytes(png, Some("image/png"), &[]).expect("bytes");
    assert_eq!(
        a.get(&hb).expect("get"),
        Object::Bytes {
            media_type: Some("image/png".into()),
            data: png.to_vec()
        }
    );
    let rec = Record::new()
        .with("probs", Value::Ref(ht))
        .and_then(|r| r.with("label", Value::Int(3)))
        .and_then(|r| r.with("score", Value::Float(0.875)))
        .and_then(|r| {
            r.with(
                "tags",
                Value::List(vec![Value::Str("a".into()), Value::Null]),
            )
        })
        .expect("record");
    let hr = a.put_record(&rec, &[]).expect("record");
    assert_eq!(a.get(&hr).expect("get"), Object::Record(rec));
    let codes: Vec<u8> = [2i64, 0, 1, 2]
        .iter()
        .flat_map(|c| c.to_le_bytes())
        .collect();
    let shape = Shape::new(vec![4]);
    let labels: Vec<String> = ["cat", "dog", "fish"].map(String::from).to_vec();
    let hc = a
        .put_categorical(
            &TensorView::new(Dtype::I64, &shape, &codes).expect("v"),
            &labels,
            &[],
        )
        .expect("categorical");
    let Object::Categorical(cat) = a.get(&hc).expect("get") else {
        panic!("not categorical")
    };
    assert_eq!(cat.labels, labels);
    let Object::Tensor(back) = a.get(&cat.codes).expect("codes") else {
        panic!("codes")
    };
    assert_eq!(back.data, codes);
    // The codes tensor is an object without an entry of its own.
    assert!(a.entries_of(&cat.codes).expect("entries").is_empty());
}

#[test]
fn bad_categoricals_and_dangling_references_are_refused() {
    let t = TempStore::new();
    let a = t.create();
    let shape = Shape::new(vec![2]);
    let labels = vec!["a".to_string()];
    let codes: Vec<u8> = [0i32, 1].iter().flat_map(|c| c.to_le_bytes()).collect();
    let err = a.put_categorical(
        &TensorView::new(Dtype::I32, &shape, &codes).expect("v"),
        &labels,
        &[],
    );
    assert!(matches!(err, Err(Error::InvalidInput { .. })), "{err:?}");
    let floats = vec![0u8; 8];
    let err = a.put_categorical(
        &TensorView::new(Dtype::F32, &shape, &floats).expect("v"),
        &labels,
        &[],
    );
    assert!(matches!(err, Err(Error::InvalidInput { .. })), "{err:?}");
    let dangling = Record::new()
        .with("x", Value::Ref(model_archive::ObjectHash([1; 32])))
        .expect("r");
    assert!(matches!(
        a.put_record(&dangling, &[]),
        Err(Error::InvalidInput { .. })
    ));
    assert_eq!(
        a.stats().expect("stats").objects,
        0,
        "nothing stored by refused puts"
    );
}

#[test]
fn same_content_is_one_object_with_two_entries_whatever_the_codec() {
    let t = TempStore::new();
    let a = t.create();
    let (dtype, shape, data) = sample_tensor("mlp_hidden_relu.npy");
    let view = TensorView::new(dtype, &shape, &data).expect("view");
    let mut hashes = Vec::new();
    for (codec, level) in [
        (None, None),
        (Some(Codec::Raw), None),
        (Some(Codec::Zstd), Some(19)),
    ] {
        let opts = PutOptions { codec, level };
        hashes.push(
            a.put_tensor_with(&view, &[("run", "x")], &opts)
                .expect("put"),
        );
    }
    assert!(hashes.iter().all(|h| *h == hashes[0]));
    // A second store that stores it raw gives the same address.
    let t2 = TempStore::new();
    let b = t2.create();
    let opts = PutOptions {
        codec: Some(Codec::Raw),
        level: None,
    };
    assert_eq!(
        b.put_tensor_with(&view, &[], &opts).expect("put"),
        hashes[0]
    );
    let s = a.stats().expect("stats");
    assert_eq!((s.objects, s.entries), (1, 3));
    assert_eq!(a.entries_of(&hashes[0]).expect("entries").len(), 3);
}

#[test]
fn default_codec_compresses_floats_and_keeps_noise_raw() {
    let t = TempStore::new();
    let a = t.create();
    let (dtype, shape, data) = sample_tensor("mlp_hidden_relu.npy");
    let h = a
        .put_tensor(&TensorView::new(dtype, &shape, &data).expect("v"), &[])
        .expect("put");
    let info = a.info(&h).expect("info");
    assert_eq!(info.codec, Codec::ShuffleZstd);
    assert!(info.stored_len < info.raw_len * 9 / 10, "{info:?}");
    let rnd = noise(1 << 16, 9);
    let shape = Shape::new(vec![1 << 14]);
    let h = a
        .put_tensor(&TensorView::new(Dtype::F32, &shape, &rnd).expect("v"), &[])
        .expect("put");
    assert_eq!(a.info(&h).expect("info").codec, Codec::Raw);
}

#[test]
fn map_of_a_raw_tensor_points_into_the_segment_aligned() {
    let t = TempStore::new();
    let a = t.create();
    let raw = PutOptions {
        codec: Some(Codec::Raw),
        level: None,
    };
    for len in [100usize, 4096 + 12, 3 << 20] {
        // A text put first shifts the next frame off any natural alignment.
        a.put_text(&"x".repeat(len % 97 + 1), &[]).expect("text");
        let data = noise(len * 4, len as u64);
        let shape = Shape::new(vec![len as u64]);
        let h = a
            .put_tensor_with(
                &TensorView::new(Dtype::F32, &shape, &data).expect("v"),
                &[],
                &raw,
            )
            .expect("put");
        for m in [a.map(&h).expect("map"), a.map_unchecked(&h).expect("map")] {
            assert!(m.is_zero_copy());
            let map = m.mapping().expect("mapping");
            let (p, start, end) = (
                m.bytes().as_ptr() as usize,
                map.as_ptr() as usize,
                map.as_ptr() as usize + map.len(),
            );
            assert!(
                p >= start && p + m.bytes().len() <= end,
                "inside the mapping"
            );
            assert_eq!(p % 64, 0, "64-byte aligned");
            assert_eq!(m.bytes(), &data[..]);
            let floats: &[f32] = m.as_slice().expect("typed view");
            assert_eq!(floats.len(), len);
        }
    }
    // A compressed object maps to a decoded buffer.
    let zeros = vec![0u8; 4096];
    let shape = Shape::new(vec![1024]);
    let h = a
        .put_tensor(
            &TensorView::new(Dtype::F32, &shape, &zeros).expect("v"),
            &[],
        )
        .expect("put");
    let m = a.map(&h).expect("map");
    assert!(!m.is_zero_copy());
    assert_eq!(m.bytes(), &zeros[..]);
}

#[test]
fn batch_writer_commits_many_puts_and_survives_reopen() {
    let t = TempStore::new();
    let mut hashes = Vec::new();
    {
        let a = t.create();
        let mut w = a.writer();
        for i in 0..500 {
            hashes.push(
                w.put_text(&format!("prediction {i}"), &[("i", &i.to_string())])
                    .expect("put"),
            );
        }
        assert!(
            !a.contains(&hashes[0]).expect("contains"),
            "not visible before commit"
        );
        w.commit().expect("commit");
        assert!(a.contains(&hashes[499]).expect("contains"));
        // Dropping an uncommitted writer commits it.
        let mut w = a.writer();
        hashes.push(w.put_text("last", &[]).expect("put"));
    }
    let a = t.open();
    for h in &hashes {
        assert!(matches!(a.get(h).expect("get"), Object::Text(_)));
    }
    assert_eq!(
        a.stats().expect("stats").entries,
        501,
        "reopening indexes nothing twice"
    );
}

#[test]
fn prefixes_resolve_and_ambiguous_ones_list_candidates() {
    let t = TempStore::new();
    let a = t.create();
    let mut w = a.writer();
    let hashes: Vec<_> = (0..600)
        .map(|i| w.put_text(&i.to_string(), &[]).expect("put"))
        .collect();
    w.commit().expect("commit");
    drop(w);
    let h = hashes[7].to_string();
    assert_eq!(a.resolve(&h[..12]).expect("prefix"), hashes[7]);
    assert_eq!(a.resolve(&h.to_uppercase()).expect("upper"), hashes[7]);
    // With 600 hashes, two share their first 4 hex digits (a 93 % chance; this set does).
    let shared = &crate::util::shared_prefix(&hashes);
    match a.resolve(shared) {
        Err(Error::Ambiguous { candidates, .. }) => assert!(candidates.len() >= 2),
        other => panic!("expected ambiguous, got {other:?}"),
    }
    assert!(matches!(a.resolve("abc"), Err(Error::InvalidInput { .. })));
}

#[test]
fn archive_is_send_and_sync_and_threads_put_and_get_at_once() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Archive>();
    let t = TempStore::new();
    let a = Arc::new(t.create());
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let a = Arc::clone(&a);
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for i in 0..50 {
                    let data = noise(256 + i, n * 1000 + i as u64);
                    let shape = Shape::new(vec![data.len() as u64]);
                    let h = a
                        .put_tensor(&TensorView::new(Dtype::U8, &shape, &data).expect("v"), &[])
                        .expect("put");
                    mine.push((h, data));
                    let (h0, d0) = &mine[i / 2];
                    let Object::Tensor(t) = a.get(h0).expect("get") else {
                        panic!("tensor")
                    };
                    assert_eq!(&t.data, d0);
                }
                mine
            })
        })
        .collect();
    let all: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("thread"))
        .collect();
    assert_eq!(a.stats().expect("stats").objects, 200);
    assert!(a.verify(&|_, _| {}).expect("verify").is_ok());
    for (h, d) in all {
        assert_eq!(a.map(&h).expect("map").bytes(), &d[..]);
    }
}

#[test]
fn reindex_rebuilds_every_entry_from_segments() {
    let t = TempStore::new();
    let (hashes, before) = {
        let a = t.create();
        let h1 = a.put_text("one", &[("k", "v")]).expect("put");
        let h2 = a.put_text("two", &[]).expect("put");
        a.put_text("one", &[("k", "w")]).expect("put again");
        let before: Vec<_> = a.entries().map(|e| e.expect("entry")).collect();
        (vec![h1, h2], before)
    };
    std::fs::remove_dir_all(t.path().join("index")).expect("remove index");
    let mut a = t.open();
    let after: Vec<_> = a.entries().map(|e| e.expect("entry")).collect();
    assert_eq!(after, before, "a lost index is rebuilt on open");
    a.reindex(&|_, _| {}).expect("reindex");
    let again: Vec<_> = a.entries().map(|e| e.expect("entry")).collect();
    assert_eq!(again, before);
    for h in hashes {
        assert!(a.get(&h).is_ok());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn put_then_get_is_bit_exact(
        dtype_i in 0usize..17,
        dims in proptest::collection::vec(0u64..6, 0..4),
        seed in any::<u64>(),
        codec_i in 0usize..4,
    ) {
        let dtype = Dtype::ALL[dtype_i];
        let shape = Shape::new(dims);
        let len = shape.byte_len(dtype).expect("len") as usize;
        let data = noise(len, seed);
        let codec = [None, Some(Codec::Raw), Some(Codec::Zstd), Some(Codec::ShuffleZstd)][codec_i];
        let t = TempStore::new();
        let a = t.create();
        let h = a.put_tensor_with(&TensorView::new(dtype, &shape, &data).expect("v"), &[], &PutOptions { codec, level: None })
            .expect("put");
        let Object::Tensor(back) = a.get(&h).expect("get") else { panic!("tensor") };
        prop_assert_eq!(back.data, data);
        prop_assert_eq!(back.shape, shape);
    }
}

#[test]
fn a_discarded_batch_leaves_the_store_exactly_as_it_was() {
    let t = TempStore::new();
    let a = t.create();
    let kept = a.put_text("committed before", &[]).expect("put");
    let before = t.snapshot();
    let mut w = a.writer();
    let gone = w.put_text("never committed", &[("k", "v")]).expect("put");
    let data = noise(1 << 20, 5);
    let shape = Shape::new(vec![1 << 18]);
    w.put_tensor(&TensorView::new(Dtype::F32, &shape, &data).expect("v"), &[])
        .expect("put");
    w.discard().expect("discard");
    assert_eq!(
        t.snapshot(),
        before,
        "segment bytes are as before the batch"
    );
    assert!(!a.contains(&gone).expect("contains"));
    // A new put after the discard lands where the batch was, and reopening finds only it.
    let after = a.put_text("after", &[]).expect("put");
    drop(a);
    let a = t.open();
    assert!(a.get(&kept).is_ok() && a.get(&after).is_ok());
    assert!(matches!(a.get(&gone), Err(Error::NotFound(_))));
    assert_eq!(a.stats().expect("stats").entries, 2);
}

#[test]
fn the_lock_free_reader_finds_what_the_archive_holds() {
    let t = TempStore::new();
    let a = t.create();
    let mut w = a.writer();
    let hashes: Vec<_> = (0..600)
        .map(|i| w.put_text(&format!("r{i}"), &[]).expect("put"))
        .collect();
    w.commit().expect("commit");
    drop(w);
    let single = a.put_text("one more", &[]).expect("put");
    let r = model_archive::ArchiveReader::open(t.path())
        .expect("open")
        .expect("tables");
    for h in hashes.iter().chain([&single]) {
        assert_eq!(r.resolve(&h.to_string()[..10]).expect("resolve"), Some(*h));
        assert_eq!(r.get(h).expect("get"), Some(a.get(h).expect("get")));
    }
    let shared = &crate::util::shared_prefix(&hashes);
    assert!(matches!(r.resolve(shared), Err(Error::Ambiguous { .. })));
    let unknown = model_archive::ObjectHash([0xee; 32]);
    assert_eq!(r.get(&unknown).expect("get"), None);
    assert_eq!(r.resolve("eeeeeeee").expect("resolve"), None);
}

#[test]
fn loggers_write_at_once_without_the_index_and_the_index_catches_up() {
    let t = TempStore::new();
    let a = t.create();
    let existing = a.put_text("already stored", &[]).expect("put");
    // Loggers need no index lock: they work while the index is held.
    let threads: Vec<_> = (0..3)
        .map(|n| {
            let path = t.path();
            std::thread::spawn(move || {
                let logger = Archive::builder().open_logger(&path).expect("logger");
                assert!(
                    logger.entries().next().is_some_and(|e| e.is_err()),
                    "no index"
                );
                let mut w = logger.writer();
                let mine: Vec<_> = (0..100)
                    .map(|i| {
                        w.put_text(&format!("logger {n} record {i}"), &[("n", &n.to_string())])
                            .expect("put")
                    })
                    .collect();
                w.commit().expect("commit");
                // Content the lookup tables know is logged, not stored again.
                w.put_text("already stored", &[("again", "yes")])
                    .expect("put");
                w.commit().expect("commit");
                mine
            })
        })
        .collect();
    let written: Vec<_> = threads
        .into_iter()
        .flat_map(|h| h.join().expect("thread"))
        .collect();
    assert!(
        !a.contains(&written[0]).expect("contains"),
        "not indexed until reopened"
    );
    drop(a);
    let a = t.open();
    for h in &written {
        assert!(a.get(h).is_ok());
    }
    let s = a.stats().expect("stats");
    assert_eq!((s.objects, s.entries), (301, 304));
    assert_eq!(a.entries_of(&existing).expect("entries").len(), 4);
    // The index holder's segment, and at most one per logger: a logger appends only to a
    // segment no other writer holds (one it starts, or a small one a logger that ended left).
    assert!((2..=4).contains(&t.segments().len()), "{:?}", t.segments());
}
