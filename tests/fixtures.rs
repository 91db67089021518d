//! Frozen stores of released schema versions. `tests/fixtures/v1/` was written by schema v1
//! from the committed samples; this test opens a copy (the index is rebuilt from the segments)
//! and reads every object back bit-exact, so a change that breaks v1 stores fails here.
//!
//! The fixture is written once per released version; `UPDATE_FIXTURES=1 cargo test fixtures`
//! rewrites it only when it is missing.

use std::path::{Path, PathBuf};

use model_archive::{Archive, Codec, Dtype, Object, PutOptions, Shape, TensorView};

use crate::util::{sample, sample_tensor};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1")
}

fn fixture_dir_v2() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v2")
}

fn fixture_dir_v3() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v3")
}

fn fixture_dir_v4() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v4")
}

fn fixture_dir_v5() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v5")
}

fn fixture_dir_v6() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v6")
}

fn fixture_dir_v7() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v7")
}

/// What the v1 fixture holds: (expected hash, how to rebuild the object from the samples).
const OBJECTS: &[(&str, &str)] = &[
    ("probs", "digits_test_probs.npy shuffle-zstd"),
    ("relu", "mlp_hidden_relu.npy raw"),
    ("images", "digits_test_images.npy zstd"),
    ("report", "texts/classification_report.txt"),
    ("preds", "digits_test_pred.npy categorical"),
];

fn write_fixture(dir: &Path) -> Vec<(String, String)> {
    let a = Archive::create(dir).expect("create fixture");
    let mut out = put_objects(&a, "v1");
    drop(a);
    std::fs::remove_dir_all(dir.join("index")).expect("drop index");
    std::fs::remove_file(dir.join("index.lock")).expect("drop lock");
    out.sort();
    out
}

/// The objects of `OBJECTS` with their entries (tagged `fixture=<version>`), and the report
/// text logged again.
fn put_objects(a: &Archive, version: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, how) in OBJECTS {
        let mut parts = how.split(' ');
        let file = parts.next().expect("file");
        let mode = parts.next().unwrap_or("");
        let tags = [("fixture", version), ("name", *name)];
        let h = if file.ends_with(".npy") {
            let (dtype, shape, data) = sample_tensor(file);
            let view = TensorView::new(dtype, &shape, &data).expect("view");
            match mode {
                "categorical" => {
                    let labels: Vec<String> = serde_json::from_slice(
                        &std::fs::read(sample("labels.json")).expect("labels"),
                    )
                    .expect("json");
                    a.put_categorical(&view, &labels, &tags).expect("put")
                }
                codec => {
                    let opts = PutOptions {
                        codec: Some(codec.parse::<Codec>().expect("codec")),
                        level: None,
                    };
                    a.put_tensor_with(&view, &tags, &opts).expect("put")
                }
            }
        } else {
            let text = std::fs::read_to_string(sample(file)).expect("text");
            a.put_text(&text, &tags).expect("put")
        };
        out.push(((*name).to_owned(), h.to_string()));
    }
    // The same text logged again: one object, two entries.
    a.put_text(
        &std::fs::read_to_string(sample("texts/classification_report.txt")).expect("t"),
        &[("again", "yes")],
    )
    .expect("put");
    out
}

/// Schema v2's additions: small records and texts in packs (one pack per batch), a record
/// referring to a packed tensor, and a duplicate entry in a pack.
fn put_packed(a: &Archive, version: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut w = a.writer();
    let shape = Shape::new(vec![10]);
    for i in 0..100u32 {
        let data: Vec<u8> = (0..10u32)
            .flat_map(|j| ((i * 10 + j) as f32 / 1000.0).to_le_bytes())
            .collect();
        let view = TensorView::new(Dtype::F32, &shape, &data).expect("view");
        let probs = w.put_tensor_part(&view).expect("part");
        let mut rec = model_archive::Record::new();
        rec.insert("id", model_archive::Value::Str(format!("item-{i:03}")))
            .expect("field");
        rec.insert("probs", model_archive::Value::Ref(probs))
            .expect("field");
        let run = format!("r{}", i % 3);
        let h = w
            .put_record(&rec, &[("fixture", version), ("run", &run)])
            .expect("record");
        out.push((format!("record-{i:03}"), h.to_string()));
        out.push((format!("probs-{i:03}"), probs.to_string()));
    }
    w.commit().expect("commit");
    drop(w);
    let text = a
        .put_text("a packed caption", &[("fixture", version)])
        .expect("text");
    a.put_text("a packed caption", &[("again", "yes")])
        .expect("again");
    out.push(("caption".into(), text.to_string()));
    out
}

