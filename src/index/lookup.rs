//! Lookup tables: immutable sorted files mapping hash prefixes to frame locations, so that
//! `archive get <hash>` finds an object without opening sled (whose open replays its page
//! table: ~100 ms at a million objects, where a table lookup takes microseconds).
//!
//! Tables live in `index/lookup/` and are derived like the rest of `index/`: every commit
//! writes one table of its new objects *before* sled learns of them (so tables always cover
//! what sled holds), and tables of similar size are merged, so a store has O(log n) of them.
//! They are hints: a reader checks the hash in the frame header a table points at, and falls
//! back to sled on any miss. A table that cannot be written makes the writer drop the whole
//! directory; the next process that opens the index finds the tables missing and rebuilds
//! the whole index, tables included, from the segments (sled alone cannot rebuild them: packed
//! objects have no sled key).
//!
//! Layouts (FORMAT.md, "Lookup tables", has them byte by byte): entries sorted by hash prefix
//! (u64 big-endian, so numeric order is hash order), each naming a segment and frame offset
//! (24 bytes, magic `89 'M' 'A' 'T'`); *framed* tables name each frame once in a list and
//! their entries a frame by index (`'F'`, 14 bytes; *short*, `'S'`, 12 bytes, up to 65,536
//! frames); *bucketed* tables (`'B'`, written by schema v6) keep a directory of the prefix's top
//! 16 bits and 10-byte entries; *compact* tables (`'C'`, `'D'`: every table of at least
//! `table_layout::MIN_ENTRIES` entries) keep that directory, the prefix's next 32 bits and a
//! frame index, 6 bytes (8 with 32-bit frame indexes): no slot, and 48 bits of prefix.
//!
//! The slot is 0 for an object in a frame of its own, and item index + 1 for an object in a
//! pack frame; a compact entry's is `ANY_SLOT`: the frame's own object or any item of it, found
//! by its hash. Every layout is read. A content stored twice (by two processes logging at
//! once) may have two entries; readers take the first whose frame holds it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::{Error, Result};
use crate::format::{align_up, le_u16, le_u32, le_u64};
use crate::hash::ObjectHash;
use crate::segment::reader::map_file;

mod merge;
use merge::merge_tables;

pub use super::table_layout::COMPACT_PREFIX;
use super::table_layout::{
    BUCKET_MAGIC, BUCKETED_LEN, COMPACT_MAGIC, COMPACT_WIDE_MAGIC, FRAMED_MAGIC, Framing,
    SHORT_MAGIC, TABLE_MAGIC, framed_entry,
};

const ENTRY_LEN: usize = 24;
/// An entry of a framed table: prefix (u64 BE), frame index (u32), slot (u16).
const FRAMED_LEN: usize = 14;
/// An entry of a short framed table: prefix (u64 BE), frame index (u16), slot (u16).
const SHORT_LEN: usize = 12;
/// Bytes of a merged table hashed and written at once.
const MERGE_BLOCK: usize = 1 << 20;
/// A frame of a framed table's list: segment index (u32), offset (u64).
const FRAME_LEN: usize = 12;
const SUM_OFFSET: usize = 12;
const NAMES_OFFSET: usize = 24;
const FRAMED_NAMES_OFFSET: usize = 32;

/// A table's checksum: blake3 over its bytes with the checksum field as zeros. Every open of
/// the index checks every table (24 MB at a million objects), so the bulk is hashed on every
/// core.
fn table_sum(bytes: &[u8]) -> u32 {
    let mut h = blake3::Hasher::new();
    h.update(bytes.get(..SUM_OFFSET).unwrap_or(&[]));
    h.update(&[0; 4]);
    h.update_rayon(bytes.get(SUM_OFFSET + 4..).unwrap_or(&[]));
    let [a, b, c, d, ..] = *h.finalize().as_bytes();
    u32::from_le_bytes([a, b, c, d])
}

/// The slot of a compact table's entry: the object is the frame's own, or an item of it,
/// whichever has its hash; the entry's prefix keeps the hash's first 48 bits.
pub const ANY_SLOT: u32 = u32::MAX;

/// One object's location, by segment name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// The first 8 bytes of the hash, as a big-endian number (of an `ANY_SLOT` entry, the
    /// first 6, the rest zero).
    pub prefix: u64,
    /// Segment file name.
    pub segment: String,
    /// Frame offset.
    pub offset: u64,
    /// 0 for a whole frame, item index + 1 in a pack, `ANY_SLOT` for either.
    pub slot: u32,
}

impl Located {
    /// True if an object whose hash has prefix `p` may be here.
    pub fn may_hold(&self, p: u64) -> bool {
        match self.slot {
            ANY_SLOT => self.prefix == p & COMPACT_PREFIX,
            _ => self.prefix == p,
        }
    }
}

/// The first 8 bytes of a hash as a big-endian number.
pub fn prefix_of(hash: &ObjectHash) -> u64 {
    let [a, b, c, d, e, f, g, h, ..] = *hash.as_bytes();
    u64::from_be_bytes([a, b, c, d, e, f, g, h])
}

/// An open table.
struct Table {
    map: Mmap,
    segments: Vec<String>,
    entries: usize,
    count: usize,
    /// A framed table's frame list: where it starts, and how many frames.
    frames: Option<(usize, usize)>,
    /// Bytes of an entry's frame index in a framed table: 4, or 2 in a short one.
    frame_width: usize,
    /// A bucketed or compact table's directory.
    dir: Option<super::table_layout::Directory>,
    /// True if the entries keep no slot, and 48 bits of prefix.
    compact: bool,
}

