//! The only place that encodes sled keys. Numbers are big-endian here (and only here) so that
//! sled's byte order is numeric order.

use crate::hash::{HASH_LEN, ObjectHash};

/// `o` + hash: where an object is, and its summary.
pub const OBJECT: u8 = b'o';
/// `e` + seq: a run of entries with consecutive sequence numbers, starting at seq.
pub const ENTRY: u8 = b'e';
/// `r` + hash + seq: the entries of an object.
pub const OBJECT_ENTRY: u8 = b'r';
/// `s` + segment id: a segment and how far it is indexed.
pub const SEGMENT: u8 = b's';
/// `p` + segment id + frame offset: a pack frame that is indexed, and the sequence number
/// of its first entry (`u64::MAX` if it logs none).
pub const PACK: u8 = b'p';
/// `t` + key + 0 + value + 0 + seq: the run starting at seq has an entry with this tag.
pub const TAG: u8 = b't';
/// `a` + `t` or `f` + name: a tag key (`t`) or a record field path (`f`) some entry or record
/// of the store has, so that a query knows which of its names are record fields.
pub const NAME: u8 = b'a';
/// The kind byte of a tag key's name key.
pub const NAME_TAG: u8 = b't';
/// The kind byte of a record field path's name key.
pub const NAME_FIELD: u8 = b'f';
/// `k`: the store's totals (`Totals`), kept as the index catches up.
pub const TOTALS: &[u8] = b"k";
/// `v`: the index layout version.
pub const VERSION: &[u8] = b"v";
/// `G`: how many times this index was cleared for a rebuild (u64): a process that handed the
/// index over mid-work and finds it changed knows its view is gone.
pub const GENERATION: &[u8] = b"G";
/// `n`: how many entries the lookup tables hold in all (u64), so that a missing table is
/// noticed: merges keep the sum, and every commit adds its new objects.
pub const TABLE_ENTRIES: &[u8] = b"n";
/// `c` + table file name: a lookup table whose checksum held, with the file's identity then
/// (size, modification time, inode), so that an unchanged table is not hashed at every open.
pub const CHECKED_TABLE: u8 = b'c';

/// `x` + segment id + frame offset: a removal frame that is indexed, and its body.
pub const REMOVAL: u8 = b'x';
/// `y` + segment id + frame offset: the removed entries of a removal frame as fixed-size
/// prints (hash prefix, time, tags fingerprint), read into memory by every listing.
pub const REMOVAL_PRINTS: u8 = b'y';
/// `u` + segment name: a segment a compaction replaced; the index ignores it.
pub const SUPERSEDED: u8 = b'u';
/// `z` + segment id + offset: a compaction frame's counts (entries left out, bytes dropped).
pub const COMPACTED: u8 = b'z';

/// `w` + hash: entries indexed before their content was (a u64 count, big-endian): their
/// logical bytes join the totals when it is (`sizes.rs`).
pub const WAITING: u8 = b'w';

/// Key of the entries waiting for `hash`.
pub fn waiting(hash: &ObjectHash) -> [u8; 1 + HASH_LEN] {
    let mut k = [0u8; 1 + HASH_LEN];
    k[0] = WAITING;
    k[1..].copy_from_slice(hash.as_bytes());
    k
}

/// Key of a compaction frame's counts.
pub fn compacted(seg: u32, offset: u64) -> [u8; 13] {
    let mut k = pack(seg, offset);
    k[0] = COMPACTED;
    k
}

/// Key of a removal frame.
pub fn removal(seg: u32, offset: u64) -> [u8; 13] {
    let mut k = pack(seg, offset);
    k[0] = REMOVAL;
    k
}

/// Key of a removal frame's prints.
pub fn removal_prints(seg: u32, offset: u64) -> [u8; 13] {
    let mut k = pack(seg, offset);
    k[0] = REMOVAL_PRINTS;
    k
}

/// Key of a segment a compaction replaced.
pub fn superseded(name: &str) -> Vec<u8> {
    let mut k = vec![SUPERSEDED];
    k.extend_from_slice(name.as_bytes());
    k
}

