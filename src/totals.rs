//! Counts the index keeps as it catches up, so that `stats` reads them instead of walking every
//! object and entry of the store (60 s at ten million records).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Counts and sizes of what a part of a store (a pack, a commit, the whole index) holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Entries.
    pub entries: u64,
    /// Sum over entries of their object's decoded size.
    pub logical_bytes: u64,
    /// Objects stored. Content is stored once, except where writers without the index (two at
    /// once, or `archive log`) packed it again: then each copy counts, as it takes space.
    pub objects: u64,
    /// Sum of the stored objects' decoded sizes.
    pub raw_bytes: u64,
    /// Bytes of payload on disk: frames of their own and whole packs.
    pub stored_bytes: u64,
    /// Objects by kind code.
    pub by_kind: BTreeMap<u8, u64>,
}

impl Totals {
    /// Count an object of `kind` with `raw` decoded bytes.
    pub fn add_object(&mut self, kind: u8, raw: u64) {
        self.objects += 1;
        self.raw_bytes += raw;
        *self.by_kind.entry(kind).or_default() += 1;
    }

    /// Count an entry of an object of `raw` decoded bytes.
    pub fn add_entry(&mut self, raw: u64) {
        self.entries += 1;
        self.logical_bytes += raw;
    }

    /// Add another part's counts.
    pub fn merge(&mut self, other: &Totals) {
        self.entries += other.entries;
        self.logical_bytes += other.logical_bytes;
        self.objects += other.objects;
        self.raw_bytes += other.raw_bytes;
        self.stored_bytes += other.stored_bytes;
        for (k, n) in &other.by_kind {
            *self.by_kind.entry(*k).or_default() += n;
        }
    }
}
