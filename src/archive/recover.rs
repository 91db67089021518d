//! Recovery on open: every frame past a segment's high-water mark in the index is indexed, a
//! segment's torn tail (an incomplete last frame no writer holds) is cut, and a damaged frame
//! is skipped with a warning. `reindex` is the same from the first frame of every segment.
//! The segments are the single source of truth; everything here only adds to the index.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use std::path::{Path, PathBuf};

use super::Archive;
use crate::error::{Error, Result};
use crate::format::bloom::Bloom;
use crate::format::frame::{FrameKind, SEGMENT_HEADER_LEN, SegmentHeader};
use crate::format::pack::{Pack, PackSummary};
use crate::format::version;
use crate::hash::ObjectHash;
use crate::index::TAG_VALUES_PER_RUN;
use crate::index::{EntryRec, ObjectLoc, PackUpdate, RunUpdate, Update};
use crate::object::Kind;
use crate::object::record::{Record, scan_fields};
use crate::segment::pack::{decode_compaction, decode_frame, decode_removal};
use crate::segment::payload::{decode_payload, object_meta};
use crate::segment::reader::map_file;
use crate::segment::scan::{Frame, read_frame, scan};
use crate::segment::writer::try_lock;

impl Archive {
    /// Index every frame past each segment's high-water mark; cut torn tails of segments that
    /// no writer holds. `progress(done, total)` counts bytes scanned.
    pub(super) fn catch_up(&self, progress: &dyn Fn(u64, u64)) -> Result<()> {
        use std::sync::atomic::Ordering;
        let outer = !self.catching_up.swap(true, Ordering::Relaxed);
        // A pass that handed the index to a waiting process starts again where the index is
        // now: the other process may have gone on with the catch-up meanwhile.
        let done = (|| {
            loop {
                match self.catch_up_pass(progress)? {
                    Pass::Done => return Ok(()),
                    Pass::Yielded => {}
                    Pass::Rebuild => {
                        self.warn(format!(
                            "{}: index rebuilt: it had indexed segments a gc replaced, or that \
                             are gone",
                            self.root.join(crate::store_dir::INDEX_DIR).display()
                        ));
                        self.lease.clear()?;
                        self.locator.clear();
                    }
                }
            }
        })();
        if outer {
            self.catching_up.store(false, Ordering::Relaxed);
        }
        done
    }

    fn catch_up_pass(&self, progress: &dyn Fn(u64, u64)) -> Result<Pass> {
        let Some(todo) = self.pass_todo()? else {
            return Ok(Pass::Rebuild);
        };
        let total: u64 = todo.iter().map(|(_, _, from, len)| len - from).sum();
        let mut done = 0;
        for (id, path, from, _) in todo {
            let Some(map) = map_file(&path)? else {
                continue;
            };
            if from == SEGMENT_HEADER_LEN as u64 {
                self.check_segment_header(&path, &map)?;
            }
            // Only a segment whose header says this program (or an older one) wrote it ever
            // has anything cut.
            let ours = SegmentHeader::decode(&map)
                .is_ok_and(|h| (1..=version::SCHEMA_VERSION).contains(&h.version));
            let found = scan(&map, from);
            self.warn_damage(&path, &found.damage);
            // What a logger of this process handed over is applied as it is.
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let taken = match name {
                Some(n) if !found.frames.is_empty() => self.apply_logged(id, &n, &found.frames)?,
                _ => 0,
            };
            let rest = found.frames.get(taken..).unwrap_or_default();
            // Indexed a few frames at a time: memory stays that of a few packs, and what is
            // indexed is marked as it goes.
            let mut chunks = rest.chunks(FRAMES_PER_APPLY).peekable();
            while let Some(chunk) = chunks.next() {
                let end = chunks
                    .peek()
                    .and_then(|next| next.first())
                    .map_or(found.valid_end, |f| f.offset);
                let mut update = self.rescan_update(id, chunk, &map, &path)?;
                update.marks.push((id, end, end));
                self.index()?.apply(update, false)?;
                if self.lease.yield_to_waiters() {
                    return Ok(Pass::Yielded);
                }
            }
            if found.frames.is_empty() {
                let mut update = Update::default();
                update.marks.push((id, found.valid_end, found.valid_end));
                self.index()?.apply(update, false)?;
            }
            if let Some((offset, v)) = found.newer {
                self.warn(format!(
                    "{}: frames of schema v{v} from byte {offset}, newer than this program \
                     reads (v{}): left as they are; upgrade model-archive to read them",
                    path.display(),
                    version::SCHEMA_VERSION
                ));
            }
            match &found.tail {
                Some(tail) if ours => self.cut_tail(&path, found.valid_end, &tail.reason)?,
                Some(tail) => self.warn(format!(
                    "{}: {} bytes after byte {} hold no frame ({}), and the segment header is \
                     not one this program wrote: left as they are",
                    path.display(),
                    map.len() as u64 - found.valid_end,
                    found.valid_end,
                    tail.reason
                )),
                None => {}
            }
            done += map.len() as u64 - from;
            progress(done, total);
        }
        Ok(Pass::Done)
    }

