//! gc's mark: one walk of every segment finds what is live and what is garbage.
//!
//! - An entry is live unless a removal names it; a live entry's object is live, and so is
//!   everything a live record refers to (records and categoricals refer by hash).
//! - Garbage is what removed entries reach (their objects, and what those refer to) that no
//!   live entry reaches. An object nothing reaches at all (a record's part whose record a
//!   batch still has to write) is kept: gc only collects what a removal let go of.
//!
//! Live objects are kept as 64-bit hash prefixes (a collision keeps an object, never drops
//! one); garbage candidates as whole hashes. Each segment's objects are kept as (prefix,
//! stored bytes), to weigh its dead share once the mark is done.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::path::{Path, PathBuf};

use super::Archive;
use crate::error::Result;
use crate::format::frame::{FrameKind, SEGMENT_HEADER_LEN};
use crate::hash::{ObjectHash, PrefixHasher};
use crate::index::Removed;
use crate::index::lookup::prefix_of;
use crate::object::Kind;
use crate::object::record::scan_refs;
use crate::segment::pack::{decode_compaction, decode_frame};
use crate::segment::payload::{decode_payload, object_meta};
use crate::segment::reader::map_file;
use crate::segment::scan::{Frame, read_frame, scan};
use rayon::prelude::*;

/// What the mark found about one segment.
pub(super) struct SegMark {
    pub name: String,
    pub path: PathBuf,
    /// File size.
    pub len: u64,
    /// Objects stored in it: hash prefix and stored bytes (a packed object's share of its
    /// pack).
    pub objects: Vec<(u64, u64)>,
    /// False if the walk met damage, a torn tail or frames of a newer schema: gc leaves such a
    /// segment as it is (what it holds cannot all be copied).
    pub clean: bool,
    /// What the compaction frames in it (it is a gc's output) replaced and dropped: a gc that
    /// replaces it carries both on.
    pub replaces: Vec<String>,
    pub collected: Vec<ObjectHash>,
    /// Their counts: removed entries left out, stored bytes dropped.
    pub dropped: u64,
    pub freed: u64,
    /// Each pack, by offset: which of `objects` it holds, its entries and how many of them
    /// are removed (so the copy can keep or drop a pack whole without decoding it again).
    pub packs: HashMap<u64, PackMark>,
}

/// What the mark found about one pack.
pub(super) struct PackMark {
    pub objects: std::ops::Range<usize>,
    pub entries: u64,
    pub removed: u64,
}

/// What the mark found about the store.
#[derive(Default)]
pub(super) struct Marks {
    pub segs: Vec<SegMark>,
    /// Hash prefixes of live objects.
    live: PrefixSet,
    /// Objects of removed entries, and what they refer to (after `close`).
    dead: crate::hash::HashSet,
    /// What records refer to, for records that refer to anything.
    /// (record, object it refers to), for records that refer to anything.
    refs: Vec<(ObjectHash, ObjectHash)>,
    /// Entries seen, live and removed.
    pub live_entries: u64,
    pub removed_entries: u64,
}

/// A set of hash prefixes (already uniform: hashed as they are).
pub(super) type PrefixSet = std::collections::HashSet<u64, BuildHasherDefault<PrefixHasher>>;

/// The msgpack of a 32-byte binary: a record without it refers to nothing.
const REF_MARK: [u8; 2] = [0xc4, 0x20];

impl Marks {
    fn entry(&mut self, hash: ObjectHash, time_ns: i64, tags: &[(String, String)], r: &Removed) {
        self.entry_is(hash, r.contains(&hash, time_ns, tags));
    }

    fn entry_is(&mut self, hash: ObjectHash, removed: bool) {
        if removed {
            self.removed_entries += 1;
            self.dead.insert(hash);
        } else {
            self.live_entries += 1;
            self.live.insert(prefix_of(&hash));
        }
    }

    /// Note the references of a record's bytes (stored as `hash`).
    fn record(&mut self, hash: ObjectHash, bytes: &[u8]) {
        record_refs(hash, bytes, &mut self.refs);
    }

    /// Add what a pack at `offset` of `seg` holds.
    fn add_pack(&mut self, seg: &mut SegMark, offset: u64, p: PackScan) {
        let start = seg.objects.len();
        seg.objects.extend(p.objects);
        let entries = p.entries.len() as u64;
        let mut removed = 0;
        for (h, r) in p.entries {
            removed += u64::from(r);
            self.entry_is(h, r);
        }
        self.refs.extend(p.refs);
        let objects = start..seg.objects.len();
        seg.packs.insert(
            offset,
            PackMark {
                objects,
                entries,
                removed,
            },
        );
    }

