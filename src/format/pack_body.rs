//! A pack frame's body (`PackBody`, its items) and its decoder, written by hand over the
//! decoded bytes: what `rmp_serde` reads from the positional msgpack a body is written as
//! (FORMAT.md, "Pack frames"), without serde's generic visitors. Every pack a query, a bulk read, a catch-up or gc reads goes
//! through it. Every count is checked against the bytes left before anything is allocated
//! for it; an error says what is wrong.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// A pack's tag sets.
pub type TagSets = Vec<Vec<(String, String)>>;

/// The decoded payload of a pack frame. Encoded positionally (msgpack arrays), so field names
/// cost nothing per item; later schema versions append fields.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PackBody {
    /// Distinct (kind code, descriptor) pairs of the objects.
    pub descs: Vec<(u8, String)>,
    /// Distinct tag sets of the entries.
    pub tagsets: Vec<Vec<(String, String)>>,
    /// Time of the first entry, nanoseconds since the Unix epoch.
    pub time0: i64,
    /// The items, in the order they were put.
    pub items: Vec<PackItem>,
    /// The objects' payloads, concatenated: in item order (layout 0, before v5), or grouped
    /// by descriptor and shuffled (layout 1, `format::pack_layout`).
    pub data: ByteBuf,
    /// How `data` and the records in it are laid out (`pack_layout::LAYOUT_*`). Bodies
    /// written before v5 have no such field: 0.
    pub layout: u8,
}

pub use super::pack_items::{ItemRef, Items, PackItem};

/// A pack body as it is read, but for its tag sets and data (which come beside it):
/// the items as columns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadBody {
    /// Distinct (kind code, descriptor) pairs of the objects.
    pub descs: Vec<(u8, String)>,
    /// Time of the first entry, nanoseconds since the Unix epoch.
    pub time0: i64,
    /// The items, in the order they were put.
    pub items: Items,
    /// How the data and the records in it are laid out (`LAYOUT_*`).
    pub layout: u8,
}

impl ReadBody {
    /// The body a writer would hold, with its `tagsets` and `data`.
    pub fn into_body(self, tagsets: TagSets, data: Vec<u8>) -> PackBody {
        PackBody {
            descs: self.descs,
            tagsets,
            time0: self.time0,
            items: self.items.to_pack_items(),
            data: ByteBuf::from(data),
            layout: self.layout,
        }
    }
}

/// Packs written before v5: payloads in item order, records in their canonical bytes.
pub const LAYOUT_ROWS: u8 = 0;
/// v5 packs: payloads grouped by descriptor (in descriptor order, item order within each
/// group), each tensor group byte-shuffled by its dtype's width, and pack-local references.
pub const LAYOUT_COLUMNS: u8 = 1;
/// v6 packs: data as in layout 1, and the items as columns (`format::pack_items`).
pub const LAYOUT_ITEM_COLUMNS: u8 = 2;
/// v8 packs: as layout 2, and the tag sets compressed on their own into a `bin` (FORMAT.md,
/// "Pack frames", layout 3), so that a reader of the items steps over them at once and
/// decompresses them only to read tags; they are checked when the pack is checked whole.
pub const LAYOUT_TAG_BYTES: u8 = 3;

/// The zstd level of a layout-3 pack's tag sets: level 1 keeps a logger's tags (keys again and
/// again, ids that count up) smaller than 4 does, and is faster.
const TAGS_LEVEL: i32 = 1;

