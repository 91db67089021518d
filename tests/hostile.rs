//! Hostile and foreign bytes in a store: lengths that lie, frames inside payloads, files that
//! are not ours, frames of a newer schema. Nothing is allocated for a length the stored bytes
//! do not back, and recovery never destroys what it cannot prove is its own torn write.

use std::path::{Path, PathBuf};

use model_archive::codec::CHUNK_SIZE;
use model_archive::format::frame::{SEGMENT_HEADER_LEN, SegmentHeader};
use model_archive::format::meta::{FrameMeta, ObjectMeta};
use model_archive::{Archive, Codec, Error, Kind, Object, ObjectHash, PutOptions};

use crate::hostile_common::{frame_bytes, hostile_rounds};
use crate::reliability_common::archive_bin;
use crate::util::{TempStore, noise};

/// A new segment file in `store` holding `frames` laid out by `frame_at(start)`.
fn write_segment(store: &Path, name: &str, frame: impl Fn(u64) -> Vec<u8>) -> PathBuf {
    let header = SegmentHeader {
        version: 2,
        writer_id: 0xfeed,
        seq: 0,
        created_ns: 1,
    };
    let mut bytes = header.encode().to_vec();
    bytes.extend(frame(SEGMENT_HEADER_LEN as u64));
    let path = store.join("segments").join(name);
    std::fs::write(&path, bytes).expect("write segment");
    path
}

/// A zstd-compressed tensor frame whose metadata claims `raw_len` decoded bytes, backed by
/// one real chunk of `CHUNK_SIZE` zeros.
fn lying_frame(start: u64, raw_len: u64) -> (ObjectHash, Vec<u8>) {
    let chunk = zstd::bulk::compress(&vec![0u8; CHUNK_SIZE], 1).expect("zstd");
    let hash = ObjectHash::from(blake3::hash(&raw_len.to_le_bytes()));
    let meta = FrameMeta {
        object: Some(ObjectMeta {
            kind: "tensor".into(),
            desc: "U8".into(),
            shape: vec![raw_len],
            raw_len,
            chunk_size: CHUNK_SIZE as u64,
            chunks: vec![chunk.len() as u64],
            level: Some(1),
        }),
        entry: None,
    };
    let bytes = frame_bytes(start, 2, Codec::Zstd, hash, &meta, &chunk);
    (hash, bytes)
}

