//! Verify: re-read every segment, check every frame, decode and re-hash every object, and
//! check that every location the index holds points at a good frame or pack.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::Archive;
use crate::error::{Error, Result};
use crate::format::frame::{FrameKind, SEGMENT_HEADER_LEN, SegmentHeader};
use crate::hash::ObjectHash;
use crate::index::LOOKUP_DIR;
use crate::index::lookup;
use crate::segment::pack::checked_body;
use crate::segment::pack::decode_frame;
use crate::segment::payload::{decode_payload, object_meta, verify_hash};
use crate::segment::reader::map_file;
use crate::segment::scan::{Frame, read_frame, scan};
use crate::segment::writer::try_lock;
use crate::store_dir::INDEX_DIR;
use crate::store_dir::{SegmentFiles, segment_files};

/// How many items verify checks between yield points, where it hands the index to another
/// process waiting for it.
const YIELD_EVERY: usize = 4096;

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

/// The locations the lookup tables hold: (segment, offset, slot), and, of compact entries,
/// (segment, offset, the hash's first 48 bits).
#[derive(Default)]
struct InTables {
    exact: HashSet<(String, u64, u32)>,
    any: HashSet<(String, u64, u64)>,
}

impl InTables {
    fn insert(&mut self, at: &lookup::Located) {
        match at.slot {
            lookup::ANY_SLOT => self.any.insert((at.segment.clone(), at.offset, at.prefix)),
            slot => self.exact.insert((at.segment.clone(), at.offset, slot)),
        };
    }

    /// True if the tables hold the object `hash` at `slot` of the frame at `offset`.
    fn hold(&self, segment: &str, offset: u64, slot: u32, hash: &ObjectHash) -> bool {
        let key = (segment.to_owned(), offset, slot);
        let short = lookup::prefix_of(hash) & lookup::COMPACT_PREFIX;
        self.exact.contains(&key) || self.any.contains(&(key.0, offset, short))
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
    /// The objects the scan found good: segment, frame offset, slot (0, or item + 1 in a
    /// pack) and hash, to check that the index knows each.
    objects: Vec<(String, u64, u32, ObjectHash)>,
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
        // The walk hands the index over; a gc that rebuilt it meanwhile moved what the index
        // says: the walk starts again. So does a walk that found a listed segment deleted: only
        // gc deletes one, once its copy is in place, and the walk listed the segments before.
        for _ in 0..2 {
            match self.again_if_rebuilt(&|| self.verify_once(progress)) {
                Err(e) if self.segment_vanished(&e) => continue,
                done => return done,
            }
        }
        self.again_if_rebuilt(&|| self.verify_once(progress))
    }

    /// True if `e` is a segment of this store not found (deleted by gc under a walk).
    fn segment_vanished(&self, e: &Error) -> bool {
        matches!(e, Error::Io { path, source }
            if source.kind() == std::io::ErrorKind::NotFound && path.starts_with(&self.segments_dir))
    }

