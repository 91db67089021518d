//! Verify: re-read every segment, check every frame, decode and re-hash every object, and
//! check that every location the index holds points at a good frame or pack.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::Archive;
use crate::error::{Error, Result};
use crate::format::frame::{FrameKind, SEGMENT_HEADER_LEN, SegmentHeader};
use crate::hash::ObjectHash;
use crate::segment::pack::decode_frame;
use crate::segment::payload::{decode_payload, object_meta, verify_hash};
use crate::segment::reader::map_file;
use crate::segment::scan::{Frame, read_frame, scan};
use crate::segment::writer::try_lock;
use crate::store_dir::{SegmentFiles, segment_files};

/// One problem `verify` found.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// The object, when the problem is an object's.
    pub hash: Option<ObjectHash>,
    /// The segment file.
    pub path: PathBuf,
    /// The frame's offset.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

/// What `verify` found.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    /// Object frames decoded and re-hashed.
    pub objects_checked: u64,
    /// Decoded bytes re-hashed.
    pub bytes_checked: u64,
    /// Frames read.
    pub frames: u64,
    /// Everything that is wrong.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// True if nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What the scan of the segments found, for checking the index against it.
#[derive(Default)]
struct Seen {
    /// Frames and packs that decoded and hashed back: (segment, offset).
    good: HashSet<(String, u64)>,
    /// How much of each segment the scan saw: frames committed after it (by other threads of
    /// this process) are in the index but not in the scan, and are not damage.
    scanned: HashMap<String, u64>,
}

impl Seen {
    /// True if the index's location `offset` of `segment` (in `dir`) is no good frame the scan
    /// saw, and not one appended after the scan.
    fn lacks(&self, dir: &Path, segment: &str, offset: u64) -> bool {
        let newer = match self.scanned.get(segment) {
            Some(len) => offset >= *len,
            None => dir.join(segment).is_file(),
        };
        !newer && !self.good.contains(&(segment.to_owned(), offset))
    }
}

impl Archive {
    /// Re-read every segment: check every frame, decode and re-hash every object, and check
    /// that every indexed object points at a good frame. `progress(done, total)` counts bytes.
    pub fn verify(&self, progress: &dyn Fn(u64, u64)) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let SegmentFiles { files, foreign } = segment_files(&self.segments_dir)?;
        for path in foreign {
            report.problems.push(Problem {
                hash: None,
                path,
                offset: 0,
                reason: "named like a segment but not a regular file: not read".into(),
            });
        }
        let total: u64 = files
            .iter()
            .filter_map(|(_, p)| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        let mut done = 0;
        let mut seen = Seen::default();
        let own = self.own_segment()?;
        for (name, path) in &files {
            let Some(map) = map_file(path)? else { continue };
            seen.scanned.insert(name.clone(), map.len() as u64);
            // A segment some writer holds may end in the frame it is writing.
            let busy = || Ok(own.as_ref() == Some(name) || try_lock(path)?.is_none());
            let good = verify_segment(path, &map, &busy, &mut report)?;
            seen.good
                .extend(good.into_iter().map(|offset| (name.clone(), offset)));
            done += map.len() as u64;
            progress(done, total);
        }
        self.verify_index(&seen, &mut report)?;
        Ok(report)
    }

