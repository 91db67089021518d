//! The query parser on arbitrary text: a query or an error naming the column, never a panic;
//! a parsed query evaluates without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_archive::query::Query;
use model_archive::{EntryInfo, ObjectHash};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(q) = Query::parse(text) {
        let e = EntryInfo {
            seq: 0,
            time_ns: 1_700_000_000_000_000_000,
            hash: ObjectHash([0x5a; 32]),
            tags: vec![("run".into(), "exp1".into()), ("step".into(), "12".into())],
        };
        let _ = q.matches(&e, None);
    }
});