    /// The segments with frames past their high-water mark: (id, path, from, length); None if
    /// the index holds segments a gc replaced (it must be rebuilt).
    fn pass_todo(&self) -> Result<Option<Vec<Todo>>> {
        // Listed with the index held: a list taken before waiting for it could be older than
        // a gc's output, whose replaced segments would then be indexed into an index another
        // process rebuilt without them meanwhile. (A gc that renames its output while this
        // pass runs rebuilds the index itself once it gets it.)
        drop(self.index()?);
        let (files, gone) = self.segments()?;
        if self.indexes_any(&gone)? || self.indexes_missing(&files, &gone)? {
            return Ok(None);
        }
        let own = self.own_segment()?;
        let mut todo = Vec::new();
        for (name, path) in files {
            let id = self.index()?.segment_id(&name, SEGMENT_HEADER_LEN as u64)?;
            let from = self.index()?.segment(id)?.indexed_to;
            let len = std::fs::metadata(&path)
                .map_err(|e| Error::io(&path, e))?
                .len();
            if len > from && Some(&name) != own.as_ref() {
                todo.push((id, path, from, len));
            }
        }
        Ok(Some(todo))
    }

    /// True if the index holds frames of a segment that is no longer there: one a gc replaced
    /// and deleted, indexed by a process that listed the segments before the gc renamed its
    /// output (or removed by hand). Its entries would point at nothing.
    fn indexes_missing(
        &self,
        files: &[(String, PathBuf)],
        gone: &[(String, PathBuf)],
    ) -> Result<bool> {
        let present: HashSet<&str> = files.iter().chain(gone).map(|(n, _)| n.as_str()).collect();
        Ok(self.index()?.segments()?.iter().any(|s| {
            s.indexed_to > SEGMENT_HEADER_LEN as u64 && !present.contains(s.name.as_str())
        }))
    }