    /// Follow references: from live objects (so what they reach is live), then from dead
    /// ones (what they reach and nothing live does is dead).
    pub fn close(&mut self) {
        // Passes over the (record, object) pairs until nothing changes: one pass does it
        // unless records refer to records.
        let mut grew = true;
        while grew {
            grew = false;
            for (rec, to) in &self.refs {
                if self.live.contains(&prefix_of(rec)) {
                    grew |= self.live.insert(prefix_of(to));
                }
            }
        }
        let mut grew = true;
        while grew {
            grew = false;
            for (rec, to) in &self.refs {
                if self.dead.contains(rec) {
                    grew |= self.dead.insert(*to);
                }
            }
        }
        let live = &self.live;
        self.dead.retain(|h| !live.contains(&prefix_of(h)));
    }

    /// True if gc may drop `hash` (after `close`).
    pub fn is_garbage(&self, hash: &ObjectHash) -> bool {
        self.dead.contains(hash)
    }

    /// The garbage objects (after `close`): what gc's compaction frame lists as dropped.
    pub fn garbage(&self) -> Vec<ObjectHash> {
        self.dead.iter().copied().collect()
    }

    /// Garbage objects (after `close`), as prefixes.
    pub fn garbage_prefixes(&self) -> PrefixSet {
        self.dead.iter().map(prefix_of).collect()
    }
}

impl Archive {
    /// Walk every segment in `files` (the store's, less those a compaction replaced).
    pub(super) fn mark(
        &self,
        files: &[(String, PathBuf)],
        removed: &Removed,
        progress: &dyn Fn(u64, u64),
    ) -> Result<Marks> {
        let mut marks = Marks::default();
        let total = super::files_len(files);
        let mut done = 0;
        for (name, path) in files {
            let Some(map) = map_file(path)? else { continue };
            // The walk reads frame headers, and whole frames only of packs and records: the
            // kernel's read-around on each fault (8 MiB on some disks) would otherwise read
            // most of every big tensor the walk steps over.
            let _ = map.advise(memmap2::Advice::Random);
            let found = scan(&map, SEGMENT_HEADER_LEN as u64);
            let mut seg = SegMark {
                name: name.clone(),
                path: path.clone(),
                len: map.len() as u64,
                objects: Vec::new(),
                replaces: Vec::new(),
                collected: Vec::new(),
                dropped: 0,
                freed: 0,
                packs: HashMap::new(),
                clean: found.damage.is_empty() && found.tail.is_none() && found.newer.is_none(),
            };
            // Packs are decoded and hashed on every core, a chunk at a time; what they hold
            // is added in frame order.
            for chunk in found.frames.chunks(PACKS_AT_ONCE) {
                prefetch(&map, chunk, &decoded_by_mark);
                let packs: Vec<Option<Result<PackScan>>> = chunk
                    .par_iter()
                    .map(|f| {
                        (f.header.kind == FrameKind::Pack)
                            .then(|| scan_pack(f, &map, path, removed))
                    })
                    .collect();
                for (frame, pack) in chunk.iter().zip(packs) {
                    seg.clean &= match pack {
                        Some(Ok(p)) => {
                            marks.add_pack(&mut seg, frame.offset, p);
                            true
                        }
                        Some(Err(_)) => false,
                        None => self.mark_frame(&mut marks, &mut seg, frame, &map, path, removed),
                    };
                }
            }
            done += seg.len;
            progress(done, total);
            marks.segs.push(seg);
        }
        marks.close();
        Ok(marks)
    }

    /// Mark one frame; false if it does not read back (the segment is then left alone).
    fn mark_frame(
        &self,
        marks: &mut Marks,
        seg: &mut SegMark,
        frame: &Frame,
        map: &[u8],
        path: &Path,
        removed: &Removed,
    ) -> bool {
        let hash = frame.header.hash;
        match frame.header.kind {
            FrameKind::Object => {
                seg.objects
                    .push((prefix_of(&hash), frame.header.payload_len));
                if let Some(e) = &frame.meta.entry {
                    marks.entry(hash, e.time_ns, &e.tags, removed);
                }
                let is_record = frame
                    .meta
                    .object
                    .as_ref()
                    .is_some_and(|o| o.kind == Kind::Record.name());
                !is_record || mark_record_frame(marks, frame, map, path).is_ok()
            }
            FrameKind::Entry => {
                if let Some(e) = &frame.meta.entry {
                    marks.entry(hash, e.time_ns, &e.tags, removed);
                }
                true
            }
            // Packs are marked by `scan_pack`.
            FrameKind::Pack => true,
            FrameKind::Removal => true,
            FrameKind::Compaction => {
                let body = read_frame(map, frame.offset)
                    .map_err(|e| crate::error::Error::corrupt(path, frame.offset, e.to_string()))
                    .and_then(|(f, payload)| decode_compaction(&f, payload, path));
                match body {
                    Ok(b) => {
                        seg.collected.extend(b.collected());
                        seg.dropped += b.dropped;
                        seg.freed += b.freed;
                        seg.replaces.extend(b.replaces);
                        true
                    }
                    Err(_) => false,
                }
            }
        }
    }
}

