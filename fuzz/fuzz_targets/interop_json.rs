//! The json reader on arbitrary bytes: an error or a document, never a panic or an abort.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_archive::interop::{Format, read};

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = read(Format::JsonB64, "fuzz", data) {
        // What was read can be written back in the same format.
        let _ = model_archive::interop::write(Format::JsonB64, "fuzz", &doc);
    }
});
