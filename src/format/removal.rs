//! Removal and compaction frames (schema v3): what `archive rm` and `archive gc` record in the
//! segments, so that the segments stay the single source of truth. Byte layout only, no I/O.
//!
//! A removal names the entries it removes by what they are (the object logged, the time and
//! the tags), never by where they are: the same entry copied into another store by `merge`, or
//! into a new segment by `gc`, is the same entry, and a removal carried with it removes it
//! there too. A compaction is the first frame of a segment `gc` wrote: the segments it
//! replaces (which the index then ignores, and the next `gc` deletes if they are still there)
//! and the objects it dropped (so that `get` of one says it was removed).
//!
//! Both bodies are msgpack with positional fields (rmp-serde `to_vec`), compressed like any
//! payload; the frame header's hash is blake3 of the decoded body.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::hash::ObjectHash;
use crate::tags::owned_tags;

/// The `kind` of a removal frame's payload description.
pub const REMOVAL_KIND: &str = "removal";
/// The `kind` of a compaction frame's payload description.
pub const COMPACTION_KIND: &str = "compaction";

/// An entry as a removal names it: the object it logged, its time and its tags.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EntryId {
    /// The object logged.
    pub hash: ObjectHash,
    /// Nanoseconds since the Unix epoch.
    pub time_ns: i64,
    /// Tags, in the order they were given.
    pub tags: Vec<(String, String)>,
}

/// The body of a removal frame.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RemovalBody {
    /// When the removal was made.
    pub time_ns: i64,
    /// What was asked for (the query), for people reading the segment; never interpreted.
    pub query: String,
    /// Distinct tag sets of the removed entries.
    pub tagsets: Vec<Vec<(String, String)>>,
    /// The removed entries: object hash (32 bytes), time, index into `tagsets`.
    pub items: Vec<(ByteBuf, i64, u32)>,
    /// Stored bytes of the objects no live entry logged any more when the removal was made:
    /// what a `gc` may get back (records' parts not counted). Informational.
    pub freed: u64,
}

impl RemovalBody {
    /// A removal of `entries`, made at `time_ns` by `query`.
    pub fn new(time_ns: i64, query: &str, entries: &[EntryId], freed: u64) -> RemovalBody {
        let mut body = RemovalBody {
            time_ns,
            query: query.to_owned(),
            freed,
            ..RemovalBody::default()
        };
        let mut index: std::collections::HashMap<&[(String, String)], u32> =
            std::collections::HashMap::new();
        for e in entries {
            let next = body.tagsets.len() as u32;
            let i = *index.entry(e.tags.as_slice()).or_insert(next);
            if i == next {
                body.tagsets.push(e.tags.clone());
            }
            body.items
                .push((ByteBuf::from(e.hash.as_bytes().to_vec()), e.time_ns, i));
        }
        body
    }

    /// Encode the body (positional msgpack).
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        rmp_serde::to_vec(self).map_err(|e| format!("a removal does not encode: {e}"))
    }

    /// Decode and check a body: every hash 32 bytes, every tag set index in range.
    pub fn decode(bytes: &[u8]) -> Result<RemovalBody, String> {
        let body: RemovalBody =
            rmp_serde::from_slice(bytes).map_err(|e| format!("bad removal body: {e}"))?;
        for (h, _, t) in &body.items {
            if h.len() != 32 {
                return Err(format!("a removed entry's hash has {} bytes", h.len()));
            }
            if *t as usize >= body.tagsets.len() {
                return Err(format!("a removed entry's tag set {t} is out of range"));
            }
        }
        Ok(body)
    }

    /// The entries it removes.
    pub fn entries(&self) -> impl Iterator<Item = EntryId> + '_ {
        self.items.iter().filter_map(|(h, time_ns, t)| {
            Some(EntryId {
                hash: ObjectHash::from_slice(h)?,
                time_ns: *time_ns,
                tags: self.tagsets.get(*t as usize)?.clone(),
            })
        })
    }
}

impl EntryId {
    /// The id of an entry given its parts.
    pub fn new(hash: ObjectHash, time_ns: i64, tags: &[(&str, &str)]) -> EntryId {
        EntryId {
            hash,
            time_ns,
            tags: owned_tags(tags),
        }
    }
}

/// The body of a compaction frame.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CompactionBody {
    /// When the compaction was made.
    pub time_ns: i64,
    /// File names of the segments this one replaces.
    pub replaces: Vec<String>,
    /// Objects dropped because nothing live needed them (32-byte hashes), this compaction's
    /// and those of the compactions before it that it carries on.
    pub collected: Vec<ByteBuf>,
    /// Removed entries left out of the copy (carried on like `collected`).
    #[serde(default)]
    pub dropped: u64,
    /// Stored bytes of the objects dropped (carried on like `collected`).
    #[serde(default)]
    pub freed: u64,
}

impl CompactionBody {
    /// Encode the body (positional msgpack).
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        rmp_serde::to_vec(self).map_err(|e| format!("a compaction does not encode: {e}"))
    }

    /// Decode and check a body: every hash 32 bytes, every name a segment's.
    pub fn decode(bytes: &[u8]) -> Result<CompactionBody, String> {
        let body: CompactionBody =
            rmp_serde::from_slice(bytes).map_err(|e| format!("bad compaction body: {e}"))?;
        if let Some(h) = body.collected.iter().find(|h| h.len() != 32) {
            return Err(format!("a collected object's hash has {} bytes", h.len()));
        }
        if let Some(n) = body.replaces.iter().find(|n| !is_segment_name(n)) {
            return Err(format!("`{n}` is not a segment's name"));
        }
        Ok(body)
    }

    /// The objects it dropped.
    pub fn collected(&self) -> impl Iterator<Item = ObjectHash> + '_ {
        self.collected
            .iter()
            .filter_map(|h| ObjectHash::from_slice(h))
    }
}

/// True for a plain segment file name: no path separators, no dot-files, ends in `.seg`.
pub fn is_segment_name(name: &str) -> bool {
    name.ends_with(".seg")
        && !name.starts_with('.')
        && !name.contains(['/', '\\'])
        && name.len() <= 255
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_round_trips_and_shares_tag_sets() {
        let h = ObjectHash::from(blake3::hash(b"x"));
        let ids = vec![
            EntryId::new(h, 1, &[("run", "a")]),
            EntryId::new(h, 2, &[("run", "a")]),
            EntryId::new(h, 3, &[("run", "b")]),
        ];
        let body = RemovalBody::new(9, "run = \"a\"", &ids, 10);
        assert_eq!(body.tagsets.len(), 2);
        let back = RemovalBody::decode(&body.encode().expect("encode")).expect("decode");
        assert_eq!(back.entries().collect::<Vec<_>>(), ids);
    }

    #[test]
    fn bad_bodies_are_refused() {
        let mut body = RemovalBody::new(0, "", &[], 0);
        body.items.push((ByteBuf::from(vec![0u8; 31]), 0, 0));
        body.tagsets.push(vec![]);
        let e = RemovalBody::decode(&body.encode().expect("encode")).expect_err("short hash");
        assert!(e.contains("31 bytes"), "{e}");
        let c = CompactionBody {
            replaces: vec!["../x.seg".into()],
            ..CompactionBody::default()
        };
        let e = CompactionBody::decode(&c.encode().expect("encode")).expect_err("bad name");
        assert!(e.contains("not a segment"), "{e}");
        assert!(RemovalBody::decode(b"\xc1").is_err());
    }
}
