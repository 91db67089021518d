//! What `archive rm` and `archive gc` recorded, as the index keeps it: every removal frame's
//! entries (`x` keys, one per frame), the objects compactions dropped (`g` keys) and the
//! segments they replaced (`u` keys). Removed entries are matched by what they are (object,
//! time, tags) when entries are read, so a removal holds wherever its entries are indexed: in
//! any segment, in any order, before or after the entries themselves.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{Index, Update, keys};
use crate::error::Result;
use crate::format::removal::{EntryId, RemovalBody};
use crate::hash::ObjectHash;

/// An entry's tags.
type Tags = Vec<(String, String)>;

/// The removed entries and collected objects of a store, in memory.
#[derive(Debug, Default)]
pub struct Removed {
    /// Tag sets of the removed entries, by (object, time).
    by_entry: HashMap<(ObjectHash, i64), Vec<Tags>>,
    /// Objects some removed entry logged.
    hashes: HashSet<ObjectHash>,
    /// Objects a compaction dropped.
    collected: HashSet<ObjectHash>,
    /// Entries named by removals (an entry named twice counts twice).
    entries: u64,
    /// Stored bytes the removals freed, as each said when it was made.
    freed: u64,
}

impl Removed {
    /// True if nothing was ever removed.
    pub fn is_empty(&self) -> bool {
        self.entries == 0 && self.collected.is_empty()
    }

    /// True if the entry of `hash` at `time_ns` with `tags` was removed.
    pub fn contains(&self, hash: &ObjectHash, time_ns: i64, tags: &[(String, String)]) -> bool {
        self.by_entry
            .get(&(*hash, time_ns))
            .is_some_and(|sets| sets.iter().any(|t| t == tags))
    }

    /// True if some removal named an entry of `hash`, or a compaction dropped it.
    pub fn touched(&self, hash: &ObjectHash) -> bool {
        self.hashes.contains(hash) || self.collected.contains(hash)
    }

    /// True if a compaction dropped `hash`.
    pub fn collected(&self, hash: &ObjectHash) -> bool {
        self.collected.contains(hash)
    }

    /// Every object a compaction dropped.
    pub fn collected_all(&self) -> impl Iterator<Item = &ObjectHash> {
        self.collected.iter()
    }

    /// Every entry the removals name, once each.
    pub fn ids(&self) -> impl Iterator<Item = EntryId> + '_ {
        self.by_entry.iter().flat_map(|((hash, time_ns), sets)| {
            let mut seen: Vec<&Vec<(String, String)>> = Vec::new();
            sets.iter().filter_map(move |tags| {
                if seen.contains(&tags) {
                    return None;
                }
                seen.push(tags);
                Some(EntryId {
                    hash: *hash,
                    time_ns: *time_ns,
                    tags: tags.clone(),
                })
            })
        })
    }

    /// Entries the removals name.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Stored bytes the removals said they freed.
    pub fn freed(&self) -> u64 {
        self.freed
    }

    fn add(&mut self, body: &RemovalBody) {
        for e in body.entries() {
            self.hashes.insert(e.hash);
            self.by_entry
                .entry((e.hash, e.time_ns))
                .or_default()
                .push(e.tags);
            self.entries += 1;
        }
        self.freed = self.freed.saturating_add(body.freed);
    }
}

impl Index {
    /// The removals and compactions indexed so far (read once, then kept until the next
    /// update that brings one).
    pub fn removed(&self) -> Result<Arc<Removed>> {
        if let Ok(guard) = self.removed.read()
            && let Some(r) = guard.as_ref()
        {
            return Ok(Arc::clone(r));
        }
        let mut r = Removed::default();
        for item in self.db.scan_prefix([keys::REMOVAL]) {
            let (_, v) = item.map_err(|e| self.err(e))?;
            let body = RemovalBody::decode(&v).map_err(|e| self.err(e))?;
            r.add(&body);
        }
        for item in self.db.scan_prefix([keys::COLLECTED]) {
            let (k, _) = item.map_err(|e| self.err(e))?;
            if let Some(h) = k.get(1..).and_then(ObjectHash::from_slice) {
                r.collected.insert(h);
            }
        }
        let r = Arc::new(r);
        if let Ok(mut guard) = self.removed.write() {
            *guard = Some(Arc::clone(&r));
        }
        Ok(r)
    }

    /// Forget the removals read so far if `brought`: an update brought more.
    pub(super) fn forget_removed_if(&self, brought: bool) {
        if brought {
            self.forget_removed();
        }
    }

    /// Forget the removals read so far.
    pub(super) fn forget_removed(&self) {
        if let Ok(mut guard) = self.removed.write() {
            *guard = None;
        }
    }

    /// Stage an update's removals and compactions; true if it has any.
    pub(super) fn stage_removals(&self, batch: &mut sled::Batch, update: &Update) -> Result<bool> {
        for (seg, offset, body) in &update.removals {
            let bytes = body.encode().map_err(|e| self.err(e))?;
            batch.insert(&keys::removal(*seg, *offset)[..], bytes);
        }
        for h in &update.collected {
            batch.insert(&keys::collected(h)[..], &[][..]);
        }
        for name in &update.superseded {
            batch.insert(keys::superseded(name), &[][..]);
        }
        Ok(!update.removals.is_empty() || !update.collected.is_empty())
    }
}