    /// Check that every location the index holds is a good frame or pack the scan found.
    fn verify_index(&self, seen: &Seen, report: &mut VerifyReport) -> Result<()> {
        // Packed objects: their table entries must point at good packs.
        for at in self.index()?.tables().all().filter(|at| at.slot != 0) {
            if seen.lacks(&self.segments_dir, &at.segment, at.offset) {
                let path = self.segments_dir.join(&at.segment);
                let already = report
                    .problems
                    .iter()
                    .any(|p| p.path == path && p.offset == at.offset);
                if !already {
                    report.problems.push(Problem {
                        hash: None,
                        path,
                        offset: at.offset,
                        reason: "the index points at no good pack here".into(),
                    });
                }
            }
        }
        let segs = self.index()?.segments()?;
        for item in self.index()?.objects() {
            let (h, loc) = item?;
            let name = segs
                .get(loc.seg as usize)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            if seen.lacks(&self.segments_dir, &name, loc.offset)
                && !report.problems.iter().any(|p| p.hash == Some(h))
            {
                report.problems.push(Problem {
                    hash: Some(h),
                    path: self.segments_dir.join(name),
                    offset: loc.offset,
                    reason: "the index points at no good frame for this object".into(),
                });
            }
        }
        Ok(())
    }
}

/// Check one segment's bytes `map`: its header, every frame, every object and pack decoded
/// and re-hashed. Problems go into `report`; returns the offsets of the good frames. A torn
/// tail is a problem unless a writer holds the segment (`busy`, asked only then).
fn verify_segment(
    path: &Path,
    map: &[u8],
    busy: &dyn Fn() -> Result<bool>,
    report: &mut VerifyReport,
) -> Result<Vec<u64>> {
    let problem = |offset, reason: String, hash| Problem {
        hash,
        path: path.to_owned(),
        offset,
        reason,
    };
    if let Err(reason) = SegmentHeader::decode(map) {
        report.problems.push(problem(0, reason, None));
    }
    let found = scan(map, SEGMENT_HEADER_LEN as u64);
    for d in found.damage {
        report.problems.push(problem(d.offset, d.reason, None));
    }
    if let Some((offset, v)) = found.newer {
        let reason = format!(
            "frames of schema v{v} from here on, newer than this program reads (v{}): not \
             checked; upgrade model-archive",
            crate::format::version::SCHEMA_VERSION
        );
        report.problems.push(problem(offset, reason, None));
    }
    if let Some(t) = found.tail
        && !busy()?
    {
        let reason = format!("torn tail: {}", t.reason);
        report.problems.push(problem(t.offset, reason, None));
    }
    let mut good = Vec::new();
    for frame in &found.frames {
        report.frames += 1;
        let checked = match frame.header.kind {
            FrameKind::Pack => check_pack(map, frame, path).map(|(objects, bytes)| {
                report.objects_checked += objects;
                report.bytes_checked += bytes;
            }),
            FrameKind::Object => {
                report.objects_checked += 1;
                check_object(map, frame, path).map(|bytes| report.bytes_checked += bytes)
            }
            _ => continue,
        };
        match checked {
            Ok(()) => good.push(frame.offset),
            Err(e) => {
                let hash = (frame.header.kind == FrameKind::Object).then_some(frame.header.hash);
                report
                    .problems
                    .push(problem(frame.offset, e.to_string(), hash));
            }
        }
    }
    Ok(good)
}

/// Decode a pack frame and check it hashes back: its objects and their bytes.
fn check_pack(map: &[u8], frame: &Frame, path: &Path) -> Result<(u64, u64)> {
    let (f, payload) = read_frame(map, frame.offset)
        .map_err(|e| Error::corrupt(path, frame.offset, e.to_string()))?;
    let pack = decode_frame(&f, payload, path)?;
    Ok(pack.objects().fold((0, 0), |(n, bytes), (_, o)| {
        (n + 1, bytes + o.data.len() as u64)
    }))
}

/// Decode an object frame's payload and check it hashes back to its address: its bytes.
fn check_object(map: &[u8], frame: &Frame, path: &Path) -> Result<u64> {
    let meta = object_meta(frame, path)?;
    let (_, payload) = read_frame(map, frame.offset)
        .map_err(|e| Error::corrupt(path, frame.offset, e.to_string()))?;
    let bytes = decode_payload(frame, meta, payload, path)?;
    verify_hash(&frame.header.hash, meta, &bytes, path, frame.offset)?;
    Ok(bytes.len() as u64)
}