    /// True if the index holds frames of any of `segments`. A segment a gc replaced is never
    /// indexed; one indexed before the gc's output was (a gc killed between its rename and
    /// its rebuild of the index) means a rebuild.
    fn indexes_any(&self, segments: &[(String, PathBuf)]) -> Result<bool> {
        let index = self.index()?;
        for (name, _) in segments {
            if let Some(id) = index.known_segment(name)?
                && index.segment(id)?.indexed_to > SEGMENT_HEADER_LEN as u64
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn warn_damage(&self, path: &Path, damage: &[crate::segment::scan::Damage]) {
        for d in damage {
            self.warn(format!(
                "{}: damaged frame at byte {}: {}",
                path.display(),
                d.offset,
                d.reason
            ));
        }
    }

    /// What a rescan of segment `seg` adds to the index: its frames, less those before the
    /// segment's `indexed_max` that a commit indexed already.
    pub(super) fn rescan_update(
        &self,
        seg: u32,
        frames: &[Frame],
        map: &[u8],
        path: &Path,
    ) -> Result<Update> {
        let max = self.index()?.segment(seg)?.indexed_max;
        let mut todo = Vec::with_capacity(frames.len());
        for frame in frames {
            let done = frame.offset < max
                && self
                    .index()?
                    .frame_indexed(&frame.header.hash, seg, frame.offset)?;
            if !done {
                todo.push(frame);
            }
        }
        // Packs are decoded, checked and hashed on every core; the rest goes in frame order.
        let mut packs: HashMap<u64, Result<(Pack, PackSummary)>> = todo
            .par_iter()
            .filter(|f| f.header.kind == FrameKind::Pack)
            .map(|frame| {
                let pack = read_frame(map, frame.offset)
                    .map_err(|e| Error::corrupt(path, frame.offset, e.to_string()))
                    .and_then(|(f, payload)| decode_frame(&f, payload, path))
                    .map(|pack| {
                        let summary = pack.summary_untagged();
                        (pack, summary)
                    });
                (frame.offset, pack)
            })
            .collect();
        let mut scan = Rescan::default();
        for frame in todo {
            if matches!(
                frame.header.kind,
                FrameKind::Removal | FrameKind::Compaction
            ) {
                self.add_tombstone(&mut scan.update, seg, frame, map, path);
                continue;
            }
            if frame.header.kind == FrameKind::Pack {
                // A pack whose payload does not check out costs that pack alone, like any
                // damaged frame.
                match packs.remove(&frame.offset) {
                    Some(Ok((pack, summary))) => {
                        self.add_pack(&mut scan, &pack, summary, seg, frame.offset)
                    }
                    Some(Err(e)) => self.warn(format!("damaged pack skipped: {e}")),
                    None => {}
                }
                continue;
            }
            add_frame(&mut scan.update, seg, frame);
            self.add_frame_fields(&mut scan, seg, frame, map, path);
        }
        Ok(scan.update)
    }

    /// Add a removal or compaction frame to an update. A damaged one costs that frame alone,
    /// like any damaged frame, and is named.
    fn add_tombstone(&self, update: &mut Update, seg: u32, frame: &Frame, map: &[u8], path: &Path) {
        let read = read_frame(map, frame.offset)
            .map_err(|e| Error::corrupt(path, frame.offset, e.to_string()));
        let added = read.and_then(|(f, payload)| match f.header.kind {
            FrameKind::Removal => decode_removal(&f, payload, path)
                .map(|body| update.removals.push((seg, frame.offset, body))),
            _ => decode_compaction(&f, payload, path).map(|body| {
                update
                    .compactions
                    .push((seg, frame.offset, body.dropped, body.freed));
                update.superseded.extend(body.replaces);
            }),
        });
        if let Err(e) = added {
            self.warn(format!("damaged frame skipped: {e}"));
        }
    }

    /// Add a pack to a rescan: its run, its entries' logged bytes and record fields.
    fn add_pack(
        &self,
        scan: &mut Rescan,
        pack: &Pack,
        mut summary: PackSummary,
        seg: u32,
        offset: u64,
    ) {
        let mut here: Option<crate::hash::HashMap<u64>> = None;
        for h in summary.entries.iter().flatten() {
            let here = here.get_or_insert_with(|| {
                let mut m = crate::hash::HashMap::default();
                add_sizes(&mut m, &summary);
                m
            });
            let n = match here.get(h) {
                Some(n) => Some(*n),
                None => self.raw_len_of(h, &scan.update, &mut scan.sizes),
            };
            match n {
                Some(n) => summary.totals.logical_bytes += n,
                None => scan.update.waiting.push(*h),
            }
        }
        // Once gathered, the sizes take in each pack after its own entries.
        if let Some(sizes) = scan.sizes.as_mut() {
            add_sizes(sizes, &summary);
        }
        let (attrs, many, unknown) = self.pack_attrs(
            pack,
            &summary.objects,
            &mut scan.update.record_fields,
            &mut scan.records,
        );
        summary.tags.extend(attrs);
        summary.tags.sort();
        summary.tags.dedup();
        summary.attrs_unknown = unknown;
        summary.many = many;
        scan.update.runs.push(RunUpdate::Pack(PackUpdate {
            seg,
            offset,
            summary,
        }));
    }

    /// What a frame of its own adds besides its object and entry: a record's field names and
    /// (path, value) pairs, the size of what an entry-only frame logs.
    fn add_frame_fields(
        &self,
        scan: &mut Rescan,
        seg: u32,
        frame: &Frame,
        map: &[u8],
        path: &Path,
    ) {
        let at = (seg, frame.offset);
        let update = &mut scan.update;
        if let (Some(o), Some(sizes)) = (&frame.meta.object, scan.sizes.as_mut()) {
            sizes.insert(frame.header.hash, o.raw_len);
        }
        match &frame.meta.object {
            Some(o) if o.kind == Kind::Record.name() => {
                // A record too big for a pack: decoded for its field names. One that does
                // not decode is reported by `get` and `verify`, like any damaged object.
                let bytes = read_frame(map, frame.offset)
                    .map_err(|e| Error::corrupt(path, frame.offset, e.to_string()))
                    .and_then(|(f, payload)| {
                        let meta = object_meta(&f, path)?;
                        decode_payload(&f, meta, payload, path).map(|b| b.into_owned())
                    });
                match bytes.and_then(|b| Record::from_msgpack("record", &b)) {
                    Ok(r) => {
                        add_paths(update, &r);
                        if frame.meta.entry.is_some() {
                            update.attrs.insert(at, r.query_attrs());
                        }
                    }
                    Err(_) => {
                        update.attrs_unknown.insert(at);
                    }
                }
            }
            Some(_) => {}
            // An entry of content stored elsewhere (written by older versions).
            None if frame.meta.entry.is_some() => {
                let hash = frame.header.hash;
                match self.raw_len_of(&hash, &scan.update, &mut scan.sizes) {
                    Some(raw) => _ = scan.update.entry_raw.insert(at, raw),
                    None => scan.update.waiting.push(hash),
                }
                match self.attrs_of(&frame.header.hash, &mut scan.records) {
                    Some(a) => {
                        scan.update.attrs.insert(at, a);
                    }
                    None => {
                        scan.update.attrs_unknown.insert(at);
                    }
                }
            }
            None => {}
        }
    }

    /// The decoded size of content stored before: met earlier in this scan, or indexed. None
    /// if the index does not hold it (yet: the entry then waits for it, `index/sizes.rs`).
    fn raw_len_of(
        &self,
        hash: &ObjectHash,
        update: &Update,
        sizes: &mut Option<crate::hash::HashMap<u64>>,
    ) -> Option<u64> {
        let sizes = sizes.get_or_insert_with(|| {
            let mut m = crate::hash::HashMap::default();
            for run in &update.runs {
                if let RunUpdate::Pack(p) = run {
                    add_sizes(&mut m, &p.summary);
                }
            }
            for (h, loc) in &update.objects {
                m.insert(*h, loc.raw_len);
            }
            m
        });
        if let Some(n) = sizes.get(hash) {
            return Some(*n);
        }
        let n = self.info(hash).ok()?.raw_len;
        sizes.insert(*hash, n);
        Some(n)
    }

    /// What a pack's records tell the index: their field paths (added to `fields`), the
    /// (path, value) pairs of its entries' records (a filter of them for a path with more
    /// values than the index lists), and whether some entry logs content whose record is not
    /// known (stored elsewhere and not indexed yet). Records are walked in place, not decoded.
    fn pack_attrs(
        &self,
        pack: &Pack,
        objects: &[(ObjectHash, u32)],
        fields: &mut HashSet<String>,
        records: &mut RecordAttrs,
    ) -> PackAttrs {
        let mut found = PackFields {
            entries: pack.items().entries().len(),
            keys: Vec::new(),
        };
        let mut owned: Vec<(String, String)> = Vec::new();
        let mut unknown = false;
        let mut slot_of: Option<HashMap<&ObjectHash, u32>> = None;
        let mut walk =
            |data, entry: bool, fields: &mut HashSet<String>| found.walk(data, entry, fields);
        for (i, item) in pack.items().iter().enumerate() {
            let slot = i as u32 + 1;
            let entry = item.entry.is_some();
            if item.object.is_some() {
                if let Some(o) = pack.object(slot)
                    && o.kind == Kind::Record
                    && !walk(o.data, entry, fields)
                {
                    unknown |= entry;
                }
                continue;
            }
            let Some(h) = entry.then(|| pack.item_hash(slot)).flatten() else {
                continue;
            };
            // An entry of content stored elsewhere: in this pack, or found through the index.
            let here = slot_of
                .get_or_insert_with(|| objects.iter().map(|(h, s)| (h, *s)).collect())
                .get(&h)
                .and_then(|s| pack.object(*s));
            match here {
                Some(o) if o.kind == Kind::Record => unknown |= !walk(o.data, true, fields),
                Some(_) => {}
                None => match self.attrs_of(&h, records) {
                    Some(a) => owned.extend(a),
                    None => unknown = true,
                },
            }
        }
        let many = found.with_tags(pack.tagsets(), &mut owned);
        (owned, many, unknown)
    }

    /// The record (path, value) pairs of content stored before (none if it is not a record),
    /// or `None` if it is not found: remembered in `records` for the rest of the scan.
    fn attrs_of(
        &self,
        hash: &ObjectHash,
        records: &mut RecordAttrs,
    ) -> Option<Vec<(String, String)>> {
        if let Some(known) = records.get(hash) {
            return known.clone();
        }
        let found = self
            .record_of(hash)
            .ok()
            .map(|r| r.map(|r| r.query_attrs()).unwrap_or_default());
        records.insert(*hash, found.clone());
        found
    }

    fn check_segment_header(&self, path: &Path, map: &[u8]) -> Result<()> {
        match SegmentHeader::decode(map) {
            Ok(h) => version::check_segment(path, h.version),
            Err(reason) => {
                // Frames describe themselves, so a damaged segment header costs nothing else.
                self.warn(format!("{}: {reason}", path.display()));
                Ok(())
            }
        }
    }

    /// Truncate a torn tail, if no writer holds the segment (a writer's unfinished frame
    /// looks the same, and is left alone).
    fn cut_tail(&self, path: &Path, valid_end: u64, reason: &str) -> Result<()> {
        if let Some(file) = try_lock(path)? {
            let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
            if len > valid_end {
                file.set_len(valid_end)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| Error::io(path, e))?;
                self.warn(format!(
                    "{}: cut {} bytes of torn tail at byte {valid_end} ({reason})",
                    path.display(),
                    len - valid_end
                ));
            }
        }
        Ok(())
    }

    /// Rebuild the index from the segments alone.
    pub fn reindex(&mut self, progress: &dyn Fn(u64, u64)) -> Result<()> {
        // Make our own frames durable and visible to the scan first.
        self.close_segment()?;
        self.lease.clear()?;
        self.locator.clear();
        self.catch_up(progress)?;
        self.index()?.flush()
    }
}

/// A segment a catch-up pass indexes: id, path, from where, and its length.
type Todo = (u32, std::path::PathBuf, u64, u64);

/// How a catch-up pass ended.
#[derive(PartialEq)]
enum Pass {
    Done,
    /// The index was handed to a waiting process.
    Yielded,
    /// The index holds segments a gc replaced: it is rebuilt.
    Rebuild,
}

/// What a pack's records add to the index: (path, value) pairs, filters of the paths with too
/// many values to list, and whether some entry's record is not known.
type PackAttrs = (Vec<(String, String)>, Vec<(String, Bloom)>, bool);

/// The paths of a pack's records (a handful, so a list beats hashing each one) with the values
/// its entries' records hold there; a path with more values than the index lists gets a
/// filter of them instead.
struct PackFields<'p> {
    /// Entries in the pack: what a filter is sized for.
    entries: usize,
    keys: Vec<PathValues<'p>>,
}

