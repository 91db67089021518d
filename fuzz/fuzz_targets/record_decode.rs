//! A record's canonical msgpack on arbitrary bytes: the decoder and the in-place scans give an
//! error or values, never a panic; a decoded record encodes to bytes that decode to itself,
//! and the scans agree with the decoded record's paths and references.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_archive::Record;
use model_archive::object::record::{find_ref, scan_fields, scan_refs};

fuzz_target!(|data: &[u8]| {
    let _ = find_ref(data, "a.b");
    let mut paths = Vec::new();
    let scanned = scan_fields(data, &mut |p, _| paths.push(p.to_owned()));
    let mut refs = Vec::new();
    let scanned_refs = scan_refs(data, &mut |h| refs.push(h));
    if let Ok(r) = Record::from_msgpack("fuzz", data) {
        // Compared as bytes: a NaN is not equal to itself as a value.
        let bytes = r.to_msgpack();
        let again = Record::from_msgpack("again", &bytes).map(|r| r.to_msgpack());
        assert_eq!(again.ok().as_ref(), Some(&bytes));
        if scanned.is_ok() {
            assert_eq!(paths, r.paths());
        }
        if scanned_refs.is_ok() {
            assert_eq!(refs, r.refs());
        }
    }
});
