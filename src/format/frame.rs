//! Segment headers and frame headers. A segment is a 64-byte segment header followed by frames;
//! each frame is a 64-byte header, msgpack metadata, zero padding up to the payload's
//! alignment, the payload, and zero padding to the next multiple of `FRAME_ALIGN`.
//! Layout: FORMAT.md, "Segment header" and "Frame".

use super::{align_up, checksum, le_u16, le_u32, le_u64};
use crate::codec::Codec;
use crate::hash::{HASH_LEN, ObjectHash};

/// First bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = [0x89, b'M', b'A', b'S', 0x0d, 0x0a, 0x1a, 0x0a];
/// Bytes in a segment header; the first frame starts here.
pub const SEGMENT_HEADER_LEN: usize = 64;
const SEG_VERSION: usize = SEGMENT_MAGIC.len();
const SEG_WRITER: usize = SEG_VERSION + 2 + 6;
const SEG_SEQ: usize = SEG_WRITER + 8;
const SEG_CREATED: usize = SEG_SEQ + 8;
const SEG_CHECKSUM: usize = SEGMENT_HEADER_LEN - 4;

/// First bytes of every frame; found again after damage by scanning for it.
pub const FRAME_MAGIC: [u8; 4] = [0x89, b'M', b'A', b'F'];
/// Bytes in a frame header.
pub const FRAME_HEADER_LEN: usize = 64;
/// Frames start at multiples of this.
pub const FRAME_ALIGN: u64 = 8;
/// Payload alignment of raw tensors, so that any dtype can be viewed in place.
pub const PAYLOAD_ALIGN: u64 = 64;
/// Payload alignment of raw payloads of at least `PAGE_ALIGN_MIN` bytes (direct I/O, pages).
pub const PAGE_ALIGN: u64 = 4096;
/// Raw payloads this large are page-aligned.
pub const PAGE_ALIGN_MIN: u64 = 1 << 20;
/// Metadata larger than this is refused before it is read.
pub const MAX_META_LEN: u32 = 16 << 20;
/// Payloads larger than this (1 TiB) are refused before they are read.
pub const MAX_PAYLOAD_LEN: u64 = 1 << 40;

const F_VERSION: usize = FRAME_MAGIC.len();
const F_KIND: usize = F_VERSION + 2;
const F_CODEC: usize = F_KIND + 1;
const F_META_LEN: usize = F_CODEC + 1;
const F_PAYLOAD_OFF: usize = F_META_LEN + 4;
const F_PAYLOAD_LEN: usize = F_PAYLOAD_OFF + 4;
const F_HASH: usize = F_PAYLOAD_LEN + 8;
const F_META_SUM: usize = F_HASH + HASH_LEN;
const F_HEADER_SUM: usize = F_META_SUM + 4;
const _: () = assert!(F_HEADER_SUM + 4 == FRAME_HEADER_LEN);

/// What a segment header holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Schema version.
    pub version: u16,
    /// The writer that created the segment (also in its file name).
    pub writer_id: u64,
    /// The writer's sequence number for this segment.
    pub seq: u64,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_ns: i64,
}

impl SegmentHeader {
    /// Encode to the fixed 64 bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut out = [0u8; SEGMENT_HEADER_LEN];
        let fields: [(usize, &[u8]); 5] = [
            (0, &SEGMENT_MAGIC),
            (SEG_VERSION, &self.version.to_le_bytes()),
            (SEG_WRITER, &self.writer_id.to_le_bytes()),
            (SEG_SEQ, &self.seq.to_le_bytes()),
            (SEG_CREATED, &self.created_ns.to_le_bytes()),
        ];
        for (at, bytes) in fields {
            if let Some(dst) = out.get_mut(at..at + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        }
        let sum = checksum(out.get(..SEG_CHECKSUM).unwrap_or_default());
        if let Some(dst) = out.get_mut(SEG_CHECKSUM..) {
            dst.copy_from_slice(&sum.to_le_bytes());
        }
        out
    }

