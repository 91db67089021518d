//! The entries: every entry newest first (`entries`), and the entries that logged one object
//! (`entries_of`). The index keeps entries in runs: listed in sled, or read out of the pack
//! frame that holds them.

use super::Archive;
use crate::error::Result;
use crate::hash::ObjectHash;
use crate::index::{EntryRec, RunRec};
use crate::info::EntryInfo;
use crate::locator::Source;

impl Archive {
    /// The live entries of one run (those no removal names), oldest first.
    pub(super) fn run_entries(&self, first: u64, run: RunRec) -> Result<Vec<EntryInfo>> {
        let mut v = self.run_entries_all(first, run)?;
        self.drop_removed(&mut v)?;
        Ok(v)
    }

    /// The entries of one run, removed ones too, oldest first.
    pub(super) fn run_entries_all(&self, first: u64, run: RunRec) -> Result<Vec<EntryInfo>> {
        Ok(match run {
            RunRec::Entries(v) => v
                .into_iter()
                .enumerate()
                .map(|(i, e)| entry_info(first + i as u64, e))
                .collect(),
            RunRec::Pack(p) => {
                let seg = self.index()?.segment(p.seg)?;
                let pack = self.locator.pack(&seg.name, p.offset)?;
                pack.entries()
                    .into_iter()
                    .enumerate()
                    .map(|(i, e)| EntryInfo {
                        seq: first + i as u64,
                        time_ns: e.time_ns,
                        hash: e.hash,
                        tags: pack.tags(e.tagset).to_vec(),
                    })
                    .collect()
            }
        })
    }

    /// The entries that logged an object, oldest first.
    pub fn entries_of(&self, hash: &ObjectHash) -> Result<Vec<EntryInfo>> {
        let index = self.index()?;
        let mut seqs = index.entry_seqs_of(hash)?;
        // The entry of a packed object's own item.
        if index.get(hash)?.is_none()
            && let Ok(Some(Source::Packed {
                pack,
                slot,
                segment,
            })) = self.locator.find(&index.candidates(hash), hash)
        {
            let (_, offset) = pack.location();
            if let Some(seg) = index.known_segment(&segment)?
                && let Some(Some(first)) = index.pack_seq(seg, offset)?
                && let Some(i) = pack.entries().iter().position(|e| e.slot == slot)
            {
                seqs.push(first + i as u64);
            }
        }
        seqs.sort_unstable();
        seqs.dedup();
        let mut out = Vec::with_capacity(seqs.len());
        for seq in seqs {
            if let Some((first, run)) = index.run_containing(seq)? {
                let found = self
                    .run_entries(first, run)?
                    .into_iter()
                    .find(|e| e.seq == seq);
                out.extend(found);
            }
        }
        Ok(out)
    }

    /// Runs newest first, each expanded newest first.
    pub(super) fn expand<'a>(
        &'a self,
        runs: impl Iterator<Item = Result<(u64, RunRec)>> + 'a,
    ) -> impl Iterator<Item = Result<EntryInfo>> + 'a {
        runs.flat_map(move |r| {
            let items: Vec<Result<EntryInfo>> =
                match r.and_then(|(first, run)| self.run_entries(first, run)) {
                    Ok(v) => v.into_iter().rev().map(Ok).collect(),
                    Err(e) => vec![Err(e)],
                };
            items
        })
    }

    /// Every entry, newest first.
    pub fn entries(&self) -> Box<dyn Iterator<Item = Result<EntryInfo>> + '_> {
        match self.index() {
            Ok(index) => Box::new(self.expand(index.runs_newest_first())),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }
}

fn entry_info(seq: u64, e: EntryRec) -> EntryInfo {
    EntryInfo {
        seq,
        time_ns: e.time_ns,
        hash: e.hash,
        tags: e.tags,
    }
}
