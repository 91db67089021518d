//! gc's copy: the live frames of the segments it replaces, written into one new segment.
//!
//! The output is written under a temporary name (`.gc-<writer>.tmp`, which nobody reads as a
//! segment) and starts with a compaction frame naming the segments it replaces. Frames are
//! copied in segment-name and offset order, so entries keep their order:
//!
//! - an object frame is copied with its metadata and payload as they are (only its payload
//!   offset may move, to keep a raw tensor's alignment); a garbage object is dropped, and its
//!   hash noted; a removed entry in a kept frame is left out of the copy's metadata;
//! - an entry frame is copied unless a removal names it;
//! - a pack is copied as it is when all of it is live, else rebuilt from what is;
//! - removal frames are copied (a removal must hold in every copy of the store);
//! - compaction frames are folded into the output's (what they replaced and dropped).
//!
//! A content stored twice among the replaced segments is stored once in the output; the
//! second copy's live entry becomes an entry of the first.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::gc_mark::{Marks, PrefixSet, SegMark, share};
use super::put::BodyFrame;
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::format::frame::{FRAME_HEADER_LEN, FrameHeader, FrameKind, SEGMENT_HEADER_LEN};
use crate::format::meta::{EntryMeta, FrameMeta};
use crate::format::pack::{PACK_KIND, Pack, PackBuilder};
use crate::format::removal::{COMPACTION_KIND, CompactionBody};
use crate::hash::ObjectHash;
use crate::index::Removed;
use crate::object::Kind;
use crate::segment::pack::decode_frame;
use crate::segment::reader::map_file;
use crate::segment::scan::{Frame, read_frame, scan};
use crate::segment::writer::{SegmentWriter, segment_name};

/// What the copy did.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct CopyCounts {
    /// Objects dropped as garbage.
    pub objects_collected: u64,
    /// Their stored bytes.
    pub bytes_collected: u64,
    /// Removed entries left out.
    pub entries_dropped: u64,
    /// Payload bytes of the frames copied.
    pub live_bytes: u64,
    /// Packs rebuilt from their live items.
    pub packs_rebuilt: u64,
}

/// The segment gc writes.
pub(super) struct Output {
    w: SegmentWriter,
    dir: PathBuf,
    tmp: String,
    name: String,
    level: Option<i32>,
    written: HashSet<ObjectHash>,
    collected: Vec<ObjectHash>,
    /// Counts of the compactions it replaces, carried on.
    carried: (u64, u64),
    pub counts: CopyCounts,
}

/// Payloads this big are copied file to file by the kernel rather than through the map.
const COPY_IN_KERNEL: u64 = 1 << 20;

/// Frames asked of the kernel at once ahead of the copy.
const PREFETCH_FRAMES: usize = 256;

/// Big live payloads asked of the kernel ahead of the one being copied: the disk always has
/// the next reads queued.
const BIG_READS_AHEAD: usize = 4;

/// The big live payloads of a segment, which the kernel copies file to file: each is read
/// exactly (the file's own read-ahead is off), a few ahead of the copy.
struct BigReads {
    /// (frame offset, payload offset, payload length), in frame order.
    reads: Vec<(u64, u64, u64)>,
    /// How many have been asked for; how many the copy has passed.
    asked: usize,
    passed: usize,
}

impl BigReads {
    fn new(frames: &[Frame], marks: &Marks) -> BigReads {
        let reads = frames
            .iter()
            .filter(|f| {
                f.header.kind == FrameKind::Object
                    && f.header.payload_len >= COPY_IN_KERNEL
                    && !marks.is_garbage(&f.header.hash)
            })
            .map(|f| {
                let at = f.offset + u64::from(f.header.payload_off);
                (f.offset, at, f.header.payload_len)
            })
            .collect();
        BigReads {
            reads,
            asked: 0,
            passed: 0,
        }
    }

