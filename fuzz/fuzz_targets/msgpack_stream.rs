//! The msgpack stream reader of `archive log`, fed arbitrary bytes cut at an arbitrary point:
//! each call gives a value and its length, "not yet", or an error, and never reads past the
//! bytes it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_archive::interop::msgpack_numpy::read_one;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while !rest.is_empty() {
        match read_one("fuzz", rest) {
            Ok(Some((_, used))) => {
                assert!(used > 0 && used <= rest.len());
                rest = &rest[used..];
            }
            Ok(None) | Err(_) => break,
        }
    }
});