type R<T> = std::result::Result<T, String>;

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.b.len());
        let out = end
            .and_then(|e| self.b.get(self.at..e))
            .ok_or_else(|| format!("truncated at byte {}", self.at))?;
        self.at += n;
        Ok(out)
    }

    fn byte(&mut self) -> R<u8> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }

    fn be(&mut self, n: usize) -> R<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn len(&mut self, n: usize) -> R<usize> {
        usize::try_from(self.be(n)?).map_err(|_| "a length out of range".to_owned())
    }

    /// An array's length; at least `min_item` bytes an item must remain.
    fn array(&mut self, min_item: usize) -> R<usize> {
        let n = match self.byte()? {
            m @ 0x90..=0x9f => usize::from(m & 0x0f),
            0xdc => self.len(2)?,
            0xdd => self.len(4)?,
            m => return Err(format!("expected an array, found marker 0x{m:02x}")),
        };
        if n.saturating_mul(min_item) > self.b.len() - self.at {
            return Err(format!("an array of {n} items is longer than the body"));
        }
        Ok(n)
    }

    /// A fixed-length array (a tuple or a struct of `n` fields).
    fn tuple(&mut self, n: usize) -> R<()> {
        match self.array(1)? {
            k if k == n => Ok(()),
            k => Err(format!("expected {n} fields, found {k}")),
        }
    }

    /// Any msgpack integer, widened.
    fn int(&mut self) -> R<i128> {
        Ok(match self.byte()? {
            m @ 0x00..=0x7f => i128::from(m),
            m @ 0xe0..=0xff => i128::from(m as i8),
            m @ 0xcc..=0xcf => i128::from(self.be(1 << (m - 0xcc))?),
            m @ 0xd0..=0xd3 => {
                let len = 1usize << (m - 0xd0);
                let shift = 64 - 8 * len as u32;
                i128::from(((self.be(len)? << shift) as i64) >> shift)
            }
            m => return Err(format!("expected an integer, found marker 0x{m:02x}")),
        })
    }

    fn int_as<T: TryFrom<i128>>(&mut self, what: &str) -> R<T> {
        let v = self.int()?;
        T::try_from(v).map_err(|_| format!("{what} {v} is out of range"))
    }

    fn str(&mut self) -> R<String> {
        self.str_ref().map(str::to_owned)
    }

    fn str_len(&mut self) -> R<usize> {
        Ok(match self.byte()? {
            m @ 0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => self.len(1)?,
            0xda => self.len(2)?,
            0xdb => self.len(4)?,
            m => return Err(format!("expected a string, found marker 0x{m:02x}")),
        })
    }

    fn str_ref(&mut self) -> R<&'a str> {
        let n = self.str_len()?;
        Ok(std::str::from_utf8(self.take(n)?).map_err(|_| "a string is not UTF-8")?)
    }

    fn bin(&mut self) -> R<&'a [u8]> {
        let n = match self.byte()? {
            0xc4 => self.len(1)?,
            0xc5 => self.len(2)?,
            0xc6 => self.len(4)?,
            m => return Err(format!("expected bytes, found marker 0x{m:02x}")),
        };
        self.take(n)
    }

    /// An array of values `f` reads, each at least `min_item` bytes.
    fn list<T>(&mut self, min_item: usize, mut f: impl FnMut(&mut Self) -> R<T>) -> R<Vec<T>> {
        let n = self.array(min_item)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(f(self)?);
        }
        Ok(out)
    }

    fn tagset(&mut self) -> R<Vec<(String, String)>> {
        self.list(3, |r| {
            r.tuple(2)?;
            Ok((r.str()?, r.str()?))
        })
    }

    /// Pass over a tag set, checking it as `tagset` would read it (its strings' UTF-8 only
    /// when `utf8`: the caller knows them ASCII otherwise), allocating nothing.
    fn skip_tagset(&mut self, utf8: bool) -> R<()> {
        for _ in 0..self.array(3)? {
            self.tuple(2)?;
            for _ in 0..2 {
                match utf8 {
                    true => self.str_ref().map(|_| ())?,
                    false => self.str_len().and_then(|n| self.take(n)).map(|_| ())?,
                }
            }
        }
        Ok(())
    }

    /// The tag sets of layouts 0 to 2, an array: passed over and checked (every string
    /// UTF-8), kept as their bytes.
    fn tagset_array(&mut self) -> R<LazyTagsets> {
        let start = self.at;
        let count = self.array(1)?;
        // Tag sets are small arrays of pairs of short strings almost always: passed over by
        // `skip_short_tagsets`, else (a long string, say) one by one.
        let ascii = match skip_short_tagsets(self.b, self.at, count) {
            Some((end, ascii)) => {
                self.at = end;
                ascii
            }
            None => {
                for _ in 0..count {
                    self.skip_tagset(false)?;
                }
                false
            }
        };
        let raw = self.b.get(start..self.at).unwrap_or_default();
        // Tags are ASCII almost always: then every string in them is UTF-8 (seen as they
        // were passed over); otherwise they are checked string by string.
        if !ascii {
            let mut check = Reader { b: raw, at: 0 };
            for _ in 0..check.array(1)? {
                check.skip_tagset(true)?;
            }
        }
        Ok(LazyTagsets {
            raw: std::sync::OnceLock::from(raw.to_vec()),
            packed: None,
            count,
            checked: true,
            starts: std::sync::OnceLock::new(),
        })
    }

    /// `None` for nil; otherwise the value `f` reads.
    fn option<T>(&mut self, f: impl FnOnce(&mut Self) -> R<T>) -> R<Option<T>> {
        if self.b.get(self.at) == Some(&0xc0) {
            self.at += 1;
            return Ok(None);
        }
        f(self).map(Some)
    }

    /// An integer of any msgpack width that fits an `i64` (`None`, nothing read: any other
    /// value, which `int` then reads or refuses).
    #[inline]
    fn small_int(&mut self) -> Option<i64> {
        let b = self.b.get(self.at..)?;
        let (v, n) = match *b.first()? {
            m @ 0x00..=0x7f => (i64::from(m), 1),
            m @ 0xe0..=0xff => (i64::from(m as i8), 1),
            0xcc => (i64::from(*b.get(1)?), 2),
            0xcd => (
                i64::from(u16::from_be_bytes(b.get(1..3)?.try_into().ok()?)),
                3,
            ),
            0xce => (
                i64::from(u32::from_be_bytes(b.get(1..5)?.try_into().ok()?)),
                5,
            ),
            0xd0 => (i64::from(*b.get(1)? as i8), 2),
            0xd1 => (
                i64::from(i16::from_be_bytes(b.get(1..3)?.try_into().ok()?)),
                3,
            ),
            0xd2 => (
                i64::from(i32::from_be_bytes(b.get(1..5)?.try_into().ok()?)),
                5,
            ),
            0xd3 => (i64::from_be_bytes(b.get(1..9)?.try_into().ok()?), 9),
            _ => return None,
        };
        self.at += n;
        Some(v)
    }

    /// An item as a writer of this program encodes it (fixarrays, integers that fit their
    /// fields, no hash), read into `items` without the general path's checks and messages;
    /// `None`, with nothing read or added, for anything else, which `item` then reads.
    #[inline]
    fn item_fast(&mut self, items: &mut Items) -> Option<()> {
        let (start, dims) = (self.at, items.dims_len());
        let item = self.item_fast_inner(items);
        if item.is_none() {
            self.at = start;
            items.cut_dims(dims);
        }
        item
    }

    fn item_fast_inner(&mut self, items: &mut Items) -> Option<()> {
        let byte = |r: &mut Self| {
            let m = *r.b.get(r.at)?;
            r.at += 1;
            Some(m)
        };
        if byte(self)? != 0x93 {
            return None;
        }
        let object = match byte(self)? {
            0xc0 => None,
            0x93 => {
                let d = u32::try_from(self.small_int()?).ok()?;
                let dims = match byte(self)? {
                    m @ 0x90..=0x9f => m & 0x0f,
                    _ => return None,
                };
                for _ in 0..dims {
                    items.push_dim(u64::try_from(self.small_int()?).ok()?);
                }
                let len = u64::try_from(self.small_int()?).ok()?;
                Some((d, len))
            }
            _ => return None,
        };
        if byte(self)? != 0xc0 {
            return None;
        }
        let entry = match byte(self)? {
            0xc0 => None,
            0x92 => {
                let dt = self.small_int()?;
                let tagset = u32::try_from(self.small_int()?).ok()?;
                Some((dt, tagset))
            }
            _ => return None,
        };
        items.push(object, None, entry).ok()
    }

    /// An item of layouts 0 and 1 (a positional array), read into `items`.
    fn item(&mut self, items: &mut Items) -> R<()> {
        if self.item_fast(items).is_some() {
            return Ok(());
        }
        self.tuple(3)?;
        let object = self.option(|r| {
            r.tuple(3)?;
            let desc = r.int_as::<u32>("a descriptor index")?;
            for _ in 0..r.array(1)? {
                items.push_dim(r.int_as::<u64>("a dimension")?);
            }
            Ok((desc, r.int_as::<u64>("a payload length")?))
        })?;
        let hash = self.option(|r| r.bin().map(|b| ByteBuf::from(b.to_vec())))?;
        let entry = self.option(|r| {
            r.tuple(2)?;
            Ok((
                r.int_as::<i64>("a time")?,
                r.int_as::<u32>("a tag set index")?,
            ))
        })?;
        items.push(object, hash, entry)
    }
}

