//! The columnar layout of v5 pack bodies (FORMAT.md, "Pack frames"): the objects' payloads
//! grouped by descriptor, so that one tensor field of a pack's records is one contiguous,
//! byte-shuffled array, and records whose references point at an earlier item of the same pack
//! stored with a 4-byte local reference in place of the 32-byte hash, which is recomputed when
//! the record's canonical bytes are asked for.
//!
//! No I/O: encoding a body's data and records, and undoing both when a pack is read.

use crate::codec::shuffle::{shuffle, unshuffle};
use crate::format::pack_body::ReadBody;
use crate::hash::ObjectHash;
use crate::object::Kind;
use crate::object::record_scan::{EXT_LOCAL, scan_ref_offsets};
use crate::object::tensor::Dtype;

pub use crate::format::pack_body::{
    LAYOUT_COLUMNS, LAYOUT_ITEM_COLUMNS, LAYOUT_ROWS, LAYOUT_TAG_BYTES,
};

/// Whether a layout groups its data by descriptor (and stores records with local references).
pub(crate) fn grouped(layout: u8) -> bool {
    matches!(
        layout,
        LAYOUT_COLUMNS | LAYOUT_ITEM_COLUMNS | LAYOUT_TAG_BYTES
    )
}

/// Most items back a local reference can point (its distance is a u16).
const LOCAL_MAX: usize = u16::MAX as usize;

/// How wide the elements of a descriptor's group are shuffled: a tensor's dtype's shuffle
/// width, 1 (not shuffled) for anything else or a dtype this program does not know.
pub(crate) fn group_width(kind: u8, desc: &str) -> usize {
    if Kind::from_code(kind) != Some(Kind::Tensor) {
        return 1;
    }
    desc.parse::<Dtype>().map_or(1, Dtype::shuffle_width)
}

/// The stored data of a v5 pack: `groups` (width, payloads) concatenated, each shuffled by
/// its width.
pub(crate) fn join_groups(groups: &[(usize, Vec<u8>)]) -> Vec<u8> {
    let total = groups.iter().map(|(_, g)| g.len()).sum();
    let mut out = vec![0u8; total];
    let mut at = 0;
    for (width, g) in groups {
        if let Some(dst) = out.get_mut(at..at + g.len()) {
            shuffle(g, dst, *width);
        }
        at += g.len();
    }
    out
}

/// The payloads of a v5 pack's stored data, unshuffled: `groups` are (width, length) in order
/// and must add up to `stored.len()` (the caller checked).
pub(crate) fn split_groups(stored: &[u8], groups: &[(usize, usize)]) -> Vec<u8> {
    let mut out = vec![0u8; stored.len()];
    let mut at = 0;
    for (width, len) in groups {
        if let (Some(src), Some(dst)) = (stored.get(at..at + len), out.get_mut(at..at + len)) {
            unshuffle(src, dst, *width);
        }
        at += len;
    }
    out
}

/// A record's canonical bytes with every reference to an object `back` finds (how many items
/// before the record's it is, at most `u16::MAX`) written as a local reference; `None` if
/// there is none (the record is stored as it is).
pub(crate) fn localize(
    canonical: &[u8],
    back: &dyn Fn(&ObjectHash) -> Option<usize>,
) -> Option<Vec<u8>> {
    let mut found = Vec::new();
    let scanned = scan_ref_offsets(canonical, &mut |at, h| {
        if let Some(n) = back(&h).filter(|n| (1..=LOCAL_MAX).contains(n)) {
            found.push((at, n as u16));
        }
    });
    if scanned.is_err() || found.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(canonical.len());
    let mut from = 0;
    for (at, n) in found {
        out.extend_from_slice(canonical.get(from..at)?);
        out.extend_from_slice(&[0xd5, EXT_LOCAL as u8]);
        out.extend_from_slice(&n.to_be_bytes());
        from = at + 34;
    }
    out.extend_from_slice(canonical.get(from..)?);
    Some(out)
}

/// Append to `out` the canonical bytes of a stored record whose local references are at
/// `locals` (offset of each `fixext 2` marker, in order, and the hash of the object it names).
pub(crate) fn expand(stored: &[u8], locals: &[(usize, ObjectHash)], out: &mut Vec<u8>) {
    out.reserve(stored.len() + 30 * locals.len());
    let mut from = 0;
    for (at, h) in locals {
        out.extend_from_slice(stored.get(from..*at).unwrap_or_default());
        out.extend_from_slice(&[0xc4, 0x20]);
        out.extend_from_slice(h.as_bytes());
        from = at + 4;
    }
    out.extend_from_slice(stored.get(from..).unwrap_or_default());
}

/// Where each item's payload starts in a body's `data` (in item order, or, layout 1, grouped
/// by descriptor), and each descriptor's bytes; every descriptor index is checked, and that
/// the payloads account for the data exactly.
pub(crate) fn item_starts(
    body: &ReadBody,
    data_len: usize,
) -> std::result::Result<(Vec<usize>, Vec<usize>), String> {
    // Each descriptor's bytes, every index and length checked.
    let mut sizes = vec![0usize; body.descs.len()];
    let mut total = 0usize;
    for (i, payload) in body.items.payloads().enumerate() {
        let Some((d, len)) = payload else {
            continue;
        };
        let size = sizes
            .get_mut(d as usize)
            .ok_or_else(|| format!("pack item {i} names descriptor {d} of {}", body.descs.len()))?;
        total = usize::try_from(len)
            .ok()
            .and_then(|l| total.checked_add(l))
            .filter(|t| *t <= data_len)
            .ok_or_else(|| format!("pack item {i} runs past the pack's data"))?;
        *size += len as usize;
    }
    if total != data_len {
        return Err("pack items do not account for all its data".into());
    }
    // Each group's next byte: one group, the whole data, before v5.
    let mut group_at = vec![0usize; body.descs.len().max(1)];
    match body.layout {
        LAYOUT_ROWS => {}
        LAYOUT_COLUMNS | LAYOUT_ITEM_COLUMNS | LAYOUT_TAG_BYTES => {
            let mut at = 0usize;
            for (g, size) in group_at.iter_mut().zip(&sizes) {
                *g = at;
                at += size;
            }
        }
        other => return Err(format!("unknown pack layout {other}")),
    }
    let columns = grouped(body.layout);
    let mut starts = Vec::with_capacity(body.items.len());
    for payload in body.items.payloads() {
        let (group, len) = match payload {
            Some((d, len)) => (if columns { d as usize } else { 0 }, len as usize),
            None => (0, 0),
        };
        let at = group_at.get_mut(group).ok_or("a group out of range")?;
        starts.push(*at);
        *at += len;
    }
    Ok((starts, sizes))
}