impl<'p> PackFields<'p> {
    /// Walk one record's bytes: its paths into `fields`, and, for an entry's record, its
    /// values. False if the bytes are not a record.
    fn walk(&mut self, data: &'p [u8], entry: bool, fields: &mut HashSet<String>) -> bool {
        let (keys, entries) = (&mut self.keys, self.entries);
        scan_fields(data, &mut |path, text| {
            let at = match keys.iter().position(|k| k.path == path) {
                Some(at) => at,
                None => {
                    if !fields.contains(path) {
                        fields.insert(path.to_owned());
                    }
                    keys.push(PathValues::new(path));
                    keys.len() - 1
                }
            };
            let text = text.and_then(|t| t.index_text());
            if let (true, Some(t), Some(k)) = (entry, text, keys.get_mut(at)) {
                k.add(t, entries);
            }
        })
        .is_ok()
    }

    /// File the entries' tags (`tagsets`) alike, under the same names; then the paths' values
    /// into `owned`, and the filters of the paths with too many to list returned.
    fn with_tags(
        mut self,
        tagsets: &'p [Vec<(String, String)>],
        owned: &mut Vec<(String, String)>,
    ) -> Vec<(String, Bloom)> {
        for tagset in tagsets {
            for (k, v) in tagset {
                self.add(k, v);
            }
        }
        let mut many = Vec::new();
        for k in self.keys {
            match k.bloom {
                Some(b) => many.push((k.path, b)),
                None => owned.extend(k.values.into_iter().map(|v| (k.path.clone(), v.to_owned()))),
            }
        }
        many
    }

