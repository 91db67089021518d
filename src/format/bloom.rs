//! Bloom filters over the values a run of entries holds for one tag key or record path, kept
//! in the value of that key's "many values" key (a run with more values of a key than the
//! index lists one by one), or, when large, in the index's filter file (`index/filters.rs`). A lookup of a value the run does not hold then skips the run
//! unread: a unique id is found by reading the filters, not every pack.
//!
//! Layout: one byte `k` (probes per value), then the bits (a whole number of bytes, at least
//! 8). A value's probes are `h1 + i * h2` modulo the bit count, with `h1` the 64-bit FNV-1a of
//! its UTF-8 bytes and `h2` a SplitMix64 finalisation of `h1` (odd): stable across platforms
//! and releases, as a derived file's contents must be. The index layout version covers it.

/// Bits per value the filter is sized for: with 11 probes, about 1 false positive in 1,500
/// (measured on unique ids, `img-000000123`). At ten million entries a store has ~6,700
/// runs: 10 bits and 7 probes (1 in 120) had a unique id read ~57 packs, this reads ~5.
const BITS_PER_VALUE: usize = 16;
/// Probes per value.
const PROBES: u8 = 11;

/// A bloom filter being filled or read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bloom {
    bytes: Vec<u8>,
}

/// The two hashes a value's probes derive from.
#[derive(Clone, Copy, Debug)]
pub struct Probe(u64, u64);

impl Probe {
    /// The probe of `value`.
    pub fn of(value: &str) -> Probe {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in value.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Probe(h, (z ^ (z >> 31)) | 1)
    }

    fn bits(self, k: u8, m: u64) -> impl Iterator<Item = u64> {
        (0..u64::from(k)).map(move |i| self.0.wrapping_add(i.wrapping_mul(self.1)) % m)
    }
}

impl Bloom {
    /// An empty filter sized for `values` distinct values.
    pub fn with_capacity(values: usize) -> Bloom {
        let len = (values.saturating_mul(BITS_PER_VALUE).div_ceil(8)).max(8);
        let mut bytes = vec![0u8; len + 1];
        if let Some(k) = bytes.first_mut() {
            *k = PROBES;
        }
        Bloom { bytes }
    }

    /// Add a value.
    pub fn insert(&mut self, value: &str) {
        let (k, m) = self.shape();
        for bit in Probe::of(value).bits(k, m) {
            if let Some(b) = self.bytes.get_mut(1 + (bit / 8) as usize) {
                *b |= 1 << (bit % 8);
            }
        }
    }

    /// The stored form.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    fn shape(&self) -> (u8, u64) {
        let k = self.bytes.first().copied().unwrap_or(0);
        (k, (self.bytes.len().saturating_sub(1) * 8) as u64)
    }
}

/// Might the stored filter `bytes` hold a value of `probe`? A filter that is empty or
/// malformed answers yes: it can only cost a read, never a miss.
pub fn may_hold(bytes: &[u8], probe: Probe) -> bool {
    let (Some(&k), Some(bits)) = (bytes.first(), bytes.get(1..)) else {
        return true;
    };
    let m = (bits.len() * 8) as u64;
    if k == 0 || m == 0 {
        return true;
    }
    probe.bits(k, m).all(|bit| {
        bits.get((bit / 8) as usize)
            .is_some_and(|b| b & (1 << (bit % 8)) != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_holds_what_was_put_and_rarely_more() {
        let mut b = Bloom::with_capacity(4096);
        for i in 0..4096 {
            b.insert(&format!("img-{i:09}"));
        }
        let bytes = b.into_bytes();
        assert_eq!(bytes.len(), 1 + 4096 * BITS_PER_VALUE / 8);
        for i in 0..4096 {
            assert!(may_hold(&bytes, Probe::of(&format!("img-{i:09}"))));
        }
        let false_hits = (4096..104_096)
            .filter(|i| may_hold(&bytes, Probe::of(&format!("img-{i:09}"))))
            .count();
        // About 65 expected (1 in 1,500); 10 bits and 7 probes gave ~850.
        assert!(false_hits < 200, "{false_hits} false hits in 100,000");
        // A filter written with other parameters (before v5: 7 probes, 10 bits a value) is
        // read by its own.
        let mut old = vec![7u8];
        old.extend(vec![0u8; 4096 * 10 / 8]);
        let p = Probe::of("img-000000001");
        let m = (old.len() as u64 - 1) * 8;
        for bit in p.bits(7, m) {
            old[1 + (bit / 8) as usize] |= 1 << (bit % 8);
        }
        assert!(may_hold(&old, p));
        assert!(!may_hold(&old, Probe::of("img-000000002")));
        // Stable: FNV-1a as published (of "a"), whatever the platform or release.
        assert_eq!(Probe::of("a").0, 0xaf63_dc4c_8601_ec8c);
        let p = Probe::of("run042");
        // Empty or malformed filters answer yes.
        assert!(may_hold(&[], p));
        assert!(may_hold(&[0], p));
        assert!(may_hold(&[7], p));
    }
}
