//! The pickle reader on arbitrary bytes (plain, or inflated from zlib or gzip): an error or a
//! document, never a panic, an abort or a call of anything.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_archive::interop::{Format, pickle, read, write};

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = pickle::read("fuzz", data) {
        // What was read can be written as msgpack.
        let _ = write(Format::MsgpackNumpy, "fuzz", &doc);
    }
    let _ = read(Format::Pickle, "fuzz", data);
});
