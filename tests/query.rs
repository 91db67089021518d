//! Queries give exactly what a full scan gives. Random stores (tags and record fields that
//! interleave, follow one another, are unique or missing; duplicates; records in packs and in
//! frames of their own; written through the index or logged without it and caught up on open)
//! meet random queries, and `Archive::query` is compared with a brute-force evaluation of every
//! entry with its whole record. The store's totals (`stats`) are checked against a walk of
//! every object and entry (`recount`) on the same stores.

use model_archive::{
    Archive, Dtype, EntryInfo, LoggedBatch, Object, Record, Shape, TensorView, Value,
};
use proptest::prelude::*;

use crate::util::TempStore;

/// SplitMix64: a store and its queries from one seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const SPLITS: [&str; 3] = ["train", "val", "test"];

fn record(rng: &mut Rng, i: u64) -> Record {
    let mut r = Record::new();
    let mut add = |name: &str, v: Value| r.insert(name, v).expect("field");
    add("label", Value::Int(rng.below(4) as i64));
    if rng.chance(80) {
        add("pred", Value::Int(rng.below(4) as i64));
    }
    if rng.chance(70) {
        add("split", Value::Str(rng.pick(&SPLITS).into()));
    }
    add("id", Value::Str(format!("id-{i}")));
    if rng.chance(50) {
        let meta = Record::new()
            .with("source", Value::Str(format!("cam{}", rng.below(2))))
            .expect("meta");
        add("meta", Value::Record(meta));
    }
    if rng.chance(50) {
        add("score", Value::Float(rng.below(10) as f64 / 10.0));
    }
    if rng.chance(20) {
        add("flag", Value::Bool(rng.chance(50)));
    }
    if rng.chance(5) {
        // Too big for a pack: a frame of its own.
        add("blob", Value::Str("x".repeat(5000)));
    }
    r
}

/// Fill a store from `seed`: about `n` entries in batches of random size. With `hand_over`,
/// what the index learns of each commit is kept and returned (`Writer::hand_over`).
fn fill(a: &Archive, seed: u64, n: u64, hand_over: bool) -> Vec<LoggedBatch> {
    let mut rng = Rng(seed);
    let interleaved = rng.chance(50);
    let mut w = a.writer();
    if hand_over {
        w.hand_over();
    }
    let mut logged: Vec<(model_archive::ObjectHash, Option<Record>)> = Vec::new();
    let mut batch: u64 = 0;
    let mut in_batch = Vec::new();
    let batch_len = 5 + rng.below(60);
    for i in 0..n {
        let run = match interleaved {
            true => format!("r{}", i % 7),
            false => format!("r{}", i / 40),
        };
        let mut tags: Vec<(String, String)> = vec![("run".into(), run)];
        if rng.chance(30) {
            tags.push(("split".into(), rng.pick(&SPLITS).into()));
        }
        if rng.chance(20) {
            tags.push(("id".into(), format!("id-{i}")));
        }
        let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let roll = rng.below(100);
        let hash = if roll < 70 || logged.is_empty() {
            let r = record(&mut rng, i);
            let h = w.put_record(&r, &tags).expect("put record");
            logged.push((h, Some(r)));
            in_batch.push(h);
            h
        } else if roll < 80 {
            let data: Vec<u8> = (0..16).map(|b| (b as u64 ^ i) as u8).collect();
            let shape = Shape::new(vec![16]);
            let view = TensorView::new(Dtype::U8, &shape, &data).expect("view");
            let h = w.put_tensor(&view, &tags).expect("put tensor");
            logged.push((h, None));
            in_batch.push(h);
            h
        } else if roll < 90 {
            // The same record again, with other tags: a duplicate.
            let k = rng.below(logged.len() as u64) as usize;
            match logged[k].1.clone() {
                Some(r) => w.put_record(&r, &tags).expect("put again"),
                None => w.put_text(&format!("text {i}"), &tags).expect("text"),
            }
        } else {
            // An entry of content put before in this batch, named by hash alone (a logger
            // knows no other content).
            let k = logged.len() - 1 - rng.below(batch.min(logged.len() as u64 - 1) + 1) as usize;
            let h = logged[k].0;
            if !a.contains(&h).unwrap_or(false) && !in_batch.contains(&h) {
                continue;
            }
            w.put_entry(&h, &tags, 1_700_000_000_000_000_000 + i as i64)
                .expect("entry");
            h
        };
        let _ = hash;
        batch += 1;
        if batch >= batch_len {
            w.commit().expect("commit");
            batch = 0;
            in_batch.clear();
        }
    }
    w.commit().expect("commit");
    w.take_logged()
}