#[test]
fn a_frame_that_claims_more_than_it_holds_is_refused_before_allocating() {
    // Issue: decode_payload zero-filled the claimed length before the chunks were checked.
    for (name, raw_len) in [("a", 1u64 << 40), ("b", 3 << 30)] {
        let t = TempStore::new();
        drop(t.create());
        let (hash, bytes) = lying_frame(SEGMENT_HEADER_LEN as u64, raw_len);
        write_segment(
            &t.path(),
            &format!("{name}000000000000000-000000.seg"),
            |_| bytes.clone(),
        );
        // Under an address-space limit of 1 GiB: a process that tried to allocate what the
        // frame claims would fail to, or be killed; it must refuse by the lengths instead.
        for args in [vec!["get", "-o", "-"], vec!["verify"]] {
            let bin = assert_cmd::cargo::cargo_bin("archive");
            let mut line = format!(
                "ulimit -v 1048576; exec '{}' --store '{}'",
                bin.display(),
                t.path().display()
            );
            for a in &args {
                line.push_str(&format!(" '{a}'"));
            }
            if args[0] == "get" {
                line = line.replace("'get'", &format!("'get' '{hash}'"));
            }
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&line)
                .output()
                .expect("run archive");
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.status.code(), Some(4), "{args:?} {raw_len}: {said}");
            assert!(
                said.contains("chunks for") && said.contains(&raw_len.to_string()),
                "{args:?} {raw_len}: {said}"
            );
        }
        // The library says the same.
        let a = t.open();
        match a.get(&hash) {
            Err(Error::Corrupt { reason, .. }) => {
                assert!(reason.contains("chunks for"), "{reason}")
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
}

#[test]
fn frames_inside_a_payload_never_become_objects_when_the_outer_metadata_is_damaged() {
    // Issue: after a bad metadata checksum the scan searched byte by byte, so a segment
    // archived as bytes could be read as frames of the store.
    let inner = TempStore::new();
    let a = inner.create();
    let mut inner_hashes = Vec::new();
    for i in 0..20u64 {
        let data = noise(300 + i as usize * 7, i);
        inner_hashes.push(
            a.put_bytes(&data, Some("application/octet-stream"), &[("run", "inner")])
                .expect("put"),
        );
    }
    let big = noise(64 << 10, 99);
    inner_hashes.push(
        a.put_bytes(&big, None, &[("run", "inner")])
            .expect("put big"),
    );
    drop(a);
    let segment = std::fs::read(&inner.segments()[0]).expect("read inner segment");

    let t = TempStore::new();
    let b = t.create();
    let raw = PutOptions {
        codec: Some(Codec::Raw),
        level: None,
    };
    let mut w = b.writer();
    w.set_options(raw);
    let outer = w
        .put_bytes(&segment, None, &[("run", "outer")])
        .expect("put segment");
    w.commit().expect("commit");
    drop(w);
    let kept = b.put_text("after the archived segment", &[]).expect("put");
    let outer_at = b.info(&outer).expect("info").offset;
    drop(b);
    // Damage the outer frame's metadata: its header (and so its lengths) stays good.
    let seg = t.segments()[0].clone();
    let mut bytes = std::fs::read(&seg).expect("read");
    bytes[outer_at as usize + 64 + 3] ^= 0x10;
    std::fs::write(&seg, bytes).expect("write");
    let before = std::fs::metadata(&seg).expect("meta").len();

    let mut b = Archive::open(t.path()).expect("open");
    b.reindex(&|_, _| {}).expect("reindex");
    for h in &inner_hashes {
        assert!(
            !b.contains(h).expect("contains"),
            "inner object {h} appeared"
        );
    }
    assert_eq!(b.get(&kept).expect("get").kind(), Kind::Text);
    let report = b.verify(&|_, _| {}).expect("verify");
    let offsets: Vec<u64> = report.problems.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, vec![outer_at], "{:?}", report.problems);
    assert_eq!(std::fs::metadata(&seg).expect("meta").len(), before);
}

#[test]
fn opening_never_follows_a_symlink_nor_cuts_a_file_it_did_not_write() {
    // Issue: a symlink named like a segment was followed and its target cut to 64 bytes.
    let t = TempStore::new();
    let a = t.create();
    let h = a.put_text("ours", &[]).expect("put");
    drop(a);
    let outside = t.dir.path().join("precious.txt");
    let precious = noise(1157, 7);
    std::fs::write(&outside, &precious).expect("write");
    let link = t
        .path()
        .join("segments")
        .join("0000000000000001-000000.seg");
    std::os::unix::fs::symlink(&outside, &link).expect("symlink");
    let foreign = t
        .path()
        .join("segments")
        .join("0000000000000002-000000.seg");
    let foreign_bytes = noise(900, 8);
    std::fs::write(&foreign, &foreign_bytes).expect("write");

    let a = Archive::open(t.path()).expect("open");
    let warnings = a.warnings().join("\n");
    assert!(warnings.contains("not a regular file"), "{warnings}");
    assert!(warnings.contains("left as they are"), "{warnings}");
    a.put_text("more", &[]).expect("put");
    assert_eq!(a.get(&h).expect("get").kind(), Kind::Text);
    let report = a.verify(&|_, _| {}).expect("verify");
    assert!(
        report.problems.iter().any(|p| p.path == link),
        "{:?}",
        report.problems
    );
    assert!(
        report.problems.iter().any(|p| p.path == foreign),
        "{:?}",
        report.problems
    );
    drop(a);
    t.cmd().args(["ls"]).assert().success();
    t.cmd().args(["stats"]).assert().success();
    t.cmd().args(["verify"]).assert().code(4);
    assert_eq!(std::fs::read(&outside).expect("read"), precious);
    assert_eq!(std::fs::read(&foreign).expect("read"), foreign_bytes);
}

