//! Payload codecs: `raw` (memory-mappable), `zstd`, and `zstd` over a byte shuffle. Compressed
//! payloads are cut in independently compressed chunks of `CHUNK_SIZE` raw bytes, so that puts
//! and gets use every core and a bounded amount of memory per task.

pub mod shuffle;

use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;

use rayon::prelude::*;

use crate::error::{Error, Result};

/// Raw bytes per compressed chunk. A multiple of every element size (16 at most), so a chunk
/// never splits an element and each chunk shuffles on its own.
pub const CHUNK_SIZE: usize = 1 << 20;

/// Payloads smaller than this are kept raw by the default codec: zstd's frame overhead leaves
/// little to gain, and the attempt costs more than the write.
pub const MIN_COMPRESS_LEN: usize = 256;

/// Compression must save at least this fraction of the bytes, or the payload is kept raw
/// (where it can be memory-mapped).
pub const MIN_SAVING: f64 = 0.10;

/// How a payload is stored. The number is its byte in the frame header (FORMAT.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// Stored as is; raw tensors can be memory-mapped with zero copies.
    Raw = 0,
    /// zstd, chunk by chunk.
    Zstd = 1,
    /// Byte shuffle of each chunk, then zstd.
    ShuffleZstd = 2,
}

impl Codec {
    /// The codec from its frame-header byte.
    pub fn from_code(code: u8) -> Option<Codec> {
        match code {
            0 => Some(Codec::Raw),
            1 => Some(Codec::Zstd),
            2 => Some(Codec::ShuffleZstd),
            _ => None,
        }
    }

    /// The name shown to people and taken by `--codec`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Raw => "raw",
            Codec::Zstd => "zstd",
            Codec::ShuffleZstd => "shuffle-zstd",
        }
    }

    /// The zstd level used when none is given: 1 behind a shuffle (higher levels add time
    /// and almost nothing else on float outputs), 3 (zstd's own default) otherwise.
    pub fn default_level(self) -> i32 {
        match self {
            Codec::ShuffleZstd => 1,
            _ => 3,
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Codec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "raw" => Ok(Codec::Raw),
            "zstd" => Ok(Codec::Zstd),
            "shuffle-zstd" | "shuffle" => Ok(Codec::ShuffleZstd),
            _ => Err(Error::invalid(
                s,
                "unknown codec; expected raw, zstd or shuffle-zstd",
            )),
        }
    }
}

/// An encoded payload: either the input itself (raw) or its compressed chunks.
#[derive(Debug)]
pub enum Encoded<'a> {
    /// The payload as is.
    Raw(&'a [u8]),
    /// Compressed chunks, in order; chunk `i` holds raw bytes `i*CHUNK_SIZE..`.
    Chunks {
        /// `Zstd` or `ShuffleZstd`.
        codec: Codec,
        /// The compressed bytes of each chunk.
        chunks: Vec<Vec<u8>>,
    },
}

impl Encoded<'_> {
    /// The codec used.
    pub fn codec(&self) -> Codec {
        match self {
            Encoded::Raw(_) => Codec::Raw,
            Encoded::Chunks { codec, .. } => *codec,
        }
    }

    /// Stored bytes.
    pub fn stored_len(&self) -> u64 {
        match self {
            Encoded::Raw(b) => b.len() as u64,
            Encoded::Chunks { chunks, .. } => chunks.iter().map(|c| c.len() as u64).sum(),
        }
    }

    /// Stored length of each chunk (empty when raw).
    pub fn chunk_lens(&self) -> Vec<u64> {
        match self {
            Encoded::Raw(_) => Vec::new(),
            Encoded::Chunks { chunks, .. } => chunks.iter().map(|c| c.len() as u64).collect(),
        }
    }

    /// The stored bytes as slices, in order, ready to be written.
    pub fn parts(&self) -> Vec<&[u8]> {
        match self {
            Encoded::Raw(b) => vec![b],
            Encoded::Chunks { chunks, .. } => chunks.iter().map(|c| c.as_slice()).collect(),
        }
    }
}

thread_local! {
    // zstd contexts are costly to create (hundreds of KiB, tens of microseconds): each thread
    // keeps one, so a small record costs a context reset, not an allocation.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

fn zstd_compress(data: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let ctx = match &mut *slot {
            Some((l, c)) if *l == level => c,
            other => &mut other.insert((level, zstd::bulk::Compressor::new(level)?)).1,
        };
        ctx.compress(data)
    })
}

/// `data` as one zstd frame at `level` (this thread's compressor).
pub fn compress_one(data: &[u8], level: i32) -> std::result::Result<Vec<u8>, String> {
    zstd_compress(data, level).map_err(|e| format!("zstd failed: {e}"))
}