/// Encode a body as `rmp_serde::to_vec` does (the bytes are the same: positional arrays, every
/// integer and length in its shortest form), written by hand: a logger encodes a pack of
/// 8,192 items at every commit, and serde's generic path was a tenth of its writing thread.
pub(crate) fn encode(body: &PackBody) -> R<Vec<u8>> {
    let packed = match body.layout >= LAYOUT_TAG_BYTES {
        true => {
            let mut sets = Vec::with_capacity(32 * body.tagsets.len() + 8);
            encode_tagsets(&mut sets, &body.tagsets);
            Some(pack_tag_bytes(body.tagsets.len() as u64, &sets)?)
        }
        false => None,
    };
    Ok(encode_with(body, packed.as_deref()))
}

/// Layout 3's tag-set field: how many sets, the length of their array `sets`, and the array
/// compressed.
fn pack_tag_bytes(count: u64, sets: &[u8]) -> R<Vec<u8>> {
    let frame = crate::codec::compress_one(sets, TAGS_LEVEL)?;
    let mut packed = Vec::with_capacity(frame.len() + 20);
    super::pack_items::put_varint(&mut packed, count);
    super::pack_items::put_varint(&mut packed, sets.len() as u64);
    packed.extend_from_slice(&frame);
    Ok(packed)
}

