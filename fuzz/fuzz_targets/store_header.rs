//! The `ARCHIVE` store header from arbitrary bytes: never a panic; what decodes re-encodes to
//! the same header. A second pass fixes magic, length and checksum to reach the settings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_archive::format::checksum;
use model_archive::format::store_header::{
    SETTINGS_LEN_OFFSET, SETTINGS_OFFSET, STORE_MAGIC, StoreHeader,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = StoreHeader::decode(data) {
        let bytes = h.encode().expect("a decoded header encodes");
        assert_eq!(StoreHeader::decode(&bytes), Ok(h));
    }
    if data.len() < SETTINGS_OFFSET {
        return;
    }
    let mut fixed = data.to_vec();
    fixed[..STORE_MAGIC.len()].copy_from_slice(&STORE_MAGIC);
    let len = (fixed.len() - SETTINGS_OFFSET) as u32;
    fixed[SETTINGS_LEN_OFFSET..SETTINGS_OFFSET].copy_from_slice(&len.to_le_bytes());
    let sum = checksum(&fixed);
    fixed.extend_from_slice(&sum.to_le_bytes());
    if let Ok(h) = StoreHeader::decode(&fixed) {
        let bytes = h.encode().expect("a decoded header encodes");
        assert_eq!(StoreHeader::decode(&bytes), Ok(h));
    }
});
