//! The bytes of a lookup table's entries (FORMAT.md, "Lookup tables"): the layouts' magics, a
//! framed entry, and the bucket directory of *bucketed* and *compact* tables: for each value
//! of a hash prefix's top 16 bits, the index of its first entry, so that a bucketed table's
//! entries keep only the prefix's other 48 bits (no bit of it is lost), and a compact table's
//! the next 32 bits and a frame, no slot.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::format::le_u32;

/// First bytes of a lookup table whose entries name their segment and offset.
pub const TABLE_MAGIC: [u8; 8] = [0x89, b'M', b'A', b'T', 0x0d, 0x0a, 0x1a, 0x0a];
/// First bytes of a lookup table whose entries name a frame of its frame list.
pub const FRAMED_MAGIC: [u8; 8] = [0x89, b'M', b'A', b'F', 0x0d, 0x0a, 0x1a, 0x0a];
/// First bytes of a lookup table whose entries name a frame of its frame list by a 16-bit
/// index.
pub const SHORT_MAGIC: [u8; 8] = [0x89, b'M', b'A', b'S', 0x0d, 0x0a, 0x1a, 0x0a];
/// First bytes of a short framed table with a directory of its prefixes' top bits.
pub const BUCKET_MAGIC: [u8; 8] = [0x89, b'M', b'A', b'B', 0x0d, 0x0a, 0x1a, 0x0a];
/// First bytes of a compact table: a directory of the prefixes' top bits, and entries of the
/// next 32 bits and a 16-bit frame index.
pub const COMPACT_MAGIC: [u8; 8] = [0x89, b'M', b'A', b'C', 0x0d, 0x0a, 0x1a, 0x0a];
/// First bytes of a compact table whose entries name their frame by a 32-bit index.
pub const COMPACT_WIDE_MAGIC: [u8; 8] = [0x89, b'M', b'A', b'D', 0x0d, 0x0a, 0x1a, 0x0a];
/// An entry of a bucketed table: the prefix's low 48 bits (BE), frame index (u16), slot (u16).
pub(super) const BUCKETED_LEN: usize = 10;
/// The prefix bits a compact table keeps: the first 48 of the hash.
pub const COMPACT_PREFIX: u64 = !0xffff;
/// Most frames a short framed table names.
pub(super) const SHORT_FRAMES: usize = 1 << 16;

/// Bits of the prefix the directory stands for.
const BITS: u32 = 16;
/// Buckets; the directory holds one more start, the entry count.
const BUCKETS: usize = 1 << BITS;
/// Bytes of the directory: `BUCKETS + 1` u32 (little-endian), zero padding to a multiple of 8.
pub(super) const DIR_LEN: usize = (BUCKETS + 2) * 4;
/// The prefix bits an entry keeps.
pub(super) const LOW: u64 = (1 << (64 - BITS)) - 1;

/// The bucket of prefix `p`: its top bits.
fn bucket_of_prefix(p: u64) -> usize {
    (p >> (64 - BITS)) as usize
}

/// The prefix of bucket `b` whose low bits are `low`.
pub(super) fn prefix(b: usize, low: u64) -> u64 {
    ((b as u64) << (64 - BITS)) | (low & LOW)
}
/// The fewest entries a table has for a directory, and so compact entries: at 2^16 entries
/// the directory (256 KiB) costs 4 bytes an entry, and an entry is 6 bytes instead of a short
/// table's 12. Tests take small tables, where most buckets are empty.
pub(super) const MIN_ENTRIES: usize = if cfg!(test) { 1 << 10 } else { 1 << 16 };

/// The directory of a table of `count` entries with `prefixes` (in any order); `None` if
/// there are not `count` of them, or more than 32 bits count.
pub(super) fn encode(prefixes: impl Iterator<Item = u64>, count: usize) -> Option<Vec<u8>> {
    let mut counts = vec![0u32; BUCKETS];
    for p in prefixes {
        if let Some(c) = counts.get_mut(bucket_of_prefix(p)) {
            *c += 1;
        }
    }
    let mut out = Vec::with_capacity(DIR_LEN);
    let mut start = 0u32;
    for c in counts {
        out.extend_from_slice(&start.to_le_bytes());
        start = start.checked_add(c)?;
    }
    if start as usize != count {
        return None;
    }
    out.extend_from_slice(&start.to_le_bytes());
    out.resize(DIR_LEN, 0);
    Some(out)
}

/// A table's directory, at `at` in its file, and the bucket last asked for (reads are mostly
/// in order: a merge, a range).
#[derive(Debug)]
pub(super) struct Directory {
    at: usize,
    hint: AtomicUsize,
}

