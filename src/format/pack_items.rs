//! A pack's items (`PackItem`), and how a v6 body writes them: as columns (layout 2, FORMAT.md
//! "Pack frames", "Item columns"). One flag byte an item, then each field of every item that
//! has it, field after field, integers as LEB128 varints, and entry times and tag-set indexes
//! as differences from the entry before. A logger's items are alike from one to the next (the
//! same descriptor and shape, times a few microseconds apart, a new tag set each): written so,
//! zstd takes them to a third of the msgpack arrays of layouts 0 and 1, which spell each time
//! out as an offset from the pack's first.
//!
//! No I/O. Every count is checked against the bytes left before anything is allocated for it.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// One item of a pack: an object stored here, an entry, or both.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PackItem {
    /// An object stored in this pack: index into `descs`, shape, and its payload's length in
    /// `data` (payloads follow each other in item order).
    pub object: Option<(u32, Vec<u64>, u64)>,
    /// For an entry of content stored elsewhere: that content's hash.
    pub hash: Option<ByteBuf>,
    /// The entry this item logs: nanoseconds after `time0`, index into `tagsets`.
    pub entry: Option<(i64, u32)>,
}

/// Flag bits of an item: it stores an object, names a hash, logs an entry.
const HAS_OBJECT: u8 = 1;
const HAS_HASH: u8 = 2;
const HAS_ENTRY: u8 = 4;

type R<T> = std::result::Result<T, String>;

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A signed difference, zigzag-coded so that small ones of either sign are short.
fn put_signed(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Append `items` as columns to `out`.
pub(crate) fn encode(items: &[PackItem], out: &mut Vec<u8>) {
    put_varint(out, items.len() as u64);
    out.extend(items.iter().map(|i| {
        (u8::from(i.object.is_some()) * HAS_OBJECT)
            | (u8::from(i.hash.is_some()) * HAS_HASH)
            | (u8::from(i.entry.is_some()) * HAS_ENTRY)
    }));
    let objects = || items.iter().filter_map(|i| i.object.as_ref());
    for (d, _, _) in objects() {
        put_varint(out, u64::from(*d));
    }
    for (_, shape, _) in objects() {
        put_varint(out, shape.len() as u64);
        for dim in shape {
            put_varint(out, *dim);
        }
    }
    for (_, _, len) in objects() {
        put_varint(out, *len);
    }
    for h in items.iter().filter_map(|i| i.hash.as_ref()) {
        put_varint(out, h.len() as u64);
        out.extend_from_slice(h);
    }
    let entries = || items.iter().filter_map(|i| i.entry);
    let mut before = 0i64;
    for (dt, _) in entries() {
        put_signed(out, dt.wrapping_sub(before));
        before = dt;
    }
    let mut before = 0i64;
    for (_, tagset) in entries() {
        put_signed(out, i64::from(tagset) - before);
        before = i64::from(tagset);
    }
}

/// Reads the columns.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn varint(&mut self) -> R<u64> {
        // One byte, almost always: a logger's descriptors, dimensions, lengths and steps;
        // two for its time steps (microseconds).
        match self.b.get(self.at..self.at + 2) {
            Some(&[b, _]) if b < 0x80 => {
                self.at += 1;
                return Ok(u64::from(b));
            }
            Some(&[b, c]) if c < 0x80 => {
                self.at += 2;
                return Ok(u64::from(b & 0x7f) | (u64::from(c) << 7));
            }
            _ => {}
        }
        self.varint_long()
    }

    /// `n` varints, each handed to `put` in order: read straight as bytes when none of the
    /// next `n` bytes has its high bit set (a column of small values: the usual case).
    fn varints(&mut self, n: usize, mut put: impl FnMut(u64) -> R<()>) -> R<()> {
        let end = self.at.checked_add(n);
        if let Some(bytes) = end.and_then(|e| self.b.get(self.at..e))
            && bytes.iter().fold(0u8, |a, b| a | b) < 0x80
        {
            self.at += n;
            return bytes.iter().try_for_each(|b| put(u64::from(*b)));
        }
        (0..n).try_for_each(|_| {
            let v = self.varint()?;
            put(v)
        })
    }

    fn varint_long(&mut self) -> R<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .b
                .get(self.at)
                .ok_or_else(|| format!("item columns cut short at byte {}", self.at))?;
            self.at += 1;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                break;
            }
            v |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("a varint past 64 bits at byte {}", self.at))
    }

    fn signed(&mut self) -> R<i64> {
        self.varint().map(unzigzag)
    }

    /// A count of things each at least one byte long: never more than the bytes left.
    fn count(&mut self, what: &str) -> R<usize> {
        let n = self.varint()?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.b.len() - self.at)
            .ok_or_else(|| format!("{n} {what} is more than the item columns hold"))
    }

    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let out = self
            .at
            .checked_add(n)
            .and_then(|end| self.b.get(self.at..end))
            .ok_or_else(|| format!("item columns cut short at byte {}", self.at))?;
        self.at += n;
        Ok(out)
    }
}

