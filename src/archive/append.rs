//! This process's segment and the batches that append to it: which segment a batch appends
//! to (adopting one no other writer holds, or creating one named by this writer's id), where
//! each open batch began (so a commit's high-water mark never passes another batch's frames),
//! the group commit's fsync, and the claims that let a batch store new content without
//! looking each object up in the index.
//!
//! `Writer` (put.rs) uses what is here through the methods below; the slot's state is
//! private to this file.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use super::{Archive, now_ns};
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::format::frame::{FrameKind, SEGMENT_HEADER_LEN, SegmentHeader};
use crate::format::version;
use crate::hash::{HashSet, ObjectHash};
use crate::segment::reader::map_file;
use crate::segment::scan::scan;
use crate::segment::writer::{SegmentWriter, try_lock};

/// An id for this writer that no other process or machine picks: a hash of the process id,
/// the time and an address, so segment names never collide without coordination.
pub(super) fn new_writer_id() -> u64 {
    let marker = 0u8;
    let mut h = blake3::Hasher::new();
    h.update(&std::process::id().to_le_bytes());
    h.update(&now_ns().to_le_bytes());
    h.update(&(&marker as *const u8 as usize as u64).to_le_bytes());
    let bytes = h.finalize();
    let [a, b, c, d, e, f, g, i, ..] = *bytes.as_bytes();
    u64::from_le_bytes([a, b, c, d, e, f, g, i])
}

/// The segment this process appends to, and the batches appending to it.
pub(super) struct SegmentSlot {
    current: Option<(SegmentWriter, u32)>,
    writer_id: u64,
    next_seq: u64,
    /// Failed appends or syncs so far; a batch that saw this change lost frames.
    failures: u64,
    /// Uncommitted batches: for each, where its first frame in each segment went. A commit
    /// moves a segment's high-water mark only up to the first frame of another open batch, so
    /// a crash before that batch commits leaves its frames to be indexed on the next open.
    open_batches: HashMap<u64, Vec<(u32, u64)>>,
    /// Segments this process filled while batches were open: each stays locked (so gc never
    /// replaces it) until every batch open when it was filled has closed, so gc never sees
    /// half a batch (a record's part without the record) in a segment it can take.
    retired: Vec<(SegmentWriter, Vec<u64>)>,
    /// Hands out batch ids.
    next_batch: u64,
}

impl SegmentSlot {
    pub(super) fn new() -> Self {
        SegmentSlot {
            current: None,
            writer_id: new_writer_id(),
            next_seq: 0,
            failures: 0,
            open_batches: HashMap::new(),
            retired: Vec::new(),
            next_batch: 0,
        }
    }
}

impl SegmentSlot {
    /// Let go of the filled segments no open batch has frames in any more.
    fn release_retired(&mut self) {
        let open = &self.open_batches;
        self.retired
            .retain(|(_, batches)| batches.iter().any(|b| open.contains_key(b)));
    }
}

/// What one batch has appended so far.
#[derive(Default)]
pub(super) struct Batch {
    /// Where its first frame went, and where its last one ended.
    span: Option<(u32, u64, u64)>,
    /// Its id among the open batches, once it appended.
    id: Option<u64>,
    /// The slot's failure count when it first appended.
    failures_at_start: Option<u64>,
    /// The segment its frames went into, and whether some went into another.
    segment: Option<(String, bool)>,
}

impl Batch {
    /// The one segment all its frames went into, if they did.
    pub(super) fn segment(&self) -> Option<&str> {
        match &self.segment {
            Some((name, false)) => Some(name),
            _ => None,
        }
    }
}

/// New objects appended by a batch but not yet in the index. A put of the same content
/// meanwhile logs an entry instead of storing it again, and the index can take a batch's
/// objects without looking each one up first.
#[derive(Default)]
pub(super) struct Claims(Mutex<HashSet>);

impl Claims {
    fn lock(&self) -> Result<MutexGuard<'_, HashSet>> {
        self.0
            .lock()
            .map_err(|_| Error::internal("claims lock poisoned"))
    }
}