/// Note the references of the record stored in an object frame.
fn mark_record_frame(marks: &mut Marks, frame: &Frame, map: &[u8], path: &Path) -> Result<()> {
    let (f, payload) = read_frame(map, frame.offset)
        .map_err(|e| crate::error::Error::corrupt(path, frame.offset, e.to_string()))?;
    let meta = object_meta(&f, path)?;
    let bytes = decode_payload(&f, meta, payload, path)?;
    marks.record(frame.header.hash, &bytes);
    Ok(())
}

/// Frames whose packs are decoded at once, across the cores.
const PACKS_AT_ONCE: usize = 256;

/// What one pack holds, as the mark needs it.
struct PackScan {
    /// Objects: hash prefix, stored share.
    objects: Vec<(u64, u64)>,
    /// Entries: the object logged, and whether a removal names the entry.
    entries: Vec<(ObjectHash, bool)>,
    /// (record, object it refers to).
    refs: Vec<(ObjectHash, ObjectHash)>,
}

/// Decode a pack and hash its objects.
/// Ask the kernel to read ahead, each in one go, the frames of `frames` that `whole` says are
/// read whole through `map` (a map advised `Random`, so that only what is asked for is read).
pub(super) fn prefetch(map: &memmap2::Mmap, frames: &[Frame], whole: &dyn Fn(&Frame) -> bool) {
    for f in frames.iter().filter(|f| whole(f)) {
        if let (Ok(at), Ok(len)) = (
            usize::try_from(f.offset),
            usize::try_from(f.header.frame_len()),
        ) {
            let _ = map.advise_range(memmap2::Advice::WillNeed, at, len);
        }
    }
}

/// True for a pack or a record: what the mark decodes whole.
fn decoded_by_mark(f: &Frame) -> bool {
    f.header.kind == FrameKind::Pack
        || f.meta
            .object
            .as_ref()
            .is_some_and(|o| o.kind == Kind::Record.name())
}

fn scan_pack(frame: &Frame, map: &[u8], path: &Path, removed: &Removed) -> Result<PackScan> {
    let (f, payload) = read_frame(map, frame.offset)
        .map_err(|e| crate::error::Error::corrupt(path, frame.offset, e.to_string()))?;
    let pack = decode_frame(&f, payload, path)?;
    let mut out = PackScan {
        objects: Vec::with_capacity(pack.len()),
        entries: Vec::with_capacity(pack.len()),
        refs: Vec::new(),
    };
    // By slot (item index + 1).
    let mut hashes: Vec<Option<ObjectHash>> = vec![None; pack.len() + 1];
    for (slot, o) in pack.objects() {
        let h = o.hash();
        out.objects
            .push((prefix_of(&h), share(&pack, o.data.len())));
        if o.kind == Kind::Record {
            record_refs(h, o.data, &mut out.refs);
        }
        if let Some(at) = hashes.get_mut(slot as usize) {
            *at = Some(h);
        }
    }
    for (slot, time_ns, tagset) in pack.entry_items() {
        let h = match hashes.get(slot as usize).copied().flatten() {
            Some(h) => Some(h),
            None => pack.item_hash(slot),
        };
        if let Some(h) = h {
            out.entries
                .push((h, removed.contains(&h, time_ns, pack.tags(tagset))));
        }
    }
    Ok(out)
}

/// Add the references of the record `hash` (its bytes) to `out`.
fn record_refs(hash: ObjectHash, bytes: &[u8], out: &mut Vec<(ObjectHash, ObjectHash)>) {
    if !bytes.windows(2).any(|w| w == REF_MARK) {
        return;
    }
    // A record that does not parse refers to nothing gc can see; verify reports it.
    let mut refs = Vec::new();
    if scan_refs(bytes, &mut |h| refs.push(h)).is_ok() {
        out.extend(refs.into_iter().map(|r| (hash, r)));
    }
}

/// The stored bytes of `len` bytes of a pack's data: their share of the pack's payload.
pub(super) fn share(pack: &crate::format::pack::Pack, len: usize) -> u64 {
    let data = pack.data().len().max(1) as u64;
    (len as u64 * pack.stored_len / data).max(1)
}