/// A zigzag-coded signed value (`put_signed`).
fn unzigzag(z: u64) -> i64 {
    (z >> 1) as i64 ^ -((z & 1) as i64)
}

/// The varint at `*at` of `b`, `*at` moved past it.
pub(crate) fn varint_at(b: &[u8], at: &mut usize) -> R<u64> {
    let mut c = Cursor { b, at: *at };
    let v = c.varint()?;
    *at = c.at;
    Ok(v)
}

/// A read pack's items, held as columns: a few bytes an item and no allocation of its own
/// (a bulk read decodes millions). What the item columns of layouts 2 and 3 decode to, and
/// the item arrays of layouts 0 and 1 are read into.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Items {
    /// Per item: `HAS_OBJECT`, `HAS_HASH`, `HAS_ENTRY`.
    flags: Vec<u8>,
    /// Per item: its object's descriptor index (0 without one).
    desc: Vec<u32>,
    /// Per item: its object's payload length (0 without one).
    len: Vec<u64>,
    /// Per item: where its object's shape ends in `dims` (it starts where the previous
    /// item's ends).
    shape_end: Vec<u32>,
    dims: Vec<u64>,
    /// The hashes of the items that name one: (item, hash), in item order.
    hashes: Vec<(u32, ByteBuf)>,
    /// The entries: (item, time after `time0`, tag set), in item order.
    entries: Vec<(u32, i64, u32)>,
}

/// One item of [`Items`], borrowed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ItemRef<'a> {
    /// Descriptor index, shape and payload length of the object stored here.
    pub object: Option<(u32, &'a [u64], u64)>,
    /// The hash of content stored elsewhere that the item names.
    pub hash: Option<&'a [u8]>,
    /// Time after `time0` and tag set of the entry it logs.
    pub entry: Option<(i64, u32)>,
}

impl Items {
    /// Room for `n` items.
    pub(crate) fn with_capacity(n: usize) -> Items {
        Items {
            flags: Vec::with_capacity(n),
            desc: Vec::with_capacity(n),
            len: Vec::with_capacity(n),
            shape_end: Vec::with_capacity(n),
            ..Items::default()
        }
    }

    /// How many items there are.
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// Add a dimension of the next item's shape.
    pub(crate) fn push_dim(&mut self, dim: u64) {
        self.dims.push(dim);
    }

    /// Forget the dimensions pushed after the first `n` (an item that did not read).
    pub(crate) fn cut_dims(&mut self, n: usize) {
        self.dims.truncate(n);
    }

    /// How many dimensions have been pushed.
    pub(crate) fn dims_len(&self) -> usize {
        self.dims.len()
    }

    /// Add an item, its shape's dimensions pushed first with `push_dim`.
    pub(crate) fn push(
        &mut self,
        object: Option<(u32, u64)>,
        hash: Option<ByteBuf>,
        entry: Option<(i64, u32)>,
    ) -> R<()> {
        let i = u32::try_from(self.len()).map_err(|_| "too many items".to_owned())?;
        let end = u32::try_from(self.dims.len()).map_err(|_| "too many dimensions".to_owned())?;
        let flag = |b: bool, bit: u8| u8::from(b) * bit;
        self.flags.push(
            flag(object.is_some(), HAS_OBJECT)
                | flag(hash.is_some(), HAS_HASH)
                | flag(entry.is_some(), HAS_ENTRY),
        );
        let (d, len) = object.unwrap_or((0, 0));
        self.desc.push(d);
        self.len.push(len);
        self.shape_end.push(end);
        if let Some(h) = hash {
            self.hashes.push((i, h));
        }
        if let Some((dt, t)) = entry {
            self.entries.push((i, dt, t));
        }
        Ok(())
    }

