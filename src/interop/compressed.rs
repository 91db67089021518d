//! Compressed input, recognised by its first bytes whatever the format inside: gzip
//! (`1f 8b`), zstd (`28 b5 2f fd`) and zlib (`78` and a second byte that makes a valid zlib
//! header, as `zlib.compress` writes). Inflated with a bound, so a bomb is refused rather than
//! allocated.

use std::io::Read;

use crate::error::{Error, Result};

/// The most compressed input may inflate to.
pub const MAX_INFLATED: u64 = 16 << 30;

/// The inflated bytes of compressed input, or `None` for input that is not compressed. A
/// zlib header is two bytes that plain input can start with too (a safetensors header length
/// of 376, say): input that looks like zlib but does not inflate is taken as it is. gzip and
/// zstd magic is unmistakable, so such input that does not inflate is an error.
pub fn decompress(input: &str, bytes: &[u8]) -> Result<Option<Vec<u8>>> {
    let (reader, name): (Box<dyn Read + '_>, &str) = match bytes {
        [0x1f, 0x8b, ..] => (Box::new(flate2::read::MultiGzDecoder::new(bytes)), "gzip"),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => {
            let d = zstd::stream::read::Decoder::new(bytes).map_err(|e| Error::io(input, e))?;
            (Box::new(d), "zstd")
        }
        [0x78, b, ..] if (0x7800u16 | u16::from(*b)).is_multiple_of(31) => {
            (Box::new(flate2::read::ZlibDecoder::new(bytes)), "zlib")
        }
        _ => return Ok(None),
    };
    let mut out = Vec::new();
    match reader.take(MAX_INFLATED + 1).read_to_end(&mut out) {
        Ok(_) if out.len() as u64 > MAX_INFLATED => Err(Error::invalid(
            input,
            format!("{name}-compressed, and inflates past 16 GiB: refused"),
        )),
        Ok(_) => Ok(Some(out)),
        Err(_) if name == "zlib" => Ok(None),
        Err(e) => Err(Error::invalid(
            input,
            format!("{name}-compressed, and does not inflate: {e}"),
        )),
    }
}

/// A compression a file name can ask for by its suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// `.gz`
    Gzip,
    /// `.zst`, `.zstd`
    Zstd,
    /// `.zlib`, `.z` (as Python's `zlib.compress` writes)
    Zlib,
}

const SUFFIXES: [(&str, Compression); 5] = [
    (".gz", Compression::Gzip),
    (".zst", Compression::Zstd),
    (".zstd", Compression::Zstd),
    (".zlib", Compression::Zlib),
    (".z", Compression::Zlib),
];

/// The file name without a compression suffix (`.gz`, `.zst`, `.zstd`, `.zlib`, `.z`), so
/// that `preds.npy.gz` is read as `.npy`, and the compression the suffix names.
pub fn split_suffix(name: &str) -> (&str, Option<Compression>) {
    for (suffix, c) in SUFFIXES {
        if name.len() > suffix.len()
            && name
                .get(name.len() - suffix.len()..)
                .is_some_and(|s| s.eq_ignore_ascii_case(suffix))
        {
            return (
                name.get(..name.len() - suffix.len()).unwrap_or(name),
                Some(c),
            );
        }
    }
    (name, None)
}

/// The file name without a compression suffix (see `split_suffix`).
pub fn strip_suffix(name: &str) -> &str {
    split_suffix(name).0
}

/// `bytes` compressed as `c`, in a form `decompress` (and gzip, zstd, Python's zlib) reads.
pub fn compress(bytes: &[u8], c: Compression) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    match c {
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(bytes)?;
            e.finish()
        }
        Compression::Zstd => zstd::encode_all(bytes, 3),
        Compression::Zlib => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(bytes)?;
            e.finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_inflates_and_plain_input_passes() {
        use std::io::Write;
        let plain = b"plain bytes".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).expect("gz");
        let gz = gz.finish().expect("gz");
        let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zl.write_all(&plain).expect("zlib");
        let zl = zl.finish().expect("zlib");
        let zs = zstd::encode_all(&plain[..], 1).expect("zstd");
        for c in [&gz, &zl, &zs] {
            assert_eq!(decompress("t", c).expect("inflate"), Some(plain.clone()));
        }
        assert_eq!(decompress("t", &plain).expect("plain"), None);
        // Looks like zlib, is not: taken as it is. Looks like gzip, is not: an error.
        assert_eq!(decompress("t", &[0x78, 0x01, 0, 0]).expect("raw"), None);
        assert!(decompress("t", &[0x1f, 0x8b, 1, 2]).is_err());
        assert_eq!(strip_suffix("a.npy.GZ"), "a.npy");
        assert_eq!(strip_suffix("a.npy"), "a.npy");
        assert_eq!(strip_suffix(".gz"), ".gz");
    }
}