impl Table {
    fn open(path: &Path) -> Option<Table> {
        let map = map_file(path).ok()??;
        let (framed, frame_width, bucketed, compact) = match map.get(..8)? {
            m if m == TABLE_MAGIC => (false, 0, false, false),
            m if m == FRAMED_MAGIC => (true, 4, false, false),
            m if m == SHORT_MAGIC => (true, 2, false, false),
            m if m == BUCKET_MAGIC => (true, 2, true, false),
            m if m == COMPACT_MAGIC => (true, 2, true, true),
            m if m == COMPACT_WIDE_MAGIC => (true, 4, true, true),
            _ => return None,
        };
        let nsegs = le_u32(&map, 8)? as usize;
        let count = usize::try_from(le_u64(&map, 16)?).ok()?;
        let nframes = match framed {
            true => Some(usize::try_from(le_u64(&map, 24)?).ok()?),
            false => None,
        };
        let mut at = if framed {
            FRAMED_NAMES_OFFSET
        } else {
            NAMES_OFFSET
        };
        let mut segments = Vec::with_capacity(nsegs.min(1 << 16));
        for _ in 0..nsegs {
            let len = le_u16(&map, at)? as usize;
            let name = map.get(at + 2..at + 2 + len)?;
            segments.push(String::from_utf8(name.to_vec()).ok()?);
            at += 2 + len;
        }
        let at = align_up(at as u64, 8)? as usize;
        let (entries, frames) = match nframes {
            Some(n) => {
                let end = at.checked_add(n.checked_mul(FRAME_LEN)?)?;
                (align_up(end as u64, 8)? as usize, Some((at, n)))
            }
            None => (at, None),
        };
        let (dir, entries) = match bucketed {
            true => (
                Some(super::table_layout::Directory::open(&map, entries, count)?),
                entries.checked_add(super::table_layout::DIR_LEN)?,
            ),
            false => (None, entries),
        };
        let table = Table {
            map,
            segments,
            entries,
            count,
            frames,
            frame_width,
            dir,
            compact,
        };
        let len = table.entry_len();
        if table.map.len() != entries.checked_add(count.checked_mul(len)?)? {
            return None;
        }
        Some(table)
    }

    /// Bytes an entry takes.
    fn entry_len(&self) -> usize {
        if self.compact {
            return 4 + self.frame_width;
        }
        match (self.frame_width, &self.dir) {
            (0, _) => ENTRY_LEN,
            (2, Some(_)) => BUCKETED_LEN,
            (2, None) => SHORT_LEN,
            _ => FRAMED_LEN,
        }
    }

    /// Bytes of an entry's prefix.
    fn prefix_len(&self) -> usize {
        match (self.compact, &self.dir) {
            (true, _) => 4,
            (false, Some(_)) => 6,
            (false, None) => 8,
        }
    }

    /// Where entry `i` starts.
    fn at(&self, i: usize) -> usize {
        self.entries + i * self.entry_len()
    }

    /// The frame index and slot of framed entry `i` (a compact entry's: `ANY_SLOT`).
    fn framed_at(&self, i: usize) -> Option<(usize, u32)> {
        let at = self.at(i) + self.prefix_len();
        let (frame, at) = match self.frame_width {
            2 => (le_u16(&self.map, at)? as usize, at + 2),
            _ => (le_u32(&self.map, at)? as usize, at + 4),
        };
        match self.compact {
            true => Some((frame, ANY_SLOT)),
            false => Some((frame, u32::from(le_u16(&self.map, at)?))),
        }
    }

    fn prefix_at(&self, i: usize) -> Option<u64> {
        let at = self.at(i);
        let Some(dir) = &self.dir else {
            return self
                .map
                .get(at..at + 8)?
                .try_into()
                .ok()
                .map(u64::from_be_bytes);
        };
        Some(super::table_layout::prefix(
            dir.bucket_of(&self.map, i)?,
            self.low_at(i)?,
        ))
    }

