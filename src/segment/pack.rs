//! Pack frames in segments: reading one at an offset (through the memory maps), checking it
//! against its header's hash, and a one-pack cache so that reading several items of one pack
//! decodes it once. The body's byte layout is `format::pack`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::format::frame::FrameKind;
use crate::format::pack::{PACK_KIND, Pack};
use crate::format::removal::{COMPACTION_KIND, CompactionBody, REMOVAL_KIND, RemovalBody};
use crate::hash::ObjectHash;
use crate::segment::mapped::{frame_at, header_at};
use crate::segment::payload::decode_payload;
use crate::segment::reader::Maps;
use crate::segment::scan::Frame;

/// The decoded body of a frame whose payload is a body of `kind` (a pack, a removal, a
/// compaction), checked against the hash in the frame's header: of the payload as stored in
/// frames of schema v8 on (checked before it is decoded: a third of the bytes, a pack's
/// compressed), of the decoded body in older ones.
pub fn checked_body<'p>(
    frame: &Frame,
    payload: &'p [u8],
    path: &Path,
    kind: &str,
) -> Result<std::borrow::Cow<'p, [u8]>> {
    let corrupt = |reason: String| Error::corrupt(path, frame.offset, reason);
    let meta = frame
        .meta
        .object
        .as_ref()
        .filter(|m| m.kind == kind)
        .ok_or_else(|| corrupt(format!("{kind} frame without {kind} metadata")))?;
    let stored_hash = frame.header.version >= STORED_HASH_VERSION;
    let hashes_back = |b: &[u8]| ObjectHash::from(blake3::hash(b)) == frame.header.hash;
    if stored_hash && !hashes_back(payload) {
        return Err(corrupt(format!("{kind} does not hash back to its header")));
    }
    let bytes = decode_payload(frame, meta, payload, path)?;
    if !stored_hash && !hashes_back(&bytes) {
        return Err(corrupt(format!("{kind} does not hash back to its header")));
    }
    Ok(bytes)
}

/// The first schema version whose body frames' header hashes their payload as stored.
pub const STORED_HASH_VERSION: u16 = 8;

/// The removal body of a scanned removal frame whose payload is `payload`.
pub fn decode_removal(frame: &Frame, payload: &[u8], path: &Path) -> Result<RemovalBody> {
    let bytes = checked_body(frame, payload, path, REMOVAL_KIND)?;
    RemovalBody::decode(&bytes).map_err(|e| Error::corrupt(path, frame.offset, e))
}

/// The compaction body of a scanned compaction frame whose payload is `payload`.
pub fn decode_compaction(frame: &Frame, payload: &[u8], path: &Path) -> Result<CompactionBody> {
    let bytes = checked_body(frame, payload, path, COMPACTION_KIND)?;
    CompactionBody::decode(&bytes).map_err(|e| Error::corrupt(path, frame.offset, e))
}

/// Decode the pack of a scanned frame whose payload is `payload`, checked whole.
pub fn decode_frame(frame: &Frame, payload: &[u8], path: &Path) -> Result<Pack> {
    let pack = decode_lazy(frame, payload, path)?;
    pack.check()?;
    Ok(pack)
}

/// `decode_frame`, the records' local references checked only when read
/// (`Pack::decode_lazy`).
fn decode_lazy(frame: &Frame, payload: &[u8], path: &Path) -> Result<Pack> {
    let bytes = checked_body(frame, payload, path, PACK_KIND)?;
    Pack::decode_lazy(
        &bytes,
        path,
        frame.offset,
        frame.header.codec,
        frame.header.payload_len,
    )
}

/// Read, check and decode the pack frame at `offset` of the segment at `path` (the index
/// points there: its records' local references are checked when read, `Pack::decode_lazy`).
pub fn read(maps: &Maps, path: &Path, offset: u64) -> Result<Pack> {
    let (_, header) = header_at(maps, path, offset)?;
    if header.kind != FrameKind::Pack {
        return Err(Error::corrupt(
            path,
            offset,
            "the index points at a frame that is not a pack",
        ));
    }
    let f = frame_at(maps, path, offset, header)?;
    decode_lazy(&f.frame, f.payload(), path)
}

/// The last few packs read, so that reading several items of one pack decodes it once, also
/// when reads alternate between a few packs (the records and tensors of two runs compared).
#[derive(Default)]
pub struct PackCache {
    recent: Mutex<std::collections::VecDeque<Arc<Pack>>>,
}

/// Packs a `PackCache` keeps: a pack of small objects is a few MiB decoded at most.
const CACHED_PACKS: usize = 4;

impl PackCache {
    /// The pack at `offset` of `path`, from the cache or read.
    pub fn get(&self, maps: &Maps, path: &Path, offset: u64) -> Result<Arc<Pack>> {
        if let Ok(mut recent) = self.recent.lock()
            && let Some(i) = recent.iter().position(|p| p.location() == (path, offset))
        {
            let p = recent.remove(i);
            if let Some(p) = p {
                recent.push_front(Arc::clone(&p));
                return Ok(p);
            }
        }
        let pack = Arc::new(read(maps, path, offset)?);
        if let Ok(mut recent) = self.recent.lock() {
            recent.push_front(Arc::clone(&pack));
            recent.truncate(CACHED_PACKS);
        }
        Ok(pack)
    }

    /// Forget the cached packs.
    pub fn clear(&self) {
        if let Ok(mut recent) = self.recent.lock() {
            recent.clear();
        }
    }
}
