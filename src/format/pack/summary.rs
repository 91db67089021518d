//! What the index takes from a pack: its objects, entries, times and tags (`PackSummary`).

use super::{Pack, PackSummary};
use crate::hash::ObjectHash;

impl Pack {
    /// The summary the index takes from this pack (as the writer made it).
    pub fn summary(&self) -> PackSummary {
        let mut s = self.summary_untagged();
        let mut tags: Vec<(String, String)> = self.tagsets().iter().flatten().cloned().collect();
        tags.sort();
        tags.dedup();
        s.tags = tags;
        s
    }

    /// `summary` without its `tags`, for a reader that files the tags itself.
    pub fn summary_untagged(&self) -> PackSummary {
        let mut s = PackSummary {
            time_min: i64::MAX,
            time_max: i64::MIN,
            ..PackSummary::default()
        };
        for (slot, o) in self.objects() {
            let Some(hash) = self.object_hash(slot) else {
                continue;
            };
            s.objects.push((hash, slot));
            s.object_sizes.push(o.data.len() as u64);
            s.totals.add_object(o.kind as u8, o.data.len() as u64);
        }
        s.totals.stored_bytes = self.stored_len;
        for &(i, dt, _) in self.body.items.entries() {
            let t = self.body.time0.wrapping_add(dt);
            s.time_min = s.time_min.min(t);
            s.time_max = s.time_max.max(t);
            let hash = self.body.items.hash(i as usize);
            s.entries.push(hash.and_then(ObjectHash::from_slice));
            // Content stored elsewhere counts 0 bytes here: the reader adds its size.
            let own = match hash {
                None => self.object(i + 1).map_or(0, |o| o.data.len() as u64),
                Some(_) => 0,
            };
            s.totals.add_entry(own);
        }
        if s.entries.is_empty() {
            (s.time_min, s.time_max) = (0, 0);
        }
        s
    }
}