#[test]
fn a_frame_of_a_newer_schema_is_left_whole_and_reported() {
    // Issue: a valid frame of a newer schema version was cut as a torn tail.
    let t = TempStore::new();
    let a = t.create();
    let h = a.put_text("before the newer frame", &[]).expect("put");
    drop(a);
    let seg = t.segments()[0].clone();
    let mut bytes = std::fs::read(&seg).expect("read");
    let start = bytes.len() as u64;
    let text = "written by a newer program";
    let (payload, hash) = (text.as_bytes(), Object::Text(text.into()).address());
    let meta = FrameMeta {
        object: Some(ObjectMeta {
            kind: "text".into(),
            raw_len: payload.len() as u64,
            ..ObjectMeta::default()
        }),
        entry: None,
    };
    let newer = model_archive::format::version::SCHEMA_VERSION + 1;
    bytes.extend(frame_bytes(start, newer, Codec::Raw, hash, &meta, payload));
    std::fs::write(&seg, &bytes).expect("write");

    let a = Archive::open(t.path()).expect("open");
    let warnings = a.warnings().join("\n");
    assert!(warnings.contains(&format!("schema v{newer}")), "{warnings}");
    assert_eq!(a.get(&h).expect("get").kind(), Kind::Text);
    let report = a.verify(&|_, _| {}).expect("verify");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.offset == start && p.reason.contains(&format!("v{newer}"))),
        "{:?}",
        report.problems
    );
    drop(a);
    t.cmd().args(["verify"]).assert().code(4);
    assert_eq!(
        std::fs::read(&seg).expect("read"),
        bytes,
        "the newer frame was changed"
    );
}

/// A store of small (packed) objects, with their hashes, and its lookup tables.
fn packed_store(t: &TempStore) -> (Vec<ObjectHash>, Vec<PathBuf>) {
    let a = t.create();
    let mut w = a.writer();
    let hashes: Vec<ObjectHash> = (0..300)
        .map(|i| {
            w.put_text(&format!("packed output {i}"), &[("run", "r")])
                .expect("put")
        })
        .collect();
    w.commit().expect("commit");
    drop(w);
    drop(a);
    let mut tables: Vec<PathBuf> = std::fs::read_dir(t.path().join("index").join("lookup"))
        .expect("lookup dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tbl"))
        .collect();
    tables.sort();
    assert!(!tables.is_empty());
    (hashes, tables)
}

fn all_found(a: &Archive, hashes: &[ObjectHash]) {
    for h in hashes {
        assert_eq!(a.get(h).expect("get").kind(), Kind::Text);
    }
    let report = a.verify(&|_, _| {}).expect("verify");
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[test]
fn a_damaged_lookup_table_is_rebuilt_on_open() {
    // Issue: a flipped or truncated table made packed objects "not found" until `reindex`.
    for damage in ["flip", "truncate", "not a directory"] {
        let t = TempStore::new();
        let (hashes, tables) = packed_store(&t);
        let table = &tables[0];
        match damage {
            "flip" => {
                let mut bytes = std::fs::read(table).expect("read");
                let at = bytes.len() - 5;
                bytes[at] ^= 0x40;
                std::fs::write(table, bytes).expect("write");
            }
            "truncate" => {
                let len = std::fs::metadata(table).expect("meta").len();
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(table)
                    .expect("open");
                f.set_len(len - 24).expect("truncate");
            }
            _ => {
                let dir = t.path().join("index").join("lookup");
                std::fs::remove_dir_all(&dir).expect("remove");
                std::fs::write(&dir, b"not a directory").expect("write");
            }
        }
        let a = Archive::open(t.path()).expect("open");
        let warnings = a.warnings().join("\n");
        assert!(
            warnings.contains("damaged index rebuilt"),
            "{damage}: {warnings}"
        );
        all_found(&a, &hashes);
        drop(a);
        // The command line heals it the same way, and the lock-free reader then finds all.
        t.cmd().args(["ls"]).assert().success();
        let reader = model_archive::ArchiveReader::open(t.path())
            .expect("reader")
            .expect("tables");
        assert!(hashes.iter().all(|h| reader.contains(h)), "{damage}");
    }
}

#[test]
fn verify_names_index_damage_as_index_damage() {
    // Issue: a damaged table made verify say "all good", or blame a healthy segment.
    let t = TempStore::new();
    let (hashes, tables) = packed_store(&t);
    let a = Archive::open(t.path()).expect("open");
    // Replace a table by a damaged copy while the store is open (a new file, so the open
    // maps stay as they were).
    let mut bytes = std::fs::read(&tables[0]).expect("read");
    let at = bytes.len() - 3;
    bytes[at] ^= 0x01;
    let tmp = tables[0].with_extension("new");
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, &tables[0]).expect("rename");
    let report = a.verify(&|_, _| {}).expect("verify");
    assert!(!report.is_ok());
    for p in &report.problems {
        assert!(p.reason.starts_with("index damage"), "{p:?}");
        assert_eq!(p.path, t.path().join("index"), "{p:?}");
    }
    drop(a);
    let a = Archive::open(t.path()).expect("reopen");
    all_found(&a, &hashes);
}