/// `encode`, the tag sets given as layout 3's `bin` (`packed`) or, without it, as an array.
fn encode_with(body: &PackBody, packed: Option<&[u8]>) -> Vec<u8> {
    use rmp::encode as e;
    // Writes into a `Vec` cannot fail.
    let mut out = Vec::with_capacity(body.data.len() + 16 * body.items.len() + 256);
    let w = &mut out;
    let _ = e::write_array_len(w, 6);
    let _ = e::write_array_len(w, body.descs.len() as u32);
    for (kind, desc) in &body.descs {
        let _ = e::write_array_len(w, 2);
        let _ = e::write_uint(w, u64::from(*kind));
        let _ = e::write_str(w, desc);
    }
    match packed {
        Some(p) => {
            let _ = e::write_bin(w, p);
        }
        None => encode_tagsets(w, &body.tagsets),
    }
    let _ = e::write_sint(w, body.time0);
    if body.layout >= LAYOUT_ITEM_COLUMNS {
        let mut columns = Vec::with_capacity(6 * body.items.len() + 16);
        super::pack_items::encode(&body.items, &mut columns);
        let _ = e::write_bin(w, &columns);
    } else {
        encode_item_arrays(w, &body.items);
    }
    let _ = e::write_bin(w, &body.data);
    let _ = e::write_uint(w, u64::from(body.layout));
    out
}

/// Tag sets as a msgpack array of arrays of pairs.
fn encode_tagsets(w: &mut Vec<u8>, tagsets: &[Vec<(String, String)>]) {
    use rmp::encode as e;
    let _ = e::write_array_len(w, tagsets.len() as u32);
    for set in tagsets {
        let _ = e::write_array_len(w, set.len() as u32);
        for (k, v) in set {
            let _ = e::write_array_len(w, 2);
            let _ = e::write_str(w, k);
            let _ = e::write_str(w, v);
        }
    }
}

/// The items of layouts 0 and 1: an array of positional arrays.
fn encode_item_arrays(w: &mut Vec<u8>, items: &[PackItem]) {
    use rmp::encode as e;
    let _ = e::write_array_len(w, items.len() as u32);
    for item in items {
        let _ = e::write_array_len(w, 3);
        match &item.object {
            None => {
                let _ = e::write_nil(w);
            }
            Some((d, shape, len)) => {
                let _ = e::write_array_len(w, 3);
                let _ = e::write_uint(w, u64::from(*d));
                let _ = e::write_array_len(w, shape.len() as u32);
                for dim in shape {
                    let _ = e::write_uint(w, *dim);
                }
                let _ = e::write_uint(w, *len);
            }
        }
        match &item.hash {
            None => {
                let _ = e::write_nil(w);
            }
            Some(h) => {
                let _ = e::write_bin(w, h);
            }
        }
        match item.entry {
            None => {
                let _ = e::write_nil(w);
            }
            Some((dt, tagset)) => {
                let _ = e::write_array_len(w, 2);
                let _ = e::write_sint(w, dt);
                let _ = e::write_uint(w, u64::from(tagset));
            }
        }
    }
}

/// A pack's tag sets, kept as their msgpack bytes (checked) until someone asks for them: a bulk
/// read of unique-id streams never does, and would otherwise build three `String`s an entry.
/// Those of layout 3 stay compressed until then.
#[derive(Debug, Default)]
pub(crate) struct LazyTagsets {
    /// The array's bytes: as read (layouts 0 to 2), or decompressed when first asked for.
    raw: std::sync::OnceLock<Vec<u8>>,
    /// Layout 3: the zstd frame holding them, and their length decompressed.
    packed: Option<(Vec<u8>, usize)>,
    count: usize,
    /// Checked as they were read (an array, layouts 0 to 2).
    checked: bool,
    /// Where each tag set starts in `raw`, found on the first `one`.
    starts: std::sync::OnceLock<Vec<usize>>,
}

