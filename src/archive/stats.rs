//! Stats: counts and sizes of a store, from the totals the index keeps as it catches up and the
//! segment files. `recount` finds the same figures the slow way, walking every object (in the
//! index, and in the packs the lookup tables point at) and every entry.

use std::collections::HashMap;

use super::Archive;
use crate::error::Result;
use crate::hash::ObjectHash;
use crate::object::Kind;

/// Counts and sizes of a store.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    /// Objects stored (see `Archive::stats` on copies).
    pub objects: u64,
    /// Entries.
    pub entries: u64,
    /// Sum over entries of their object's decoded size: what a store without dedup holds.
    pub logical_bytes: u64,
    /// Sum of the stored objects' decoded sizes.
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
    /// Of `entries`, those `archive rm` removed (counted as the removals name them).
    pub removed_entries: u64,
    /// Stored bytes the removals freed for `gc` to get back, as each removal estimated it
    /// (`archive gc --dry-run` finds the exact figure).
    pub removable_bytes: u64,
}

impl Archive {
    /// Counts and sizes, from the totals the index keeps: as fast at ten million entries as
    /// at ten. Objects are the copies stored: content is stored once, except where two
    /// writers packed it at the same moment or `archive log` runs (which write without the
    /// index) met it again; each such copy counts, as it takes space, until gc.
    pub fn stats(&self) -> Result<Stats> {
        let t = self.index()?.totals()?;
        let mut s = Stats {
            objects: t.objects,
            entries: t.entries,
            logical_bytes: t.logical_bytes,
            raw_bytes: t.raw_bytes,
            stored_bytes: t.stored_bytes,
            by_kind: t
                .by_kind
                .iter()
                .map(|(k, n)| {
                    let name = Kind::from_code(*k).map_or("unknown", |k| k.name());
                    (name.to_owned(), *n)
                })
                .collect(),
            ..Stats::default()
        };
        s.by_kind.sort();
        self.files_stats(&mut s)?;
        Ok(s)
    }

    /// Segment files, index size and removals.
    fn files_stats(&self, s: &mut Stats) -> Result<()> {
        let removed = self.removed()?;
        s.removed_entries = removed.entries();
        s.removable_bytes = removed.freed();
        for (_, path) in self.segment_files()? {
            s.segments += 1;
            s.segment_bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        }
        s.index_bytes = self.index()?.size_on_disk();
        Ok(())
    }

    /// The figures of [`Archive::stats`] found by walking every object and entry: slow (every
    /// pack is read and every packed object hashed), for checking the totals.
    pub fn recount(&self) -> Result<Stats> {
        self.again_if_rebuilt(&|| self.recount_once())
    }

    fn recount_once(&self) -> Result<Stats> {
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
        // Packed objects: from every indexed pack.
        let packs = self.index()?.packs()?;
        for (segment, offset) in packs {
            // Another process waiting for the index gets it between packs.
            self.lease.yield_to_waiters();
            let pack = self.locator.pack(&segment, offset)?;
            s.stored_bytes += pack.stored_len;
            for (_, o) in pack.objects() {
                raw_of.insert(o.hash(), o.data.len() as u64);
                s.objects += 1;
                s.raw_bytes += o.data.len() as u64;
                *kinds.entry(o.kind.name()).or_default() += 1;
            }
        }
        // Listed first, so that a process waiting for the index gets it between runs.
        let runs = self
            .index()?
            .runs_newest_first()
            .collect::<Result<Vec<_>>>()?;
        for (first, run) in runs {
            self.lease.yield_to_waiters();
            for e in self.run_entries_all(first, run)? {
                s.entries += 1;
                s.logical_bytes += raw_of.get(&e.hash).copied().unwrap_or(0);
            }
        }
        self.files_stats(&mut s)?;
        let mut by_kind: Vec<(String, u64)> =
            kinds.into_iter().map(|(k, n)| (k.to_owned(), n)).collect();
        by_kind.sort();
        s.by_kind = by_kind;
        Ok(s)
    }
}
