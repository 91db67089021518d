//! The canonical encoding: what an object's blake3 address is computed over. It depends on the
//! content alone (kind, descriptor, shape, bytes), never on codec, level or chunking, so the
//! same tensor stored twice is stored once. Byte layout: FORMAT.md, "Canonical encoding".

use crate::hash::ObjectHash;
use crate::object::Kind;

/// Inputs at least this large are hashed on every core (blake3's `update_rayon`); below it the
/// thread hand-off costs more than it saves.
const PARALLEL_HASH_MIN: usize = 1 << 20;

/// The fields of an object that precede its bytes in the canonical encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor<'a> {
    /// The kind.
    pub kind: Kind,
    /// Dtype name for tensors, media type for bytes, record schema for records, "" otherwise.
    pub desc: &'a str,
    /// Tensor shape; empty for other kinds.
    pub shape: &'a [u64],
}

impl Descriptor<'_> {
    /// The canonical prefix: kind, descriptor, shape and payload length.
    pub fn prefix(&self, payload_len: u64) -> Vec<u8> {
        let desc = self.desc.as_bytes();
        let mut out = Vec::with_capacity(1 + 2 + desc.len() + 4 + 8 * self.shape.len() + 8);
        out.push(self.kind as u8);
        // Descriptors are short names; FORMAT.md bounds them to 255 bytes, which the put path
        // checks before hashing, so the cast cannot truncate.
        out.extend_from_slice(&(desc.len() as u16).to_le_bytes());
        out.extend_from_slice(desc);
        out.extend_from_slice(&(self.shape.len() as u32).to_le_bytes());
        for d in self.shape {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&payload_len.to_le_bytes());
        out
    }

    /// blake3 over the prefix and the payload: the object's address.
    pub fn hash(&self, payload: &[u8]) -> ObjectHash {
        let mut h = blake3::Hasher::new();
        // Small prefixes (every real one) are assembled on the stack: small objects are
        // hashed at a high rate on the logging path.
        let len = 1 + 2 + self.desc.len() + 4 + 8 * self.shape.len() + 8;
        let mut buf = [0u8; 256];
        match buf.get_mut(..len) {
            Some(b) => {
                let mut parts: [&[u8]; 4] = [
                    &[self.kind as u8],
                    &(self.desc.len() as u16).to_le_bytes(),
                    self.desc.as_bytes(),
                    &(self.shape.len() as u32).to_le_bytes(),
                ];
                let mut at = 0;
                for p in parts.iter_mut() {
                    if let Some(dst) = b.get_mut(at..at + p.len()) {
                        dst.copy_from_slice(p);
                    }
                    at += p.len();
                }
                for d in self.shape {
                    if let Some(dst) = b.get_mut(at..at + 8) {
                        dst.copy_from_slice(&d.to_le_bytes());
                    }
                    at += 8;
                }
                if let Some(dst) = b.get_mut(at..at + 8) {
                    dst.copy_from_slice(&(payload.len() as u64).to_le_bytes());
                }
                h.update(b);
            }
            None => {
                h.update(&self.prefix(payload.len() as u64));
            }
        }
        if payload.len() >= PARALLEL_HASH_MIN {
            h.update_rayon(payload);
        } else {
            h.update(payload);
        }
        ObjectHash::from(h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_layout_matches_format_md() {
        let d = Descriptor {
            kind: Kind::Tensor,
            desc: "F32",
            shape: &[2, 3],
        };
        let p = d.prefix(24);
        let expected: Vec<u8> = [
            &[1u8][..],
            &[3, 0],
            b"F32",
            &[2, 0, 0, 0],
            &[2, 0, 0, 0, 0, 0, 0, 0],
            &[3, 0, 0, 0, 0, 0, 0, 0],
            &[24, 0, 0, 0, 0, 0, 0, 0],
        ]
        .concat();
        assert_eq!(p, expected);
    }

    #[test]
    fn kind_descriptor_and_shape_change_the_hash() {
        let bytes = [0u8; 8];
        let a = Descriptor {
            kind: Kind::Tensor,
            desc: "F32",
            shape: &[2],
        }
        .hash(&bytes);
        let b = Descriptor {
            kind: Kind::Tensor,
            desc: "I32",
            shape: &[2],
        }
        .hash(&bytes);
        let c = Descriptor {
            kind: Kind::Tensor,
            desc: "F32",
            shape: &[1, 2],
        }
        .hash(&bytes);
        let d = Descriptor {
            kind: Kind::Bytes,
            desc: "",
            shape: &[],
        }
        .hash(&bytes);
        assert!(a != b && a != c && a != d && b != c);
    }

    #[test]
    fn parallel_and_serial_hashing_agree() {
        let big = vec![5u8; PARALLEL_HASH_MIN + 3];
        let d = Descriptor {
            kind: Kind::Bytes,
            desc: "",
            shape: &[],
        };
        let mut h = blake3::Hasher::new();
        h.update(&d.prefix(big.len() as u64));
        h.update(&big);
        assert_eq!(d.hash(&big), ObjectHash::from(h.finalize()));
    }
}