fn write_fixture_v2(dir: &Path) -> Vec<(String, String)> {
    let a = Archive::create(dir).expect("create fixture");
    let mut out = put_objects(&a, "v2");
    out.extend(put_packed(&a, "v2"));
    drop(a);
    std::fs::remove_dir_all(dir.join("index")).expect("drop index");
    std::fs::remove_file(dir.join("index.lock")).expect("drop lock");
    out.sort();
    out
}

/// The frozen v2 store: written once by schema v2 (packs beside whole frames), it asks for a
/// migration (v3 added removals), and then reads back bit-exact, with its entries and tags.
#[test]
fn v2_fixture_store_migrates_and_reads_back_bit_exact() {
    let (_tmp, store, hashes) = migrated_copy(&fixture_dir_v2(), write_fixture_v2, 2, 6);
    let a = Archive::open(&store).expect("open the migrated v2 fixture");
    let stats = a.stats().expect("stats");
    assert_eq!(
        (stats.objects, stats.entries),
        (6 + 201, 6 + 102),
        "v1's objects, 100 records with 100 tensor parts, a caption"
    );
    let by_name = by_name(&hashes);
    for i in 0..100u32 {
        check_packed(&a, &by_name, i);
    }
    let caption = a.resolve(by_name["caption"]).expect("caption");
    assert_eq!(a.entries_of(&caption).expect("entries").len(), 2);
    let q = model_archive::query::Query::parse("fixture = \"v2\" and run = \"r1\"").expect("q");
    assert_eq!(a.query(&q).count(), 33);
    check_objects(&a, &by_name);
}

/// Schema v3's additions on top of v2's: a removal (`rm` of run r0's 34 records) and a
/// compaction (`gc`, which rewrote the segments without them), then a text put after both.
fn write_fixture_v3(dir: &Path) -> Vec<(String, String)> {
    let a = Archive::create(dir).expect("create fixture");
    let mut out = put_objects(&a, "v3");
    out.extend(put_packed(&a, "v3"));
    let q = model_archive::query::Query::parse("run = \"r0\"").expect("q");
    let rm = a.rm(&q, "run = \"r0\"", false).expect("rm");
    assert_eq!(rm.entries, 34);
    let opts = model_archive::GcOptions {
        dry_run: false,
        min_dead: 0.0,
    };
    a.gc(&opts, &|_, _, _| {}).expect("gc");
    let after = a
        .put_text("after the gc", &[("fixture", "v3")])
        .expect("put");
    out.push(("after-gc".into(), after.to_string()));
    drop(a);
    std::fs::remove_dir_all(dir.join("index")).expect("drop index");
    std::fs::remove_file(dir.join("index.lock")).expect("drop lock");
    std::fs::remove_file(dir.join("gc.lock")).expect("drop gc lock");
    out.sort();
    out
}

/// The frozen v3 store (removals and a compaction beside packs and whole frames): it asks for
/// a migration (v4 added string tensors and msgpack's kept values), then reads back
/// bit-exact, its removed records still gone.
#[test]
fn v3_fixture_store_migrates_and_reads_back_bit_exact() {
    let (_tmp, store, hashes) = migrated_copy(&fixture_dir_v3(), write_fixture_v3, 3, 5);
    let a = Archive::open(&store).expect("open the migrated v3 fixture");
    let by_name = by_name(&hashes);
    let q = |text: &str| {
        let q = model_archive::query::Query::parse(text).expect("q");
        a.query(&q).count()
    };
    assert_eq!(
        q("fixture = \"v3\" and run = \"r0\""),
        0,
        "removed stay removed"
    );
    assert_eq!(q("fixture = \"v3\" and run = \"r1\""), 33);
    for i in (0..100u32).filter(|i| i % 3 != 0) {
        check_packed(&a, &by_name, i);
    }
    check_objects(&a, &by_name);
    let after = a.resolve(by_name["after-gc"]).expect("after");
    assert_eq!(
        a.get(&after).expect("get"),
        Object::Text("after the gc".into())
    );
}

