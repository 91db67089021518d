//! Which segments a compaction replaced. `gc` writes its output segment with a compaction
//! frame first, naming the segments it replaces, and renames it into place before it deletes
//! them: from that rename on, the old segments are superseded, and every reader leaves them
//! alone (they are deleted by the gc that wrote the replacement, or, after a crash, by the
//! next one). Finding them costs one 64-byte read per segment, and a decode for the few
//! segments that start with a compaction frame.

use std::collections::HashSet;
use std::io::Read;
use std::path::PathBuf;

use crate::format::frame::{FRAME_HEADER_LEN, FrameHeader, FrameKind, SEGMENT_HEADER_LEN};
use crate::segment::pack::decode_compaction;
use crate::segment::reader::map_file;
use crate::segment::scan::read_frame;

/// The names of the segments among `files` that a compaction among them replaced. A
/// compaction frame that does not read back supersedes nothing (both copies stay readable).
pub fn superseded(files: &[(String, PathBuf)]) -> HashSet<String> {
    let mut out = HashSet::new();
    for (_, path) in files {
        if first_frame_kind(path) != Some(FrameKind::Compaction) {
            continue;
        }
        let Ok(Some(map)) = map_file(path) else {
            continue;
        };
        let first = SEGMENT_HEADER_LEN as u64;
        let Ok((frame, payload)) = read_frame(&map, first) else {
            continue;
        };
        if let Ok(body) = decode_compaction(&frame, payload, path) {
            out.extend(body.replaces);
        }
    }
    out
}

/// The kind of a segment's first frame, read from its header alone.
fn first_frame_kind(path: &std::path::Path) -> Option<FrameKind> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut buf = [0u8; SEGMENT_HEADER_LEN + FRAME_HEADER_LEN];
    f.read_exact(&mut buf).ok()?;
    let header = buf.get(SEGMENT_HEADER_LEN..)?;
    FrameHeader::decode(header).ok().map(|h| h.kind)
}