    fn verify_once(&self, progress: &dyn Fn(u64, u64)) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let SegmentFiles { files, foreign } = segment_files(&self.segments_dir)?;
        // Segments a gc replaced (its copy of what they held is walked instead).
        let gone = crate::segment::superseded::superseded(&files);
        let files: Vec<_> = files
            .into_iter()
            .filter(|(n, _)| !gone.contains(n))
            .collect();
        for path in foreign {
            report.problems.push(Problem {
                hash: None,
                path,
                offset: 0,
                reason: "named like a segment but not a regular file: not read".into(),
            });
        }
        let total = super::files_len(&files);
        let mut done = 0;
        let mut seen = Seen::default();
        let own = self.own_segment()?;
        // The walk needs no index: a process waiting for it gets it between frames.
        let pause = || {
            self.lease.yield_to_waiters();
        };
        for (name, path) in &files {
            let Some(map) = map_file(path)? else { continue };
            seen.scanned.insert(name.clone(), map.len() as u64);
            // Held while it is read, so that nobody adopts it and cuts a torn tail under the
            // walk (no other process waits for the index meanwhile, as it may).
            let held = if own.as_ref() == Some(name) {
                None
            } else {
                try_lock(path)?
            };
            // A segment some writer holds may end in the frame it is writing.
            let busy = || Ok(held.is_none());
            for (offset, objects) in verify_segment(path, &map, &busy, &pause, &mut report)? {
                seen.good.insert((name.clone(), offset));
                seen.objects.extend(
                    objects
                        .into_iter()
                        .map(|(slot, h)| (name.clone(), offset, slot, h)),
                );
            }
            done += map.len() as u64;
            progress(done, total);
        }
        self.verify_index(&seen, &mut report)?;
        Ok(report)
    }

    /// Check the index against what the scan found: every location it holds is a good frame
    /// or pack, and every good object of an indexed part of a segment is known to it. What
    /// disagrees is index damage, named as such (the segments are the truth).
    fn verify_index(&self, seen: &Seen, report: &mut VerifyReport) -> Result<()> {
        let index_dir = self.root.join(INDEX_DIR);
        let damage = |what: String, hash| Problem {
            hash,
            path: index_dir.clone(),
            offset: 0,
            reason: format!(
                "index damage: {what}; reopening the store rebuilds the index from the segments"
            ),
        };
        if let Err(reason) = lookup::check(&index_dir.join(LOOKUP_DIR)) {
            report.problems.push(damage(reason, None));
        }
        let in_tables = self.verify_tables(seen, report, &damage)?;
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
                let what = format!(
                    "the index puts this object at {name} byte {}, where there is no good frame",
                    loc.offset
                );
                report.problems.push(damage(what, Some(h)));
            }
        }
        // The other way round: what the segments hold, up to how far the index says it has
        // indexed each, must be known to it.
        let indexed_to: HashMap<&str, u64> = segs
            .iter()
            .map(|s| (s.name.as_str(), s.indexed_to))
            .collect();
        for (n, (segment, offset, slot, h)) in seen.objects.iter().enumerate() {
            if n % YIELD_EVERY == 0 {
                self.lease.yield_to_waiters();
            }
            let indexed = indexed_to
                .get(segment.as_str())
                .is_some_and(|to| offset < to);
            if !indexed || in_tables.hold(segment, *offset, *slot, h) {
                continue;
            }
            if !self.contains(h)? {
                let what = format!(
                    "{segment} byte {offset} holds this object, and the index does not know it"
                );
                report.problems.push(damage(what, Some(*h)));
            }
        }
        // The totals `stats` reads must be what a walk of the store finds (when everything
        // else checked out: a damaged pack cannot be walked).
        if report.problems.is_empty()
            && let Some(what) = self.totals_differ()?
        {
            report.problems.push(damage(what, None));
        }
        Ok(())
    }

    /// Packed objects: their table entries must point at good packs. Returns every table
    /// location.
    fn verify_tables(
        &self,
        seen: &Seen,
        report: &mut VerifyReport,
        damage: &dyn Fn(String, Option<ObjectHash>) -> Problem,
    ) -> Result<InTables> {
        let mut in_tables = InTables::default();
        let tables = self.index()?.tables();
        for (n, at) in tables.all().enumerate() {
            if n % YIELD_EVERY == 0 {
                self.lease.yield_to_waiters();
            }
            in_tables.insert(&at);
            if at.slot == 0 || !seen.lacks(&self.segments_dir, &at.segment, at.offset) {
                continue;
            }
            let path = self.segments_dir.join(&at.segment);
            let reported = |p: &Problem| p.path == path && p.offset == at.offset;
            if !report.problems.iter().any(reported) {
                let what = format!(
                    "a lookup table points at {} byte {}, where there is no good pack",
                    at.segment, at.offset
                );
                report.problems.push(damage(what, None));
            }
        }
        Ok(in_tables)
    }

    /// How the totals the index keeps differ from a walk of the store, if they do. Writers
    /// may commit meanwhile: the totals are read before and after the walk, and a store that
    /// changed in between is not judged.
    fn totals_differ(&self) -> Result<Option<String>> {
        let counts = |mut s: super::Stats| {
            s.index_bytes = 0;
            s.segments = 0;
            s.segment_bytes = 0;
            s
        };
        let kept = counts(self.stats()?);
        let found = counts(self.recount()?);
        if counts(self.stats()?) != kept {
            return Ok(None);
        }
        Ok((kept != found).then(|| totals_diff(&kept, &found)))
    }
}