    /// Decode; the version is returned unchecked so the caller can say "too new".
    pub fn decode(buf: &[u8]) -> Result<SegmentHeader, String> {
        if buf.get(..SEGMENT_MAGIC.len()) != Some(&SEGMENT_MAGIC[..]) {
            return Err("not a segment (wrong magic)".into());
        }
        let head = buf
            .get(..SEGMENT_HEADER_LEN)
            .ok_or("segment header is truncated")?;
        if le_u32(head, SEG_CHECKSUM)
            != Some(checksum(head.get(..SEG_CHECKSUM).unwrap_or_default()))
        {
            return Err("segment header checksum does not match".into());
        }
        let bad = || "segment header is truncated".to_string();
        Ok(SegmentHeader {
            version: le_u16(head, SEG_VERSION).ok_or_else(bad)?,
            writer_id: le_u64(head, SEG_WRITER).ok_or_else(bad)?,
            seq: le_u64(head, SEG_SEQ).ok_or_else(bad)?,
            created_ns: le_u64(head, SEG_CREATED).ok_or_else(bad)? as i64,
        })
    }
}

/// Frame kinds. The number is the kind's byte in the frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameKind {
    /// An object, with its payload, usually with the entry that logged it.
    Object = 1,
    /// An entry logging an object stored in an earlier frame; no payload.
    Entry = 2,
    /// Many small objects and entries (schema v2; see `format::pack`).
    Pack = 3,
    /// Entries removed by `archive rm` (schema v3; see `format::removal`).
    Removal = 4,
    /// The first frame of a segment `archive gc` wrote: what it replaces and dropped (schema
    /// v3; see `format::removal`).
    Compaction = 5,
}

/// A decoded frame header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Schema version.
    pub version: u16,
    /// Frame kind.
    pub kind: FrameKind,
    /// Payload codec (`Raw` for entry frames).
    pub codec: Codec,
    /// Metadata length in bytes.
    pub meta_len: u32,
    /// Offset of the payload from the frame's first byte.
    pub payload_off: u32,
    /// Stored payload length in bytes.
    pub payload_len: u64,
    /// The object's hash (for entry frames: the object logged).
    pub hash: ObjectHash,
    /// Checksum of the metadata bytes.
    pub meta_sum: u32,
}

/// Why a frame header was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than 64 bytes remain.
    Truncated,
    /// The bytes are not a frame header (magic or checksum).
    NotAFrame(&'static str),
    /// A checksummed header whose version this program does not know.
    TooNew(u16),
    /// A checksummed header with an impossible field.
    Invalid(String),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::Truncated => f.write_str("frame is cut short"),
            HeaderError::NotAFrame(why) => f.write_str(why),
            HeaderError::TooNew(v) => {
                write!(f, "frame schema v{v} is newer than this program knows")
            }
            HeaderError::Invalid(why) => f.write_str(why),
        }
    }
}

impl FrameHeader {
    /// The alignment writers give a payload: 64 bytes for raw payloads that can be viewed in
    /// place (tensors and bytes), 4096 for big ones; none for compressed payloads, which are
    /// always decoded into fresh memory, nor for text and records, which are always parsed.
    pub fn payload_align(mappable: bool, codec: Codec, payload_len: u64) -> u64 {
        match codec {
            Codec::Raw if mappable && payload_len >= PAGE_ALIGN_MIN => PAGE_ALIGN,
            Codec::Raw if mappable && payload_len > 0 => PAYLOAD_ALIGN,
            _ => 1,
        }
    }

    /// Where the payload starts for a frame at `frame_start` with `align` (a power of two, at
    /// most 4096).
    pub fn payload_offset(frame_start: u64, meta_len: u32, align: u64) -> u32 {
        let meta_end = frame_start + FRAME_HEADER_LEN as u64 + u64::from(meta_len);
        let start = align_up(meta_end, align).unwrap_or(meta_end);
        // Both terms are bounded (meta by MAX_META_LEN, padding by 4096), so this fits.
        (start - frame_start) as u32
    }

