//! An object frame's payload: how it is described (`ObjectMeta`), decoded back to its raw
//! bytes, checked against its address, and built into an `Object`. Used by every read
//! (`get`, `map`, `verify`, packs, `merge`) and, for the description, by the writer.

use std::borrow::Cow;
use std::path::Path;

use crate::codec::{self, CHUNK_SIZE, Codec};
use crate::error::{Error, Result};
use crate::format::meta::ObjectMeta;
use crate::hash::ObjectHash;
use crate::object::canonical::Descriptor;
use crate::object::record::Record;
use crate::object::tensor::{Dtype, Shape, Tensor};
use crate::object::{CATEGORICAL, Categorical, Kind, Object};
use crate::segment::scan::Frame;

/// How a payload was stored, as frame metadata.
pub fn payload_meta(
    kind: &str,
    desc: &str,
    shape: &[u64],
    raw_len: usize,
    e: &codec::Encoded<'_>,
    level: Option<i32>,
) -> ObjectMeta {
    let raw = e.codec() == Codec::Raw;
    ObjectMeta {
        kind: kind.to_owned(),
        desc: desc.to_owned(),
        shape: shape.to_vec(),
        raw_len: raw_len as u64,
        chunk_size: if raw { 0 } else { CHUNK_SIZE as u64 },
        chunks: e.chunk_lens(),
        level: (!raw).then(|| level.unwrap_or(e.codec().default_level())),
    }
}

pub fn object_meta<'f>(frame: &'f Frame, path: &Path) -> Result<&'f ObjectMeta> {
    frame
        .meta
        .object
        .as_ref()
        .ok_or_else(|| Error::corrupt(path, frame.offset, "object frame without object metadata"))
}

fn descriptor(meta: &ObjectMeta) -> std::result::Result<Descriptor<'_>, String> {
    let kind = meta.kind.parse::<Kind>().map_err(|e| e.to_string())?;
    Ok(Descriptor {
        kind,
        desc: &meta.desc,
        shape: &meta.shape,
    })
}

fn elem_size(meta: &ObjectMeta) -> usize {
    if meta.kind == Kind::Tensor.name() {
        meta.desc
            .parse::<Dtype>()
            .map(|d| d.shuffle_width())
            .unwrap_or(1)
    } else {
        1
    }
}

/// Decode a payload to its raw bytes, bounded by the declared length.
pub fn decode_payload<'p>(
    frame: &Frame,
    meta: &ObjectMeta,
    payload: &'p [u8],
    path: &Path,
) -> Result<Cow<'p, [u8]>> {
    let corrupt = |reason: String| Error::corrupt(path, frame.offset, reason);
    if frame.header.codec == Codec::Raw {
        if meta.raw_len != payload.len() as u64 {
            return Err(corrupt(format!(
                "raw payload of {} bytes, metadata says {}",
                payload.len(),
                meta.raw_len
            )));
        }
        return Ok(Cow::Borrowed(payload));
    }
    let parts = chunk_parts(frame, meta, payload, path)?;
    if let ([only], Codec::Zstd) = (parts.as_slice(), frame.header.codec) {
        return codec::decode_one(only, meta.raw_len as usize)
            .map(Cow::Owned)
            .map_err(corrupt);
    }
    let mut out = codec::zeroed(meta.raw_len as usize)
        .ok_or_else(|| corrupt(format!("cannot allocate {} bytes to decode", meta.raw_len)))?;
    codec::decode_chunks(frame.header.codec, elem_size(meta), &parts, &mut out).map_err(corrupt)?;
    Ok(Cow::Owned(out))
}