impl LazyTagsets {
    /// How many tag sets there are.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Check them whole: the array of `len` sets of pairs of UTF-8 strings, and nothing
    /// after it. (Sets read from a body of layouts 0 to 2 were checked as it was read; those
    /// of layout 3 are checked here, when a pack is checked whole.)
    pub fn check(&self) -> R<()> {
        if self.checked {
            return Ok(());
        }
        if let Some((frame, len)) = &self.packed {
            let raw = crate::codec::decode_at_most(frame, *len)?;
            let _ = self.raw.set(raw);
        }
        let mut r = self.reader(0);
        let count = r.array(1)?;
        if count != self.count {
            return Err(format!(
                "{count} tag sets, where the body said {}",
                self.count
            ));
        }
        for _ in 0..count {
            r.skip_tagset(true)?;
        }
        let len = self.raw().len();
        match r.at == len {
            true => Ok(()),
            false => Err(format!("{} bytes after the tag sets", len - r.at)),
        }
    }

    /// Decode them (they were checked when the body was read, or when its pack was checked
    /// whole, so this cannot fail; a set that somehow does not decode is empty).
    pub fn decode(&self) -> Vec<Vec<(String, String)>> {
        self.reader(0).list(1, |r| r.tagset()).unwrap_or_default()
    }

    /// The array's bytes, decompressed on the first call (layout 3; empty if they do not
    /// decompress, which `check` reports).
    fn raw(&self) -> &[u8] {
        self.raw.get_or_init(|| match &self.packed {
            Some((frame, len)) => crate::codec::decode_at_most(frame, *len).unwrap_or_default(),
            None => Vec::new(),
        })
    }

    /// A reader of the raw tag sets from byte `at`.
    fn reader(&self, at: usize) -> Reader<'_> {
        Reader { b: self.raw(), at }
    }

    /// Tag set `t` alone (empty if there is none): for a reader that wants the tags of a
    /// few entries of a pack, which would otherwise decode every set of it.
    pub fn one(&self, t: u32) -> Vec<(String, String)> {
        let starts = self.starts.get_or_init(|| {
            let mut r = self.reader(0);
            // As many as the array says, which its bytes bound (the count a layout-3 body
            // gives is checked against them only when its pack is checked whole).
            let count = r.array(1).unwrap_or(0).min(self.count);
            let mut starts = Vec::with_capacity(count);
            // Checked before: a set that somehow does not pass ends the list.
            while starts.len() < count {
                starts.push(r.at);
                if r.skip_tagset(false).is_err() {
                    break;
                }
            }
            starts
        });
        let Some(&at) = starts.get(t as usize) else {
            return Vec::new();
        };
        self.reader(at).tagset().unwrap_or_default()
    }

    /// The tag sets as borrowed pairs, no string copied: for a scan that only compares them.
    /// Empty where `decode` gives nothing (a set that does not decode).
    pub fn view(&self) -> TagView<'_> {
        let mut view = TagView::default();
        match view.read(&mut self.reader(0)) {
            Ok(()) => view,
            Err(_) => TagView::default(),
        }
    }
}

/// A pack's tag sets, their strings borrowed from the pack (`LazyTagsets::view`).
#[derive(Debug, Default)]
pub struct TagView<'p> {
    pairs: Vec<(&'p str, &'p str)>,
    /// Where each tag set ends in `pairs`.
    ends: Vec<u32>,
}

impl<'p> TagView<'p> {
    fn read(&mut self, r: &mut Reader<'p>) -> R<()> {
        let sets = r.array(1)?;
        self.ends.reserve(sets);
        for _ in 0..sets {
            for _ in 0..r.array(3)? {
                r.tuple(2)?;
                self.pairs.push((r.str_ref()?, r.str_ref()?));
            }
            self.ends.push(self.pairs.len() as u32);
        }
        Ok(())
    }

    /// Tag set `tagset` (empty if there is none).
    pub fn get(&self, tagset: u32) -> &[(&'p str, &'p str)] {
        let i = tagset as usize;
        let start = i.checked_sub(1).and_then(|j| self.ends.get(j));
        let start = start.map_or(0, |e| *e as usize);
        let end = self.ends.get(i).map_or(start, |e| *e as usize);
        self.pairs.get(start..end).unwrap_or_default()
    }
}