    /// Bytes from the frame's start to the next frame's start.
    pub fn frame_len(&self) -> u64 {
        let end = u64::from(self.payload_off) + self.payload_len;
        align_up(end, FRAME_ALIGN).unwrap_or(end)
    }

    /// Encode to the fixed 64 bytes.
    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut out = [0u8; FRAME_HEADER_LEN];
        let fields: [(usize, &[u8]); 9] = [
            (0, &FRAME_MAGIC),
            (F_VERSION, &self.version.to_le_bytes()),
            (F_KIND, &[self.kind as u8]),
            (F_CODEC, &[self.codec as u8]),
            (F_META_LEN, &self.meta_len.to_le_bytes()),
            (F_PAYLOAD_OFF, &self.payload_off.to_le_bytes()),
            (F_PAYLOAD_LEN, &self.payload_len.to_le_bytes()),
            (F_HASH, self.hash.as_bytes()),
            (F_META_SUM, &self.meta_sum.to_le_bytes()),
        ];
        for (at, bytes) in fields {
            if let Some(dst) = out.get_mut(at..at + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        }
        let sum = checksum(out.get(..F_HEADER_SUM).unwrap_or_default());
        if let Some(dst) = out.get_mut(F_HEADER_SUM..) {
            dst.copy_from_slice(&sum.to_le_bytes());
        }
        out
    }