    /// The object item `i` stores: descriptor index, shape and payload length.
    #[inline]
    pub fn object(&self, i: usize) -> Option<(u32, &[u64], u64)> {
        if self.flags.get(i)? & HAS_OBJECT == 0 {
            return None;
        }
        let end = *self.shape_end.get(i)? as usize;
        let start = match i.checked_sub(1) {
            Some(j) => *self.shape_end.get(j)? as usize,
            None => 0,
        };
        Some((
            *self.desc.get(i)?,
            self.dims.get(start..end)?,
            *self.len.get(i)?,
        ))
    }

    /// The descriptor index and payload length of each item's object (`None`: it stores
    /// none), in order: `object` without the shapes.
    pub(crate) fn payloads(&self) -> impl Iterator<Item = Option<(u32, u64)>> + '_ {
        let columns = self.flags.iter().zip(&self.desc).zip(&self.len);
        columns.map(|((f, d), l)| (f & HAS_OBJECT != 0).then_some((*d, *l)))
    }

    /// The hash item `i` names, if it names one.
    pub fn hash(&self, i: usize) -> Option<&[u8]> {
        let h = self.flagged(i, HAS_HASH, &self.hashes, |h| h.0)?;
        Some(&h.1[..])
    }

    /// The entry item `i` logs, if it logs one.
    pub fn entry(&self, i: usize) -> Option<(i64, u32)> {
        let e = self.flagged(i, HAS_ENTRY, &self.entries, |e| e.0)?;
        Some((e.1, e.2))
    }

    /// Item `i`'s element of `column` (one an item whose flags have `bit`, in item order,
    /// `item` telling whose), if its flags have `bit`.
    fn flagged<'c, T>(
        &self,
        i: usize,
        bit: u8,
        column: &'c [T],
        item: impl Fn(&T) -> u32,
    ) -> Option<&'c T> {
        if self.flags.get(i)? & bit == 0 {
            return None;
        }
        let at = column.binary_search_by_key(&(i as u32), item).ok()?;
        column.get(at)
    }

    /// Item `i`.
    pub fn get(&self, i: usize) -> Option<ItemRef<'_>> {
        self.flags.get(i)?;
        Some(ItemRef {
            object: self.object(i),
            hash: self.hash(i),
            entry: self.entry(i),
        })
    }

    /// Every item, in order.
    pub fn iter(&self) -> impl Iterator<Item = ItemRef<'_>> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// The entries, in item order: (item, time after `time0`, tag set).
    pub fn entries(&self) -> &[(u32, i64, u32)] {
        &self.entries
    }

    /// The items that name a hash, in item order: (item, hash bytes).
    pub fn hashes(&self) -> &[(u32, ByteBuf)] {
        &self.hashes
    }

    /// As the items a writer holds.
    pub fn to_pack_items(&self) -> Vec<PackItem> {
        self.iter()
            .map(|r| PackItem {
                object: r.object.map(|(d, s, l)| (d, s.to_vec(), l)),
                hash: r.hash.map(|h| ByteBuf::from(h.to_vec())),
                entry: r.entry,
            })
            .collect()
    }
}

/// The fields of `column` (one an item) of the items that store an object, in order.
fn object_slots<'c, T>(column: &'c mut [T], flags: &'c [u8]) -> impl Iterator<Item = &'c mut T> {
    let with = column.iter_mut().zip(flags);
    with.filter(|(_, f)| **f & HAS_OBJECT != 0).map(|(x, _)| x)
}

/// The items the columns in `b` hold (all of `b`).
pub(crate) fn decode(b: &[u8]) -> R<Items> {
    let mut c = Cursor { b, at: 0 };
    let n = c.count("items")?;
    let flags = c.take(n)?;
    if let Some(i) = flags
        .iter()
        .position(|f| f & !(HAS_OBJECT | HAS_HASH | HAS_ENTRY) != 0)
    {
        return Err(format!("pack item {i} has unknown flags"));
    }
    let mut items = Items {
        flags: flags.to_vec(),
        desc: vec![0; n],
        len: vec![0; n],
        shape_end: Vec::with_capacity(n),
        ..Items::default()
    };
    let objects = flags.iter().filter(|f| *f & HAS_OBJECT != 0).count();
    let mut descs = object_slots(&mut items.desc, flags);
    c.varints(objects, |v| {
        let d = u32::try_from(v).map_err(|_| format!("a descriptor index {v} is out of range"))?;
        if let Some(slot) = descs.next() {
            *slot = d;
        }
        Ok(())
    })?;
    drop(descs);
    items.dims.reserve(objects);
    for f in flags {
        if f & HAS_OBJECT != 0 {
            for _ in 0..c.count("dimensions")? {
                items.dims.push(c.varint()?);
            }
        }
        let end = u32::try_from(items.dims.len()).map_err(|_| "too many dimensions")?;
        items.shape_end.push(end);
    }
    let mut lens = object_slots(&mut items.len, flags);
    c.varints(objects, |v| {
        if let Some(slot) = lens.next() {
            *slot = v;
        }
        Ok(())
    })?;
    drop(lens);
    for (i, _) in flags
        .iter()
        .enumerate()
        .filter(|(_, f)| **f & HAS_HASH != 0)
    {
        let len = c.count("hash bytes")?;
        items
            .hashes
            .push((i as u32, ByteBuf::from(c.take(len)?.to_vec())));
    }
    decode_entries(&mut c, flags, &mut items)?;
    if c.at != b.len() {
        return Err(format!("{} bytes after the item columns", b.len() - c.at));
    }
    Ok(items)
}

