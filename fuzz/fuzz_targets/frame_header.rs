//! Frame and segment headers from arbitrary bytes: never a panic; a header that decodes
//! re-encodes to the same header. A second pass fixes magic and checksum first, so the fuzzer
//! reaches the field checks behind them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_archive::format::checksum;
use model_archive::format::frame::{FRAME_HEADER_LEN, FRAME_MAGIC, FrameHeader, SegmentHeader};
use model_archive::format::meta::FrameMeta;

fuzz_target!(|data: &[u8]| {
    let _ = SegmentHeader::decode(data);
    let _ = FrameHeader::decode(data);
    let mut fixed = data.to_vec();
    if fixed.len() < FRAME_HEADER_LEN {
        return;
    }
    fixed[..4].copy_from_slice(&FRAME_MAGIC);
    let sum = checksum(&fixed[..FRAME_HEADER_LEN - 4]);
    fixed[FRAME_HEADER_LEN - 4..FRAME_HEADER_LEN].copy_from_slice(&sum.to_le_bytes());
    if let Ok(h) = FrameHeader::decode(&fixed) {
        assert_eq!(FrameHeader::decode(&h.encode()).as_ref(), Ok(&h));
        assert!(h.frame_len() >= u64::from(h.payload_off));
        let meta_end = (FRAME_HEADER_LEN + h.meta_len as usize).min(fixed.len());
        let _ = FrameMeta::decode(&fixed[FRAME_HEADER_LEN..meta_end]);
    }
});
