//! Decompression of hostile chunks: never a panic, never more than the declared raw length.
//! First byte: codec; second: element size; next 3: declared raw length (bounded to 4 MiB);
//! the rest is split into chunks at 0xFF 0xFE markers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_archive::Codec;
use model_archive::codec::decode_chunks;

fuzz_target!(|data: &[u8]| {
    let [c, elem, a, b, d, rest @ ..] = data else {
        return;
    };
    let Some(codec) = Codec::from_code(c % 3) else {
        return;
    };
    let raw_len = (usize::from(*a) | usize::from(*b) << 8 | usize::from(*d) << 16) % (4 << 20);
    let chunks: Vec<&[u8]> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split(|x| *x == 0xfe).collect()
    };
    let mut out = vec![0u8; raw_len];
    let _ = decode_chunks(codec, usize::from(elem % 17), &chunks, &mut out);
    assert_eq!(out.len(), raw_len);
});