/// Schema v4's additions on top of v2's packs: a packed string tensor, and a packed record
/// holding the msgpack values beyond plain records (bytes, an extension value, a float32, a
/// map with integer keys, a uint64 past i64), each with a reference to the tensor before it.
fn write_fixture_v4(dir: &Path) -> Vec<(String, String)> {
    write_fixture_of(dir, "v4")
}

/// The v5 fixture holds what v4's does, written in v5's columnar packs: payloads grouped by
/// descriptor and shuffled, and records referring to the tensor before them locally.
fn write_fixture_v5(dir: &Path) -> Vec<(String, String)> {
    write_fixture_of(dir, "v5")
}

/// The v6 fixture holds what v5's does, its packs' items written as columns.
fn write_fixture_v6(dir: &Path) -> Vec<(String, String)> {
    write_fixture_of(dir, "v6")
}

/// The v7 fixture holds what v6's does (v7 changed the index alone), its frames' hashes
/// those of their decoded bodies and its tag sets arrays: what v8 reads without a rewrite.
fn write_fixture_v7(dir: &Path) -> Vec<(String, String)> {
    write_fixture_of(dir, "v7")
}

/// The v4 to v7 fixtures, tagged `fixture=<version>`.
fn write_fixture_of(dir: &Path, version: &str) -> Vec<(String, String)> {
    let a = Archive::create(dir).expect("create fixture");
    let mut out = put_objects(&a, version);
    out.extend(put_packed(&a, version));
    let mut w = a.writer();
    let text: Vec<u8> = "abcxyz"
        .chars()
        .flat_map(|c| u32::from(c).to_le_bytes())
        .collect();
    let shape = Shape::new(vec![2]);
    let view = TensorView::new(Dtype::Str(3), &shape, &text).expect("view");
    let strings = w
        .put_tensor(&view, &[("fixture", version)])
        .expect("strings");
    out.push(("strings".into(), strings.to_string()));
    let kept = kept_record(strings);
    let h = w.put_record(&kept, &[("fixture", version)]).expect("kept");
    out.push(("kept".into(), h.to_string()));
    w.commit().expect("commit");
    drop(w);
    drop(a);
    std::fs::remove_dir_all(dir.join("index")).expect("drop index");
    std::fs::remove_file(dir.join("index.lock")).expect("drop lock");
    // Not every run leaves one.
    let _ = std::fs::remove_file(dir.join("gc.lock"));
    out.sort();
    out
}

/// The record of kept msgpack values in the v4 fixture.
fn kept_record(strings: model_archive::ObjectHash) -> model_archive::Record {
    use model_archive::Value;
    let mut r = model_archive::Record::new();
    let fields = [
        ("bytes", Value::Bytes(b"__uuid__".to_vec())),
        ("ext", Value::Ext(5, vec![1, 2, 3])),
        ("f32", Value::F32(0.25)),
        ("big", Value::BigUint(u64::MAX)),
        (
            "map",
            Value::Map(vec![(Value::Int(1), Value::Str("one".into()))]),
        ),
        ("strings", Value::Ref(strings)),
    ];
    for (k, v) in fields {
        r.insert(k, v).expect("field");
    }
    r
}

/// The frozen v4 store (string tensors and kept msgpack values beside v2's packs): it asks for
/// a migration (v5 writes columnar packs, v6 their items as columns), then reads back
/// bit-exact, its records and the tensors they refer to, and the same records written again
/// land in the current packs as the same objects.
#[test]
fn v4_fixture_store_migrates_and_reads_back_bit_exact() {
    let (_tmp, store, hashes) = migrated_copy(&fixture_dir_v4(), write_fixture_v4, 4, 4);
    check_fixture_of(&store, &hashes, "v4");
}

