//! Recovery on open: every frame past a segment's high-water mark in the index is indexed, a
//! segment's torn tail (an incomplete last frame no writer holds) is cut, and a damaged frame
//! is skipped with a warning. `reindex` is the same from the first frame of every segment.
//! The segments are the single source of truth; everything here only adds to the index.

use std::collections::HashMap;
use std::path::Path;

use super::Archive;
use crate::error::{Error, Result};
use crate::format::frame::{FrameKind, SEGMENT_HEADER_LEN, SegmentHeader};
use crate::format::pack::Pack;
use crate::format::version;
use crate::hash::ObjectHash;
use crate::index::{EntryRec, ObjectLoc, PackUpdate, RunUpdate, Update};
use crate::object::Kind;
use crate::object::record::Record;
use crate::segment::pack::decode_frame;
use crate::segment::payload::{decode_payload, object_meta};
use crate::segment::reader::map_file;
use crate::segment::scan::{Frame, read_frame, scan};
use crate::segment::writer::try_lock;

impl Archive {
    /// Index every frame past each segment's high-water mark; cut torn tails of segments that
    /// no writer holds. `progress(done, total)` counts bytes scanned.
    pub(super) fn catch_up(&self, progress: &dyn Fn(u64, u64)) -> Result<()> {
        let files = self.segment_files()?;
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
            for d in &found.damage {
                self.warn(format!(
                    "{}: damaged frame at byte {}: {}",
                    path.display(),
                    d.offset,
                    d.reason
                ));
            }
            let mut update = self.rescan_update(id, &found.frames, &map, &path)?;
            update.marks.push((id, found.valid_end, found.valid_end));
            self.index()?.apply(update, false)?;
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
        Ok(())
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
        let mut update = Update::default();
        let mut records = RecordAttrs::new();
        for frame in frames {
            if frame.offset < max
                && self
                    .index()?
                    .frame_indexed(&frame.header.hash, seg, frame.offset)?
            {
                continue;
            }
            if frame.header.kind == FrameKind::Pack {
                // A pack whose payload does not check out costs that pack alone, like any
                // damaged frame.
                let pack = read_frame(map, frame.offset)
                    .map_err(|e| Error::corrupt(path, frame.offset, e.to_string()))
                    .and_then(|(f, payload)| decode_frame(&f, payload, path));
                match pack {
                    Ok(pack) => {
                        let mut summary = pack.summary();
                        // The pack's records, decoded once: their field names, and the
                        // (path, value) pairs of the entries that log them, here or later.
                        for (hash, slot) in &summary.objects {
                            if let Some(o) = pack.object(*slot)
                                && o.kind == Kind::Record
                            {
                                let r = Record::from_msgpack("record", o.data).ok();
                                if let Some(r) = &r {
                                    add_paths(&mut update, r);
                                }
                                records.insert(*hash, r.map(|r| r.query_attrs()));
                            }
                        }
                        let (attrs, unknown) =
                            self.pack_attrs(&pack, &summary.objects, &mut records);
                        summary.tags.extend(attrs);
                        summary.tags.sort();
                        summary.tags.dedup();
                        summary.attrs_unknown = unknown;
                        update.runs.push(RunUpdate::Pack(PackUpdate {
                            seg,
                            offset: frame.offset,
                            summary,
                        }))
                    }
                    Err(e) => self.warn(format!("damaged pack skipped: {e}")),
                }
                continue;
            }
            add_frame(&mut update, seg, frame);
            let at = (seg, frame.offset);
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
                            add_paths(&mut update, &r);
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
                    match self.attrs_of(&frame.header.hash, &mut records) {
                        Some(a) => {
                            update.attrs.insert(at, a);
                        }
                        None => {
                            update.attrs_unknown.insert(at);
                        }
                    }
                }
                None => {}
            }
        }
        Ok(update)
    }

    /// The record (path, value) pairs of a pack's entries, and whether some entry logs
    /// content whose record is not known (stored elsewhere and not indexed yet).
    fn pack_attrs(
        &self,
        pack: &Pack,
        objects: &[(ObjectHash, u32)],
        records: &mut RecordAttrs,
    ) -> (Vec<(String, String)>, bool) {
        let hash_at: HashMap<u32, &ObjectHash> = objects.iter().map(|(h, s)| (*s, h)).collect();
        let mut out = Vec::new();
        let mut unknown = false;
        for (i, item) in pack.body.items.iter().enumerate() {
            if item.entry.is_none() {
                continue;
            }
            let slot = i as u32 + 1;
            let attrs = match &item.object {
                Some(_) => match pack.object(slot) {
                    Some(o) if o.kind == Kind::Record => match hash_at.get(&slot) {
                        Some(h) => self.attrs_of(h, records),
                        None => self.attrs_of(&o.hash(), records),
                    },
                    _ => Some(Vec::new()),
                },
                None => pack
                    .item_hash(slot)
                    .and_then(|h| self.attrs_of(&h, records)),
            };
            match attrs {
                Some(a) => out.extend(a),
                None => unknown = true,
            }
        }
        (out, unknown)
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
        self.index
            .as_mut()
            .ok_or_else(|| Error::invalid("archive", "opened for logging only"))?
            .clear()?;
        self.locator.clear();
        self.catch_up(progress)?;
        self.index()?.flush()
    }
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
