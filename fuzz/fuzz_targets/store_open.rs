//! A store whose one segment holds arbitrary bytes (after a valid segment header unless the
//! input brings its own): opening never panics, and every object `get` serves hashes back to
//! its address (nothing corrupt is ever served). Covers the segment scan, torn-tail cutting,
//! indexing and verified reads, which are private: this is their only way in.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use model_archive::format::frame::{SEGMENT_MAGIC, SegmentHeader};
use model_archive::{Archive, ObjectHash};

/// A store's `ARCHIVE` file, made once.
fn store_header() -> &'static [u8] {
    static HEADER: OnceLock<Vec<u8>> = OnceLock::new();
    HEADER.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(Archive::create(dir.path().join("s")).expect("create"));
        std::fs::read(dir.path().join("s/ARCHIVE")).expect("read header")
    })
}

fn scratch() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir_in(scratch()).expect("tempdir");
    let store = dir.path().join("s");
    std::fs::create_dir_all(store.join("segments")).expect("mkdir");
    std::fs::write(store.join("ARCHIVE"), store_header()).expect("header");
    let mut seg = Vec::new();
    if !data.starts_with(&SEGMENT_MAGIC) {
        let h = SegmentHeader {
            version: 1,
            writer_id: 1,
            seq: 0,
            created_ns: 0,
        };
        seg.extend_from_slice(&h.encode());
    }
    seg.extend_from_slice(data);
    std::fs::write(store.join("segments/0000000000000001-000000.seg"), &seg).expect("seg");
    let Ok(archive) = Archive::open(&store) else {
        return;
    };
    let hashes: Vec<ObjectHash> = archive
        .entries()
        .filter_map(|e| e.ok())
        .map(|e| e.hash)
        .collect();
    for h in hashes {
        if let Ok(obj) = archive.get(&h) {
            assert_eq!(
                obj.address(),
                h,
                "served data that does not hash to its address"
            );
        }
        let _ = archive.map(&h);
    }
    let _ = archive.verify(&|_, _| {});
});