    /// Every entry's prefix, in order (a bucketed table's directory walked alongside).
    fn prefixes(&self) -> impl Iterator<Item = u64> + '_ {
        let mut bucket = 0;
        (0..self.count).map_while(move |i| {
            let Some(dir) = &self.dir else {
                return self.prefix_at(i);
            };
            while dir.start(&self.map, bucket + 1)? <= i {
                bucket += 1;
            }
            Some(super::table_layout::prefix(bucket, self.low_at(i)?))
        })
    }

    /// The low 48 bits of bucketed entry `i`'s prefix (of a compact entry, the 32 it keeps,
    /// then 16 zero bits).
    fn low_at(&self, i: usize) -> Option<u64> {
        let at = self.at(i);
        let len = self.prefix_len();
        let b = self.map.get(at..at + len)?;
        let low = b.iter().fold(0u64, |v, x| (v << 8) | u64::from(*x));
        Some(low << (8 * (6 - len)))
    }

    /// Entry `i`, its segment by index (`None` past the end, or naming no frame).
    fn raw(&self, i: usize) -> Option<RawEntry> {
        let at = self.at(i);
        let prefix = self.prefix_at(i)?;
        let Some((frames, n)) = self.frames else {
            return Some(RawEntry {
                prefix,
                segment: le_u32(&self.map, at + 8)?,
                slot: le_u32(&self.map, at + 12)?,
                offset: le_u64(&self.map, at + 16)?,
            });
        };
        let (f, slot) = self.framed_at(i)?;
        let frame = frames + FRAME_LEN * Some(f).filter(|f| *f < n)?;
        Some(RawEntry {
            prefix,
            segment: le_u32(&self.map, frame)?,
            slot,
            offset: le_u64(&self.map, frame + 4)?,
        })
    }

    fn entry(&self, i: usize) -> Option<Located> {
        let e = self.raw(i)?;
        Some(Located {
            prefix: e.prefix,
            segment: self.segments.get(e.segment as usize)?.clone(),
            offset: e.offset,
            slot: e.slot,
        })
    }

    /// Index of the first entry whose prefix is at least `p`.
    fn lower_bound(&self, p: u64) -> usize {
        // A bucketed table: within the bucket of `p`, by the low bits.
        let bucket = self.dir.as_ref().map(|d| d.bucket(&self.map, p));
        type Key = fn(&Table, usize) -> Option<u64>;
        let ((mut lo, mut hi), low): (_, Key) = match bucket {
            Some(Some(range)) => (range, Table::low_at),
            Some(None) => return self.count,
            None => ((0, self.count), Table::prefix_at),
        };
        let p = match (bucket.is_some(), self.compact) {
            (true, true) => p & super::table_layout::LOW & COMPACT_PREFIX,
            (true, false) => p & super::table_layout::LOW,
            (false, _) => p,
        };
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match low(self, mid) {
                Some(x) if x < p => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo
    }

    /// `range` into a new list (tests).
    #[cfg(test)]
    fn range_of(&self, lo: u64, hi: u64, limit: usize) -> Vec<Located> {
        let mut out = Vec::new();
        self.range(lo, hi, limit, &mut out);
        out
    }

    /// Entries with `lo <= prefix <= hi`, at most `limit` (of a compact table, those whose 48
    /// bits are the first 48 of a prefix in that range).
    fn range(&self, lo: u64, hi: u64, limit: usize, out: &mut Vec<Located>) {
        let mut i = self.lower_bound(lo);
        while i < self.count && out.len() < limit {
            match self.entry(i) {
                Some(e) if e.prefix <= hi => out.push(e),
                _ => break,
            }
            i += 1;
        }
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = Located> + '_ {
        (0..self.count).map_while(|i| self.entry(i))
    }

    /// True if the checksum holds: the table is as it was written.
    fn intact(&self) -> bool {
        le_u32(&self.map, SUM_OFFSET) == Some(table_sum(&self.map))
    }
}

/// Check every table in `dir` against its checksum, so that a damaged table is rebuilt rather
/// than believed (readers only check a table's structure, and every location against its
/// frame). The error names the first table that fails.
pub fn check(dir: &Path) -> std::result::Result<(), String> {
    check_tables(dir, &mut |_| false, &mut |_| {})
}

/// `check`, skipping the tables `known(path)` says were checked before, and telling
/// `checked(path)` of each table that passes.
pub fn check_tables(
    dir: &Path,
    known: &mut dyn FnMut(&Path) -> bool,
    checked: &mut dyn FnMut(&Path),
) -> std::result::Result<(), String> {
    let files = table_files(dir).ok_or_else(|| format!("{}: cannot be listed", dir.display()))?;
    for path in files {
        if known(&path) {
            continue;
        }
        match Table::open(&path) {
            Some(t) if t.intact() => checked(&path),
            Some(t) if le_u32(&t.map, SUM_OFFSET) == Some(0) => {
                return Err(format!(
                    "{}: written by an older version, without a checksum",
                    path.display()
                ));
            }
            Some(_) => return Err(format!("{}: checksum does not match", path.display())),
            // Merged away by a commit since the listing: its entries are in the new table.
            None if !path.exists() => continue,
            None => return Err(format!("{}: not a whole lookup table", path.display())),
        }
    }
    Ok(())
}

/// The tables of a store, for reading.
#[derive(Default)]
pub struct Tables {
    tables: Vec<Table>,
}

impl Tables {
    /// Open the tables in `dir`; `None` if there is no table directory (never built, or
    /// dropped after a failed write), in which case only sled knows where objects are.
    pub fn open(dir: &Path) -> Option<Tables> {
        let mut tables = Vec::new();
        for path in table_files(dir)? {
            // A table that does not parse (a crash mid-merge, say) is skipped; the objects it
            // held are in the table it was merged from or into, or in sled.
            if let Some(t) = Table::open(&path) {
                tables.push(t);
            }
        }
        Some(Tables { tables })
    }

    /// How many entries the tables hold.
    pub fn entries(&self) -> u64 {
        self.tables.iter().map(|t| t.count as u64).sum()
    }

    /// Every location in every table, as prefix, segment name, slot and offset, without
    /// building a `Located` (and its name) for each.
    #[cfg(feature = "remote")]
    pub(crate) fn for_each(&self, f: &mut dyn FnMut(u64, &str, u32, u64)) {
        for t in &self.tables {
            for e in (0..t.count).map_while(|i| t.raw(i)) {
                if let Some(name) = t.segments.get(e.segment as usize) {
                    f(e.prefix, name, e.slot, e.offset);
                }
            }
        }
    }

    /// Every location in every table (objects stored twice appear twice).
    pub fn all(&self) -> impl Iterator<Item = Located> + '_ {
        self.tables.iter().flat_map(|t| t.all())
    }

    /// Locations of objects whose hash prefix lies in `lo..=hi`, at most `limit`.
    pub fn range(&self, lo: u64, hi: u64, limit: usize) -> Vec<Located> {
        let mut out = Vec::new();
        for t in &self.tables {
            t.range(lo, hi, limit.saturating_sub(out.len()), &mut out);
        }
        out
    }
}