/// Whether `b[from..to]` (within `b`) is ASCII: read 8 bytes at a time, inline, the bytes
/// past `to` masked off (`is_ascii` is a call a string, and a pack has six strings an entry).
#[inline(always)]
fn ascii_within(b: &[u8], from: usize, to: usize) -> bool {
    let mut acc = 0u64;
    let mut at = from;
    while at < to {
        let left = to - at;
        match b.get(at..at + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
            Some(w) => {
                let mask = match left {
                    8.. => u64::MAX,
                    n => (1u64 << (8 * n)) - 1,
                };
                acc |= u64::from_le_bytes(w) & mask;
            }
            None => {
                let tail = b.get(at..to).unwrap_or_default();
                acc |= u64::from(tail.iter().fold(0u8, |a, x| a | x));
            }
        }
        at += 8;
    }
    acc & 0x8080_8080_8080_8080 == 0
}

/// The end of `count` tag sets starting at `at` if each is a fixarray of fixarray(2) pairs
/// of strings of at most 255 bytes (`fixstr` or `str 8`), all within `b`, and whether every
/// string is ASCII; `None` for anything else, which the general reader then reads (and
/// refuses where it is wrong).
fn skip_short_tagsets(b: &[u8], mut at: usize, count: usize) -> Option<(usize, bool)> {
    let mut ascii = true;
    for _ in 0..count {
        let pairs = match *b.get(at)? {
            m @ 0x90..=0x9f => usize::from(m & 0x0f),
            _ => return None,
        };
        at += 1;
        for _ in 0..pairs {
            if *b.get(at)? != 0x92 {
                return None;
            }
            at += 1;
            for _ in 0..2 {
                let (from, to) = match *b.get(at)? {
                    m @ 0xa0..=0xbf => (at + 1, at + 1 + usize::from(m & 0x1f)),
                    0xd9 => (at + 2, at + 2 + usize::from(*b.get(at + 1)?)),
                    _ => return None,
                };
                if to > b.len() {
                    return None;
                }
                ascii &= ascii_within(b, from, to);
                at = to;
            }
        }
    }
    Some((at, ascii))
}

