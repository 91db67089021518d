//! Reading frames out of a segment's bytes without the index: walk frame to frame, and after
//! damage find the next frame again by its magic and header checksum. Works on `&[u8]`.

use crate::format::frame::{FRAME_ALIGN, FRAME_HEADER_LEN, FRAME_MAGIC, FrameHeader, HeaderError};
use crate::format::meta::FrameMeta;
use crate::format::{align_up, checksum};

/// A whole, checked frame.
#[derive(Debug)]
pub struct Frame {
    /// Offset of the frame's header in the segment.
    pub offset: u64,
    /// The header.
    pub header: FrameHeader,
    /// The decoded metadata.
    pub meta: FrameMeta,
}

/// A damaged stretch of a segment.
#[derive(Debug, Clone)]
pub struct Damage {
    /// Where the damaged frame (or unreadable bytes) starts.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Whole frames, in order.
    pub frames: Vec<Frame>,
    /// Damaged frames followed by good ones (corruption, not a torn write).
    pub damage: Vec<Damage>,
    /// End of the last whole frame (or the scan's start if none).
    pub valid_end: u64,
    /// Bytes after `valid_end` that hold no whole frame: a torn write or appended garbage.
    pub tail: Option<Damage>,
    /// A frame of a schema version newer than this program's, where the scan stopped: its
    /// offset and version. What follows it is left alone, never cut.
    pub newer: Option<(u64, u16)>,
}

/// Read and check the frame at `offset`: header, metadata checksum and decoding, and that the
/// payload lies inside `bytes`. Returns the frame and its payload.
pub fn read_frame(bytes: &[u8], offset: u64) -> Result<(Frame, &[u8]), HeaderError> {
    let header = FrameHeader::decode(frame_bytes(bytes, offset)?)?;
    read_body(bytes, offset, header)
}

/// The bytes of `bytes` from `offset` on.
fn frame_bytes(bytes: &[u8], offset: u64) -> Result<&[u8], HeaderError> {
    let start = usize::try_from(offset).map_err(|_| HeaderError::Truncated)?;
    bytes.get(start..).ok_or(HeaderError::Truncated)
}

/// `read_frame` for a frame whose header, decoded from `bytes` at `offset`, is `header`: the
/// metadata checksum and decoding, and that the payload lies inside `bytes`.
pub fn read_body(
    bytes: &[u8],
    offset: u64,
    header: FrameHeader,
) -> Result<(Frame, &[u8]), HeaderError> {
    let rest = frame_bytes(bytes, offset)?;
    let meta_bytes = rest
        .get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + header.meta_len as usize)
        .ok_or(HeaderError::Truncated)?;
    let payload_start = header.payload_off as usize;
    let payload_end = usize::try_from(header.payload_len)
        .ok()
        .and_then(|l| payload_start.checked_add(l))
        .ok_or(HeaderError::Truncated)?;
    let payload = rest
        .get(payload_start..payload_end)
        .ok_or(HeaderError::Truncated)?;
    // The closing padding belongs to the frame: a frame without it is a torn write.
    if (rest.len() as u64) < header.frame_len() {
        return Err(HeaderError::Truncated);
    }
    if checksum(meta_bytes) != header.meta_sum {
        return Err(HeaderError::Invalid(
            "frame metadata checksum does not match".into(),
        ));
    }
    let meta = FrameMeta::decode(meta_bytes).map_err(HeaderError::Invalid)?;
    Ok((
        Frame {
            offset,
            header,
            meta,
        },
        payload,
    ))
}

/// The next offset at or after `from` (8-aligned) where a checksummed frame header starts.
fn resync(bytes: &[u8], from: u64) -> Option<u64> {
    let mut pos = align_up(from, FRAME_ALIGN)?;
    while let Some(window) = bytes.get(pos as usize..) {
        if window.len() < FRAME_HEADER_LEN {
            return None;
        }
        // A newer version's header has a good checksum too: it starts a frame.
        let decoded = FrameHeader::decode(window);
        if window.starts_with(&FRAME_MAGIC)
            && matches!(decoded, Ok(_) | Err(HeaderError::TooNew(_)))
        {
            return Some(pos);
        }
        pos += FRAME_ALIGN;
    }
    None
}

/// Walk the frames of `bytes` from `from` (a frame boundary) to the end.
pub fn scan(bytes: &[u8], from: u64) -> Scan {
    let mut out = Scan {
        valid_end: from,
        ..Scan::default()
    };
    let len = bytes.len() as u64;
    let mut pos = from;
    while pos < len {
        let err = match read_frame(bytes, pos) {
            Ok((frame, _)) => {
                let next = pos + frame.header.frame_len();
                out.frames.push(frame);
                out.valid_end = next.min(len);
                pos = next;
                continue;
            }
            Err(HeaderError::TooNew(version)) => {
                out.newer = Some((pos, version));
                break;
            }
            Err(e) => e,
        };
        // A header that checks out is trusted for the frame's length (FORMAT.md, "Frames"):
        // a frame whose metadata is damaged is skipped whole, so a payload that itself holds
        // frames (a segment archived as bytes) is never read as frames of this segment, and a
        // frame that runs past the end is a torn tail.
        if let Ok(header) = frame_bytes(bytes, pos).and_then(FrameHeader::decode) {
            let next = pos.saturating_add(header.frame_len());
            let damage = Damage {
                offset: pos,
                reason: err.to_string(),
            };
            if next <= len {
                out.damage.push(damage);
                pos = next;
                continue;
            }
            out.tail = Some(damage);
            break;
        }
        // Anything with no checksummed header is damage if a frame follows, else a torn
        // tail.
        match resync(bytes, pos + FRAME_ALIGN) {
            Some(next) => {
                out.damage.push(Damage {
                    offset: pos,
                    reason: err.to_string(),
                });
                pos = next;
            }
            None => {
                out.tail = Some(Damage {
                    offset: pos,
                    reason: err.to_string(),
                });
                break;
            }
        }
    }
    out
}