/// The entry columns (times, then tag-set indexes, each a step from the entry before) of the
/// items whose `flags` say they log one, into `items.entries`.
fn decode_entries(c: &mut Cursor<'_>, flags: &[u8], items: &mut Items) -> R<()> {
    let entries = flags.iter().filter(|f| *f & HAS_ENTRY != 0).count();
    items.entries.reserve_exact(entries);
    let mut time = 0i64;
    for (i, _) in flags
        .iter()
        .enumerate()
        .filter(|(_, f)| **f & HAS_ENTRY != 0)
    {
        time = time.wrapping_add(c.signed()?);
        items.entries.push((i as u32, time, 0));
    }
    let mut tagset = 0i64;
    let mut sets = items.entries.iter_mut();
    c.varints(entries, |z| {
        tagset = tagset
            .checked_add(unzigzag(z))
            .ok_or("a tag set index out of range")?;
        let t =
            u32::try_from(tagset).map_err(|_| format!("tag set index {tagset} out of range"))?;
        if let Some(e) = sets.next() {
            e.2 = t;
        }
        Ok(())
    })?;
    drop(sets);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(object: Option<(u32, &[u64], u64)>, hash: bool, entry: Option<(i64, u32)>) -> PackItem {
        PackItem {
            object: object.map(|(d, s, l)| (d, s.to_vec(), l)),
            hash: hash.then(|| ByteBuf::from(vec![9u8; 32])),
            entry,
        }
    }

    #[test]
    fn columns_read_back_every_item_and_refuse_every_cut() {
        let items = vec![
            item(Some((0, &[10], 40)), false, None),
            item(Some((1, &[], 31)), false, Some((0, 0))),
            item(None, true, Some((i64::MAX, u32::MAX))),
            item(
                Some((u32::MAX, &[u64::MAX, 0, 3], u64::MAX)),
                true,
                Some((i64::MIN, 0)),
            ),
            item(None, false, Some((-5, 7))),
            item(Some((2, &[1, 2, 3, 4, 5], 0)), false, None),
        ];
        let mut b = Vec::new();
        encode(&items, &mut b);
        assert_eq!(decode(&b).expect("decode").to_pack_items(), items);
        for cut in 0..b.len() {
            assert!(decode(&b[..cut]).is_err(), "cut {cut}");
        }
        let mut long = b.clone();
        long.push(0);
        assert!(decode(&long).expect_err("trailing").contains("after"));
        // An unknown flag bit, and a count past the bytes, are refused before any allocation.
        let mut bad = b.clone();
        bad[1] |= 8;
        assert!(decode(&bad).expect_err("flag").contains("unknown flags"));
        assert!(decode(&[0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        // A varint past 64 bits.
        assert!(decode(&[0x80; 11]).expect_err("long").contains("64 bits"));
    }

    #[test]
    fn a_loggers_items_take_a_few_bytes_each() {
        // A tensor and the record that refers to it, entries microseconds apart, a new tag
        // set each: what `archive log` packs.
        let items: Vec<PackItem> = (0..4096i64)
            .flat_map(|i| {
                [
                    item(Some((0, &[10], 40)), false, None),
                    item(Some((1, &[], 60)), false, Some((i * 3_117, i as u32))),
                ]
            })
            .collect();
        let mut b = Vec::new();
        encode(&items, &mut b);
        assert_eq!(decode(&b).expect("decode").to_pack_items(), items);
        // Flag, descriptor, shape (2 bytes for the tensor), length: 4 or 5 bytes an item;
        // a time difference (2 bytes) and a tag set step (1) an entry.
        assert!(b.len() <= 2 * 4096 * 5 + 4096 * 3 + 4, "{}", b.len());
    }
}