    /// The copy is at the frame at `offset`: ask for the payloads up to a few past it.
    fn ask(&mut self, file: &std::fs::File, offset: u64) {
        // The copy goes in frame order: the payload is at or after the last one passed.
        let rest = self.reads.get(self.passed..).unwrap_or(&[]);
        let Some(here) = rest
            .iter()
            .position(|r| r.0 >= offset)
            .map(|i| i + self.passed)
        else {
            return;
        };
        if self.reads.get(here).is_none_or(|r| r.0 != offset) {
            return;
        }
        self.passed = here + 1;
        let until = (here + 1 + BIG_READS_AHEAD).min(self.reads.len());
        for &(_, at, len) in self.reads.get(self.asked.max(here)..until).unwrap_or(&[]) {
            read_ahead(file, at, len);
        }
        self.asked = self.asked.max(until);
    }
}

/// What gc does with one item of a pack it copies.
struct PlannedItem {
    slot: u32,
    hash: ObjectHash,
    /// Its object is stored in the copy.
    store: bool,
    /// Its entry, if it has one and it is not removed: time and tag set.
    entry: Option<(i64, u32)>,
    /// Copied exactly as it is.
    as_is: bool,
}

/// The temporary name of the output of a gc with writer id `writer_id`.
pub(super) fn temp_name(writer_id: u64) -> String {
    format!(".gc-{writer_id:016x}.tmp")
}

/// True for a name `temp_name` gives.
pub(super) fn is_temp_name(name: &str) -> bool {
    name.starts_with(".gc-") && name.ends_with(".tmp")
}

impl Output {
    /// Start the output in `dir`: its header and the compaction frame naming `replaces`.
    pub fn create(
        dir: &Path,
        writer_id: u64,
        replaces: Vec<String>,
        level: Option<i32>,
        now_ns: i64,
    ) -> Result<Output> {
        let tmp = temp_name(writer_id);
        let w = SegmentWriter::create_as(dir, &tmp, writer_id, 0, now_ns)?;
        let mut out = Output {
            w,
            dir: dir.to_owned(),
            tmp,
            name: segment_name(writer_id, 0),
            level,
            written: HashSet::new(),
            collected: Vec::new(),
            carried: (0, 0),
            counts: CopyCounts::default(),
        };
        out.compaction(CompactionBody {
            time_ns: now_ns,
            replaces,
            ..CompactionBody::default()
        })?;
        Ok(out)
    }