    /// Decode and check a frame header. Every length is bounded before it is returned.
    pub fn decode(buf: &[u8]) -> Result<FrameHeader, HeaderError> {
        let head = buf.get(..FRAME_HEADER_LEN).ok_or(HeaderError::Truncated)?;
        if head.get(..FRAME_MAGIC.len()) != Some(&FRAME_MAGIC[..]) {
            return Err(HeaderError::NotAFrame("wrong frame magic"));
        }
        let sum = checksum(head.get(..F_HEADER_SUM).unwrap_or_default());
        if le_u32(head, F_HEADER_SUM) != Some(sum) {
            return Err(HeaderError::NotAFrame(
                "frame header checksum does not match",
            ));
        }
        let field = |v: Option<u64>| v.ok_or(HeaderError::Truncated);
        let version = field(le_u16(head, F_VERSION).map(u64::from))? as u16;
        if version > crate::format::version::SCHEMA_VERSION {
            return Err(HeaderError::TooNew(version));
        }
        if version == 0 {
            return Err(HeaderError::Invalid("frame schema version 0".into()));
        }
        let kind = match head.get(F_KIND) {
            Some(1) => FrameKind::Object,
            Some(2) => FrameKind::Entry,
            Some(3) if version >= 2 => FrameKind::Pack,
            Some(4) if version >= 3 => FrameKind::Removal,
            Some(5) if version >= 3 => FrameKind::Compaction,
            other => {
                return Err(HeaderError::Invalid(format!(
                    "unknown frame kind {other:?}"
                )));
            }
        };
        let codec_byte = head.get(F_CODEC).copied().unwrap_or(u8::MAX);
        let codec = Codec::from_code(codec_byte)
            .ok_or_else(|| HeaderError::Invalid(format!("unknown codec {codec_byte}")))?;
        let meta_len = field(le_u32(head, F_META_LEN).map(u64::from))? as u32;
        let payload_off = field(le_u32(head, F_PAYLOAD_OFF).map(u64::from))? as u32;
        let payload_len = field(le_u64(head, F_PAYLOAD_LEN))?;
        let hash = head
            .get(F_HASH..F_HASH + HASH_LEN)
            .and_then(ObjectHash::from_slice)
            .ok_or(HeaderError::Truncated)?;
        let meta_sum = field(le_u32(head, F_META_SUM).map(u64::from))? as u32;
        if meta_len > MAX_META_LEN {
            return Err(HeaderError::Invalid(format!(
                "metadata of {meta_len} bytes"
            )));
        }
        if payload_len > MAX_PAYLOAD_LEN {
            return Err(HeaderError::Invalid(format!(
                "payload of {payload_len} bytes"
            )));
        }
        let meta_end = FRAME_HEADER_LEN as u64 + u64::from(meta_len);
        if u64::from(payload_off) < meta_end || u64::from(payload_off) > meta_end + PAGE_ALIGN {
            return Err(HeaderError::Invalid(format!(
                "payload offset {payload_off}"
            )));
        }
        if kind == FrameKind::Entry && payload_len != 0 {
            return Err(HeaderError::Invalid("entry frame with a payload".into()));
        }
        Ok(FrameHeader {
            version,
            kind,
            codec,
            meta_len,
            payload_off,
            payload_len,
            hash,
            meta_sum,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> FrameHeader {
        FrameHeader {
            version: 1,
            kind: FrameKind::Object,
            codec: Codec::Zstd,
            meta_len: 10,
            payload_off: 74,
            payload_len: 5,
            hash: ObjectHash([9; 32]),
            meta_sum: 77,
        }
    }

    #[test]
    fn frame_header_round_trips() {
        let h = header();
        assert_eq!(FrameHeader::decode(&h.encode()), Ok(h.clone()));
        assert_eq!(h.frame_len(), 80);
    }

    #[test]
    fn any_flipped_header_bit_is_caught() {
        let bytes = header().encode();
        for i in 0..bytes.len() * 8 {
            let mut bad = bytes;
            if let Some(b) = bad.get_mut(i / 8) {
                *b ^= 1 << (i % 8);
            }
            assert!(FrameHeader::decode(&bad).is_err(), "bit {i}");
        }
    }

    #[test]
    fn hostile_lengths_are_refused() {
        let mut h = header();
        h.payload_len = MAX_PAYLOAD_LEN + 1;
        assert!(matches!(
            FrameHeader::decode(&h.encode()),
            Err(HeaderError::Invalid(_))
        ));
        let mut h = header();
        h.meta_len = u32::MAX;
        assert!(matches!(
            FrameHeader::decode(&h.encode()),
            Err(HeaderError::Invalid(_))
        ));
        let mut h = header();
        h.payload_off = 3;
        assert!(matches!(
            FrameHeader::decode(&h.encode()),
            Err(HeaderError::Invalid(_))
        ));
        let mut h = header();
        h.version = 99;
        assert_eq!(
            FrameHeader::decode(&h.encode()),
            Err(HeaderError::TooNew(99))
        );
    }

    #[test]
    fn payload_alignment() {
        let align = |mappable, codec, len| FrameHeader::payload_align(mappable, codec, len);
        assert_eq!(
            FrameHeader::payload_offset(64, 10, align(true, Codec::Raw, 100)) % 64,
            0
        );
        let off = FrameHeader::payload_offset(72, 10, align(true, Codec::Raw, 100)) as u64 + 72;
        assert_eq!(off % 64, 0);
        let off = FrameHeader::payload_offset(72, 10, align(true, Codec::Raw, 1 << 20)) as u64;
        assert_eq!((off + 72) % 4096, 0);
        assert_eq!(
            FrameHeader::payload_offset(72, 10, align(true, Codec::Zstd, 100)),
            74
        );
        assert_eq!(
            FrameHeader::payload_offset(72, 10, align(false, Codec::Raw, 100)),
            74
        );
    }

    #[test]
    fn segment_header_round_trips() {
        let s = SegmentHeader {
            version: 1,
            writer_id: 0xabc,
            seq: 3,
            created_ns: 5,
        };
        assert_eq!(SegmentHeader::decode(&s.encode()), Ok(s));
        let mut bad = SegmentHeader {
            version: 1,
            writer_id: 1,
            seq: 0,
            created_ns: 0,
        }
        .encode();
        bad[20] ^= 1;
        assert!(SegmentHeader::decode(&bad).is_err());
    }
}
