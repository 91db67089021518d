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

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
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
    fn varint(&mut self) -> R<u64> {
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
        let z = self.varint()?;
        Ok((z >> 1) as i64 ^ -((z & 1) as i64))
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

    fn int_as<T: TryFrom<u64>>(&mut self, what: &str) -> R<T> {
        let v = self.varint()?;
        T::try_from(v).map_err(|_| format!("{what} {v} is out of range"))
    }
}

/// The items whose flags have `bit`, in order.
fn flagged<'i>(
    items: &'i mut [PackItem],
    flags: &'i [u8],
    bit: u8,
) -> impl Iterator<Item = &'i mut PackItem> {
    let with = items
        .iter_mut()
        .zip(flags)
        .filter(move |(_, f)| **f & bit != 0);
    with.map(|(item, _)| item)
}

/// The items the columns in `b` hold (all of `b`).
pub(crate) fn decode(b: &[u8]) -> R<Vec<PackItem>> {
    let mut c = Cursor { b, at: 0 };
    let n = c.count("items")?;
    let flags = c.take(n)?;
    if let Some(i) = flags
        .iter()
        .position(|f| f & !(HAS_OBJECT | HAS_HASH | HAS_ENTRY) != 0)
    {
        return Err(format!("pack item {i} has unknown flags"));
    }
    let mut items = vec![PackItem::default(); n];
    for item in flagged(&mut items, flags, HAS_OBJECT) {
        item.object = Some((c.int_as::<u32>("a descriptor index")?, Vec::new(), 0));
    }
    for item in flagged(&mut items, flags, HAS_OBJECT) {
        let dims = c.count("dimensions")?;
        if let Some((_, shape, _)) = item.object.as_mut() {
            for _ in 0..dims {
                shape.push(c.varint()?);
            }
        }
    }
    for item in flagged(&mut items, flags, HAS_OBJECT) {
        let len = c.varint()?;
        if let Some(o) = item.object.as_mut() {
            o.2 = len;
        }
    }
    for item in flagged(&mut items, flags, HAS_HASH) {
        let len = c.count("hash bytes")?;
        item.hash = Some(ByteBuf::from(c.take(len)?.to_vec()));
    }
    let mut time = 0i64;
    for item in flagged(&mut items, flags, HAS_ENTRY) {
        time = time.wrapping_add(c.signed()?);
        item.entry = Some((time, 0));
    }
    let mut tagset = 0i64;
    for item in flagged(&mut items, flags, HAS_ENTRY) {
        tagset = tagset
            .checked_add(c.signed()?)
            .ok_or("a tag set index out of range")?;
        let t =
            u32::try_from(tagset).map_err(|_| format!("tag set index {tagset} out of range"))?;
        if let Some(e) = item.entry.as_mut() {
            e.1 = t;
        }
    }
    if c.at != b.len() {
        return Err(format!("{} bytes after the item columns", b.len() - c.at));
    }
    Ok(items)
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
        assert_eq!(decode(&b).expect("decode"), items);
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
        assert_eq!(decode(&b).expect("decode"), items);
        // Flag, descriptor, shape (2 bytes for the tensor), length: 4 or 5 bytes an item;
        // a time difference (2 bytes) and a tag set step (1) an entry.
        assert!(b.len() <= 2 * 4096 * 5 + 4096 * 3 + 4, "{}", b.len());
    }
}
