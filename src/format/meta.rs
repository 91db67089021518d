//! Frame metadata, msgpack with named fields (schema v1). Unknown fields are ignored and
//! missing ones take their defaults, so adding a field never breaks an old reader. Released
//! structs are frozen: a later schema adds `v2` beside these rather than editing them.

use serde::{Deserialize, Serialize};

/// Metadata of a frame: the object it stores (object frames) and the entry it logs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct FrameMeta {
    /// Present in object frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectMeta>,
    /// Present when the frame logs an entry (always, in frames written by v1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<EntryMeta>,
}

/// How an object was stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct ObjectMeta {
    /// `tensor`, `text`, `bytes` or `record`.
    pub kind: String,
    /// Dtype name, media type or record schema; "" when none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub desc: String,
    /// Tensor shape; empty for other kinds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shape: Vec<u64>,
    /// Decoded payload length in bytes.
    pub raw_len: u64,
    /// Raw bytes per chunk for chunked codecs (0 when raw).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub chunk_size: u64,
    /// Stored length of each chunk, in order (empty when raw).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<u64>,
    /// zstd level used (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<i32>,
}

/// One act of logging: when, and with which tags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct EntryMeta {
    /// Nanoseconds since the Unix epoch.
    pub time_ns: i64,
    /// `key=value` tags, in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
}

// Fields at their default are left out: readers fill them in, and small frames stay small.
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl FrameMeta {
    /// Encode with named fields; the error is a reason (msgpack refused a value).
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        rmp_serde::to_vec_named(self).map_err(|e| format!("frame metadata does not encode: {e}"))
    }

    /// Decode; the error is a reason string.
    pub fn decode(bytes: &[u8]) -> Result<FrameMeta, String> {
        rmp_serde::from_slice(bytes).map_err(|e| format!("frame metadata does not decode: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_ignored_and_missing_ones_default() {
        #[derive(Serialize)]
        struct Future {
            entry: EntryMeta,
            added_later: u32,
        }
        let bytes = rmp_serde::to_vec_named(&Future {
            entry: EntryMeta {
                time_ns: 5,
                tags: vec![("a".into(), "b".into())],
            },
            added_later: 7,
        })
        .expect("encode");
        let m = FrameMeta::decode(&bytes).expect("decode");
        assert_eq!(m.entry.map(|e| e.time_ns), Some(5));
        assert!(m.object.is_none());
    }
}