/// `f` with this thread's zstd decompressor.
fn with_decompressor<T>(
    f: impl FnOnce(&mut zstd::bulk::Decompressor<'static>) -> std::io::Result<T>,
) -> std::io::Result<T> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let ctx = match &mut *slot {
            Some(c) => c,
            other => other.insert(zstd::bulk::Decompressor::new()?),
        };
        f(ctx)
    })
}

fn zstd_decompress_to(src: &[u8], dst: &mut [u8]) -> std::io::Result<usize> {
    with_decompressor(|ctx| ctx.decompress_to_buffer(src, dst))
}

/// A payload of one zstd chunk, `len` raw bytes, decoded into a buffer of its own, written
/// once: not zero-filled first, as `zeroed` does for chunks decoded in place (a pack's body is
/// one chunk, and the fill cost as much as a fifth of its decoding).
pub fn decode_one(chunk: &[u8], len: usize) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    out.try_reserve_exact(len)
        .map_err(|_| format!("cannot allocate {len} bytes to decode"))?;
    let n = with_decompressor(|ctx| ctx.decompress_to_buffer(chunk, &mut out))
        .map_err(|e| format!("zstd chunk does not decode: {e}"))?;
    if n != len || out.len() != len {
        return Err(format!("chunk decodes to {n} bytes, expected {len}"));
    }
    Ok(out)
}

/// One zstd frame said to decode to `len` bytes, where `len` comes from the input: memory
/// grows with what the frame decodes to and never past `len`, so a lying length allocates
/// nothing for it (`decode_one` reserves `len` at once, for lengths checked before).
pub fn decode_at_most(frame: &[u8], len: usize) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::new();
    let first = len.min(frame.len().saturating_mul(64).saturating_add(1 << 16));
    out.try_reserve_exact(first)
        .map_err(|_| format!("cannot allocate {first} bytes to decode"))?;
    let decoder = zstd::stream::read::Decoder::with_buffer(frame)
        .map_err(|e| format!("zstd frame does not decode: {e}"))?;
    decoder
        .single_frame()
        .take(len as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("zstd frame does not decode: {e}"))?;
    match out.len() == len {
        true => Ok(out),
        false => Err(format!(
            "frame decodes to {} bytes, expected {len}",
            out.len()
        )),
    }
}

fn compress_chunk(codec: Codec, level: i32, elem: usize, chunk: &[u8]) -> Result<Vec<u8>> {
    let fail = |e: std::io::Error| Error::invalid("payload", format!("zstd failed: {e}"));
    match codec {
        Codec::ShuffleZstd if elem > 1 => {
            let mut shuffled = vec![0u8; chunk.len()];
            shuffle::shuffle(chunk, &mut shuffled, elem);
            zstd_compress(&shuffled, level).map_err(fail)
        }
        _ => zstd_compress(chunk, level).map_err(fail),
    }
}

/// Encode `payload` of elements of `elem` bytes. `codec: None` chooses: shuffle+zstd for
/// multi-byte elements, zstd otherwise, and raw where that saves less than `MIN_SAVING` (tried
/// on the first chunk before the rest is compressed).
pub fn encode(
    payload: &[u8],
    elem: usize,
    codec: Option<Codec>,
    level: Option<i32>,
) -> Result<Encoded<'_>> {
    let auto = codec.is_none();
    let codec = codec.unwrap_or(if elem > 1 {
        Codec::ShuffleZstd
    } else {
        Codec::Zstd
    });
    if codec == Codec::Raw || (auto && payload.len() < MIN_COMPRESS_LEN) {
        return Ok(Encoded::Raw(payload));
    }
    let level = level.unwrap_or(codec.default_level());
    let mut pieces = payload.chunks(CHUNK_SIZE);
    let Some(first) = pieces.next() else {
        return Ok(Encoded::Chunks {
            codec,
            chunks: Vec::new(),
        });
    };
    let first_out = compress_chunk(codec, level, elem, first)?;
    let pays = |stored: usize, raw: usize| (stored as f64) <= (raw as f64) * (1.0 - MIN_SAVING);
    if auto && !pays(first_out.len(), first.len()) {
        return Ok(Encoded::Raw(payload));
    }
    let rest: Vec<&[u8]> = pieces.collect();
    let mut chunks = Vec::with_capacity(rest.len() + 1);
    chunks.push(first_out);
    chunks.extend(
        rest.par_iter()
            .map(|c| compress_chunk(codec, level, elem, c))
            .collect::<Result<Vec<_>>>()?,
    );
    let enc = Encoded::Chunks { codec, chunks };
    if auto && !pays(enc.stored_len() as usize, payload.len()) {
        return Ok(Encoded::Raw(payload));
    }
    Ok(enc)
}

