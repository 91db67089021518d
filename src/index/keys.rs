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
/// `v`: the index layout version.
pub const VERSION: &[u8] = b"v";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_sort_numerically() {
        assert!(entry(255) < entry(256));
        assert_eq!(entry_seq(&entry(1234)), Some(1234));
    }
}