/// Bytes `range` of an object's decoded payload, decoding only the chunks that hold them
/// (with how many that was). Not re-hashed: the hash covers the whole object (`verify`
/// checks it); each chunk decoded is checked against its declared size.
pub fn decode_payload_range<'p>(
    frame: &Frame,
    meta: &ObjectMeta,
    payload: &'p [u8],
    path: &Path,
    range: std::ops::Range<usize>,
) -> Result<(Cow<'p, [u8]>, usize)> {
    let corrupt = |reason: String| Error::corrupt(path, frame.offset, reason);
    if frame.header.codec == Codec::Raw {
        return payload
            .get(range.clone())
            .map(|b| (Cow::Borrowed(b), 0))
            .ok_or_else(|| {
                corrupt(format!(
                    "bytes {range:?} of a raw payload of {}",
                    payload.len()
                ))
            });
    }
    let parts = chunk_parts(frame, meta, payload, path)?;
    let (bytes, n) = codec::decode_range(
        frame.header.codec,
        elem_size(meta),
        &parts,
        meta.raw_len as usize,
        range,
    )
    .map_err(corrupt)?;
    Ok((Cow::Owned(bytes), n))
}

/// A chunked payload's chunks, every length checked against what the frame holds.
fn chunk_parts<'p>(
    frame: &Frame,
    meta: &ObjectMeta,
    payload: &'p [u8],
    path: &Path,
) -> Result<Vec<&'p [u8]>> {
    let corrupt = |reason: String| Error::corrupt(path, frame.offset, reason);
    if meta.chunk_size != CHUNK_SIZE as u64 {
        return Err(corrupt(format!(
            "unsupported chunk size {}",
            meta.chunk_size
        )));
    }
    if meta.raw_len > crate::format::frame::MAX_PAYLOAD_LEN {
        return Err(corrupt(format!("claims {} decoded bytes", meta.raw_len)));
    }
    // The chunk lengths come from the file too: nothing is allocated for them beyond what the
    // payload can hold (one byte a chunk at least).
    let mut parts = Vec::with_capacity(meta.chunks.len().min(payload.len()));
    let mut at = 0usize;
    for &len in &meta.chunks {
        let end = usize::try_from(len).ok().and_then(|l| at.checked_add(l));
        let part = end
            .and_then(|e| payload.get(at..e))
            .ok_or_else(|| corrupt("chunk lengths run past the payload".into()))?;
        parts.push(part);
        at += part.len();
    }
    if at != payload.len() {
        return Err(corrupt("chunk lengths do not add up to the payload".into()));
    }
    // Every length is checked against what the frame holds before the decoded size is
    // allocated.
    codec::check_chunks(meta.raw_len, &parts).map_err(corrupt)?;
    Ok(parts)
}

pub fn verify_hash(
    h: &ObjectHash,
    meta: &ObjectMeta,
    bytes: &[u8],
    path: &Path,
    offset: u64,
) -> Result<()> {
    let desc = descriptor(meta).map_err(|r| Error::corrupt(path, offset, r))?;
    if desc.hash(bytes) != *h {
        return Err(Error::corrupt(
            path,
            offset,
            "content does not hash back to its address",
        ));
    }
    Ok(())
}

pub fn build_object(meta: &ObjectMeta, bytes: Vec<u8>, path: &Path, offset: u64) -> Result<Object> {
    let corrupt = |reason: String| Error::corrupt(path, offset, reason);
    let kind = meta
        .kind
        .parse::<Kind>()
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(match kind {
        Kind::Tensor => {
            let dtype = meta
                .desc
                .parse::<Dtype>()
                .map_err(|e| corrupt(e.to_string()))?;
            Object::Tensor(
                Tensor::new(dtype, Shape::new(meta.shape.clone()), bytes)
                    .map_err(|e| corrupt(e.to_string()))?,
            )
        }
        Kind::Text => Object::Text(String::from_utf8(bytes).map_err(|e| corrupt(e.to_string()))?),
        Kind::Bytes => Object::Bytes {
            media_type: Some(meta.desc.clone()).filter(|d| !d.is_empty()),
            data: bytes,
        },
        Kind::Record => {
            let rec = Record::from_msgpack(&path.display().to_string(), &bytes)
                .map_err(|e| corrupt(e.to_string()))?;
            if meta.desc == CATEGORICAL {
                Object::Categorical(
                    Categorical::from_record("record", &rec).map_err(|e| corrupt(e.to_string()))?,
                )
            } else {
                Object::Record(rec)
            }
        }
    })
}