/// The frozen v5 store (v4's objects in v5's columnar packs, records referring to the tensors
/// before them locally): it asks for a migration (v6 writes pack items as columns), then
/// reads back bit-exact, and the same records written again land in v6 packs as the same
/// objects.
#[test]
fn v5_fixture_store_migrates_and_reads_back_bit_exact() {
    let (_tmp, store, hashes) = migrated_copy(&fixture_dir_v5(), write_fixture_v5, 5, 3);
    check_fixture_of(&store, &hashes, "v5");
    // Its packs are v5's (payloads grouped by descriptor, items as arrays: layout 1); those
    // written since are this version's (items as columns, tag sets as bytes: layout 3).
    assert_eq!(pack_layouts(&fixture_dir_v5()), vec![1]);
    assert_eq!(pack_layouts(&store), vec![1, 3]);
}

/// The frozen v6 store (v5's objects, its packs' items as columns): it asks for a migration
/// (v7 writes compact lookup tables, v8 tag sets as bytes), then reads back bit-exact, and the
/// same records written again land in this version's packs as the same objects.
#[test]
fn v6_fixture_store_migrates_and_reads_back_bit_exact() {
    let (_tmp, store, hashes) = migrated_copy(&fixture_dir_v6(), write_fixture_v6, 6, 2);
    check_fixture_of(&store, &hashes, "v6");
    assert_eq!(pack_layouts(&fixture_dir_v6()), vec![2]);
    assert_eq!(pack_layouts(&store), vec![2, 3]);
}

/// The frozen v7 store (v6's objects, packs of layout 2 whose header hashes their decoded
/// bodies): it asks for a migration (v8 writes tag sets as bytes and hashes the stored
/// payloads of its packs), then reads back bit-exact, is verified, and the same records
/// written again are found as the same objects.
#[test]
fn v7_fixture_store_migrates_and_reads_back_bit_exact() {
    let (_tmp, store, hashes) = migrated_copy(&fixture_dir_v7(), write_fixture_v7, 7, 1);
    check_fixture_of(&store, &hashes, "v7");
    // Its packs are v7's (layout 2, hashed decoded); those written since are v8's (layout 3,
    // hashed as stored), and `check_fixture_of` verified both.
    assert_eq!(pack_layouts(&fixture_dir_v7()), vec![2]);
    assert_eq!(pack_layouts(&store), vec![2, 3]);
}

/// The layouts of the pack frames of a store's segments (a body's last field, a small
/// integer: its last byte).
fn pack_layouts(store: &Path) -> Vec<u8> {
    use model_archive::format::frame::{FrameHeader, FrameKind, SEGMENT_HEADER_LEN};
    let mut layouts = std::collections::BTreeSet::new();
    for seg in std::fs::read_dir(store.join("segments")).expect("segments") {
        let bytes = std::fs::read(seg.expect("segment").path()).expect("read");
        let mut at = SEGMENT_HEADER_LEN;
        while let Some(h) = bytes.get(at..).and_then(|b| FrameHeader::decode(b).ok()) {
            if h.kind == FrameKind::Pack {
                let from = at + h.payload_off as usize;
                let payload = &bytes[from..from + h.payload_len as usize];
                let body = match h.codec {
                    Codec::Raw => payload.to_vec(),
                    _ => zstd::decode_all(payload).expect("zstd"),
                };
                layouts.insert(*body.last().expect("a body"));
            }
            at += h.frame_len() as usize;
        }
    }
    layouts.into_iter().collect()
}