/// Decode a pack body (the payload of a pack frame, decompressed); the bytes must hold
/// exactly one. Its `tagsets` are left empty: they come back checked, as [`LazyTagsets`]; and
/// so is its `data`, given as the bytes of `bytes` that hold it (for the caller to copy once,
/// as it needs it).
pub(crate) fn decode(bytes: &[u8]) -> R<(ReadBody, LazyTagsets, &[u8])> {
    let mut r = Reader { b: bytes, at: 0 };
    let fields = r.array(1)?;
    if !(5..=6).contains(&fields) {
        return Err(format!("expected 5 or 6 fields, found {fields}"));
    }
    let descs = r.list(3, |r| {
        r.tuple(2)?;
        Ok((r.int_as::<u8>("a kind")?, r.str()?))
    })?;
    // Layout 3 writes its tag sets as a `bin` (checked by `LazyTagsets::check`); layouts 0
    // to 2 as an array, checked here.
    let tags_as_bytes = matches!(bytes.get(r.at), Some(0xc4..=0xc6));
    let tagsets = match tags_as_bytes {
        true => {
            let packed = r.bin()?;
            let mut at = 0;
            let count = super::pack_items::varint_at(packed, &mut at)?;
            let len = super::pack_items::varint_at(packed, &mut at)?;
            // Each set is a byte at least; the frame is checked when they are decompressed.
            let (count, len) = usize::try_from(count)
                .ok()
                .zip(usize::try_from(len).ok())
                .filter(|(c, l)| c <= l)
                .ok_or_else(|| format!("tag sets of {len} bytes cannot hold {count}"))?;
            LazyTagsets {
                raw: std::sync::OnceLock::new(),
                packed: Some((packed.get(at..).unwrap_or_default().to_vec(), len)),
                count,
                checked: false,
                starts: std::sync::OnceLock::new(),
            }
        }
        false => r.tagset_array()?,
    };
    let time0 = r.int_as::<i64>("the first time")?;
    // Layouts 2 and 3 write their items as columns in a `bin`; layouts 0 and 1 as an array.
    let columns = matches!(bytes.get(r.at), Some(0xc4..=0xc6));
    let items = match columns {
        true => super::pack_items::decode(r.bin()?)?,
        false => {
            let n = r.array(4)?;
            let mut items = Items::with_capacity(n);
            for _ in 0..n {
                r.item(&mut items)?;
            }
            items
        }
    };
    let data = r.bin()?;
    let layout = match fields {
        5 => 0,
        _ => r.int_as::<u8>("a layout")?,
    };
    if layout > LAYOUT_TAG_BYTES {
        return Err(format!("unknown pack layout {layout}"));
    }
    match (columns, layout >= LAYOUT_ITEM_COLUMNS) {
        (true, false) => return Err(format!("items written as columns in layout {layout}")),
        (false, true) => return Err(format!("items written as arrays in layout {layout}")),
        _ => {}
    }
    match (tags_as_bytes, layout >= LAYOUT_TAG_BYTES) {
        (true, false) => return Err(format!("tag sets written as bytes in layout {layout}")),
        (false, true) => return Err(format!("tag sets written as an array in layout {layout}")),
        _ => {}
    }
    if r.at != bytes.len() {
        return Err(format!("{} bytes after the body", bytes.len() - r.at));
    }
    let body = ReadBody {
        descs,
        time0,
        items,
        layout,
    };
    Ok((body, tagsets, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body with every shape of item, from a seed.
    fn body(seed: u64) -> PackBody {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let n = (next() % 40) as usize;
        let mut data = Vec::new();
        let items = (0..n)
            .map(|i| {
                let object = (next() % 3 != 0).then(|| {
                    let len = next() % 300;
                    data.extend((0..len).map(|b| b as u8));
                    let dims = (0..next() % 3).map(|_| next() % 70_000).collect();
                    ((next() % 4) as u32, dims, len)
                });
                let hash =
                    (object.is_none() || next() % 5 == 0).then(|| ByteBuf::from(vec![7; 32]));
                let entry = (next() % 4 != 0).then(|| {
                    let dt = (next() as i64) >> (next() % 64);
                    (if i % 2 == 0 { dt } else { -dt }, (next() % 3) as u32)
                });
                PackItem {
                    object,
                    hash,
                    entry,
                }
            })
            .collect();
        PackBody {
            descs: (0..4)
                .map(|k| ((k % 4 + 1) as u8, "F32".repeat(k)))
                .collect(),
            tagsets: (0..3)
                .map(|t| {
                    (0..t)
                        .map(|k| (format!("k{k}"), "é".repeat((next() % 40) as usize)))
                        .collect()
                })
                .collect(),
            time0: next() as i64,
            items,
            data: ByteBuf::from(data),
            layout: (seed % 2) as u8,
        }
    }

    #[test]
    fn ascii_within_agrees_with_is_ascii_at_every_offset_and_length() {
        let mut b: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for high in [None, Some(0), Some(7), Some(8), Some(20), Some(39)] {
            if let Some(h) = high {
                b[h] = 0xc3;
            }
            for from in 0..b.len() {
                for to in from..=b.len() {
                    assert_eq!(
                        ascii_within(&b, from, to),
                        b[from..to].is_ascii(),
                        "{high:?} {from}..{to}"
                    );
                }
            }
            if let Some(h) = high {
                b[h] = b'a';
            }
        }
    }

    #[test]
    fn the_hand_encoder_writes_what_rmp_serde_writes() {
        for seed in 0..300 {
            let b = body(seed);
            assert_eq!(
                encode(&b).expect("encode"),
                rmp_serde::to_vec(&b).expect("encode"),
                "seed {seed}"
            );
        }
        // Lengths and integers at every width's edge.
        let mut b = body(7);
        b.time0 = i64::MIN;
        b.descs.push((4, "x".repeat(300)));
        b.tagsets.push(vec![("k".into(), "v".repeat(70_000))]);
        b.data = ByteBuf::from(vec![1u8; 70_000]);
        for v in [
            0u64,
            127,
            128,
            255,
            256,
            65_535,
            65_536,
            u64::from(u32::MAX) + 1,
            u64::MAX,
        ] {
            b.items.push(PackItem {
                object: Some((3, vec![v, v / 2], v)),
                hash: None,
                entry: Some((-(v as i64 / 3), 1)),
            });
        }
        assert_eq!(
            encode(&b).expect("encode"),
            rmp_serde::to_vec(&b).expect("encode")
        );
    }

    /// `bytes` decode to `b`, and (with `cuts`) none of their prefixes decodes.
    fn reads_back_and_no_cut_does(b: &PackBody, bytes: &[u8], cuts: bool) {
        let (got, lazy, data) = decode(bytes).expect("decode");
        assert_eq!(lazy.len(), b.tagsets.len());
        assert_eq!(lazy.check(), Ok(()));
        let got = got.into_body(lazy.decode(), data.to_vec());
        assert_eq!(&got, b);
        for cut in (0..bytes.len()).filter(|_| cuts) {
            assert!(decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn reads_what_rmp_serde_writes_and_refuses_every_cut() {
        for seed in 0..300 {
            let b = body(seed);
            reads_back_and_no_cut_does(&b, &rmp_serde::to_vec(&b).expect("encode"), seed < 20);
        }
        // Layouts 2 (items as columns) and 3 (tag sets as bytes too): what `encode` writes
        // reads back, and no cut of it does.
        for seed in 0..200 {
            let mut b = body(seed);
            b.layout = [LAYOUT_ITEM_COLUMNS, LAYOUT_TAG_BYTES][seed as usize % 2];
            let bytes = encode(&b).expect("encode");
            reads_back_and_no_cut_does(&b, &bytes, seed < 20);
            // Items or tag sets written one way with another layout's number are refused.
            for other_layout in [1, 2, 3].into_iter().filter(|l| *l != b.layout) {
                let mut other = bytes.clone();
                *other.last_mut().expect("layout") = other_layout;
                assert!(decode(&other).expect_err("layout").contains("layout"));
            }
        }
        let mut b = body(4);
        b.layout = 2;
        let bytes = rmp_serde::to_vec(&b).expect("encode");
        assert!(decode(&bytes).expect_err("arrays").contains("layout"));
        let mut long = rmp_serde::to_vec(&body(1)).expect("encode");
        long.push(0xc0);
        assert!(
            decode(&long)
                .expect_err("trailing")
                .contains("after the body")
        );
        // A count far past the bytes is refused before anything is allocated.
        assert!(decode(&[0x95, 0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
        // A tag that is not UTF-8 is refused when the body is read, not when it is used.
        let mut b = body(3);
        b.tagsets = vec![vec![("k".into(), "é".into())]];
        let mut bytes = rmp_serde::to_vec(&b).expect("encode");
        let at = bytes
            .windows(2)
            .position(|w| w == "é".as_bytes())
            .expect("é");
        bytes[at] = 0xff;
        assert!(decode(&bytes).expect_err("bad utf-8").contains("UTF-8"));
        // Layout 3 keeps its tag sets compressed apart: a tag that is not UTF-8 is refused
        // when they are checked (a pack read whole), and reads as no tags before (a pack read
        // through the index, checked when it was indexed).
        b.layout = LAYOUT_TAG_BYTES;
        let mut sets = rmp_serde::to_vec(&b.tagsets).expect("sets");
        let at = sets
            .windows(2)
            .position(|w| w == "é".as_bytes())
            .expect("é");
        sets[at] = 0xff;
        let bad = |count: u64, sets: &[u8]| {
            encode_with(&b, Some(&pack_tag_bytes(count, sets).expect("pack")))
        };
        let (_, lazy, _) = decode(&bad(1, &sets)).expect("stepped over");
        assert!(lazy.check().expect_err("bad utf-8").contains("UTF-8"));
        assert_eq!(lazy.one(0), Vec::new());
        // Tag sets that hold more or fewer sets than they say, or bytes after them.
        for (count, sets) in [
            (1, vec![0x91, 0x90, 0x90]),
            (2, vec![0x91, 0x90]),
            (1, vec![0x92, 0x90]),
        ] {
            let (_, lazy, _) = decode(&bad(count, &sets)).expect("stepped over");
            assert!(lazy.check().is_err(), "{count} {sets:?}");
        }
        // A frame that is not zstd, or says another length, is refused when checked.
        let good = pack_tag_bytes(1, &[0x91, 0x90]).expect("pack");
        let mut garbled = good.clone();
        *garbled.last_mut().expect("frame") ^= 0xff;
        let mut longer = good.clone();
        longer[1] = 3;
        for packed in [garbled, longer] {
            let (_, lazy, _) = decode(&encode_with(&b, Some(&packed))).expect("stepped over");
            assert!(lazy.check().is_err(), "{packed:?}");
        }
        // A length far past what the frame holds is refused when checked, nothing allocated
        // for it.
        for count in [1, 1 << 40] {
            let mut lying = Vec::new();
            super::super::pack_items::put_varint(&mut lying, count);
            super::super::pack_items::put_varint(&mut lying, 1 << 40);
            lying.extend_from_slice(&good[2..]);
            let (_, lazy, _) = decode(&encode_with(&b, Some(&lying))).expect("stepped over");
            assert!(lazy.check().expect_err("lying").contains("expected"));
            assert_eq!(lazy.one(0), Vec::new());
        }
        // More sets than bytes to hold them is refused when the body is read.
        let mut many = good.clone();
        many[0] = 5;
        assert!(decode(&encode_with(&b, Some(&many))).is_err());
    }
}
