//! `ObjectHash`: the blake3 address of an object, printed as lowercase hex; short prefixes
//! resolve as git's short hashes do (see `Archive::resolve`).

use std::fmt;
use std::str::FromStr;

/// Length of an object hash in bytes.
pub const HASH_LEN: usize = 32;

/// The content address of an object: blake3 over its canonical encoding (FORMAT.md).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectHash(pub [u8; HASH_LEN]);

impl ObjectHash {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    /// The first `n` hex digits (`n` is clamped to 64).
    pub fn short(&self, n: usize) -> String {
        let mut s = self.to_string();
        s.truncate(n.min(HASH_LEN * 2));
        s
    }

    /// Parse from a byte slice of exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; HASH_LEN]>::try_from(bytes).ok().map(ObjectHash)
    }
}

/// Hashes `ObjectHash` keys of hash maps and sets by their first 8 bytes: they are blake3
/// output already, so SipHash over all 32 bytes buys nothing and costs a few percent of a
/// small put.
#[derive(Clone, Copy, Default)]
pub struct PrefixHasher(u64);

impl std::hash::Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        for (w, b) in word.iter_mut().zip(bytes) {
            *w = *b;
        }
        self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
    }
}

/// A set of object hashes, hashed by `PrefixHasher`.
pub type HashSet =
    std::collections::HashSet<ObjectHash, std::hash::BuildHasherDefault<PrefixHasher>>;

/// A map from object hashes, hashed by `PrefixHasher`.
pub type HashMap<V> =
    std::collections::HashMap<ObjectHash, V, std::hash::BuildHasherDefault<PrefixHasher>>;

impl From<blake3::Hash> for ObjectHash {
    fn from(h: blake3::Hash) -> Self {
        ObjectHash(*h.as_bytes())
    }
}

impl fmt::Display for ObjectHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(blake3::Hash::from_bytes(self.0).to_hex().as_str())
    }
}

impl fmt::Debug for ObjectHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectHash({self})")
    }
}

/// Decode a hex string of even or odd length into nibbles; `None` if any digit is not hex.
pub(crate) fn parse_hex_nibbles(s: &str) -> Option<Vec<u8>> {
    s.chars()
        .map(|c| c.to_digit(16).and_then(|d| u8::try_from(d).ok()))
        .collect()
}

/// A string that is not a full object hash (64 hexadecimal digits). Converts into
/// `Error::InvalidInput`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseHashError {
    /// The string as given.
    pub input: String,
}

impl fmt::Display for ParseHashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: not a hash: expected 64 hexadecimal digits",
            self.input
        )
    }
}

impl std::error::Error for ParseHashError {}

impl FromStr for ObjectHash {
    type Err = ParseHashError;

    fn from_str(s: &str) -> Result<Self, ParseHashError> {
        blake3::Hash::from_hex(s)
            .map(ObjectHash::from)
            .map_err(|_| ParseHashError {
                input: s.to_owned(),
            })
    }
}

impl serde::Serialize for ObjectHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ObjectHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes: serde_bytes::ByteBuf = serde::Deserialize::deserialize(d)?;
        ObjectHash::from_slice(&bytes)
            .ok_or_else(|| serde::de::Error::invalid_length(bytes.len(), &"32 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let h = ObjectHash::from(blake3::hash(b"x"));
        let s = h.to_string();
        assert_eq!(s.len(), 64);
        assert_eq!(s.parse::<ObjectHash>().ok(), Some(h));
        assert_eq!(h.short(8), s[..8]);
    }

    #[test]
    fn bad_hex_is_rejected() {
        assert!("zz".repeat(32).parse::<ObjectHash>().is_err());
        assert!("ab".parse::<ObjectHash>().is_err());
        let h = ObjectHash::from(blake3::hash(b"x"));
        assert_eq!(
            h.to_string().to_uppercase().parse::<ObjectHash>().ok(),
            Some(h)
        );
    }
}