/// `len` zero bytes to decode into, or `None` if they cannot be allocated: `len` comes from
/// metadata, so a failed allocation is refused rather than aborting the process. Buffers of a
/// chunk or more are zeroed on every core, a page at a time: a serial `resize` of 64 MiB
/// (memset plus the first touch of every page) took as long as decoding it on two cores.
pub fn zeroed(len: usize) -> Option<Vec<u8>> {
    const PAGE: usize = 4096;
    if len < CHUNK_SIZE {
        let mut out = Vec::new();
        out.try_reserve_exact(len).ok()?;
        out.resize(len, 0);
        return Some(out);
    }
    let pages = len.div_ceil(PAGE);
    let mut out: Vec<[u8; PAGE]> = Vec::new();
    out.try_reserve_exact(pages).ok()?;
    out.par_extend((0..pages).into_par_iter().map(|_| [0u8; PAGE]));
    let mut out = out.into_flattened();
    out.truncate(len);
    Some(out)
}

/// Number of chunks a payload of `raw_len` bytes is cut into.
pub fn chunk_count(raw_len: u64) -> u64 {
    raw_len.div_ceil(CHUNK_SIZE as u64)
}

/// Check compressed `chunks` against a declared `raw_len` before anything is allocated for
/// it: one chunk per `CHUNK_SIZE` raw bytes, each a zstd frame that declares exactly its share
/// (the writer always declares it). So a length read from a file is believed only when the
/// stored chunks back it: a frame that claims 1 TiB must hold the chunks of 1 TiB. Errors are
/// a reason string; the caller adds path and offset.
pub fn check_chunks(raw_len: u64, chunks: &[&[u8]]) -> std::result::Result<(), String> {
    if chunks.len() as u64 != chunk_count(raw_len) {
        return Err(format!(
            "{} chunks for {raw_len} raw bytes, expected {}",
            chunks.len(),
            chunk_count(raw_len)
        ));
    }
    for (i, chunk) in chunks.iter().enumerate() {
        let start = i as u64 * CHUNK_SIZE as u64;
        let expected = raw_len.saturating_sub(start).min(CHUNK_SIZE as u64);
        match zstd::zstd_safe::get_frame_content_size(chunk) {
            Ok(Some(n)) if n == expected => {}
            Ok(Some(n)) => {
                return Err(format!(
                    "chunk {i} declares {n} decoded bytes, expected {expected}"
                ));
            }
            Ok(None) | Err(_) => {
                return Err(format!(
                    "chunk {i} is not a zstd frame that declares its size"
                ));
            }
        }
    }
    Ok(())
}

/// Decode compressed `chunks` (slices of the stored payload) into `out`, whose length is the
/// declared raw length. Each chunk must decompress to exactly its share of `out`: a chunk that
/// claims more is refused before it is written, so hostile input cannot make us allocate or
/// write beyond the declared size. Errors are a reason string; the caller adds path and offset.
pub fn decode_chunks(
    codec: Codec,
    elem: usize,
    chunks: &[&[u8]],
    out: &mut [u8],
) -> std::result::Result<(), String> {
    if chunks.len() as u64 != chunk_count(out.len() as u64) {
        return Err(format!(
            "{} chunks for {} raw bytes, expected {}",
            chunks.len(),
            out.len(),
            chunk_count(out.len() as u64)
        ));
    }
    out.par_chunks_mut(CHUNK_SIZE)
        .zip(chunks.par_iter())
        .try_for_each(|(dst, src)| {
            let n = match codec {
                Codec::ShuffleZstd if elem > 1 => {
                    let mut tmp = vec![0u8; dst.len()];
                    let n = zstd_decompress_to(src, &mut tmp[..])
                        .map_err(|e| format!("zstd chunk does not decode: {e}"))?;
                    shuffle::unshuffle(&tmp, dst, elem);
                    n
                }
                Codec::Raw => return Err("raw payloads have no chunks".to_string()),
                _ => zstd_decompress_to(src, dst)
                    .map_err(|e| format!("zstd chunk does not decode: {e}"))?,
            };
            if n != dst.len() {
                return Err(format!(
                    "chunk decodes to {n} bytes, expected {}",
                    dst.len()
                ));
            }
            Ok(())
        })
}