impl Archive {
    fn slot(&self) -> Result<MutexGuard<'_, SegmentSlot>> {
        self.slot
            .lock()
            .map_err(|_| Error::internal("writer lock poisoned"))
    }

    /// The name of the segment this process appends to, if any.
    pub(super) fn own_segment(&self) -> Result<Option<String>> {
        Ok(self
            .slot()?
            .current
            .as_ref()
            .map(|(w, _)| w.name().to_owned()))
    }

    /// Make this process's frames durable and let go of its segment (before a rescan, or a
    /// gc, which may then replace it), unless an open batch has frames in it.
    pub(super) fn close_segment(&self) -> Result<()> {
        let mut slot = self.slot()?;
        if let Some((mut w, _)) = slot.current.take() {
            w.sync()?;
            let open: Vec<u64> = slot.open_batches.keys().copied().collect();
            if !open.is_empty() {
                slot.retired.push((w, open));
            }
        }
        Ok(())
    }

    /// Sync this process's segment, ignoring failure (on drop).
    pub(super) fn sync_segment(&self) {
        if let Ok(mut slot) = self.slot.lock()
            && let Some((w, _)) = slot.current.as_mut()
        {
            let _ = w.sync();
        }
    }

    /// True if the object is stored: per the index, or (logging only) the lookup tables.
    pub(super) fn known(&self, hash: &ObjectHash) -> Result<bool> {
        Ok(self.stored_in(hash)?.is_some())
    }

    /// The segment holding a copy of the object, per the index, or (logging only) the lookup
    /// tables; a copy the tables point at is checked where it lies.
    pub(super) fn stored_in(&self, hash: &ObjectHash) -> Result<Option<String>> {
        let candidates = if self.has_index() {
            let index = self.index()?;
            if let Some(loc) = index.get(hash)? {
                return Ok(Some(index.segment(loc.seg)?.name));
            }
            index.candidates(hash)
        } else {
            match &self.reader {
                Some(r) => r.candidates(hash),
                None => return Ok(None),
            }
        };
        // A copy in a damaged pack does not count: the content is stored again.
        Ok(candidates
            .into_iter()
            .find(|at| matches!(self.locator.open(at, hash), Ok(Some(_))))
            .map(|at| at.segment))
    }

    /// True if the object is stored, or claimed by a batch that is storing it.
    pub(super) fn stored_or_claimed(&self, hash: &ObjectHash) -> Result<bool> {
        Ok(self.claims.lock()?.contains(hash) || self.known(hash)?)
    }

    /// True if a batch of this process is storing `hash`.
    pub(super) fn claimed(&self, hash: &ObjectHash) -> Result<bool> {
        Ok(self.claims.lock()?.contains(hash))
    }

    /// Claim `hash` for a batch about to store it: `false` if it is stored or claimed already
    /// and `pin` pins the store (gc then keeps it until the batch commits; when `pin` cannot,
    /// the batch stores the content again). The claims lock is not held while the index is
    /// read, so puts of other content never wait on that lookup; two batches that race to
    /// store one content both store it, which costs space and nothing else (the index keeps
    /// the first).
    pub(super) fn claim(
        &self,
        hash: &ObjectHash,
        pin: &mut dyn FnMut() -> Result<bool>,
    ) -> Result<bool> {
        // Being stored by another batch of this process: not collectable (nothing removed
        // can reach it yet); pinned all the same where it can be.
        if self.claims.lock()?.contains(hash) {
            pin()?;
            return Ok(false);
        }
        // The copy found must still be there once pinned: a gc may have run since the index
        // or the tables were read.
        if let Some(segment) = self.stored_in(hash)?
            && pin()?
            && self.still_there(&segment)?
        {
            return Ok(false);
        }
        Ok(self.claims.lock()?.insert(*hash))
    }

    /// Forget claims: their objects are in the index now, or were never stored.
    pub(super) fn release(&self, hashes: &[ObjectHash]) {
        if let Ok(mut claimed) = self.claims.lock() {
            for h in hashes {
                claimed.remove(h);
            }
        }
    }

    /// Append a frame to this process's segment as part of `batch`; extend the high-water
    /// `marks` the batch's commit will set. Returns the segment id and the frame's offset.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn append_frame(
        &self,
        batch: &mut Batch,
        marks: &mut Vec<(u32, u64, u64)>,
        kind: FrameKind,
        codec: Codec,
        hash: ObjectHash,
        meta: &[u8],
        parts: &[&[u8]],
        align: u64,
    ) -> Result<(u32, u64)> {
        let mut slot = self.slot()?;
        // Any failure from here on fails the batch's commit: a pack holds earlier puts.
        batch.failures_at_start.get_or_insert(slot.failures);
        let (w, seg) = match self.ensure_segment(&mut slot) {
            Ok(s) => s,
            Err(e) => {
                slot.failures += 1;
                return Err(e);
            }
        };
        let seg = *seg;
        match &mut batch.segment {
            Some((name, mixed)) => *mixed |= name != w.name(),
            None => batch.segment = Some((w.name().to_owned(), false)),
        }
        let offset = match w.append(kind, codec, hash, meta, parts, align) {
            Ok(o) => o,
            Err(e) => {
                slot.failures += 1;
                return Err(e);
            }
        };
        // The index's high-water mark for this segment moves past this frame at commit,
        // so reopening does not index it a second time.
        let end = w.len();
        batch.span = match batch.span {
            Some((first_seg, first, _)) => Some((first_seg, first, end)),
            None => Some((seg, offset, end)),
        };
        match marks.iter_mut().find(|(s, _, _)| *s == seg) {
            Some((_, to, max)) => (*to, *max) = ((*to).max(end), (*max).max(end)),
            None => marks.push((seg, end, end)),
        }
        let id = *batch.id.get_or_insert_with(|| {
            slot.next_batch += 1;
            slot.next_batch
        });
        let firsts = slot.open_batches.entry(id).or_default();
        if !firsts.iter().any(|(s, _)| *s == seg) {
            firsts.push((seg, offset));
        }
        Ok((seg, offset))
    }

    /// The durable half of a commit: refuse if any append failed since the batch began, sync
    /// the segment (one fsync for the whole batch), and stop each of its `marks` at the first
    /// frame of any other batch still open in that segment. The batch stays open for the
    /// others' marks until `end_batch` (after the index took it): a commit applied first must
    /// not mark as indexed frames whose objects are not in the index yet. Returns the id to
    /// end. On error the batch must be reset (`forget_batch`).
    pub(super) fn seal_batch(
        &self,
        batch: &mut Batch,
        count: usize,
        marks: &mut [(u32, u64, u64)],
    ) -> Result<Option<u64>> {
        let mut slot = self.slot()?;
        if batch.failures_at_start.is_some_and(|f| f != slot.failures) {
            return Err(Error::invalid(
                "batch",
                format!(
                    "a write failed before this commit; the batch's {count} puts were not stored"
                ),
            ));
        }
        if let Some((w, _)) = slot.current.as_mut()
            && let Err(e) = w.sync()
        {
            slot.failures += 1;
            return Err(e);
        }
        let id = batch.id.take();
        for (seg, to, _) in marks.iter_mut() {
            let others = slot.open_batches.iter().filter(|(b, _)| Some(**b) != id);
            for (_, firsts) in others {
                for (s, first) in firsts {
                    if s == seg {
                        *to = (*to).min(*first);
                    }
                }
            }
        }
        *batch = Batch::default();
        Ok(id)
    }

    /// Close a sealed batch (`seal_batch`) once the index has taken it, or will not.
    pub(super) fn end_batch(&self, id: Option<u64>) {
        if let Some(id) = id
            && let Ok(mut slot) = self.slot()
        {
            slot.open_batches.remove(&id);
            slot.release_retired();
        }
    }

    /// Forget a batch that will not commit (its frames stay, to be indexed on the next open).
    pub(super) fn forget_batch(&self, batch: &mut Batch) {
        if let Some(id) = batch.id.take()
            && let Ok(mut slot) = self.slot()
        {
            slot.open_batches.remove(&id);
            slot.release_retired();
        }
        *batch = Batch::default();
    }

    /// Cut the segment back to where `batch` began, if nothing else was appended after it.
    pub(super) fn truncate_batch(&self, batch: &mut Batch, count: usize) -> Result<()> {
        let span = batch.span;
        self.forget_batch(batch);
        let Some((seg, first, end)) = span else {
            return Ok(());
        };
        let mut slot = self.slot()?;
        match slot.current.as_mut() {
            Some((w, s)) if *s == seg && w.len() == end => w.truncate_to(first),
            _ => Err(Error::invalid(
                "batch",
                format!("cannot discard {count} puts: other puts were appended after them"),
            )),
        }
    }

    /// The writer's current segment, opening one if needed: an existing segment no other
    /// writer holds and that has room, else a new one.
    fn ensure_segment<'s>(
        &self,
        slot: &'s mut SegmentSlot,
    ) -> Result<&'s mut (SegmentWriter, u32)> {
        let full = slot
            .current
            .as_ref()
            .is_some_and(|(w, _)| w.len() >= self.segment_size);
        if full && let Some((mut w, _)) = slot.current.take() {
            w.sync()?;
            let open: Vec<u64> = slot.open_batches.keys().copied().collect();
            if !open.is_empty() {
                slot.retired.push((w, open));
            }
        }
        if slot.current.is_none() {
            slot.current = Some(self.adopt_or_create(slot)?);
        }
        slot.current
            .as_mut()
            .ok_or_else(|| Error::internal("no segment to append to"))
    }

    fn adopt_or_create(&self, slot: &mut SegmentSlot) -> Result<(SegmentWriter, u32)> {
        // Without the index, where the last writer stopped is found by a scan from the start:
        // only small segments are worth it.
        let limit = if self.has_index() {
            self.segment_size
        } else {
            self.segment_size.min(LOGGER_ADOPTS_BELOW)
        };
        for (name, path) in self.segment_files()?.into_iter().rev() {
            let len = std::fs::metadata(&path)
                .map_err(|e| Error::io(&path, e))?
                .len();
            // An empty segment's creator died before writing its header: adopting it would
            // put frames after 64 zero bytes, a segment `verify` reports forever.
            // A pulled segment stays the remote's byte for byte: nobody here appends to it.
            if len >= limit || len == 0 || crate::store_dir::is_sealed(&self.root, &name) {
                continue;
            }
            let Some(file) = try_lock(&path)? else {
                continue;
            };
            // gc deletes a segment it replaced while it holds its lock: a lock taken after
            // that is a lock on a deleted file, never to be appended to.
            if !still_named(&path, &file) {
                continue;
            }
            if let Some(adopted) = self.adopt(&name, &path, file)? {
                return Ok(adopted);
            }
        }
        let w = SegmentWriter::create(&self.segments_dir, slot.writer_id, slot.next_seq, now_ns())?;
        slot.next_seq += 1;
        let id = if self.has_index() {
            self.index()?
                .segment_id(w.name(), SEGMENT_HEADER_LEN as u64)?
        } else {
            0
        };
        Ok((w, id))
    }

    /// Append to segment `name` from where its last writer stopped, holding its lock (`file`):
    /// with the index, what that writer left is indexed first; any torn tail is cut. None if
    /// the segment is not one to append to (not ours, or frames of a newer program follow).
    fn adopt(&self, name: &str, path: &Path, file: File) -> Result<Option<(SegmentWriter, u32)>> {
        let (id, from) = if self.has_index() {
            let id = self.index()?.segment_id(name, SEGMENT_HEADER_LEN as u64)?;
            (id, self.index()?.segment(id)?.indexed_to)
        } else {
            (0, SEGMENT_HEADER_LEN as u64)
        };
        let Some(map) = map_file(path)? else {
            return Ok(None);
        };
        if SegmentHeader::decode(&map).map_or(true, |h| h.version > version::SCHEMA_VERSION) {
            return Ok(None);
        }
        let found = scan(&map, from);
        // Frames of a newer program follow: appending would overwrite them.
        if found.newer.is_some() {
            return Ok(None);
        }
        if self.has_index() {
            let mut update = self.rescan_update(id, &found.frames, &map, path)?;
            update.marks.push((id, found.valid_end, found.valid_end));
            self.index()?.apply(update, false)?;
        }
        Ok(Some((
            SegmentWriter::adopt(path, file, found.valid_end)?,
            id,
        )))
    }
}

/// True if `path` still names the file open as `file` (not deleted or replaced since).
fn still_named(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The largest segment a process without the index appends to (it scans it from the start).
const LOGGER_ADOPTS_BELOW: u64 = 4 << 20;
