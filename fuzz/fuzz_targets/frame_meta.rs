//! Frame metadata and record payloads (msgpack) from arbitrary bytes: never a panic; what
//! decodes re-encodes to bytes that decode again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_archive::Record;
use model_archive::format::meta::FrameMeta;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = FrameMeta::decode(data) {
        let bytes = m.encode().expect("decoded metadata encodes");
        assert!(FrameMeta::decode(&bytes).is_ok());
    }
    if let Ok(r) = Record::from_msgpack("fuzz", data) {
        let again = Record::from_msgpack("fuzz", &r.to_msgpack());
        assert!(again.is_ok(), "{again:?}");
    }
});