    /// File an entry's tag.
    fn add(&mut self, name: &str, value: &'p str) {
        let at = match self.keys.iter().position(|k| k.path == name) {
            Some(at) => at,
            None => {
                self.keys.push(PathValues::new(name));
                self.keys.len() - 1
            }
        };
        if let Some(k) = self.keys.get_mut(at) {
            k.add(value, self.entries);
        }
    }
}

/// What the records (canonical bytes, and whether an entry logs each) and tag sets of a pack
/// of `entries` entries tell the index, as `pack_attrs` finds them in the pack: for a pack a
/// logger of this process handed over (`handoff.rs`), which logs no content stored elsewhere.
pub(super) fn logged_attrs<'p>(
    records: impl Iterator<Item = (&'p [u8], bool)>,
    tagsets: &'p [Vec<(String, String)>],
    entries: usize,
    fields: &mut HashSet<String>,
) -> PackAttrs {
    let mut found = PackFields {
        entries,
        keys: Vec::new(),
    };
    let mut unknown = false;
    for (data, entry) in records {
        unknown |= !found.walk(data, entry, fields) && entry;
    }
    let mut owned = Vec::new();
    let many = found.with_tags(tagsets, &mut owned);
    (owned, many, unknown)
}

/// A path of a pack's records and the values its entries' records hold there.
struct PathValues<'p> {
    path: String,
    values: HashSet<&'p str>,
    /// Once there are more values than the index lists for one run: a filter of them all.
    bloom: Option<Bloom>,
}

