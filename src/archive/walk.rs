//! Every entry a query matches, oldest first, with its object read in place where its pack
//! holds it: what `stack` and `table` read back in bulk.

use super::Archive;
use super::query::{Hits, PackHit};
use crate::error::Result;
use crate::format::pack::{Pack, PackedObject};
use crate::hash::ObjectHash;
use crate::info::EntryInfo;
use crate::object::Kind;
use crate::query::Query;

/// A matching entry.
pub(super) enum Match<'a> {
    /// Listed in the index.
    Listed(&'a EntryInfo),
    /// An item of a pack.
    Packed {
        /// The pack.
        pack: &'a Pack,
        /// The entry.
        hit: &'a PackHit,
    },
}

impl Match<'_> {
    /// Its sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            Match::Listed(e) => e.seq,
            Match::Packed { hit, .. } => hit.seq,
        }
    }

    /// Nanoseconds since the Unix epoch.
    pub fn time_ns(&self) -> i64 {
        match self {
            Match::Listed(e) => e.time_ns,
            Match::Packed { hit, .. } => hit.time_ns,
        }
    }

    /// Its tags.
    pub fn tags(&self) -> &[(String, String)] {
        match self {
            Match::Listed(e) => &e.tags,
            Match::Packed { pack, hit } => pack.tags(hit.tagset),
        }
    }

    /// The hash of the object it logs (hashed here for a pack's item).
    pub fn hash(&self) -> ObjectHash {
        match self {
            Match::Listed(e) => e.hash,
            Match::Packed { pack, hit } => pack.item_hash(hit.slot).unwrap_or(ObjectHash([0; 32])),
        }
    }

    /// The object it logs, when its pack holds it.
    pub fn packed_object(&self) -> Option<PackedObject<'_>> {
        match self {
            Match::Listed(_) => None,
            Match::Packed { pack, hit } => pack.object(hit.slot),
        }
    }

    /// A tensor of hash `target` packed just before this entry's item, where a logger puts
    /// the tensors a record refers to.
    pub fn packed_before(&self, target: &ObjectHash) -> Option<PackedObject<'_>> {
        let Match::Packed { pack, hit } = self else {
            return None;
        };
        let slot = hit.slot;
        (slot.saturating_sub(8).max(1)..slot).rev().find_map(|s| {
            pack.object(s)
                .filter(|o| o.kind == Kind::Tensor && o.hash() == *target)
        })
    }

    /// How errors name it.
    pub fn name(&self, field: Option<&str>) -> String {
        let hash = self.hash();
        match field {
            Some(f) => format!("entry {} ({}) field `{f}`", self.seq(), hash.short(12)),
            None => format!("entry {} ({})", self.seq(), hash.short(12)),
        }
    }
}

impl Archive {
    /// Call `f` with every entry `query` matches, oldest first (removed entries left out);
    /// `progress(done, 0)` after each run. Returns how many there were.
    pub(super) fn each_match(
        &self,
        query: &Query,
        progress: &dyn Fn(u64, u64),
        f: &mut dyn FnMut(&Match<'_>) -> Result<()>,
    ) -> Result<u64> {
        let (runs, needs_record) = self.plan(query)?;
        // Listed first, so that the index can be handed to a waiting process between runs.
        let runs = runs.collect::<Result<Vec<_>>>()?;
        let removed = self.index()?.removed()?;
        let mut rows = 0u64;
        // Runs come newest first, and each run's hits newest first.
        for (first_seq, run) in runs.into_iter().rev() {
            self.lease.yield_to_waiters();
            match self.run_hits(first_seq, run, query, needs_record)? {
                // `run_entries` leaves removed entries out already.
                Hits::Listed(v) => {
                    for e in v.iter().rev() {
                        f(&Match::Listed(e))?;
                        rows += 1;
                    }
                }
                Hits::Packed { pack, hits } => {
                    for hit in hits.iter().rev() {
                        let m = Match::Packed { pack: &pack, hit };
                        if !removed.is_empty() && removed.contains(&m.hash(), hit.time_ns, m.tags())
                        {
                            continue;
                        }
                        f(&m)?;
                        rows += 1;
                    }
                }
            }
            progress(rows, 0);
        }
        Ok(rows)
    }
}