impl Directory {
    /// The directory at `at` in `map`, if it starts at 0, never decreases and ends at
    /// `count`.
    pub(super) fn open(map: &[u8], at: usize, count: usize) -> Option<Directory> {
        let d = Directory {
            at,
            hint: AtomicUsize::new(0),
        };
        let mut last = 0;
        for b in 0..=BUCKETS {
            let s = d.start(map, b)?;
            if s < last || (b == 0 && s != 0) {
                return None;
            }
            last = s;
        }
        (last == count).then_some(d)
    }

    /// Index of the first entry of bucket `b` (`b == BUCKETS`: the entry count).
    pub(super) fn start(&self, map: &[u8], b: usize) -> Option<usize> {
        le_u32(map, self.at + 4 * b).map(|v| v as usize)
    }

    /// The entries of the bucket of prefix `p`.
    pub(super) fn bucket(&self, map: &[u8], p: u64) -> Option<(usize, usize)> {
        let b = bucket_of_prefix(p);
        Some((self.start(map, b)?, self.start(map, b + 1)?))
    }

    /// The top bits of entry `i`'s prefix: the bucket it is in.
    pub(super) fn bucket_of(&self, map: &[u8], i: usize) -> Option<usize> {
        let holds = |b: usize| -> Option<bool> {
            Some(b < BUCKETS && self.start(map, b)? <= i && i < self.start(map, b + 1)?)
        };
        let h = self.hint.load(Ordering::Relaxed);
        let found = match (holds(h)?, holds(h + 1)?) {
            (true, _) => h,
            (_, true) => h + 1,
            _ => {
                // The last bucket that starts at or before `i`.
                let (mut lo, mut hi) = (0, BUCKETS);
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    match self.start(map, mid)? <= i {
                        true => lo = mid,
                        false => hi = mid,
                    }
                }
                lo
            }
        };
        self.hint.store(found, Ordering::Relaxed);
        Some(found)
    }
}

/// How a framed table names its frames and prefixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    /// 32-bit frame indexes.
    Wide,
    /// 16-bit frame indexes.
    Short,
    /// 16-bit frame indexes, and a directory of the prefixes' top bits. Written by earlier
    /// versions (and tests), read by this one.
    #[cfg_attr(not(test), allow(dead_code))]
    Bucketed,
    /// A directory of the prefixes' top bits, entries of 32 more bits and a frame index
    /// (16 bits, or 32 when `true`), no slot.
    Compact(bool),
}

impl Framing {
    /// The framing of a table of `frames` frames and `count` entries; compact if it has
    /// enough entries, or if any of them lacks its slot or prefix's last 16 bits (`lossy`).
    pub(super) fn of(frames: usize, count: usize, lossy: bool) -> Framing {
        let short = frames <= SHORT_FRAMES;
        match (lossy || count >= MIN_ENTRIES, short) {
            (true, short) => Framing::Compact(!short),
            (false, true) => Framing::Short,
            (false, false) => Framing::Wide,
        }
    }

    pub(super) fn magic(self) -> [u8; 8] {
        match self {
            Framing::Wide => FRAMED_MAGIC,
            Framing::Short => SHORT_MAGIC,
            Framing::Bucketed => BUCKET_MAGIC,
            Framing::Compact(false) => COMPACT_MAGIC,
            Framing::Compact(true) => COMPACT_WIDE_MAGIC,
        }
    }

    /// True if the table has a directory of its prefixes' top bits.
    pub(super) fn bucketed(self) -> bool {
        matches!(self, Framing::Bucketed | Framing::Compact(_))
    }
}

/// A framed entry in `buf`; returns its length (`None`: the frame index or the slot does not
/// fit). A compact entry keeps no slot, and of the prefix its bits 16 to 48.
pub(super) fn framed_entry(
    buf: &mut [u8],
    prefix: u64,
    frame: usize,
    slot: u32,
    framing: Framing,
) -> Option<usize> {
    let kept = match framing {
        Framing::Bucketed => 2..8,
        Framing::Compact(_) => 2..6,
        _ => 0..8,
    };
    let at = kept.len();
    buf.get_mut(..at)?
        .copy_from_slice(prefix.to_be_bytes().get(kept)?);
    let at = match framing {
        Framing::Wide | Framing::Compact(true) => {
            buf.get_mut(at..at + 4)?
                .copy_from_slice(&u32::try_from(frame).ok()?.to_le_bytes());
            at + 4
        }
        _ => {
            buf.get_mut(at..at + 2)?
                .copy_from_slice(&u16::try_from(frame).ok()?.to_le_bytes());
            at + 2
        }
    };
    if let Framing::Compact(_) = framing {
        return Some(at);
    }
    buf.get_mut(at..at + 2)?
        .copy_from_slice(&u16::try_from(slot).ok()?.to_le_bytes());
    Some(at + 2)
}