/// Key of a checked lookup table.
pub fn checked_table(name: &str) -> Vec<u8> {
    let mut k = vec![CHECKED_TABLE];
    k.extend_from_slice(name.as_bytes());
    k
}

/// Key of a name the store knows: `kind` is `NAME_TAG` or `NAME_FIELD`.
pub fn name(kind: u8, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + name.len());
    k.extend_from_slice(&[NAME, kind]);
    k.extend_from_slice(name.as_bytes());
    k
}

/// Key of an object.
pub fn object(hash: &ObjectHash) -> [u8; 1 + HASH_LEN] {
    let mut k = [OBJECT; 1 + HASH_LEN];
    if let Some(dst) = k.get_mut(1..) {
        dst.copy_from_slice(hash.as_bytes());
    }
    k
}

/// Key prefix of the objects whose hash starts with `bytes`.
pub fn object_prefix(bytes: &[u8]) -> Vec<u8> {
    let mut k = vec![OBJECT];
    k.extend_from_slice(bytes);
    k
}

/// Key of the run of entries that starts at `seq`.
pub fn entry(seq: u64) -> [u8; 9] {
    let mut k = [ENTRY; 9];
    if let Some(dst) = k.get_mut(1..) {
        dst.copy_from_slice(&seq.to_be_bytes());
    }
    k
}

/// The sequence number of an entry key.
pub fn entry_seq(key: &[u8]) -> Option<u64> {
    key.get(1..9)?.try_into().ok().map(u64::from_be_bytes)
}

/// Key linking an object to one of its entries.
pub fn object_entry(hash: &ObjectHash, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + HASH_LEN + 8);
    k.push(OBJECT_ENTRY);
    k.extend_from_slice(hash.as_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Prefix of the keys linking `hash` to its entries.
pub fn object_entries(hash: &ObjectHash) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + HASH_LEN);
    k.push(OBJECT_ENTRY);
    k.extend_from_slice(hash.as_bytes());
    k
}

/// Key of a segment record.
pub fn segment(id: u32) -> [u8; 5] {
    let mut k = [SEGMENT; 5];
    if let Some(dst) = k.get_mut(1..) {
        dst.copy_from_slice(&id.to_be_bytes());
    }
    k
}

/// Key of a pack frame.
pub fn pack(seg: u32, offset: u64) -> [u8; 13] {
    let mut k = [PACK; 13];
    if let Some(dst) = k.get_mut(1..5) {
        dst.copy_from_slice(&seg.to_be_bytes());
    }
    if let Some(dst) = k.get_mut(5..13) {
        dst.copy_from_slice(&offset.to_be_bytes());
    }
    k
}

/// The segment id and offset of a key made by `pack` (whatever its first byte).
pub fn unpack(k: &[u8]) -> Option<(u32, u64)> {
    let seg = u32::from_be_bytes(k.get(1..5)?.try_into().ok()?);
    let offset = u64::from_be_bytes(k.get(5..13)?.try_into().ok()?);
    Some((seg, offset))
}

/// Prefix of the tag keys of `key=value`. Tags hold no control characters, so 0 separates.
pub fn tag_prefix(key: &str, value: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + key.len() + value.len() + 8);
    k.push(TAG);
    k.extend_from_slice(key.as_bytes());
    k.push(0);
    k.extend_from_slice(value.as_bytes());
    k.push(0);
    k
}

/// Key saying the run starting at `seq` has an entry tagged `key=value`.
pub fn tag(key: &str, value: &str, seq: u64) -> Vec<u8> {
    let mut k = tag_prefix(key, value);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The run's sequence number at the end of a tag key.
pub fn tag_seq(key: &[u8]) -> Option<u64> {
    let at = key.len().checked_sub(8)?;
    key.get(at..)?.try_into().ok().map(u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_sort_numerically() {
        assert!(entry(255) < entry(256));
        assert_eq!(entry_seq(&entry(1234)), Some(1234));
        assert_eq!(tag_seq(&tag("run", "a", 77)), Some(77));
        assert!(tag("run", "a", 1).starts_with(&tag_prefix("run", "a")));
        assert!(!tag("run", "ab", 1).starts_with(&tag_prefix("run", "a")));
    }
}
