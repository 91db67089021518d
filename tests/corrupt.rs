//! Damaged bytes on disk: `get` reports `Corrupt` with path and offset, never wrong data;
//! `verify` names exactly the damaged objects; the rest stays readable.

use model_archive::{Archive, Codec, Dtype, Error, PutOptions, Shape, TensorView};

use crate::util::{TempStore, noise};

fn flip(path: &std::path::Path, at: u64) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[at as usize] ^= 0x01;
    std::fs::write(path, bytes).expect("write");
}

#[test]
fn a_flipped_payload_byte_is_reported_never_served() {
    for codec in [Codec::Raw, Codec::Zstd, Codec::ShuffleZstd] {
        let t = TempStore::new();
        let a = t.create();
        let opts = PutOptions {
            codec: Some(codec),
            level: None,
        };
        let data = noise(4000, 3);
        let shape = Shape::new(vec![1000]);
        let bad = a
            .put_tensor_with(
                &TensorView::new(Dtype::F32, &shape, &data).expect("v"),
                &[],
                &opts,
            )
            .expect("put");
        let good = a.put_text("undamaged", &[]).expect("put");
        let info = a.info(&bad).expect("info");
        let next = a.info(&good).expect("info").offset;
        drop(a);
        // Flip a byte in the middle of the payload, which ends at most 7 bytes before the
        // next frame.
        let seg = t.segments()[0].clone();
        flip(&seg, next - 8 - info.stored_len / 2);
        let a = Archive::open(t.path()).expect("open");
        match a.get(&bad) {
            Err(Error::Corrupt { path, offset, .. }) => {
                assert_eq!((path, offset), (seg.clone(), info.offset), "{codec}");
            }
            other => panic!("{codec}: expected Corrupt, got {other:?}"),
        }
        assert!(matches!(a.map(&bad), Err(Error::Corrupt { .. })));
        assert!(a.get(&good).is_ok());
        let report = a.verify(&|_, _| {}).expect("verify");
        let damaged: Vec<_> = report.problems.iter().filter_map(|p| p.hash).collect();
        assert_eq!(damaged, vec![bad], "{codec}: {:?}", report.problems);
    }
}

#[test]
fn a_flipped_header_or_metadata_byte_costs_that_frame_alone() {
    for delta in [10u64, 70] {
        let t = TempStore::new();
        let a = t.create();
        let first = a.put_text("first", &[]).expect("put");
        let middle = a.put_text("middle", &[("k", "v")]).expect("put");
        let last = a.put_text("last", &[]).expect("put");
        let at = a.info(&middle).expect("info").offset + delta;
        drop(a);
        flip(&t.segments()[0], at);
        std::fs::remove_dir_all(t.path().join("index")).expect("drop index");
        let a = Archive::open(t.path()).expect("open");
        assert!(
            a.get(&first).is_ok() && a.get(&last).is_ok(),
            "delta {delta}"
        );
        assert!(
            matches!(a.get(&middle), Err(Error::NotFound(_))),
            "delta {delta}"
        );
        let report = a.verify(&|_, _| {}).expect("verify");
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert!(
            !a.warnings().is_empty(),
            "opening reports the damaged frame"
        );
    }
}

#[test]
fn a_newer_store_is_refused_clearly() {
    let t = TempStore::new();
    drop(t.create());
    let header = t.path().join("ARCHIVE");
    let mut bytes = std::fs::read(&header).expect("read");
    bytes[8] = 9;
    std::fs::write(&header, bytes).expect("write");
    match Archive::open(t.path()) {
        Err(e @ Error::TooNew { found: 9, .. }) => assert!(e.to_string().contains("newer")),
        other => panic!("expected TooNew, got {:?}", other.err()),
    }
}

#[test]
fn a_damaged_store_header_is_corrupt_not_a_panic() {
    let t = TempStore::new();
    drop(t.create());
    let header = t.path().join("ARCHIVE");
    let good = std::fs::read(&header).expect("read");
    for at in [0usize, 13, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x40;
        std::fs::write(&header, &bad).expect("write");
        assert!(
            matches!(Archive::open(t.path()), Err(Error::Corrupt { .. })),
            "byte {at}"
        );
    }
    std::fs::write(&header, &good[..5]).expect("write");
    assert!(matches!(
        Archive::open(t.path()),
        Err(Error::Corrupt { .. })
    ));
}
