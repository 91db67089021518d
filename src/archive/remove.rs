//! Removing entries (`archive rm`). A removal is a frame in this process's segment naming the
//! entries it removes by what they are (object, time, tags): the segments stay the single
//! source of truth, `reindex` and `merge` know of it, and no old frame is changed. Listings
//! leave the entries out at once; the objects nothing live needs any more go at the next
//! `archive gc`.

use std::collections::{HashMap, HashSet};

use super::{Archive, now_ns};
use crate::error::Result;
use crate::format::removal::{EntryId, RemovalBody};
use crate::hash::ObjectHash;
use crate::info::EntryInfo;
use crate::query::Query;

/// What `rm` removed, or with `dry_run` would remove.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RmReport {
    /// Entries removed.
    pub entries: u64,
    /// Objects that no live entry logs any more (gc drops them unless a live record refers
    /// to them).
    pub objects: u64,
    /// Their stored bytes: about what `gc` gets back (parts of records not counted).
    pub stored_bytes: u64,
    /// True if nothing was written.
    pub dry_run: bool,
}

impl Archive {
    /// Remove every entry `query` matches (`query_text` is kept in the removal, for people
    /// reading the segment). With `dry_run`, only say what would go. Durable when it returns.
    pub fn rm(&self, query: &Query, query_text: &str, dry_run: bool) -> Result<RmReport> {
        let mut matched: Vec<EntryInfo> = Vec::new();
        let mut sizes: HashMap<ObjectHash, u64> = HashMap::new();
        for item in self.query_detailed(query) {
            let (e, info) = item?;
            if let Some(info) = info {
                sizes.insert(info.hash, info.stored_len);
            }
            matched.push(e);
        }
        let mut report = RmReport {
            entries: matched.len() as u64,
            dry_run,
            ..RmReport::default()
        };
        let (objects, bytes) = self.orphaned(&matched, &sizes)?;
        report.objects = objects;
        report.stored_bytes = bytes;
        if dry_run || matched.is_empty() {
            return Ok(report);
        }
        let ids: Vec<EntryId> = matched
            .iter()
            .map(|e| EntryId {
                hash: e.hash,
                time_ns: e.time_ns,
                tags: e.tags.clone(),
            })
            .collect();
        let mut w = self.writer();
        w.log_removal(RemovalBody::new(now_ns(), query_text, &ids, bytes))?;
        w.commit()?;
        Ok(report)
    }

    /// Of the objects `matched` log, those whose every live entry is in `matched`, and their
    /// stored bytes (from `sizes`). The index lists an object's entries by hash except the
    /// one of its own pack item, which counts as matched when the object is packed and
    /// `matched` has one entry more than it lists. An estimate: parts of records are not
    /// counted, and `gc` finds the exact figure.
    fn orphaned(
        &self,
        matched: &[EntryInfo],
        sizes: &HashMap<ObjectHash, u64>,
    ) -> Result<(u64, u64)> {
        let index = self.index()?;
        let removed = index.removed()?;
        let seqs: HashSet<u64> = matched.iter().map(|e| e.seq).collect();
        let mut per_hash: HashMap<ObjectHash, u64> = HashMap::new();
        for e in matched {
            *per_hash.entry(e.hash).or_default() += 1;
        }
        let (mut objects, mut bytes) = (0u64, 0u64);
        'hashes: for (hash, count) in per_hash {
            let own = index.get(&hash)?;
            let listed = index.entry_seqs_of(&hash)?;
            let mut listed_matched = 0u64;
            for seq in &listed {
                if seqs.contains(seq) {
                    listed_matched += 1;
                    continue;
                }
                // An entry outside `matched`: live, unless a removal named it before.
                let Some((first, run)) = index.run_containing(*seq)? else {
                    continue;
                };
                let other = self.run_entries_all(first, run)?;
                if other
                    .iter()
                    .any(|e| e.seq == *seq && !removed.contains(&e.hash, e.time_ns, &e.tags))
                {
                    continue 'hashes;
                }
            }
            if own.is_none() && count == listed_matched {
                continue;
            }
            objects += 1;
            bytes += own
                .map(|o| o.stored_len)
                .or_else(|| sizes.get(&hash).copied())
                .unwrap_or(0);
        }
        Ok((objects, bytes))
    }

    /// What the removals and compactions of this store name.
    pub fn removed(&self) -> Result<std::sync::Arc<crate::index::Removed>> {
        self.index()?.removed()
    }

    /// Every entry the removals of this store name, once each.
    pub fn removed_ids(&self) -> Result<Vec<crate::format::removal::EntryId>> {
        self.index()?.removed_ids()
    }

    /// Leave out of `v` the entries a removal names.
    pub(super) fn drop_removed(&self, v: &mut Vec<EntryInfo>) -> Result<()> {
        let removed = self.index()?.removed()?;
        if removed.entries() > 0 {
            v.retain(|e| !removed.contains(&e.hash, e.time_ns, &e.tags));
        }
        Ok(())
    }

    /// The entries the removals name (an entry named twice counts twice), and the stored
    /// bytes they said they freed.
    pub fn removed_totals(&self) -> Result<(u64, u64)> {
        let removed = self.index()?.removed()?;
        Ok((removed.entries(), removed.freed()))
    }
}