impl<'p> PathValues<'p> {
    fn new(path: &str) -> Self {
        PathValues {
            path: path.to_owned(),
            values: HashSet::new(),
            bloom: None,
        }
    }

    /// Add a value; past `TAG_VALUES_PER_RUN` of them, to a filter sized for `entries`.
    fn add(&mut self, v: &'p str, entries: usize) {
        match &mut self.bloom {
            Some(b) => b.insert(v),
            None => {
                if self.values.insert(v) && self.values.len() > TAG_VALUES_PER_RUN {
                    let mut b = Bloom::with_capacity(entries);
                    self.values.drain().for_each(|x| b.insert(x));
                    self.bloom = Some(b);
                }
            }
        }
    }
}

/// Add a pack's objects' decoded sizes to a map.
fn add_sizes(m: &mut crate::hash::HashMap<u64>, s: &crate::format::pack::PackSummary) {
    for ((h, _), n) in s.objects.iter().zip(&s.object_sizes) {
        m.insert(*h, *n);
    }
}

/// Frames indexed by one `apply` on open: a few MiB of packs.
const FRAMES_PER_APPLY: usize = 32;

/// A rescan of one segment: the update it builds, and what it remembers on the way.
#[derive(Default)]
struct Rescan {
    update: Update,
    /// Record (path, value) pairs of content stored elsewhere, looked up once.
    records: RecordAttrs,
    /// Decoded sizes of the objects this scan met, for entries of content stored elsewhere:
    /// gathered only once such an entry refers to an earlier frame.
    sizes: Option<crate::hash::HashMap<u64>>,
}

/// Record (path, value) pairs of content found during a scan (`None`: not found).
type RecordAttrs = HashMap<ObjectHash, Option<Vec<(String, String)>>>;

/// Add a record's field paths to an update.
fn add_paths(update: &mut Update, r: &Record) {
    r.visit_paths(&mut |p| {
        if !update.record_fields.contains(p) {
            update.record_fields.insert(p.to_owned());
        }
    });
}

/// Add what a frame holds to an index update.
pub(super) fn add_frame(update: &mut Update, seg: u32, frame: &Frame) {
    let h = frame.header.hash;
    if let Some(o) = &frame.meta.object {
        let kind = o.kind.parse::<Kind>().map(|k| k as u8).unwrap_or(0);
        update.objects.push((
            h,
            ObjectLoc {
                seg,
                offset: frame.offset,
                kind,
                desc: o.desc.clone(),
                shape: o.shape.clone(),
                raw_len: o.raw_len,
                stored_len: frame.header.payload_len,
                codec: frame.header.codec as u8,
                first_entry: None,
            },
        ));
    }
    if let Some(e) = &frame.meta.entry {
        update.push_entry(EntryRec {
            time_ns: e.time_ns,
            hash: h,
            tags: e.tags.clone(),
            seg,
            offset: frame.offset,
        });
    }
}