/// The local references of a layout-1 body's records (see `Pack::locals`), each checked to
/// name an object stored before the record.
pub(crate) fn find_locals(
    body: &ReadBody,
    data: &[u8],
    starts: &[usize],
) -> std::result::Result<Vec<(u32, u32, u32)>, String> {
    let mut out = Vec::new();
    for i in 0..body.items.len() {
        item_locals(body, data, starts, i, &mut out)?;
    }
    Ok(out)
}

/// `find_locals` of item `i` alone, added to `out` (nothing unless it stores a record).
pub(crate) fn item_locals(
    body: &ReadBody,
    data: &[u8],
    starts: &[usize],
    i: usize,
    out: &mut Vec<(u32, u32, u32)>,
) -> std::result::Result<(), String> {
    let Some((d, _, len)) = body.items.object(i) else {
        return Ok(());
    };
    if body.descs.get(d as usize).map(|d| d.0) != Some(Kind::Record as u8) {
        return Ok(());
    }
    let start = starts.get(i).copied().unwrap_or(0);
    let bytes = data.get(start..start + len as usize).unwrap_or_default();
    let mut bad = None;
    let before = out.len();
    let scanned = crate::object::record_scan::scan_locals(bytes, &mut |at, back| {
        let target = i.checked_sub(usize::from(back)).filter(|_| back > 0);
        match target.and_then(|t| body.items.object(t)) {
            Some(_) => {
                out.push((i as u32, at as u32, (i - usize::from(back)) as u32));
            }
            _ => bad = Some(back),
        }
    });
    // A record that does not scan has no local references to find; reading it as a
    // record says what is wrong with it.
    if scanned.is_err() {
        out.truncate(before);
    }
    match bad {
        Some(back) => Err(format!(
            "pack item {i} refers to the object {back} items before it, which is not there"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::record::{Record, Value};
    use crate::object::record_scan::{Target, find_target, scan_locals};

    #[test]
    fn groups_shuffle_and_come_back() {
        let f32s: Vec<u8> = (0..40u8).collect();
        let text = b"hello".to_vec();
        let groups = vec![(4, f32s.clone()), (1, text.clone())];
        let stored = join_groups(&groups);
        assert_ne!(stored[..40], f32s[..], "shuffled");
        assert_eq!(&stored[40..], &text[..]);
        let back = split_groups(&stored, &[(4, 40), (1, 5)]);
        assert_eq!(back, [f32s, text].concat());
        assert_eq!(group_width(Kind::Tensor as u8, "F32"), 4);
        assert_eq!(group_width(Kind::Tensor as u8, "STR3"), 4);
        assert_eq!(group_width(Kind::Tensor as u8, "no such dtype"), 1);
        assert_eq!(group_width(Kind::Record as u8, "F64"), 1);
    }

    #[test]
    fn local_references_round_trip_to_the_canonical_bytes() {
        let (a, b, c) = (
            ObjectHash([1; 32]),
            ObjectHash([2; 32]),
            ObjectHash([3; 32]),
        );
        let inner = Record::new().with("x", Value::Ref(b)).expect("inner");
        let r = Record::new()
            .with("probs", Value::Ref(a))
            .and_then(|r| r.with("list", Value::List(vec![Value::Ref(b), Value::Ref(c)])))
            .and_then(|r| r.with("inner", Value::Record(inner)))
            .and_then(|r| r.with("id", Value::Str("img-1".into())))
            .expect("record");
        let canonical = r.to_msgpack();
        // `c` is not in the pack: it keeps its hash.
        let back = |h: &ObjectHash| match h.0[0] {
            1 => Some(1),
            2 => Some(7),
            _ => None,
        };
        let stored = localize(&canonical, &back).expect("some are local");
        assert_eq!(stored.len(), canonical.len() - 3 * 30);
        let mut locals = Vec::new();
        scan_locals(&stored, &mut |at, n| locals.push((at, n))).expect("scan");
        assert_eq!(locals.iter().map(|l| l.1).collect::<Vec<_>>(), [1, 7, 7]);
        assert_eq!(find_target(&stored, "probs"), Ok(Some(Target::Local(1))));
        assert_eq!(find_target(&stored, "inner.x"), Ok(Some(Target::Local(7))));
        let hashes: Vec<(usize, ObjectHash)> = locals
            .iter()
            .map(|(at, n)| (*at, if *n == 1 { a } else { b }))
            .collect();
        let mut out = Vec::new();
        expand(&stored, &hashes, &mut out);
        assert_eq!(out, canonical);
        assert!(localize(&canonical, &|_| None).is_none());
        assert!(localize(&canonical, &|_| Some(70_000)).is_none(), "too far");
    }
}