/// Decode only the bytes `range` of a chunked payload of `raw_len` bytes: the chunks that
/// overlap it, each checked as `decode_chunks` checks it. Returns the bytes and how many
/// chunks were decoded.
pub fn decode_range(
    codec: Codec,
    elem: usize,
    chunks: &[&[u8]],
    raw_len: usize,
    range: std::ops::Range<usize>,
) -> std::result::Result<(Vec<u8>, usize), String> {
    if chunks.len() as u64 != chunk_count(raw_len as u64) {
        return Err(format!("{} chunks for {raw_len} raw bytes", chunks.len()));
    }
    if range.start > range.end || range.end > raw_len {
        return Err(format!("bytes {range:?} of {raw_len}"));
    }
    if range.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let (first, last) = (range.start / CHUNK_SIZE, (range.end - 1) / CHUNK_SIZE);
    let mut out = Vec::with_capacity(range.len());
    for i in first..=last {
        let start = i * CHUNK_SIZE;
        let len = CHUNK_SIZE.min(raw_len - start);
        let mut buf = vec![0u8; len];
        let src = chunks
            .get(i)
            .ok_or_else(|| format!("chunk {i} is missing"))?;
        // One chunk of `len` bytes is a whole payload to `decode_chunks`.
        decode_chunks(codec, elem, &[src], &mut buf)?;
        let from = range.start.max(start) - start;
        let to = range.end.min(start + len) - start;
        out.extend_from_slice(buf.get(from..to).unwrap_or_default());
    }
    Ok((out, last - first + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One chunk decoded into a buffer of its own gives the bytes back; a length that is not
    /// the chunk's, or bytes that are not zstd, are refused.
    #[test]
    fn one_chunk_decodes_to_exactly_its_length() {
        let payload: Vec<u8> = (0..5000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let chunk = zstd::bulk::compress(&payload, 3).expect("compress");
        assert_eq!(decode_one(&chunk, payload.len()).expect("decode"), payload);
        for len in [0, payload.len() - 1, payload.len() + 1] {
            assert!(decode_one(&chunk, len).is_err(), "{len}");
        }
        assert!(decode_one(&payload[..100], 100).is_err());
        assert!(decode_one(&chunk[..chunk.len() / 2], payload.len()).is_err());
    }

    fn round_trip(payload: &[u8], elem: usize, codec: Option<Codec>) -> Codec {
        let enc = encode(payload, elem, codec, None).expect("encode");
        let c = enc.codec();
        let mut out = vec![0u8; payload.len()];
        match &enc {
            Encoded::Raw(b) => out.copy_from_slice(b),
            Encoded::Chunks { chunks, .. } => {
                let parts: Vec<&[u8]> = chunks.iter().map(|c| c.as_slice()).collect();
                decode_chunks(c, elem, &parts, &mut out).expect("decode");
            }
        }
        assert_eq!(out, payload);
        c
    }

    #[test]
    fn every_codec_round_trips_across_chunks() {
        let floats: Vec<u8> = (0..(CHUNK_SIZE / 4 + 1000))
            .flat_map(|i| ((i as f32).sin()).to_le_bytes())
            .collect();
        for codec in [Codec::Raw, Codec::Zstd, Codec::ShuffleZstd] {
            assert_eq!(round_trip(&floats, 4, Some(codec)), codec);
        }
    }

    #[test]
    fn auto_keeps_incompressible_data_raw() {
        // blake3's output stream is incompressible.
        let mut noise = vec![0u8; 100_000];
        blake3::Hasher::new().finalize_xof().fill(&mut noise);
        assert_eq!(round_trip(&noise, 4, None), Codec::Raw);
        let zeros = vec![0u8; 100_000];
        assert_eq!(round_trip(&zeros, 4, None), Codec::ShuffleZstd);
        assert_eq!(round_trip(&zeros, 1, None), Codec::Zstd);
        assert_eq!(round_trip(&[], 4, None), Codec::Raw);
        assert_eq!(
            round_trip(&[0u8; 200], 1, None),
            Codec::Raw,
            "too small to bother"
        );
    }

    #[test]
    fn zeroed_buffers_have_the_length_asked_for() {
        for len in [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, 3 * CHUNK_SIZE + 5] {
            let buf = zeroed(len).expect("allocate");
            assert_eq!(buf.len(), len);
            assert!(buf.iter().all(|b| *b == 0));
        }
        assert!(zeroed(usize::MAX).is_none());
    }

    #[test]
    fn a_chunk_that_claims_more_than_declared_is_refused() {
        let big = zstd::bulk::compress(&vec![1u8; 5000], 1).expect("compress");
        let mut out = vec![0u8; 100];
        assert!(decode_chunks(Codec::Zstd, 1, &[&big], &mut out).is_err());
        let mut out = vec![0u8; 10_000];
        assert!(decode_chunks(Codec::Zstd, 1, &[&big], &mut out).is_err());
    }
}