    /// The output's name once renamed.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn compaction(&mut self, body: CompactionBody) -> Result<()> {
        let bytes = body.encode().map_err(Error::internal)?;
        self.body(FrameKind::Compaction, COMPACTION_KIND, &bytes)
    }

    fn body(&mut self, frame: FrameKind, kind: &str, bytes: &[u8]) -> Result<()> {
        let b = BodyFrame::new(kind, bytes, self.level)?;
        let meta = b.meta.encode().map_err(Error::internal)?;
        let parts = b.encoded.parts();
        self.w
            .append(frame, b.encoded.codec(), b.hash, &meta, &parts, b.align)?;
        Ok(())
    }

    /// The objects this gc drops (`Marks::garbage_among`), listed by its closing compaction.
    pub fn set_collected(&mut self, collected: Vec<ObjectHash>) {
        self.collected = collected;
    }

    /// Copy the live frames of one replaced segment. `garbage` holds the prefixes of the
    /// garbage objects.
    pub fn copy_segment(
        &mut self,
        seg: &SegMark,
        marks: &Marks,
        garbage: &PrefixSet,
        removed: &Removed,
        pause: &dyn Fn(u64),
    ) -> Result<()> {
        let Some(map) = map_file(&seg.path)? else {
            return Ok(());
        };
        self.collected.extend(seg.collected.iter().copied());
        self.carried.0 += seg.dropped;
        self.carried.1 += seg.freed;
        // Read at random but for what the copy reads through the map, asked for a few frames
        // ahead: frames stepped over (dropped tensors) are not read (`gc_mark::prefetch`).
        let _ = map.advise(memmap2::Advice::Random);
        let found = scan(&map, SEGMENT_HEADER_LEN as u64);
        let through_map =
            |f: &Frame| f.header.kind != FrameKind::Object || f.header.payload_len < COPY_IN_KERNEL;
        // The segment opened for the kernel's copies of big payloads (the map otherwise).
        let src = std::fs::File::open(&seg.path).ok();
        if let Some(file) = &src {
            read_at_random(file);
        }
        let mut big = BigReads::new(&found.frames, marks);
        for (n, frame) in found.frames.iter().enumerate() {
            if n % PREFETCH_FRAMES == 0 {
                let ahead = found.frames.get(n..).unwrap_or(&[]);
                let ahead = ahead.get(..PREFETCH_FRAMES).unwrap_or(ahead);
                super::gc_mark::prefetch(&map, ahead, &through_map);
            }
            let (f, payload) = read_frame(&map, frame.offset)
                .map_err(|e| Error::corrupt(&seg.path, frame.offset, e.to_string()))?;
            match f.header.kind {
                FrameKind::Object => {
                    // A big live payload, copied by the kernel: read exactly it (the file's
                    // read-ahead would also read much of the dropped frame that follows).
                    if let Some(file) = &src {
                        big.ask(file, frame.offset);
                    }
                    self.copy_object(&f, &map, payload, src.as_ref(), marks, removed)?;
                }
                FrameKind::Entry => self.copy_entry(&f, &map, removed)?,
                FrameKind::Pack => {
                    if !self.pack_whole(seg, &f, &map, payload, garbage)? {
                        let pack = decode_frame(&f, payload, &seg.path)?;
                        self.copy_pack(&f, &map, payload, &pack, marks, removed)?;
                    }
                }
                FrameKind::Removal => self.copy_as_is(&f, &map, payload)?,
                FrameKind::Compaction => {}
            }
            pause(frame.offset);
        }
        Ok(())
    }

    /// Keep or drop a pack whole, as the mark found it, when all of it is live or all of it
    /// garbage (no decode, no hashing); false if it is mixed (or was not marked).
    fn pack_whole(
        &mut self,
        seg: &SegMark,
        f: &Frame,
        map: &[u8],
        payload: &[u8],
        garbage: &PrefixSet,
    ) -> Result<bool> {
        let Some(pm) = seg.packs.get(&f.offset) else {
            return Ok(false);
        };
        let objects = seg.objects.get(pm.objects.clone()).unwrap_or(&[]);
        let dead = objects.iter().filter(|(p, _)| garbage.contains(p)).count();
        if pm.removed == 0 && dead == 0 {
            self.copy_as_is(f, map, payload)?;
            return Ok(true);
        }
        if pm.removed == pm.entries && dead == objects.len() {
            self.counts.objects_collected += dead as u64;
            self.counts.bytes_collected += objects.iter().map(|(_, n)| n).sum::<u64>();
            self.counts.entries_dropped += pm.entries;
            return Ok(true);
        }
        Ok(false)
    }

    /// Copy a frame whose payload is a body (a pack, a removal) exactly as it is.
    fn copy_as_is(&mut self, f: &Frame, map: &[u8], payload: &[u8]) -> Result<()> {
        let meta = meta_bytes(map, f)?;
        self.counts.live_bytes += f.header.payload_len;
        let h = &f.header;
        self.w
            .append(h.kind, h.codec, h.hash, meta, &[payload], 1)?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_object(
        &mut self,
        f: &Frame,
        map: &[u8],
        payload: &[u8],
        src: Option<&std::fs::File>,
        marks: &Marks,
        removed: &Removed,
    ) -> Result<()> {
        let hash = f.header.hash;
        if marks.is_garbage(&hash) {
            // Its entry, if any, is a removed one: a live entry would make it live.
            self.counts.entries_dropped += u64::from(f.meta.entry.is_some());
            self.counts.objects_collected += 1;
            self.counts.bytes_collected += f.header.payload_len;
            return Ok(());
        }
        let entry = f.meta.entry.as_ref();
        let live_entry = entry.filter(|e| !removed.contains(&hash, e.time_ns, &e.tags));
        if entry.is_some() && live_entry.is_none() {
            self.counts.entries_dropped += 1;
        }
        if !self.written.insert(hash) {
            return match live_entry {
                Some(e) => self.entry_frame(hash, e),
                None => Ok(()),
            };
        }
        let trimmed;
        let meta = if entry.is_some() && live_entry.is_none() {
            trimmed = FrameMeta {
                object: f.meta.object.clone(),
                entry: None,
            }
            .encode()
            .map_err(Error::internal)?;
            &trimmed[..]
        } else {
            meta_bytes(map, f)?
        };
        let mappable = f
            .meta
            .object
            .as_ref()
            .is_some_and(|o| o.kind == Kind::Tensor.name() || o.kind == Kind::Bytes.name());
        let align = FrameHeader::payload_align(mappable, f.header.codec, f.header.payload_len);
        self.counts.live_bytes += f.header.payload_len;
        let (codec, len) = (f.header.codec, f.header.payload_len);
        // A big payload goes file to file, through the kernel; a small one from the map.
        match src {
            Some(file) if len >= COPY_IN_KERNEL => {
                let at = f.offset + u64::from(f.header.payload_off);
                let kind = FrameKind::Object;
                self.w
                    .append_from(kind, codec, hash, meta, file, at, len, align)?;
            }
            _ => {
                self.w
                    .append(FrameKind::Object, codec, hash, meta, &[payload], align)?;
            }
        }
        Ok(())
    }

    fn copy_entry(&mut self, f: &Frame, map: &[u8], removed: &Removed) -> Result<()> {
        let Some(e) = &f.meta.entry else {
            return Ok(());
        };
        if removed.contains(&f.header.hash, e.time_ns, &e.tags) {
            self.counts.entries_dropped += 1;
            return Ok(());
        }
        let meta = meta_bytes(map, f)?;
        self.w
            .append(FrameKind::Entry, Codec::Raw, f.header.hash, meta, &[], 1)?;
        Ok(())
    }

    /// An entry frame logging `hash`.
    fn entry_frame(&mut self, hash: ObjectHash, e: &EntryMeta) -> Result<()> {
        let meta = FrameMeta {
            object: None,
            entry: Some(e.clone()),
        }
        .encode()
        .map_err(Error::internal)?;
        self.w
            .append(FrameKind::Entry, Codec::Raw, hash, &meta, &[], 1)?;
        Ok(())
    }

    fn copy_pack(
        &mut self,
        f: &Frame,
        map: &[u8],
        payload: &[u8],
        pack: &Pack,
        marks: &Marks,
        removed: &Removed,
    ) -> Result<()> {
        let plan = self.plan_pack(pack, marks, removed);
        if plan.iter().all(|i| i.as_is) {
            return self.copy_as_is(f, map, payload);
        }
        let mut b = PackBuilder::default();
        for item in &plan {
            let entry = item.entry.map(|(t, tagset)| (t, pack.tags(tagset)));
            let tags: Vec<(&str, &str)> = entry
                .map(|(_, tags)| tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
                .unwrap_or_default();
            let entry = entry.map(|(t, _)| (t, &tags[..]));
            match (pack.object(item.slot), item.store, entry) {
                (Some(o), true, entry) => b.push_object(item.hash, &o.descriptor(), o.data, entry),
                (o, _, Some((t, tags))) => {
                    let raw_len = o.map_or(0, |o| o.data.len() as u64);
                    b.push_entry(item.hash, raw_len, t, tags);
                }
                _ => {}
            }
        }
        if b.is_empty() {
            return Ok(());
        }
        self.counts.packs_rebuilt += 1;
        let (body, _) = b.finish()?;
        let before = self.w.len();
        self.body(FrameKind::Pack, PACK_KIND, &body)?;
        self.counts.live_bytes += self.w.len() - before;
        Ok(())
    }

    /// What becomes of each item of `pack`: its object stored or not (garbage, or stored
    /// already in the output), its entry kept or not (removed). Counts what is left out.
    fn plan_pack(&mut self, pack: &Pack, marks: &Marks, removed: &Removed) -> Vec<PlannedItem> {
        let mut plan = Vec::with_capacity(pack.len());
        for (i, item) in pack.items().iter().enumerate() {
            let slot = i as u32 + 1;
            let object = pack.object(slot);
            let Some(hash) = object
                .as_ref()
                .map(|o| o.hash())
                .or_else(|| pack.item_hash(slot))
            else {
                continue;
            };
            let entry = item.entry.map(|(dt, t)| (pack.time0().wrapping_add(dt), t));
            let live = entry.filter(|(t, tagset)| !removed.contains(&hash, *t, pack.tags(*tagset)));
            self.counts.entries_dropped += u64::from(entry.is_some() && live.is_none());
            let store = match &object {
                Some(o) if marks.is_garbage(&hash) => {
                    self.counts.objects_collected += 1;
                    self.counts.bytes_collected += share(pack, o.data.len());
                    false
                }
                // Stored already in the output: the item becomes an entry of that copy.
                Some(_) => self.written.insert(hash),
                None => false,
            };
            plan.push(PlannedItem {
                slot,
                hash,
                store,
                entry: live,
                as_is: store == object.is_some() && live == entry,
            });
        }
        if plan.len() != pack.len()
            && let Some(first) = plan.first_mut()
        {
            first.as_is = false;
        }
        plan
    }

    /// Write the compaction frame of what was dropped, make the output durable and rename it
    /// into place: from here on it replaces the segments it names. Returns its size.
    pub fn finish(mut self, now_ns: i64) -> Result<u64> {
        let dropped = self.counts.entries_dropped + self.carried.0;
        let freed = self.counts.bytes_collected + self.carried.1;
        if !self.collected.is_empty() || dropped > 0 {
            let mut collected = std::mem::take(&mut self.collected);
            collected.sort();
            collected.dedup();
            self.compaction(CompactionBody {
                time_ns: now_ns,
                replaces: Vec::new(),
                collected: collected
                    .iter()
                    .map(|h| serde_bytes::ByteBuf::from(h.as_bytes().to_vec()))
                    .collect(),
                dropped,
                freed,
            })?;
        }
        self.w.sync()?;
        let len = self.w.len();
        let from = self.dir.join(&self.tmp);
        let to = self.dir.join(&self.name);
        std::fs::rename(&from, &to).map_err(|e| Error::io(&to, e))?;
        crate::segment::writer::sync_dir(&self.dir)?;
        Ok(len)
    }

    /// Give up: remove the temporary output.
    pub fn abandon(self) {
        let _ = std::fs::remove_file(self.dir.join(&self.tmp));
    }
}

/// The metadata bytes of frame `f`, as stored.
fn meta_bytes<'m>(map: &'m [u8], f: &Frame) -> Result<&'m [u8]> {
    let start = f.offset as usize + FRAME_HEADER_LEN;
    map.get(start..start + f.header.meta_len as usize)
        .ok_or_else(|| Error::internal("a checked frame's metadata lies outside its segment"))
}

/// Turn the kernel's read-ahead off for `file`: the copy asks for exactly what it reads
/// (`read_ahead`), and a read-ahead past a live payload reads the dropped one after it.
fn read_at_random(file: &std::fs::File) {
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::Random);
}

/// Ask the kernel to read `len` bytes of `file` from `at` in the background, in large reads.
fn read_ahead(file: &std::fs::File, at: u64, len: u64) {
    let len = std::num::NonZeroU64::new(len);
    let _ = rustix::fs::fadvise(file, at, len, rustix::fs::Advice::WillNeed);
}
