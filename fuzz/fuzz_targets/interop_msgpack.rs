//! The msgpack-numpy reader (one document, and a stream of them) on arbitrary bytes: an
//! error or documents, never a panic or an abort.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_archive::interop::{Format, read, read_all, write};

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = read(Format::MsgpackNumpy, "fuzz", data) {
        let _ = write(Format::MsgpackNumpy, "fuzz", &doc);
    }
    let _ = read_all(Format::MsgpackNumpy, "fuzz", data);
});