fn table_files(dir: &Path) -> Option<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "tbl"))
        .collect();
    files.sort();
    Some(files)
}

fn generation(path: &Path) -> u64 {
    path.file_stem()
        .and_then(|s| u64::from_str_radix(&s.to_string_lossy(), 16).ok())
        .unwrap_or(0)
}

/// Write `entries` (sorted by prefix) as a new table after every existing one.
fn write_table(
    dir: &Path,
    gen_: u64,
    segments: &[String],
    entries: &[RawEntry],
) -> Result<PathBuf> {
    let out = encode_table(segments, entries);
    let path = dir.join(format!("{gen_:016x}.tbl"));
    let tmp = dir.join(format!("{gen_:016x}.tmp"));
    // No fsync: a table is a cache. A torn one fails its checksum, and the next process that
    // opens the index rebuilds it.
    fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(&out))
        .and_then(|()| fs::rename(&tmp, &path))
        .map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// The bytes of a table of `entries` (sorted by prefix), whose segments index `segments`: the
/// names are written sorted, the entries renumbered to match.
fn encode_table(segments: &[String], entries: &[RawEntry]) -> Vec<u8> {
    let mut order: Vec<usize> = (0..segments.len()).collect();
    order.sort_by_key(|i| segments.get(*i));
    let mut renum = vec![0u32; segments.len()];
    for (new, old) in order.iter().enumerate() {
        if let Some(r) = renum.get_mut(*old) {
            *r = new as u32;
        }
    }
    let names: Vec<&str> = order
        .iter()
        .filter_map(|i| segments.get(*i).map(String::as_str))
        .collect();
    let raw: Vec<RawEntry> = entries
        .iter()
        .map(|e| RawEntry {
            segment: renum.get(e.segment as usize).copied().unwrap_or(0),
            ..*e
        })
        .collect();
    encode(&names, &raw)
}

/// The bytes of a table naming `segments`, of `entries` (sorted by prefix) that index them:
/// framed (compact if large, or if an entry is `ANY_SLOT`), or of segment and offset entries
/// if a slot does not fit 16 bits.
pub(crate) fn encode(segments: &[&str], entries: &[RawEntry]) -> Vec<u8> {
    encode_framed(segments, entries).unwrap_or_else(|| encode_raw(segments, entries))
}

