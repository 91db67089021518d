//! The safetensors reader on arbitrary bytes: an error or a document, never a panic or an abort.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_archive::interop::{Format, read};

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = read(Format::Safetensors, "fuzz", data) {
        // What was read can be written back in the same format.
        let _ = model_archive::interop::write(Format::Safetensors, "fuzz", &doc);
    }
});