/// A migrated v4, v5 or v6 fixture (tagged `fixture=<version>`) read back bit-exact, written to
/// by this version, and read back again.
fn check_fixture_of(store: &Path, hashes: &[(String, String)], version: &str) {
    let a = Archive::open(store).expect("open the migrated fixture");
    let by_name = by_name(hashes);
    for i in 0..100u32 {
        check_packed(&a, &by_name, i);
    }
    let strings = a.resolve(by_name["strings"]).expect("strings");
    let Object::Tensor(t) = a.get(&strings).expect("get") else {
        panic!("strings")
    };
    assert_eq!((t.dtype, t.shape.dims()), (Dtype::Str(3), &[2u64][..]));
    let kept = a.resolve(by_name["kept"]).expect("kept");
    assert_eq!(
        a.get(&kept).expect("get"),
        Object::Record(kept_record(strings))
    );
    let q = |q: &str| {
        let q = model_archive::query::Query::parse(q).expect("q");
        a.query(&q).count()
    };
    assert_eq!(q(&format!("fixture = \"{version}\" and run = \"r1\"")), 33);
    // Written again by this version, in its layout: the same addresses, one object each.
    let before = a.stats().expect("stats").objects;
    let again: std::collections::HashMap<String, String> =
        put_packed(&a, "now").into_iter().collect();
    for (name, hash) in &again {
        assert_eq!(by_name[name.as_str()], hash, "{name}");
    }
    let mut w = a.writer();
    assert_eq!(
        w.put_record(&kept_record(strings), &[("fixture", "now")])
            .expect("kept again"),
        kept
    );
    w.commit().expect("commit");
    drop(w);
    assert_eq!(a.stats().expect("stats").objects, before);
    drop(a);
    let a = Archive::open(store).expect("reopen");
    assert!(a.verify(&|_, _| {}).expect("verify").is_ok());
    for i in 0..100u32 {
        check_packed(&a, &by_name, i);
    }
    let q = model_archive::query::Query::parse("fixture = \"now\" and run = \"r1\"").expect("q");
    assert_eq!(a.query(&q).count(), 33);
    check_objects(&a, &by_name);
}

/// A copy of the frozen store of schema `version` in `dir`, migrated: it asks for a
/// migration, takes `steps` steps to the current version and verifies. The store and its
/// (name, hash) list.
fn migrated_copy(
    dir: &Path,
    write: fn(&Path) -> Vec<(String, String)>,
    version: u16,
    steps: usize,
) -> (tempfile::TempDir, PathBuf, Vec<(String, String)>) {
    let (tmp, store, hashes) = fixture_copy(dir, write);
    match Archive::open(&store) {
        Err(model_archive::Error::NeedsMigration { found, .. }) if found == version => {}
        other => panic!(
            "a v{version} store must ask for a migration, got {:?}",
            other.err()
        ),
    }
    let report = model_archive::migrate::migrate(&store).expect("migrate");
    let current = model_archive::format::version::SCHEMA_VERSION;
    assert_eq!(
        (report.from, report.to, report.steps.len()),
        (version, current, steps)
    );
    let a = Archive::open(&store).expect("open the migrated fixture");
    assert!(a.verify(&|_, _| {}).expect("verify").is_ok());
    (tmp, store, hashes)
}

/// A fixture's (name, hash) list as a map.
fn by_name(hashes: &[(String, String)]) -> std::collections::HashMap<&str, &str> {
    hashes
        .iter()
        .map(|(n, h)| (n.as_str(), h.as_str()))
        .collect()
}

/// The v1-style objects of `put_objects`, read back bit-exact.
fn check_objects(a: &Archive, by_name: &std::collections::HashMap<&str, &str>) {
    for (name, how) in OBJECTS {
        let h = a.resolve(by_name[name]).expect("v1-style object");
        let file = how.split(' ').next().expect("file");
        if let Object::Tensor(t) = a.get(&h).expect("get") {
            assert_eq!(t.data, sample_tensor(file).2, "{name}");
        }
    }
}

/// Record `i` of `put_packed` and the tensor it refers to, read back bit-exact.
fn check_packed(a: &Archive, by_name: &std::collections::HashMap<&str, &str>, i: u32) {
    let rec_hash = a
        .resolve(by_name[format!("record-{i:03}").as_str()])
        .expect("record");
    let Object::Record(rec) = a.get(&rec_hash).expect("get record") else {
        panic!("record {i}")
    };
    assert_eq!(
        rec.get("id"),
        Some(&model_archive::Value::Str(format!("item-{i:03}")))
    );
    let probs = a
        .resolve(by_name[format!("probs-{i:03}").as_str()])
        .expect("probs");
    assert_eq!(rec.get("probs"), Some(&model_archive::Value::Ref(probs)));
    let Object::Tensor(t) = a.get(&probs).expect("tensor") else {
        panic!("tensor {i}")
    };
    let want: Vec<u8> = (0..10u32)
        .flat_map(|j| ((i * 10 + j) as f32 / 1000.0).to_le_bytes())
        .collect();
    assert_eq!(t.data, want);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read fixture") {
        let e = e.expect("entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).expect("copy");
        }
    }
}