/// The header of a table: `magic`, the segment count, a zero checksum, the entry count, a
/// framed table's frame count, the segment names, padding to a multiple of 8.
fn header(magic: [u8; 8], segments: &[&str], entries: usize, frames: Option<usize>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&magic);
    out.extend_from_slice(&(segments.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(entries as u64).to_le_bytes());
    if let Some(n) = frames {
        out.extend_from_slice(&(n as u64).to_le_bytes());
    }
    for s in segments {
        out.extend_from_slice(&(s.len() as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    pad8(&mut out);
    out
}

fn pad8(out: &mut Vec<u8>) {
    out.resize(align_up(out.len() as u64, 8).unwrap_or(0) as usize, 0);
}

/// Put the checksum of the table `out` in its place.
fn seal(mut out: Vec<u8>) -> Vec<u8> {
    let sum = table_sum(&out);
    if let Some(field) = out.get_mut(SUM_OFFSET..SUM_OFFSET + 4) {
        field.copy_from_slice(&sum.to_le_bytes());
    }
    out
}

/// The bytes of a framed table of `entries` (sorted by prefix): each distinct frame once in
/// a list, and an entry naming it by index, 12 bytes (a short table, up to 65,536 frames) or
/// 14 (12 and 10 bytes less than `encode_raw`'s); compact, 6 or 8 bytes, for a table of
/// `table_layout::MIN_ENTRIES` or more, or any entry of `ANY_SLOT`. `None` if a slot does not
/// fit its 16 bits (a pack of more items than any this program writes).
fn encode_framed(segments: &[&str], entries: &[RawEntry]) -> Option<Vec<u8>> {
    let mut frames: Vec<(u32, u64)> = entries.iter().map(|e| (e.segment, e.offset)).collect();
    frames.sort_unstable();
    frames.dedup();
    let lossy = entries.iter().any(|e| e.slot == ANY_SLOT);
    let framing = Framing::of(frames.len(), entries.len(), lossy);
    encode_frames(segments, entries, &frames, framing)
}

/// `encode_framed` of `entries` in the distinct `frames` (sorted) they name, laid out as
/// `framing` says.
fn encode_frames(
    segments: &[&str],
    entries: &[RawEntry],
    frames: &[(u32, u64)],
    framing: Framing,
) -> Option<Vec<u8>> {
    let mut out = header(framing.magic(), segments, entries.len(), Some(frames.len()));
    out.reserve(frames.len() * FRAME_LEN + 8 + entries.len() * FRAMED_LEN);
    for (segment, offset) in frames {
        out.extend_from_slice(&segment.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
    }
    pad8(&mut out);
    if framing.bucketed() {
        let prefixes = entries.iter().map(|e| e.prefix);
        out.extend_from_slice(&super::table_layout::encode(prefixes, entries.len())?);
    }
    let mut buf = [0u8; FRAMED_LEN];
    for e in entries {
        let frame = frames.binary_search(&(e.segment, e.offset)).ok()?;
        let len = framed_entry(&mut buf, e.prefix, frame, e.slot, framing)?;
        out.extend_from_slice(buf.get(..len)?);
    }
    Some(seal(out))
}

/// A table entry by the index of its segment's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawEntry {
    pub prefix: u64,
    pub segment: u32,
    pub slot: u32,
    pub offset: u64,
}

/// The bytes of a table naming `segments`, of `entries` (sorted by prefix) that index them, as
/// segment and offset entries.
fn encode_raw(segments: &[&str], entries: &[RawEntry]) -> Vec<u8> {
    let mut out = header(TABLE_MAGIC, segments, entries.len(), None);
    out.reserve(entries.len() * ENTRY_LEN);
    for e in entries {
        out.extend_from_slice(&flat(e, e.segment));
    }
    seal(out)
}

/// The bytes of `e` in a table of segment and offset entries, its segment index `segment`.
fn flat(e: &RawEntry, segment: u32) -> [u8; ENTRY_LEN] {
    let mut out = [0; ENTRY_LEN];
    let (prefix, rest) = out.split_at_mut(8);
    let (seg, rest) = rest.split_at_mut(4);
    let (slot, offset) = rest.split_at_mut(4);
    prefix.copy_from_slice(&e.prefix.to_be_bytes());
    seg.copy_from_slice(&segment.to_le_bytes());
    slot.copy_from_slice(&e.slot.to_le_bytes());
    offset.copy_from_slice(&e.offset.to_le_bytes());
    out
}

/// The segment names of the table at `path` if it parses and its checksum holds; `None`
/// otherwise (a table fetched from a remote is believed only then).
#[cfg(feature = "remote")]
pub(crate) fn checked_names(path: &Path) -> Option<Vec<String>> {
    let t = Table::open(path)?;
    t.intact().then(|| t.segments.clone())
}

/// Add a table of `entries` to `dir`, then merge the newest tables while the older of the two
/// is at most twice the newer's size: a binary counter, so there are O(log n) tables and each
/// entry is rewritten O(log n) times. `wrote(path)` is told of each table written; a table
/// `known(path)` says was checked since it was written is merged without hashing it again.
pub fn add(
    dir: &Path,
    segments: &[String],
    mut entries: Vec<RawEntry>,
    wrote: &mut dyn FnMut(&Path),
    known: &mut dyn FnMut(&Path) -> bool,
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    entries.sort_by_key(|e| e.prefix);
    let files = table_files(dir).unwrap_or_default();
    let next = files.last().map_or(1, |p| generation(p) + 1);
    wrote(&write_table(dir, next, segments, &entries)?);
    loop {
        let files = table_files(dir).unwrap_or_default();
        let [.., older, newer] = files.as_slice() else {
            return Ok(());
        };
        let (Some(a), Some(b)) = (Table::open(older), Table::open(newer)) else {
            return Ok(());
        };
        if a.count > 2 * b.count {
            return Ok(());
        }
        // A compact table's entries fit only a framed table: one is not merged with a table
        // of segment and offset entries (which no table of this version's writers is).
        if (a.compact || b.compact) && (a.frames.is_none() || b.frames.is_none()) {
            return Ok(());
        }
        // A damaged table is never merged into one with a good checksum: it stays as it is,
        // and the next open of the index finds it and rebuilds.
        if !(known(older) || a.intact()) || !(known(newer) || b.intact()) {
            return Ok(());
        }
        let gen_ = generation(newer) + 1;
        wrote(&merge_tables(dir, gen_, &a, &b)?);
        drop((a, b));
        for p in [older, newer] {
            fs::remove_file(p).map_err(|e| Error::io(p, e))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries that name their segments as `add` takes them: the names, and entries that
    /// index them.
    fn raw_of(entries: Vec<Located>) -> (Vec<String>, Vec<RawEntry>) {
        let mut names: Vec<String> = Vec::new();
        let raw = entries
            .into_iter()
            .map(|e| {
                let segment = match names.iter().position(|n| *n == e.segment) {
                    Some(i) => i,
                    None => {
                        names.push(e.segment.clone());
                        names.len() - 1
                    }
                };
                RawEntry {
                    prefix: e.prefix,
                    segment: segment as u32,
                    slot: e.slot,
                    offset: e.offset,
                }
            })
            .collect();
        (names, raw)
    }

    /// `add` of entries that name their segments.
    fn add_located(
        dir: &Path,
        entries: Vec<Located>,
        wrote: &mut dyn FnMut(&Path),
        known: &mut dyn FnMut(&Path) -> bool,
    ) -> Result<()> {
        let (names, raw) = raw_of(entries);
        add(dir, &names, raw, wrote, known)
    }

    fn loc(prefix: u64, seg: &str, offset: u64) -> Located {
        Located {
            prefix,
            segment: seg.into(),
            offset,
            slot: (offset % 3) as u32,
        }
    }

    #[test]
    fn tables_merge_and_find_every_entry() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path().join("lookup");
        let mut all = Vec::new();
        let wrote = std::cell::RefCell::new(std::collections::HashSet::new());
        for batch in 0..40u64 {
            let entries: Vec<Located> = (0..(batch % 7 + 1))
                .map(|i| {
                    // Segments named in different orders in different tables: a merge
                    // renumbers them.
                    loc(
                        (batch * 1000 + i).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                        ["s2", "s0", "s1"][(batch % 3) as usize],
                        batch * 10 + i,
                    )
                })
                .collect();
            all.extend(entries.clone());
            // Every other batch trusts the tables written before it, as an index does.
            let trust = batch % 2 == 0;
            add_located(
                &d,
                entries,
                &mut |p| {
                    wrote.borrow_mut().insert(p.to_owned());
                },
                &mut |p| trust && wrote.borrow().contains(p),
            )
            .expect("add");
        }
        let files = table_files(&d).expect("files");
        assert!(files.len() <= 8, "{} tables", files.len());
        // Every table left was told of when written, merged ones too: its writer remembers
        // it as checked.
        let wrote = wrote.into_inner();
        assert!(files.iter().all(|f| wrote.contains(f)), "{files:?}");
        assert!(wrote.len() > 40, "merges are told of too");
        let t = Tables::open(&d).expect("tables");
        for e in &all {
            assert_eq!(t.range(e.prefix, e.prefix, 4), vec![e.clone()]);
        }
        assert_eq!(t.range(0, u64::MAX, usize::MAX).len(), all.len());
        // Merged tables carry checksums that hold.
        assert_eq!(check(&d), Ok(()));
    }

    /// The file of each table in `d`, and whether it is framed.
    fn layouts(d: &Path) -> Vec<bool> {
        let files = table_files(d).expect("files");
        files
            .iter()
            .map(|f| Table::open(f).expect("table").frames.is_some())
            .collect()
    }

    #[test]
    fn framed_and_flat_tables_are_read_and_merged_alike() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path().join("lookup");
        fs::create_dir_all(&d).expect("dir");
        // A flat table, as earlier versions and remotes write them, of many items in a few
        // packs; one slot is past what a framed entry holds.
        let mut all: Vec<Located> = (0..1000u64)
            .map(|i| Located {
                prefix: i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                segment: ["s1", "s0"][(i % 2) as usize].into(),
                offset: 4096 * (i % 5),
                slot: if i == 7 { 70_000 } else { i as u32 + 1 },
            })
            .collect();
        all.sort_by_key(|e| e.prefix);
        let (names, raw) = raw_of(all.clone());
        write_table(&d, 1, &names, &raw).expect("write");
        assert_eq!(layouts(&d), [false], "a slot over 16 bits stays flat");
        // Framed tables: 12 bytes an entry (short), and the frames once.
        let framed: Vec<Located> = (0..400u64)
            .map(|i| {
                let seg = ["s2", "s0"][(i % 2) as usize];
                loc(
                    (i + 1).wrapping_mul(0x2545_f491_4f6c_dd1d),
                    seg,
                    512 * (i % 4),
                )
            })
            .collect();
        add_located(&d, framed[..200].to_vec(), &mut |_| {}, &mut |_| false).expect("add");
        let newest = table_files(&d).expect("files").pop().expect("file");
        let len = fs::metadata(&newest).expect("stat").len();
        assert!(
            len < 200 * 13,
            "{len} bytes for 200 entries: short, 12 an entry"
        );
        assert_eq!(layouts(&d), [false, true]);
        // Two framed tables merge into a framed one, beside the (bigger) flat one.
        add_located(&d, framed[200..].to_vec(), &mut |_| {}, &mut |_| false).expect("add");
        assert_eq!(magics(&d)[1], SHORT_MAGIC);
        assert_eq!(layouts(&d), [false, true]);
        // A flat and a framed table merge into a flat one.
        let files = table_files(&d).expect("files");
        let (a, b) = (Table::open(&files[0]), Table::open(&files[1]));
        let merged = merge_tables(&d, 9, &a.expect("a"), &b.expect("b")).expect("merge");
        for f in &files {
            fs::remove_file(f).expect("rm");
        }
        assert_eq!(table_files(&d).expect("files"), [merged]);
        assert_eq!(layouts(&d), [false]);
        all.extend(framed);
        let t = Tables::open(&d).expect("tables");
        assert_eq!(t.entries(), all.len() as u64);
        for e in &all {
            assert_eq!(t.range(e.prefix, e.prefix, 4), vec![e.clone()], "{e:?}");
        }
        assert_eq!(check(&d), Ok(()));
    }

    /// The magic of each table in `d`.
    fn magics(d: &Path) -> Vec<[u8; 8]> {
        let files = table_files(d).expect("files");
        let magic = |f: &PathBuf| {
            let b = fs::read(f).expect("read");
            <[u8; 8]>::try_from(&b[..8]).expect("magic")
        };
        files.iter().map(magic).collect()
    }

    #[test]
    fn frames_past_what_16_bits_index_make_a_wide_framed_table() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path().join("lookup");
        let spread = |from: u64, n: u64| -> Vec<Located> {
            (from..from + n)
                .map(|i| Located {
                    prefix: (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    segment: "s0".into(),
                    offset: 64 * i,
                    slot: 0,
                })
                .collect()
        };
        // 40,000 frames, then 40,000 more: each table is short, their merge is not.
        let (a, b) = (spread(0, 40_000), spread(40_000, 40_000));
        add_located(&d, a.clone(), &mut |_| {}, &mut |_| false).expect("add");
        assert_eq!(
            magics(&d),
            [COMPACT_MAGIC],
            "few frames, and past table_layout::MIN_ENTRIES"
        );
        add_located(&d, b.clone(), &mut |_| {}, &mut |_| false).expect("add");
        assert_eq!(
            magics(&d),
            [COMPACT_WIDE_MAGIC],
            "80,000 frames need 32-bit indexes"
        );
        // Written at once, too.
        let all: Vec<Located> = a.into_iter().chain(b).collect();
        let other = dir.path().join("other");
        add_located(&other, all.clone(), &mut |_| {}, &mut |_| false).expect("add");
        assert_eq!(magics(&other), [COMPACT_WIDE_MAGIC]);
        // A framed table of 32-bit indexes (as stores written before short tables hold) and a
        // short one merge into a short one when their frames are few.
        let older = dir.path().join("older");
        fs::create_dir_all(&older).expect("dir");
        let few = spread(80_000, 300);
        let mut wide = header(FRAMED_MAGIC, &["s0"], few.len(), Some(few.len()));
        for e in &few {
            wide.extend_from_slice(&0u32.to_le_bytes());
            wide.extend_from_slice(&e.offset.to_le_bytes());
        }
        pad8(&mut wide);
        let mut sorted = few.clone();
        sorted.sort_by_key(|e| (e.offset, e.prefix));
        let mut by_prefix: Vec<(u64, usize)> = sorted
            .iter()
            .enumerate()
            .map(|(f, e)| (e.prefix, f))
            .collect();
        by_prefix.sort_unstable();
        let mut buf = [0u8; FRAMED_LEN];
        for (prefix, f) in by_prefix {
            let len = framed_entry(&mut buf, prefix, f, 0, Framing::Wide).expect("entry");
            wide.extend_from_slice(&buf[..len]);
        }
        fs::write(older.join(format!("{:016x}.tbl", 1)), seal(wide)).expect("write");
        assert_eq!(magics(&older), [FRAMED_MAGIC]);
        add_located(&older, spread(90_000, 200), &mut |_| {}, &mut |_| false).expect("add");
        assert_eq!(magics(&older), [SHORT_MAGIC], "merged, short");
        let t = Tables::open(&older).expect("tables");
        for e in few.iter().chain(&spread(90_000, 200)) {
            assert_eq!(t.range(e.prefix, e.prefix, 4), vec![e.clone()], "{e:?}");
        }
        for dir in [&d, &other] {
            let t = Tables::open(dir).expect("tables");
            assert_eq!(t.entries(), all.len() as u64);
            for e in all.iter().step_by(997) {
                assert_eq!(t.range(e.prefix, e.prefix, 4), vec![compact(e)], "{e:?}");
            }
            assert_eq!(check(dir), Ok(()));
        }
    }

    /// What a compact table keeps of `e`: its prefix's first 48 bits, no slot.
    fn compact(e: &Located) -> Located {
        Located {
            prefix: e.prefix & COMPACT_PREFIX,
            slot: ANY_SLOT,
            ..e.clone()
        }
    }

    /// Write `entries` in `d` as one table laid out as `framing` says (`add` picks the layout
    /// itself).
    fn write_as(d: &Path, entries: &[Located], framing: Framing) {
        let (names, mut raw) = raw_of(entries.to_vec());
        raw.sort_by_key(|e| e.prefix);
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut frames: Vec<(u32, u64)> = raw.iter().map(|e| (e.segment, e.offset)).collect();
        frames.sort_unstable();
        frames.dedup();
        let bytes = encode_frames(&names, &raw, &frames, framing).expect("encode");
        fs::create_dir_all(d).expect("dir");
        fs::write(d.join(format!("{:016x}.tbl", 1)), bytes).expect("write");
    }

    /// Bucketed tables (written by schema v6) keep every prefix whole; compact ones its first
    /// 48 bits and no slot. Both find every entry, alone and merged (into a compact table).
    #[test]
    fn bucketed_and_compact_tables_find_every_entry() {
        use super::super::table_layout::{DIR_LEN, MIN_ENTRIES};
        let dir = tempfile::tempdir().expect("tmp");
        // Prefixes spread, some crowded into a few buckets (and sharing 48 bits), at bucket
        // edges, and one object in two frames.
        let mut prefixes: Vec<u64> = (1..=MIN_ENTRIES as u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        prefixes.extend((0..300).map(|i| (7 << 48) | (i * 977)));
        prefixes.extend([0, (1 << 48) - 1, 1 << 48, u64::MAX, u64::MAX - 1, 42, 42]);
        let entries: Vec<Located> = prefixes
            .iter()
            .enumerate()
            .map(|(i, p)| Located {
                prefix: *p,
                segment: ["s0", "s1"][i % 2].into(),
                offset: 64 * (i as u64 % 5000),
                slot: (i % 7) as u32,
            })
            .collect();
        let n = entries.len();
        let more: Vec<Located> = (0..n as u64)
            .map(|i| Located {
                prefix: (i + 7).wrapping_mul(0xbf58_476d_1ce4_e5b9),
                segment: "s2".into(),
                offset: 64 * (i % 3000),
                slot: 1,
            })
            .collect();
        // Every entry found by its whole prefix, as kept; ranges across buckets as a short
        // hash asks for them give what the entries kept say.
        let check_all = |t: &Tables, want: &[(Located, Located)], lossy: bool| {
            let all: Vec<Located> = t.all().collect();
            assert_eq!(all.len(), want.len());
            let kept: Vec<u64> = want.iter().map(|(_, k)| k.prefix).collect();
            let found: Vec<u64> = all.iter().map(|e| e.prefix).collect();
            assert_eq!(found, kept, "every prefix as kept, in order");
            for (e, k) in want.iter().step_by(13).chain(want.iter().rev().take(8)) {
                assert!(t.range(e.prefix, e.prefix, 1000).contains(k), "{e:?}");
            }
            let mask = if lossy { COMPACT_PREFIX } else { u64::MAX };
            for (lo, hi) in [
                (0, 1 << 48),
                ((7 << 48) - 3, (9 << 48) + 3),
                ((7 << 48) + 70_000, (7 << 48) + 140_000),
                (u64::MAX - 1, u64::MAX),
                (43, 43),
                (1 << 20, 1 << 20),
            ] {
                let brute = kept
                    .iter()
                    .filter(|p| lo & mask <= **p && **p <= hi)
                    .count();
                assert_eq!(t.range(lo, hi, usize::MAX).len(), brute, "{lo:x}..={hi:x}");
            }
        };
        for (framing, magic, entry_len) in [
            (Framing::Bucketed, BUCKET_MAGIC, BUCKETED_LEN),
            (Framing::Compact(false), COMPACT_MAGIC, 6),
        ] {
            let d = dir.path().join(format!("{framing:?}"));
            let lossy = framing != Framing::Bucketed;
            match lossy {
                false => write_as(&d, &entries, framing),
                true => add_located(&d, entries.clone(), &mut |_| {}, &mut |_| false).expect("add"),
            }
            assert_eq!(magics(&d), [magic]);
            let file = table_files(&d).expect("files").remove(0);
            let len = fs::metadata(&file).expect("stat").len() as usize;
            assert!(
                len < 64 + 5000 * 2 * FRAME_LEN + DIR_LEN + entry_len * n + 8,
                "{len} bytes"
            );
            let keep = |e: &Located| if lossy { compact(e) } else { e.clone() };
            let mut want: Vec<(Located, Located)> =
                entries.iter().map(|e| (e.clone(), keep(e))).collect();
            want.sort_by_key(|(e, _)| e.prefix);
            check_all(&Tables::open(&d).expect("tables"), &want, lossy);
            // Merged with a table of as many entries: compact, and nothing lost.
            add_located(&d, more.clone(), &mut |_| {}, &mut |_| false).expect("add");
            assert_eq!(magics(&d), [COMPACT_MAGIC], "merged");
            let mut want: Vec<(Located, Located)> = entries
                .iter()
                .chain(&more)
                .map(|e| (e.clone(), compact(e)))
                .collect();
            want.sort_by_key(|(e, _)| e.prefix);
            check_all(&Tables::open(&d).expect("tables"), &want, true);
            assert_eq!(check(&d), Ok(()));
            // A directory that goes back is refused, checksum or not.
            let file = table_files(&d).expect("files").remove(0);
            let mut bytes = fs::read(&file).expect("read");
            let t = Table::open(&file).expect("table");
            let at = t.entries - DIR_LEN + 4 * 100;
            drop(t);
            bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
            bytes[SUM_OFFSET..SUM_OFFSET + 4].copy_from_slice(&[0; 4]);
            fs::write(&file, seal(bytes)).expect("write");
            assert!(Table::open(&file).is_none());
        }
    }

    #[test]
    fn a_table_is_hashed_before_a_merge_unless_known_checked() {
        for known in [false, true] {
            let dir = tempfile::tempdir().expect("tmp");
            let d = dir.path().join("lookup");
            add_located(&d, vec![loc(5, "a", 64)], &mut |_| {}, &mut |_| false).expect("add");
            // A bit flipped in the entry: the checksum no longer holds.
            let file = table_files(&d).expect("files").remove(0);
            let mut bytes = fs::read(&file).expect("read");
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            fs::write(&file, &bytes).expect("flip");
            add_located(&d, vec![loc(9, "a", 128)], &mut |_| {}, &mut |p| {
                known && *p == file
            })
            .expect("add");
            // Hashed, the damaged table is left alone; said to be checked, it is merged.
            let left = table_files(&d).expect("files").len();
            assert_eq!(left, if known { 1 } else { 2 }, "known: {known}");
        }
    }

    #[test]
    fn damaged_tables_are_skipped_not_trusted() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path().join("lookup");
        add_located(&d, vec![loc(5, "a", 64)], &mut |_| {}, &mut |_| false).expect("add");
        let file = table_files(&d).expect("files").remove(0);
        let bytes = fs::read(&file).expect("read");
        fs::write(&file, &bytes[..bytes.len() - 3]).expect("cut");
        assert!(
            Tables::open(&d)
                .expect("dir")
                .range(0, u64::MAX, 9)
                .is_empty()
        );
        assert!(Tables::open(&dir.path().join("missing")).is_none());
    }

    /// A compact table with any byte changed or cut off (its checksum left as it was, as a
    /// reader that does not check it sees it) opens or not, and its entries are read and
    /// searched, without a panic; every location it gives is a hint the reader checks.
    #[test]
    fn a_compact_table_damaged_anywhere_is_read_without_a_panic() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path().join("lookup");
        let entries: Vec<Located> = (0..1500u64)
            .map(|i| {
                loc(
                    i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    ["s0", "s1"][(i % 2) as usize],
                    64 * (i % 40),
                )
            })
            .collect();
        add_located(&d, entries.clone(), &mut |_| {}, &mut |_| false).expect("add");
        assert_eq!(magics(&d), [COMPACT_MAGIC]);
        let file = table_files(&d).expect("files").remove(0);
        let good = fs::read(&file).expect("read");
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut opened = 0;
        for round in 0..600 {
            let mut bytes = good.clone();
            match round % 3 {
                0 => {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] ^= 1 << (next() % 8);
                }
                1 => bytes.truncate((next() as usize) % bytes.len()),
                _ => {
                    // In the directory or the header, where counts live.
                    let at = (next() as usize) % (bytes.len().min(64 + 12 * 40 + 4 * 65_538));
                    bytes[at] = next() as u8;
                }
            }
            fs::write(&file, &bytes).expect("write");
            let Some(t) = Table::open(&file) else {
                continue;
            };
            opened += 1;
            let n = t.all().count();
            assert!(n <= t.count);
            for e in entries.iter().step_by(97) {
                let _ = t.range_of(e.prefix, e.prefix, 4);
            }
            let _ = t.range_of(0, u64::MAX, 100);
        }
        assert!(opened > 0, "some damage leaves a table that parses");
    }
}