fn random_query(rng: &mut Rng, depth: u32) -> String {
    if depth > 0 && rng.chance(45) {
        let a = random_query(rng, depth - 1);
        let b = random_query(rng, depth - 1);
        return match rng.below(3) {
            0 => format!("({a}) and ({b})"),
            1 => format!("({a}) or ({b})"),
            _ => format!("not ({a})"),
        };
    }
    let id = format!("id-{}", rng.below(300));
    let id_glob = format!("id-{}*", rng.below(30));
    let run = format!("r{}", rng.below(9));
    let atoms: Vec<String> = vec![
        format!("label = {}", rng.below(5)),
        format!("label != {}", rng.below(4)),
        format!("label >= {}", rng.below(4)),
        "label != pred".into(),
        "label = pred".into(),
        "split = run".into(),
        format!("split = \"{}\"", rng.pick(&SPLITS)),
        format!("split != {}", rng.pick(&SPLITS)),
        format!("id = \"{id}\""),
        format!("id ~ \"{id_glob}\""),
        format!("run = \"{run}\""),
        format!("run = \"{run}\" or run = \"r{}\"", rng.below(9)),
        format!("meta.source = cam{}", rng.below(2)),
        format!("score > 0.{}", rng.below(10)),
        "flag = true".into(),
        format!(
            "has {}",
            rng.pick(&["pred", "meta.source", "flag", "blob", "id", "nothing"])
        ),
        "kind = record".into(),
        "missing = 3".into(),
    ];
    atoms[rng.below(atoms.len() as u64) as usize].clone()
}

/// Every entry, newest first, with its object's info and its record, looked at whole.
type Subjects = Vec<(EntryInfo, Option<model_archive::ObjectInfo>, Option<Record>)>;

fn subjects(a: &Archive) -> Subjects {
    a.entries()
        .map(|e| {
            let e = e.expect("entry");
            let info = a.info(&e.hash).ok();
            let record = match a.get(&e.hash).expect("get") {
                Object::Record(r) => Some(r),
                _ => None,
            };
            (e, info, record)
        })
        .collect()
}