/// "the totals say A; the store holds B", naming each figure that differs.
fn totals_diff(kept: &super::Stats, found: &super::Stats) -> String {
    let figures = |s: &super::Stats| {
        let mut v = vec![
            ("objects", s.objects.to_string()),
            ("entries", s.entries.to_string()),
            ("logical bytes", s.logical_bytes.to_string()),
            ("raw bytes", s.raw_bytes.to_string()),
            ("stored bytes", s.stored_bytes.to_string()),
            ("removed entries", s.removed_entries.to_string()),
            ("removable bytes", s.removable_bytes.to_string()),
        ];
        v.extend(s.by_kind.iter().map(|(k, n)| ("", format!("{n} {k}"))));
        v
    };
    let (a, b) = (figures(kept), figures(found));
    let differ = |x: &[(&str, String)], y: &[(&str, String)]| {
        x.iter()
            .filter(|f| !y.contains(f))
            .map(|(what, n)| format!("{n} {what}").trim_end().to_owned())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "the totals say {}; the store holds {}",
        differ(&a, &b),
        differ(&b, &a)
    )
}

/// Check one segment's bytes `map`: its header, every frame, every object and pack decoded
/// and re-hashed. Problems go into `report`; returns the good frames: each frame's offset
/// with its objects (slot and hash). A torn tail is a problem unless a writer holds the
/// segment (`busy`, asked only then). `pause` runs before each frame: a yield point.
fn verify_segment(
    path: &Path,
    map: &[u8],
    busy: &dyn Fn() -> Result<bool>,
    pause: &dyn Fn(),
    report: &mut VerifyReport,
) -> Result<GoodFrames> {
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
        pause();
        report.frames += 1;
        let checked = match frame.header.kind {
            FrameKind::Pack => check_pack(map, frame, path).map(|(objects, bytes)| {
                report.objects_checked += objects.len() as u64;
                report.bytes_checked += bytes;
                objects
            }),
            FrameKind::Object => {
                report.objects_checked += 1;
                check_object(map, frame, path).map(|bytes| {
                    report.bytes_checked += bytes;
                    vec![(0, frame.header.hash)]
                })
            }
            FrameKind::Removal | FrameKind::Compaction => {
                let kind = if frame.header.kind == FrameKind::Removal {
                    crate::format::removal::REMOVAL_KIND
                } else {
                    crate::format::removal::COMPACTION_KIND
                };
                read_frame(map, frame.offset)
                    .map_err(|e| Error::corrupt(path, frame.offset, e.to_string()))
                    .and_then(|(f, payload)| checked_body(&f, payload, path, kind).map(|_| ()))
                    .map(|()| Vec::new())
            }
            _ => continue,
        };
        match checked {
            Ok(objects) => good.push((frame.offset, objects)),
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

/// Good frames of a segment: offset, and the objects in each (slot, hash).
type GoodFrames = Vec<(u64, Vec<(u32, ObjectHash)>)>;

/// Decode a pack frame and check it hashes back: its objects (slot, hash) and their bytes.
fn check_pack(map: &[u8], frame: &Frame, path: &Path) -> Result<(Vec<(u32, ObjectHash)>, u64)> {
    let (f, payload) = read_frame(map, frame.offset)
        .map_err(|e| Error::corrupt(path, frame.offset, e.to_string()))?;
    let pack = decode_frame(&f, payload, path)?;
    let mut objects = Vec::with_capacity(pack.len());
    let mut bytes = 0;
    for (slot, o) in pack.objects() {
        objects.push((slot, o.hash()));
        bytes += o.data.len() as u64;
    }
    Ok((objects, bytes))
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