/// A scratch copy of the fixture store in `dir`, and its (name, hash) list. A missing fixture
/// is written by `write` only under `UPDATE_FIXTURES=1`: fixtures are frozen once released.
fn fixture_copy(
    dir: &Path,
    write: fn(&Path) -> Vec<(String, String)>,
) -> (tempfile::TempDir, PathBuf, Vec<(String, String)>) {
    let hashes_file = dir.join("hashes.json");
    if !dir.join("ARCHIVE").exists() {
        assert!(
            std::env::var_os("UPDATE_FIXTURES").is_some(),
            "{} is missing",
            dir.display()
        );
        let hashes = write(dir);
        std::fs::write(
            &hashes_file,
            serde_json::to_vec_pretty(&hashes).expect("json"),
        )
        .expect("write");
    }
    let hashes: Vec<(String, String)> =
        serde_json::from_slice(&std::fs::read(&hashes_file).expect("hashes.json")).expect("json");
    let tmp = tempfile::tempdir().expect("tmp");
    let store = tmp.path().join("store");
    copy_dir(dir, &store);
    (tmp, store, hashes)
}

#[test]
fn v1_fixture_store_opens_and_reads_back_bit_exact() {
    let (_tmp, store, hashes) = fixture_copy(&fixture_dir(), write_fixture);
    // v1 stores open after `migrate` (schema v2 added pack frames and a new index layout).
    match Archive::open(&store) {
        Err(model_archive::Error::NeedsMigration { found: 1, .. }) => {}
        other => panic!("a v1 store must ask for a migration, got {:?}", other.err()),
    }
    let report = model_archive::migrate::migrate(&store).expect("migrate");
    let current = model_archive::format::version::SCHEMA_VERSION;
    assert_eq!(
        (report.from, report.to, report.steps.len()),
        (1, current, 7)
    );
    let again = model_archive::migrate::migrate(&store).expect("migrate again");
    assert!(again.steps.is_empty(), "a current store needs no step");
    let a = Archive::open(&store).expect("open the migrated v1 fixture");
    assert!(a.verify(&|_, _| {}).expect("verify").is_ok());
    let stats = a.stats().expect("stats");
    assert_eq!(
        (stats.objects, stats.entries),
        (6, 6),
        "5 logged objects + the categorical's codes"
    );
    for (name, hash) in &hashes {
        let h = a.resolve(hash).expect("hash in fixture");
        let (_, how) = OBJECTS
            .iter()
            .find(|(n, _)| n == name)
            .expect("known object");
        let file = how.split(' ').next().expect("file");
        match a.get(&h).expect("get") {
            Object::Tensor(t) => {
                let (dtype, shape, data): (Dtype, Shape, Vec<u8>) = sample_tensor(file);
                assert_eq!((t.dtype, t.shape, t.data), (dtype, shape, data), "{name}");
            }
            Object::Text(s) => assert_eq!(s, std::fs::read_to_string(sample(file)).expect("t")),
            Object::Categorical(c) => {
                assert_eq!(c.labels.len(), 10);
                let Object::Tensor(codes) = a.get(&c.codes).expect("codes") else {
                    panic!("codes")
                };
                assert_eq!(codes.data, sample_tensor(file).2);
            }
            other => panic!("{name}: unexpected {other:?}"),
        }
        assert!(!a.entries_of(&h).expect("entries").is_empty());
    }
    // The migrated store takes v2 writes beside its v1 frames: small objects go into packs.
    let small = a
        .put_text("after the migration", &[("fixture", "v2")])
        .expect("put");
    drop(a);
    let a = Archive::open(&store).expect("reopen");
    assert_eq!(
        a.get(&small).expect("get"),
        Object::Text("after the migration".into())
    );
    assert_eq!(a.stats().expect("stats").entries, 7);
    let tagged = model_archive::query::Query::parse("fixture = \"v1\"").expect("query");
    assert_eq!(a.query(&tagged).count(), 5);
    assert!(a.verify(&|_, _| {}).expect("verify").is_ok());
}