fn check_queries(a: &Archive, seed: u64) {
    // The totals the index keeps are what a walk of the whole store finds.
    // (The index's own size moves as sled writes its log.)
    let counts = |mut s: model_archive::Stats| {
        s.index_bytes = 0;
        s
    };
    assert_eq!(
        counts(a.stats().expect("stats")),
        counts(a.recount().expect("recount"))
    );
    let all = subjects(a);
    let mut rng = Rng(seed ^ 0x5eed);
    for _ in 0..40 {
        let src = random_query(&mut rng, 2);
        let q = a.parse_query(&src).expect("query");
        let got: Vec<EntryInfo> = a.query(&q).map(|e| e.expect("query")).collect();
        // The brute force: every entry, whole.
        let want: Vec<EntryInfo> = all
            .iter()
            .filter(|(e, info, record)| q.matches_with(e, info.as_ref(), record.as_ref()))
            .map(|(e, _, _)| e.clone())
            .collect();
        let seqs = |v: &[EntryInfo]| v.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(&got), seqs(&want), "query {src}: {q:?}");
        assert_eq!(got, want, "query {src}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]

    #[test]
    fn a_query_gives_what_a_full_scan_gives(seed in any::<u64>(), mode in 0..3u8) {
        let t = TempStore::new();
        drop(t.create());
        let a = match mode {
            // Logged without the index, then indexed by the next open's catch-up: reading
            // the frames back, or (2) taking what the logger handed over where it can.
            1 | 2 => {
                let a = Archive::builder().open_logger(t.path()).expect("logger");
                let logged = fill(&a, seed, 240, mode == 2);
                drop(a);
                Archive::builder().open_with_logged(t.path(), logged).expect("open")
            }
            _ => {
                fill(&t.open(), seed, 240, false);
                t.open()
            }
        };
        check_queries(&a, seed);
        // And after the index is rebuilt from the segments alone.
        let mut a = a;
        a.reindex(&|_, _| {}).expect("reindex");
        check_queries(&a, seed.rotate_left(7));
    }
}

#[test]
fn record_fields_are_queried_by_name_and_path() {
    let t = TempStore::new();
    let a = t.create();
    let rows = [
        (3, 3, "test", "cam1"),
        (3, 5, "test", "cam2"),
        (1, 2, "val", "cam2"),
        (7, 7, "test", "cam2"),
    ];
    for (i, (label, pred, split, source)) in rows.iter().enumerate() {
        let meta = Record::new()
            .with("source", Value::Str((*source).into()))
            .expect("meta");
        let r = Record::new()
            .with("label", Value::Int(*label))
            .and_then(|r| r.with("pred", Value::Int(*pred)))
            .and_then(|r| r.with("meta", Value::Record(meta)))
            .expect("record");
        let id = format!("img-{i}");
        a.put_record(&r, &[("split", split), ("id", &id)])
            .expect("put");
    }
    let ids = |src: &str| -> Vec<String> {
        let q = a.parse_query(src).expect("query");
        let mut v: Vec<String> = a
            .query(&q)
            .map(|e| {
                let e = e.expect("entry");
                e.tags
                    .iter()
                    .find(|(k, _)| k == "id")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids("label = 3"), ["img-0", "img-1"]);
    assert_eq!(ids("split = \"test\" and label != pred"), ["img-1"]);
    assert_eq!(ids("meta.source = cam2 and label >= 3"), ["img-1", "img-3"]);
    assert_eq!(
        ids("has meta.source and not label = pred"),
        ["img-1", "img-2"]
    );
    // Quoted, `pred` is the word itself.
    assert!(ids("label != \"pred\"").len() == 4);
    let names = a.names().expect("names");
    assert!(names.record_fields.contains("meta.source"));
    assert!(names.tag_keys.contains("split"));
}

#[test]
fn a_unique_id_is_found_through_a_pack_filter_kept_in_the_filter_file_even_when_it_is_lost() {
    // A pack of 3,000 entries with unique ids: its filter (6 KB) goes to `index/filters`.
    let t = TempStore::new();
    let a = t.create();
    let mut hashes = Vec::new();
    {
        let mut w = a.writer();
        for i in 0..3000 {
            let r = Record::new().with("i", Value::Int(i)).expect("record");
            let id = format!("img-{i:06}");
            hashes.push(
                w.put_record(&r, &[("id", &id), ("split", "val")])
                    .expect("put"),
            );
        }
        w.commit().expect("commit");
    }
    let found = |a: &Archive, src: &str| -> Vec<model_archive::ObjectHash> {
        let q = a.parse_query(src).expect("query");
        a.query(&q).map(|e| e.expect("entry").hash).collect()
    };
    let check = |a: &Archive| {
        for i in [0usize, 1234, 2999] {
            assert_eq!(found(a, &format!("id = \"img-{i:06}\"")), [hashes[i]]);
        }
        assert!(found(a, "id = \"img-003000\"").is_empty());
        assert_eq!(
            found(a, "id = \"img-000007\" or id = \"img-000008\"").len(),
            2
        );
    };
    check(&a);
    drop(a);
    let file = t.path().join("index").join("filters");
    let len = std::fs::metadata(&file).expect("filter file").len();
    assert!(len >= 6000, "{len} bytes of filters");
    // Bytes a crash lost (zeros, or a file cut short) answer "may hold": a read, never a miss.
    std::fs::write(&file, vec![0u8; len as usize]).expect("zero");
    check(&t.open());
    std::fs::write(&file, b"").expect("cut");
    check(&t.open());
    // A rebuild writes the filters again.
    let mut a = t.open();
    a.reindex(&|_, _| {}).expect("reindex");
    assert_eq!(std::fs::metadata(&file).expect("filter file").len(), len);
    check(&a);
}

#[test]
fn what_a_logger_hands_over_indexes_the_store_as_reading_it_back_does() {
    // Packs of new records and tensors only (what `archive log` writes), in several commits:
    // the catch-up of the logger's process takes every batch as handed over, and the index
    // it builds answers as the one a rebuild reads from the segments.
    let t = TempStore::new();
    drop(t.create());
    let logger = Archive::builder().open_logger(t.path()).expect("logger");
    let mut w = logger.writer();
    w.hand_over();
    let shape = Shape::new(vec![12]);
    for i in 0..2500u32 {
        let data: Vec<u8> = (0..12).map(|b| (b as u32 ^ i) as u8).collect();
        let view = TensorView::new(Dtype::U8, &shape, &data).expect("view");
        let probs = w.put_tensor_part(&view).expect("tensor");
        let meta = Record::new()
            .with("source", Value::Str(format!("cam{}", i % 4)))
            .expect("meta");
        let r = Record::new()
            .with("probs", Value::Ref(probs))
            .and_then(|r| r.with("label", Value::Int(i64::from(i % 10))))
            .and_then(|r| r.with("note", Value::Str(format!("n{i}"))))
            .and_then(|r| r.with("ok", Value::Bool(i % 3 == 0)))
            .and_then(|r| r.with("meta", Value::Record(meta)))
            .expect("record");
        let (id, split) = (format!("img-{i}"), ["train", "val", "test"][i as usize % 3]);
        w.put_record(&r, &[("id", &id), ("split", split), ("run", "r1")])
            .expect("put");
        if i % 600 == 599 {
            w.commit().expect("commit");
        }
    }
    w.commit().expect("commit");
    let logged = w.take_logged();
    assert_eq!(logged.len(), 5);
    drop(w);
    drop(logger);
    let mut a = Archive::builder()
        .open_with_logged(t.path(), logged)
        .expect("open");
    assert_eq!(a.logged_taken(), 5, "every batch taken as handed over");
    let answers = |a: &Archive| {
        let queries = [
            "id = \"img-1234\"",
            "note = n77 or note = n2499",
            "split = \"val\" and meta.source = cam2",
            "ok = true and label = 3",
            "meta.source = cam1 and not split = test",
            "run = r1 and label >= 8",
        ];
        let mut stats = a.stats().expect("stats");
        stats.index_bytes = 0;
        let found: Vec<Vec<u64>> = queries
            .iter()
            .map(|src| {
                let q = a.parse_query(src).expect("query");
                a.query(&q).map(|e| e.expect("entry").seq).collect()
            })
            .collect();
        (found, stats, a.names().expect("names"))
    };
    let handed = answers(&a);
    assert_eq!(handed.0[0].len(), 1);
    assert_eq!(handed.0[1].len(), 2);
    a.reindex(&|_, _| {}).expect("reindex");
    assert_eq!(handed, answers(&a));
}

#[test]
fn a_record_read_in_one_pass_is_indexed_by_its_fields_through_a_writer_holding_the_index() {
    use model_archive::document::put_prepared_document;
    use model_archive::interop::msgpack_record::read_record;
    let t = TempStore::new();
    let a = t.create();
    let mut w = a.writer();
    for (i, (label, split)) in [(3, "val"), (4, "val"), (3, "test")].iter().enumerate() {
        let mut bytes = Vec::new();
        rmp::encode::write_map_len(&mut bytes, 3).expect("vec");
        for (k, v) in [("id", format!("img-{i}")), ("split", (*split).to_owned())] {
            rmp::encode::write_str(&mut bytes, k).expect("vec");
            rmp::encode::write_str(&mut bytes, &v).expect("vec");
        }
        rmp::encode::write_str(&mut bytes, "label").expect("vec");
        rmp::encode::write_sint(&mut bytes, *label).expect("vec");
        let r = read_record(&bytes, &["split".to_owned()]).expect("the usual shape");
        assert_eq!(r.tags, [("split".to_owned(), (*split).to_owned())]);
        let tags: Vec<(&str, &str)> = r.tags.iter().map(|(k, v)| (&**k, &**v)).collect();
        put_prepared_document(&mut w, &r.prepared, &tags).expect("put");
    }
    w.commit().expect("commit");
    let q = a
        .parse_query("label = 3 and id != \"img-2\"")
        .expect("query");
    let found: Vec<EntryInfo> = a.query(&q).map(|e| e.expect("entry")).collect();
    assert_eq!(found.len(), 1);
    let Object::Record(r) = a.get(&found[0].hash).expect("get") else {
        panic!("not a record");
    };
    assert_eq!(r.get("id"), Some(&Value::Str("img-0".into())));
    assert!(a.names().expect("names").record_fields.contains("label"));
}
