//! Frames read through the memory maps at an offset the index gives: the header decoded once,
//! the map extended to cover the whole frame (the segment may have grown since it was mapped),
//! and the rest checked as a scan checks it. Shared by object and pack reads.

use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;

use crate::error::{Error, Result};
use crate::format::frame::{FRAME_HEADER_LEN, FrameHeader};
use crate::segment::reader::Maps;
use crate::segment::scan::{Frame, read_body};

/// A whole, checked frame and the map it lies in.
pub struct MappedFrame {
    /// The segment's map, covering the whole frame.
    pub map: Arc<Mmap>,
    /// The frame: header and metadata.
    pub frame: Frame,
    /// Where its payload starts in `map`.
    pub start: usize,
}

impl MappedFrame {
    /// The stored payload.
    pub fn payload(&self) -> &[u8] {
        let len = usize::try_from(self.frame.header.payload_len).unwrap_or(usize::MAX);
        // `frame_at` checked that the payload lies inside the map.
        self.start
            .checked_add(len)
            .and_then(|end| self.map.get(self.start..end))
            .unwrap_or(&[])
    }
}

/// The map of the segment at `path` and the decoded header of the frame at `offset`.
pub fn header_at(maps: &Maps, path: &Path, offset: u64) -> Result<(Arc<Mmap>, FrameHeader)> {
    let corrupt = |reason: String| Error::corrupt(path, offset, reason);
    let end = offset
        .checked_add(FRAME_HEADER_LEN as u64)
        .ok_or_else(|| corrupt("offset past any segment".into()))?;
    let map = maps.get(path, end)?;
    let rest = usize::try_from(offset)
        .ok()
        .and_then(|o| map.get(o..))
        .ok_or_else(|| corrupt("offset past the segment's end".into()))?;
    let header = FrameHeader::decode(rest).map_err(|e| corrupt(e.to_string()))?;
    Ok((map, header))
}

/// The whole frame at `offset` of the segment at `path`, whose header (from `header_at`) is
/// `header`.
pub fn frame_at(maps: &Maps, path: &Path, offset: u64, header: FrameHeader) -> Result<MappedFrame> {
    let corrupt = |reason: String| Error::corrupt(path, offset, reason);
    let end = offset
        .checked_add(header.frame_len())
        .ok_or_else(|| corrupt("frame runs past any segment".into()))?;
    let map = maps.get(path, end)?;
    let (frame, payload) = read_body(&map, offset, header).map_err(|e| corrupt(e.to_string()))?;
    let start = payload.as_ptr() as usize - map.as_ptr() as usize;
    Ok(MappedFrame { map, frame, start })
}
