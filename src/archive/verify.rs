//! Verify: re-read every segment, check every frame, decode and re-hash every object, and
//! check that every location the index holds points at a good frame or pack.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::Archive;
use crate::error::{Error, Result};
use crate::format::frame::{FrameKind, SEGMENT_HEADER_LEN, SegmentHeader};
use crate::hash::ObjectHash;
use crate::segment::pack::decode_frame;
use crate::segment::payload::{decode_payload, object_meta, verify_hash};
use crate::segment::reader::map_file;
use crate::segment::scan::{read_frame, scan};
use crate::segment::writer::try_lock;

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

impl Archive {
    /// Re-read every segment: check every frame, decode and re-hash every object, and check
    /// that every indexed object points at a good frame. `progress(done, total)` counts bytes.
    pub fn verify(&self, progress: &dyn Fn(u64, u64)) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let crate::store_dir::SegmentFiles { files, foreign } =
            crate::store_dir::segment_files(&self.segments_dir)?;
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
        let mut good: HashSet<(String, u64)> = HashSet::new();
        // How much of each segment the scan saw: frames committed after it (by other threads
        // of this process) are in the index but not in the scan, and are not damage.
        let mut scanned: HashMap<String, u64> = HashMap::new();
        let own = self.own_segment()?;
        for (name, path) in &files {
            let Some(map) = map_file(path)? else { continue };
            scanned.insert(name.clone(), map.len() as u64);
            let problem = |offset, reason: String, hash| Problem {
                hash,
                path: path.clone(),
                offset,
                reason,
            };
            if let Err(reason) = SegmentHeader::decode(&map) {
                report.problems.push(problem(0, reason, None));
            }
            let found = scan(&map, SEGMENT_HEADER_LEN as u64);
            for d in found.damage {
                report.problems.push(problem(d.offset, d.reason, None));
            }
            if let Some((offset, v)) = found.newer {
                report.problems.push(problem(
                    offset,
                    format!(
                        "frames of schema v{v} from here on, newer than this program reads \
                         (v{}): not checked; upgrade model-archive",
                        crate::format::version::SCHEMA_VERSION
                    ),
                    None,
                ));
            }
            if let Some(t) = found.tail {
                // A segment some writer holds may end in the frame it is writing.
                let busy = own.as_ref() == Some(name) || try_lock(path)?.is_none();
                if !busy {
                    report.problems.push(problem(
                        t.offset,
                        format!("torn tail: {}", t.reason),
                        None,
                    ));
                }
            }
            for frame in &found.frames {
                report.frames += 1;
                if frame.header.kind == FrameKind::Pack {
                    let checked = read_frame(&map, frame.offset)
                        .map_err(|e| Error::corrupt(path, frame.offset, e.to_string()))
                        .and_then(|(f, payload)| decode_frame(&f, payload, path));
                    match checked {
                        Ok(pack) => {
                            for (_, o) in pack.objects() {
                                report.objects_checked += 1;
                                report.bytes_checked += o.data.len() as u64;
                            }
                            good.insert((name.clone(), frame.offset));
                        }
                        Err(e) => report
                            .problems
                            .push(problem(frame.offset, e.to_string(), None)),
                    }
                    continue;
                }
                if frame.header.kind != FrameKind::Object {
                    continue;
                }
                report.objects_checked += 1;
                let h = frame.header.hash;
                let checked = (|| {
                    let meta = object_meta(frame, path)?;
                    let (_, payload) = read_frame(&map, frame.offset)
                        .map_err(|e| Error::corrupt(path, frame.offset, e.to_string()))?;
                    let bytes = decode_payload(frame, meta, payload, path)?;
                    verify_hash(&h, meta, &bytes, path, frame.offset)?;
                    Ok::<u64, Error>(bytes.len() as u64)
                })();
                match checked {
                    Ok(n) => {
                        report.bytes_checked += n;
                        good.insert((name.clone(), frame.offset));
                    }
                    Err(e) => report
                        .problems
                        .push(problem(frame.offset, e.to_string(), Some(h))),
                }
            }
            done += map.len() as u64;
            progress(done, total);
        }
        // Packed objects: their table entries must point at good packs.
        for at in self.index()?.tables().all().filter(|at| at.slot != 0) {
            let newer = match scanned.get(&at.segment) {
                Some(len) => at.offset >= *len,
                None => self.segments_dir.join(&at.segment).is_file(),
            };
            if !newer && !good.contains(&(at.segment.clone(), at.offset)) {
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
            let newer = match scanned.get(&name) {
                Some(len) => loc.offset >= *len,
                None => self.segments_dir.join(&name).is_file(),
            };
            if !newer && !good.contains(&(name.clone(), loc.offset)) {
                let already = report.problems.iter().any(|p| p.hash == Some(h));
                if !already {
                    report.problems.push(Problem {
                        hash: Some(h),
                        path: self.segments_dir.join(name),
                        offset: loc.offset,
                        reason: "the index points at no good frame for this object".into(),
                    });
                }
            }
        }
        Ok(report)
    }
}