/// The store's sled index, opened directly once the archive let go of it (sled lets go of its
/// lock a moment after the archive dropped it, as Index::open knows: up to 3 s).
fn index_db(t: &TempStore) -> sled::Db {
    (0..300)
        .find_map(|_| {
            let config = sled::Config::new()
                .path(t.path().join("index"))
                .segment_size(model_archive::SLED_SEGMENT);
            match config.open() {
                Err(e) if e.to_string().contains("could not acquire lock") => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    None
                }
                other => Some(other),
            }
        })
        .expect("sled let go of its lock within 3 s")
        .expect("sled")
}

#[test]
fn an_index_an_older_version_wrote_is_rebuilt_with_a_warning_that_says_so() {
    let t = TempStore::new();
    let a = t.create();
    let h = a.put_text("kept", &[("run", "a")]).expect("put");
    drop(a);
    {
        let db = index_db(&t);
        db.insert(b"v", &6u32.to_be_bytes()[..]).expect("insert");
        db.flush().expect("flush");
    }
    let a = Archive::open(t.path()).expect("open");
    let w = a.warnings().join("\n");
    assert!(
        w.contains("index rebuilt from the segments for this version") && w.contains("layout 6"),
        "{w}"
    );
    assert!(!w.contains("damaged"), "{w}");
    let q = a.parse_query("run = a").expect("query");
    let found: Vec<_> = a.query(&q).map(|e| e.expect("entry").hash).collect();
    assert_eq!(found, [h]);
}

#[test]
fn verify_finds_totals_that_disagree_with_the_store() {
    // `stats` reads totals the index keeps; a wrong one is index damage, and a rebuild of the
    // index from the segments brings the right one back.
    let t = TempStore::new();
    let a = t.create();
    for i in 0..5 {
        a.put_text(&format!("text {i}"), &[("run", "a")])
            .expect("put");
    }
    let right = a.stats().expect("stats");
    drop(a);
    {
        let db = index_db(&t);
        let bytes = db.get(b"k").expect("get").expect("totals are kept");
        let mut totals: model_archive::totals::Totals =
            rmp_serde::from_slice(&bytes).expect("decode");
        assert_eq!(totals.entries, 5);
        totals.entries += 3;
        db.insert(b"k", rmp_serde::to_vec(&totals).expect("encode"))
            .expect("insert");
        db.flush().expect("flush");
    }
    let mut a = Archive::open(t.path()).expect("open");
    assert_eq!(a.stats().expect("stats").entries, 8);
    let report = a.verify(&|_, _| {}).expect("verify");
    let p = report
        .problems
        .iter()
        .find(|p| p.reason.contains("the totals say"))
        .expect("the wrong totals are reported");
    assert!(p.reason.starts_with("index damage"), "{p:?}");
    assert!(p.reason.contains("8 entries"), "{p:?}");
    a.reindex(&|_, _| {}).expect("reindex");
    let healed = a.stats().expect("stats");
    assert_eq!(healed.entries, right.entries);
    assert_eq!(healed.objects, right.objects);
    assert!(a.verify(&|_, _| {}).expect("verify").is_ok());
}

/// Issue 10's findings tried again, each kind twice with fresh random sizes and names, through
/// the `archive` command (the reliability report runs many more rounds).
#[test]
fn issue_10_findings_hold_round_after_round() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = hostile_rounds(&archive_bin(), dir.path(), 2, 0x10);
    assert_eq!(h.first_failure, None);
    assert_eq!(
        [h.symlinks, h.newer_frames, h.deep_queries, h.relogs],
        [(2, 2); 4]
    );
}
