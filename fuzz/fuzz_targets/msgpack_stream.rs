//! The msgpack stream reader of `archive log`, fed arbitrary bytes cut at an arbitrary point:
//! each call gives a value and its length, "not yet", or an error, and never reads past the
//! bytes it was given. As the logger does, each value is first offered to the one-pass record
//! reader (`msgpack_record`); whatever it reads, the general reader reads too, to the same
//! length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_archive::interop::msgpack_numpy::read_one;
use model_archive::interop::msgpack_record::read_record;

fuzz_target!(|data: &[u8]| {
    let tag_fields = ["id".to_owned(), "a".to_owned()];
    let mut rest = data;
    while !rest.is_empty() {
        let fast = read_record(rest, &tag_fields).map(|r| r.used);
        match read_one("fuzz", rest) {
            Ok(Some((_, used))) => {
                assert!(used > 0 && used <= rest.len());
                assert!(fast.is_none_or(|f| f == used));
                rest = &rest[used..];
            }
            Ok(None) | Err(_) => {
                assert!(fast.is_none());
                break;
            }
        }
    }
});
