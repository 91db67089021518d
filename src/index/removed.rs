//! What `archive rm` and `archive gc` recorded, as the index keeps it: every removal frame's
//! entries (`x` keys, one per frame), the objects compactions dropped (`g` keys) and the
//! segments they replaced (`u` keys). Removed entries are matched by what they are (object,
//! time, tags) when entries are read, so a removal holds wherever its entries are indexed: in
//! any segment, in any order, before or after the entries themselves.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use super::{Index, Update, keys};
use crate::error::Result;
use crate::format::removal::{EntryId, RemovalBody};
use crate::hash::ObjectHash;

/// The removed entries and collected objects of a store, in memory: a removed entry is kept
/// as its object's hash prefix and time, with a 128-bit fingerprint of its tags, so that
/// reading the removals of a hundred thousand entries allocates no strings.
#[derive(Debug, Default)]
pub struct Removed {
    /// Fingerprints of the removed entries' tags, by (hash prefix, time).
    by_entry: HashMap<(u64, i64), Vec<u128>, BuildHasherDefault<crate::hash::PrefixHasher>>,
    /// Entries named by removals (an entry named twice counts twice).
    entries: u64,
    /// Stored bytes the removals freed, as each said when it was made.
    freed: u64,
    /// Removed entries compactions left out of their copies, and the stored bytes they
    /// dropped.
    dropped: u64,
    reclaimed: u64,
}

/// Bytes per removed entry in a `y` value: hash prefix u64, time i64, tags fingerprint u128.
const PRINT_LEN: usize = 32;

/// The first 8 bytes of a hash, as a number.
fn prefix(hash: &ObjectHash) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(hash.as_bytes().get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(b)
}

/// The little-endian u64 at `at` of `b`.
fn word(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)
        .and_then(|w| w.try_into().ok())
        .map(u64::from_le_bytes)
}

/// A 128-bit fingerprint of an entry's tags (their order counts).
fn tags_print(tags: &[(String, String)]) -> u128 {
    let mut h = blake3::Hasher::new();
    for (k, v) in tags {
        h.update(&(k.len() as u64).to_le_bytes());
        h.update(k.as_bytes());
        h.update(&(v.len() as u64).to_le_bytes());
        h.update(v.as_bytes());
    }
    let mut b = [0u8; 16];
    b.copy_from_slice(h.finalize().as_bytes().get(..16).unwrap_or(&[0; 16]));
    u128::from_le_bytes(b)
}

/// The `y` value of a removal: entries, freed bytes, then a print per entry.
fn prints_of(body: &RemovalBody) -> Vec<u8> {
    let ids: Vec<EntryId> = body.entries().collect();
    let mut out = Vec::with_capacity(16 + ids.len() * PRINT_LEN);
    out.extend_from_slice(&(ids.len() as u64).to_le_bytes());
    out.extend_from_slice(&body.freed.to_le_bytes());
    for e in &ids {
        out.extend_from_slice(&prefix(&e.hash).to_le_bytes());
        out.extend_from_slice(&e.time_ns.to_le_bytes());
        out.extend_from_slice(&tags_print(&e.tags).to_le_bytes());
    }
    out
}

impl Removed {
    /// True if nothing was ever removed.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// True if the entry of `hash` at `time_ns` with `tags` was removed.
    pub fn contains(&self, hash: &ObjectHash, time_ns: i64, tags: &[(String, String)]) -> bool {
        self.by_entry
            .get(&(prefix(hash), time_ns))
            .is_some_and(|prints| prints.contains(&tags_print(tags)))
    }

    /// Entries the removals name that are still in the segments (gc leaves them out).
    pub fn entries(&self) -> u64 {
        self.entries.saturating_sub(self.dropped)
    }

    /// Stored bytes the removals said they freed, less what gc got back since.
    pub fn freed(&self) -> u64 {
        self.freed.saturating_sub(self.reclaimed)
    }

    /// Add a `y` value; false if it does not parse.
    fn add(&mut self, value: &[u8]) -> bool {
        let (Some(head), Some(rest)) = (value.get(..16), value.get(16..)) else {
            return false;
        };
        let (Some(n), Some(freed)) = (word(head, 0), word(head, 8)) else {
            return false;
        };
        if rest.len() as u64 != n.saturating_mul(PRINT_LEN as u64) {
            return false;
        }
        for rec in rest.chunks_exact(PRINT_LEN) {
            let (Some(p), Some(t)) = (word(rec, 0), word(rec, 8)) else {
                return false;
            };
            let mut print = [0u8; 16];
            print.copy_from_slice(rec.get(16..32).unwrap_or(&[0; 16]));
            self.by_entry
                .entry((p, t as i64))
                .or_default()
                .push(u128::from_le_bytes(print));
        }
        self.entries += n;
        self.freed = self.freed.saturating_add(freed);
        true
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
        for item in self.db.scan_prefix([keys::REMOVAL_PRINTS]) {
            let (_, v) = item.map_err(|e| self.err(e))?;
            if !r.add(&v) {
                return Err(self.err("bad removal key"));
            }
        }
        for item in self.db.scan_prefix([keys::COMPACTED]) {
            let (_, v) = item.map_err(|e| self.err(e))?;
            let (Some(d), Some(f)) = (word(&v, 0), word(&v, 8)) else {
                return Err(self.err("bad compaction key"));
            };
            r.dropped += d;
            r.reclaimed += f;
        }
        let r = Arc::new(r);
        if let Ok(mut guard) = self.removed.write() {
            *guard = Some(Arc::clone(&r));
        }
        Ok(r)
    }

    /// How many times the index was cleared for a rebuild (0 for one never cleared): a gc
    /// rebuilds it, and work that handed the index over meanwhile starts again.
    pub fn generation(&self) -> Result<u64> {
        let v = self.db.get(keys::GENERATION).map_err(|e| self.err(e))?;
        Ok(v.and_then(|v| v.as_ref().try_into().ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// Where the compaction frames are (segment id, offset): their bodies list the objects
    /// gc dropped, read only when a get misses (a gc may drop millions).
    pub fn compactions(&self) -> Result<Vec<(u32, u64)>> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix([keys::COMPACTED]) {
            let (k, _) = item.map_err(|e| self.err(e))?;
            if let Some((seg, offset)) = keys::unpack(&k) {
                out.push((seg, offset));
            }
        }
        Ok(out)
    }

    /// Every entry the removals name, once each (read from the removals' bodies).
    pub fn removed_ids(&self) -> Result<Vec<EntryId>> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for item in self.db.scan_prefix([keys::REMOVAL]) {
            let (_, v) = item.map_err(|e| self.err(e))?;
            let body = RemovalBody::decode(&v).map_err(|e| self.err(e))?;
            out.extend(body.entries().filter(|e| seen.insert(e.clone())));
        }
        Ok(out)
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
            batch.insert(&keys::removal_prints(*seg, *offset)[..], prints_of(body));
        }
        for name in &update.superseded {
            batch.insert(keys::superseded(name), &[][..]);
        }
        for (seg, offset, dropped, freed) in &update.compactions {
            let mut v = dropped.to_le_bytes().to_vec();
            v.extend_from_slice(&freed.to_le_bytes());
            batch.insert(&keys::compacted(*seg, *offset)[..], v);
        }
        Ok(!update.removals.is_empty() || !update.compactions.is_empty())
    }
}
