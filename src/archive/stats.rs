//! Stats: counts and sizes of a store, from the index (objects in frames of their own), the
//! packs the lookup tables point at (packed objects), and the segment files.

use std::collections::HashMap;

use super::Archive;
use crate::error::Result;
use crate::hash::ObjectHash;
use crate::object::Kind;

/// Counts and sizes of a store.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    /// Distinct objects.
    pub objects: u64,
    /// Entries.
    pub entries: u64,
    /// Sum over entries of their object's decoded size: what a store without dedup holds.
    pub logical_bytes: u64,
    /// Sum of decoded object sizes.
    pub raw_bytes: u64,
    /// Sum of stored object sizes.
    pub stored_bytes: u64,
    /// Segment files.
    pub segments: u64,
    /// Bytes in segment files.
    pub segment_bytes: u64,
    /// Bytes of the index on disk.
    pub index_bytes: u64,
    /// Objects by kind name.
    pub by_kind: Vec<(String, u64)>,
}

impl Archive {
    /// Counts and sizes.
    pub fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        let mut raw_of: HashMap<ObjectHash, u64> = HashMap::new();
        let mut kinds: HashMap<&'static str, u64> = HashMap::new();
        for item in self.index()?.objects() {
            let (h, loc) = item?;
            s.objects += 1;
            s.raw_bytes += loc.raw_len;
            s.stored_bytes += loc.stored_len;
            raw_of.insert(h, loc.raw_len);
            let kind = Kind::from_code(loc.kind).map_or("unknown", |k| k.name());
            *kinds.entry(kind).or_default() += 1;
        }
        // Packed objects: from their packs, each pack read once.
        let mut packs: Vec<(String, u64)> = self
            .index()?
            .tables()
            .all()
            .filter(|at| at.slot != 0)
            .map(|at| (at.segment, at.offset))
            .collect();
        packs.sort();
        packs.dedup();
        for (segment, offset) in packs {
            let pack = self.locator.pack(&segment, offset)?;
            s.stored_bytes += pack.stored_len;
            for (_, o) in pack.objects() {
                let h = o.hash();
                if raw_of.insert(h, o.data.len() as u64).is_none() {
                    s.objects += 1;
                    s.raw_bytes += o.data.len() as u64;
                    *kinds.entry(o.kind.name()).or_default() += 1;
                }
            }
        }
        for item in self.entries() {
            let e = item?;
            s.entries += 1;
            s.logical_bytes += raw_of.get(&e.hash).copied().unwrap_or(0);
        }
        for (_, path) in self.segment_files()? {
            s.segments += 1;
            s.segment_bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        }
        s.index_bytes = self.index()?.size_on_disk();
        let mut by_kind: Vec<(String, u64)> =
            kinds.into_iter().map(|(k, n)| (k.to_owned(), n)).collect();
        by_kind.sort();
        s.by_kind = by_kind;
        Ok(s)
    }
}
