//! Byte layouts, with no I/O: the store header, segment header, frame header, frame
//! metadata and the pack body. Everything here works on `&[u8]`, so it can be tested and fuzzed without a disk.
//! The tables live in FORMAT.md; constants here are chained so they cannot drift apart.

pub mod bloom;
pub mod frame;
pub mod meta;
pub mod pack;
mod pack_body;
mod pack_items;
pub(crate) mod pack_layout;
pub mod removal;
pub mod store_header;
pub mod version;

/// A 4-byte checksum: the first four bytes of blake3, little-endian. Used for headers and
/// metadata, where a single flipped bit must be caught before a length is trusted.
pub fn checksum(bytes: &[u8]) -> u32 {
    let h = blake3::hash(bytes);
    let [a, b, c, d, ..] = *h.as_bytes();
    u32::from_le_bytes([a, b, c, d])
}

/// Read a little-endian u16 at `at`; `None` if out of bounds.
pub(crate) fn le_u16(buf: &[u8], at: usize) -> Option<u16> {
    buf.get(at..at.checked_add(2)?)?
        .try_into()
        .ok()
        .map(u16::from_le_bytes)
}

/// Read a little-endian u32 at `at`; `None` if out of bounds.
pub(crate) fn le_u32(buf: &[u8], at: usize) -> Option<u32> {
    buf.get(at..at.checked_add(4)?)?
        .try_into()
        .ok()
        .map(u32::from_le_bytes)
}

/// Read a little-endian u64 at `at`; `None` if out of bounds.
pub(crate) fn le_u64(buf: &[u8], at: usize) -> Option<u64> {
    buf.get(at..at.checked_add(8)?)?
        .try_into()
        .ok()
        .map(u64::from_le_bytes)
}

/// Round `n` up to a multiple of `align` (a power of two); `None` on overflow.
pub fn align_up(n: u64, align: u64) -> Option<u64> {
    Some(n.checked_add(align - 1)? & !(align - 1))
}
