//! Every entry a query matches, oldest first, with its object read in place where its pack
//! holds it: what `stack` and `table` read back in bulk.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

use rayon::prelude::*;

use super::Archive;
use super::query::{Hits, PackHit};
use crate::error::{Error, Result};
use crate::format::pack::{Pack, PackedObject};
use crate::hash::ObjectHash;
use crate::index::{Removed, RunRec};
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
        /// Its item's hash, once hashed.
        hash: OnceCell<ObjectHash>,
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
            Match::Packed { pack, hit, .. } => pack.tags(hit.tagset),
        }
    }

    /// The hash of the object it logs (hashed here, once, for a pack's item).
    pub fn hash(&self) -> ObjectHash {
        match self {
            Match::Listed(e) => e.hash,
            Match::Packed { pack, hit, hash } => {
                *hash.get_or_init(|| pack.item_hash(hit.slot).unwrap_or(ObjectHash([0; 32])))
            }
        }
    }

    /// The object it logs, when its pack holds it.
    #[cfg(feature = "table")]
    pub fn packed_object(&self) -> Option<PackedObject<'_>> {
        match self {
            Match::Listed(_) => None,
            Match::Packed { pack, hit, .. } => pack.object(hit.slot),
        }
    }

    /// The object it logs as its pack stores it (see `Pack::stored_object`).
    pub fn packed_stored(&self) -> Option<PackedObject<'_>> {
        match self {
            Match::Listed(_) => None,
            Match::Packed { pack, hit, .. } => pack.stored_object(hit.slot),
        }
    }

    /// The object `back` items before this entry's in its pack (what a pack-local reference
    /// of its record names), and a way to its hash.
    pub fn packed_back(&self, back: u16) -> Option<(PackedObject<'_>, impl Fn() -> ObjectHash)> {
        let Match::Packed { pack, hit, .. } = self else {
            return None;
        };
        let slot = hit.slot.checked_sub(u32::from(back)).filter(|s| *s > 0)?;
        let hash = move || pack.item_hash(slot).unwrap_or(ObjectHash([0; 32]));
        Some((pack.object(slot)?, hash))
    }

    /// A tensor of hash `target` packed just before this entry's item, where a logger puts
    /// the tensors a record refers to.
    pub fn packed_before(&self, target: &ObjectHash) -> Option<PackedObject<'_>> {
        let Match::Packed { pack, hit, .. } = self else {
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
    /// Every entry `query` matches, oldest first (removed entries left out), the work of each
    /// run done on every core: `add` takes a run's matches (`RunHits::each` gives them,
    /// oldest first) into a `T` that `start` makes (told how many the run can give at most)
    /// and says how many it took, `end` finishes it there, and `take` gets the `T`s in
    /// order, oldest run first, as they come, with the most entries there can be (a bound to
    /// reserve memory by); `progress(done, 0)` after each run. Returns how many entries
    /// matched.
    pub(super) fn fold_runs<T: Send>(
        &self,
        query: &Query,
        progress: &dyn Fn(u64, u64),
        start: &(dyn Fn(usize) -> T + Sync),
        add: &(dyn Fn(&mut T, &RunHits<'_>) -> Result<u64> + Sync),
        end: &(dyn Fn(&mut T) -> Result<()> + Sync),
        take: &mut dyn FnMut(T, u64) -> Result<()>,
    ) -> Result<u64> {
        let (runs, needs_record, removed) = self.runs_to_walk(query)?;
        let bound: u64 = runs.iter().map(|(_, r)| r.len()).sum();
        let stop = AtomicBool::new(false);
        let one = |(first_seq, run)| -> Result<(T, u64)> {
            let hits = self.run_hits(first_seq, run, query, needs_record)?;
            let mut acc = start(hits.len());
            let rows = add(
                &mut acc,
                &RunHits {
                    hits: &hits,
                    removed: &removed,
                },
            )?;
            end(&mut acc)?;
            Ok((acc, rows))
        };
        // Runs are read on a pool of their own, at most a few ahead of the one taken next,
        // so that parts do not pile up while `take` is slow (a Parquet row group's encode,
        // which runs on the global pool: were the runs read there, its threads could all be
        // waiting to send while the encode waits for them).
        let threads = rayon::current_num_threads();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("archive-walk-{i}"))
            .build()
            .map_err(|e| Error::internal(format!("starting the threads that read runs: {e}")))?;
        let (tx, rx) = mpsc::sync_channel(2 * threads);
        std::thread::scope(|s| {
            // Every thread takes the next run, oldest first (so `T`s come about in order, and
            // few wait), while this thread takes their `T`s in order. No pack waits in
            // memory: a `T` holds only what the caller keeps.
            s.spawn(|| {
                pool.install(|| {
                    runs.into_iter()
                        .rev()
                        .enumerate()
                        .par_bridge()
                        .for_each_with(tx, |tx, (i, run)| {
                            if !stop.load(Ordering::Relaxed) {
                                let _ = tx.send((i, one(run)));
                            }
                        })
                });
            });
            let taken = in_order(
                &rx,
                &mut |(acc, n)| {
                    take(acc, bound)?;
                    self.lease.yield_to_waiters();
                    Ok(n)
                },
                progress,
            );
            // After an error the runs not started are left alone, and those waiting to
            // send are let go.
            stop.store(true, Ordering::Relaxed);
            drop(rx);
            taken
        })
    }

    /// The runs `query` reads, newest first, whether matching reads records, and the
    /// entries removed.
    fn runs_to_walk(&self, query: &Query) -> Result<ToWalk> {
        let (runs, needs_record) = self.plan(query)?;
        // Listed first, so that the index can be handed to a waiting process between runs.
        let runs = runs.collect::<Result<Vec<_>>>()?;
        Ok((runs, needs_record, self.index()?.removed()?))
    }
}

/// What `runs_to_walk` gives.
type ToWalk = (Vec<(u64, RunRec)>, bool, Arc<Removed>);

/// Take the numbered results `rx` brings, in any order, by number from 0 (until the sender
/// is gone); `progress(rows so far, 0)` after each. Returns the rows `take` counted.
fn in_order<T>(
    rx: &mpsc::Receiver<(usize, Result<T>)>,
    take: &mut dyn FnMut(T) -> Result<u64>,
    progress: &dyn Fn(u64, u64),
) -> Result<u64> {
    let mut waiting = BTreeMap::new();
    let (mut next, mut rows) = (0, 0u64);
    for (i, r) in rx {
        waiting.insert(i, r);
        while let Some(r) = waiting.remove(&next) {
            rows += take(r?)?;
            progress(rows, 0);
            next += 1;
        }
    }
    Ok(rows)
}

/// A run's matching entries, as `fold_runs` hands them to its `add`.
pub(super) struct RunHits<'a> {
    /// The entries that match, newest first.
    pub hits: &'a Hits,
    /// The entries removed, which `each` leaves out.
    pub removed: &'a Removed,
}

impl RunHits<'_> {
    /// `f` of each matching entry not removed, oldest first; returns how many.
    pub fn each(&self, f: &mut dyn FnMut(&Match<'_>) -> Result<()>) -> Result<u64> {
        let removed = self.removed;
        let mut rows = 0u64;
        match self.hits {
            // `run_entries` leaves removed entries out already.
            Hits::Listed(v) => {
                for e in v.iter().rev() {
                    f(&Match::Listed(e))?;
                    rows += 1;
                }
            }
            Hits::Packed { pack, hits } => {
                for hit in hits.iter().rev() {
                    let m = Match::Packed {
                        pack,
                        hit,
                        hash: OnceCell::new(),
                    };
                    if !removed.is_empty() && removed.contains(&m.hash(), hit.time_ns, m.tags()) {
                        continue;
                    }
                    f(&m)?;
                    rows += 1;
                }
            }
        }
        Ok(rows)
    }
}
