//! Entries indexed before their object: an entry can log content stored in another segment
//! (a duplicate put, a record logged again, or an object a gc moved into its output), and a
//! catch-up may meet the entry first. Its decoded size, which the totals' logical bytes count,
//! is not known then. The index keeps how many entries wait for each such content (`w` keys),
//! and counts their bytes the moment the content is indexed. So the totals do not depend on
//! the order segments are read in: a reindex, a catch-up several processes share, and the
//! commits themselves all come to what a recount finds. Content never indexed (a removed
//! entry's object that gc collected) counts nothing, as in a recount.

use std::collections::HashMap;

use super::{Index, RunUpdate, Update, keys};
use crate::error::{Error, Result};
use crate::hash::ObjectHash;

/// Entries waiting for their content, by content: the `w` keys, read once per open.
#[derive(Default)]
pub(super) struct Waiting(std::sync::Mutex<Option<HashMap<ObjectHash, u64>>>);

/// What one `apply` changes of the waiting entries: counts to set (`None`: the content came).
#[derive(Default)]
pub(super) struct WaitingChanges(HashMap<ObjectHash, Option<u64>>);

impl Index {
    fn waiting_map(&self) -> Result<std::sync::MutexGuard<'_, Option<HashMap<ObjectHash, u64>>>> {
        let mut held = self
            .waiting
            .0
            .lock()
            .map_err(|_| Error::internal("the waiting entries' lock is poisoned"))?;
        if held.is_none() {
            let mut m = HashMap::new();
            for item in self.db.scan_prefix([keys::WAITING]) {
                let (k, v) = item.map_err(|e| self.err(e))?;
                let (Some(hash), Ok(n)) = (
                    k.get(1..).and_then(ObjectHash::from_slice),
                    <[u8; 8]>::try_from(&v[..]),
                ) else {
                    continue;
                };
                m.insert(hash, u64::from_be_bytes(n));
            }
            *held = Some(m);
        }
        Ok(held)
    }

    /// Stage into `batch`: one more entry waiting for each of `update.waiting`; then, for each
    /// object of the update (in a frame of its own or packed) that entries wait for, their
    /// logical bytes, returned, and their keys removed. `commit_waiting` makes the changes
    /// visible once the batch is applied.
    pub(super) fn stage_waiting(
        &self,
        batch: &mut sled::Batch,
        update: &Update,
        changes: &mut WaitingChanges,
    ) -> Result<u64> {
        let hashes = &update.waiting;
        let arrived = update.objects.iter().map(|(h, loc)| (h, loc.raw_len));
        let packed = update.runs.iter().flat_map(|run| match run {
            RunUpdate::Pack(p) => {
                let s = &p.summary;
                Some(
                    s.objects
                        .iter()
                        .map(|(h, _)| h)
                        .zip(s.object_sizes.iter().copied()),
                )
            }
            RunUpdate::Entries(_) => None,
        });
        let arrived = arrived.chain(packed.flatten());
        let map = self.waiting_map()?;
        let map = map
            .as_ref()
            .ok_or_else(|| Error::internal("waiting entries not read"))?;
        let count = |c: &WaitingChanges, h: &ObjectHash| match c.0.get(h) {
            Some(n) => n.unwrap_or(0),
            None => map.get(h).copied().unwrap_or(0),
        };
        for h in hashes {
            let n = count(changes, h) + 1;
            batch.insert(&keys::waiting(h)[..], &n.to_be_bytes()[..]);
            changes.0.insert(*h, Some(n));
        }
        if map.is_empty() && changes.0.is_empty() {
            return Ok(0);
        }
        let mut logical = 0u64;
        for (h, raw) in arrived {
            let n = count(changes, h);
            if n > 0 {
                logical = logical.saturating_add(raw.saturating_mul(n));
                batch.remove(&keys::waiting(h)[..]);
                changes.0.insert(*h, None);
            }
        }
        Ok(logical)
    }

    /// The batch `stage_waiting` staged into is applied: keep its changes.
    pub(super) fn commit_waiting(&self, changes: WaitingChanges) {
        if changes.0.is_empty() {
            return;
        }
        if let Ok(mut held) = self.waiting.0.lock()
            && let Some(map) = held.as_mut()
        {
            for (h, n) in changes.0 {
                match n {
                    Some(n) => map.insert(h, n),
                    None => map.remove(&h),
                };
            }
        }
    }

    /// Forget the waiting entries read (the index was cleared).
    pub(super) fn forget_waiting(&self) {
        if let Ok(mut held) = self.waiting.0.lock() {
            *held = None;
        }
    }
}
