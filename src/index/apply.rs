//! Applying an update to the index: its objects, runs of entries, packs and high-water marks
//! staged into one sled batch, and the lookup-table entries of its new objects written before
//! that batch is applied (so the tables always cover what sled holds).

use std::collections::{HashMap, HashSet};

use super::filters::{Staging, insert_tag_keys};
use super::{
    EntryRec, FIELDS_UNKNOWN, Index, ObjectLoc, PackRun, PackUpdate, RUN_MAX, RunRec, RunUpdate,
    SegRec, Update, encode, keys, lookup,
};
use crate::error::{Error, Result};
use crate::hash::ObjectHash;
use crate::totals::Totals;

impl Index {
    /// Apply an update atomically: objects not yet indexed, runs of entries with the next
    /// sequence numbers, segment marks. Returns the number of objects that were new. `new_objects`
    /// says the caller knows none of the objects is indexed yet (a batch's claims), which
    /// spares a lookup per object; otherwise objects already indexed are skipped, so the first
    /// frame of a content stays its location. Packed objects go to the lookup tables without a
    /// lookup: a content two processes both packed has two table entries, either one good.
    pub fn apply(&self, update: Update, new_objects_only: bool) -> Result<usize> {
        let mut next = self
            .next_seq
            .lock()
            .map_err(|_| Error::internal("sequence lock poisoned"))?;
        let mut staged = Staged::new(self, Staging::new(self.filters.len()?));
        staged.names(&update);
        let attrs = (&update.attrs, &update.attrs_unknown);
        let mut raw_at: HashMap<(u32, u64), u64> = update
            .objects
            .iter()
            .map(|(_, loc)| ((loc.seg, loc.offset), loc.raw_len))
            .collect();
        raw_at.extend(update.entry_raw.iter().map(|(k, v)| (*k, *v)));
        let removals = self.stage_removals(&mut staged.batch, &update)?;
        let mut waiting = super::sizes::WaitingChanges::default();
        staged.totals.logical_bytes +=
            self.stage_waiting(&mut staged.batch, &update, &mut waiting)?;
        let own_entries = staged.objects(&update.objects, &update.runs, *next, new_objects_only)?;
        let mut seq = *next;
        for run in update.runs {
            seq = match run {
                RunUpdate::Entries(v) => {
                    for e in &v {
                        let raw = raw_at.get(&(e.seg, e.offset)).copied().unwrap_or(0);
                        staged.totals.add_entry(raw);
                    }
                    staged.entry_runs(&v, seq, &own_entries, &attrs)?
                }
                RunUpdate::Pack(p) => {
                    staged.totals.merge(&p.summary.totals);
                    staged.pack_run(&p, seq)?
                }
            };
        }
        let moved = staged.marks(&update.marks)?;
        let Staged {
            mut batch,
            located,
            names,
            new_objects,
            totals: delta,
            filters,
            ..
        } = staged;
        if delta != Totals::default() {
            let mut totals = self.totals()?;
            totals.merge(&delta);
            batch.insert(keys::TOTALS, encode(&totals)?);
        }
        self.write_tables(&names, located, &mut batch)?;
        // The filters the batch names, made durable before it is applied.
        let (at, bytes) = filters.staged();
        self.filters.append(at, bytes)?;
        self.db.apply_batch(batch).map_err(|e| self.err(e))?;
        self.forget_removed_if(removals);
        self.commit_waiting(waiting);
        let mut segs = self
            .segs
            .lock()
            .map_err(|_| Error::internal("segment table lock poisoned"))?;
        for (id, rec) in moved {
            if let Some(r) = segs.recs.get_mut(id as usize) {
                r.indexed_to = r.indexed_to.max(rec.indexed_to);
                r.indexed_max = r.indexed_max.max(rec.indexed_max);
            }
        }
        drop(segs);
        *next = seq;
        Ok(new_objects)
    }

    /// Write the lookup-table entries of an update's new objects (before its batch, so the
    /// tables always cover what sled holds), and count them in `batch`. They are the only
    /// index of packed objects: if they cannot be written, drop them all (the next open
    /// rebuilds).
    fn write_tables(
        &self,
        names: &[String],
        located: Vec<lookup::RawEntry>,
        batch: &mut sled::Batch,
    ) -> Result<()> {
        if located.is_empty() {
            return Ok(());
        }
        let added = located.len() as u64;
        // Tables written here need no check at the next open (`check_tables`).
        let mut wrote = |p: &std::path::Path| self.remember_checked(p);
        let mut known = |p: &std::path::Path| self.was_checked(p);
        match lookup::add(&self.lookup, names, located, &mut wrote, &mut known) {
            Ok(()) => {
                let total = self.table_entries()?.saturating_add(added);
                batch.insert(keys::TABLE_ENTRIES, &total.to_be_bytes()[..]);
            }
            Err(e) => super::tables::drop_all(&self.lookup).map_err(|_| e)?,
        }
        self.reload_tables();
        Ok(())
    }
}

/// Record (path, value) pairs of entries in frames of their own, and those not known.
type Attrs<'a> = (
    &'a HashMap<(u32, u64), Vec<(String, String)>>,
    &'a HashSet<(u32, u64)>,
);

/// An update being turned into one sled batch and the lookup-table entries that go with it.
struct Staged<'a> {
    index: &'a Index,
    batch: sled::Batch,
    /// Table entries of the new objects, written before the batch is applied; their segments
    /// index `names`.
    located: Vec<lookup::RawEntry>,
    /// The names of the segments `located` holds objects of.
    names: Vec<String>,
    /// Where each segment id's name is in `names`, looked up once per update.
    name_at: HashMap<u32, u32>,
    new_objects: usize,
    /// What the update adds to the store's totals.
    totals: Totals,
    /// Bloom filters for the filter file.
    filters: Staging,
}

impl<'a> Staged<'a> {
    fn new(index: &'a Index, filters: Staging) -> Self {
        Staged {
            filters,
            index,
            batch: sled::Batch::default(),
            located: Vec::new(),
            names: Vec::new(),
            name_at: HashMap::new(),
            new_objects: 0,
            totals: Totals::default(),
        }
    }

    /// Where segment `seg`'s name is in `names`.
    fn name_of(&mut self, seg: u32) -> Result<u32> {
        if let Some(i) = self.name_at.get(&seg) {
            return Ok(*i);
        }
        let i = self.names.len() as u32;
        self.names.push(self.index.segment(seg)?.name);
        self.name_at.insert(seg, i);
        Ok(i)
    }

    /// Stage the objects in frames of their own; `first` is the sequence number the update's
    /// first entry gets. Returns the sequence numbers of the entries their own frames log
    /// (kept in the object's record rather than as `r` keys).
    fn objects(
        &mut self,
        objects: &[(ObjectHash, ObjectLoc)],
        runs: &[RunUpdate],
        first: u64,
        new_objects_only: bool,
    ) -> Result<HashSet<u64>> {
        let mut seq_at: HashMap<(u32, u64), u64> = HashMap::new();
        let mut seq = first;
        for run in runs {
            match run {
                RunUpdate::Entries(v) => {
                    for e in v {
                        seq_at.insert((e.seg, e.offset), seq);
                        seq += 1;
                    }
                }
                RunUpdate::Pack(p) => seq += p.summary.entries.len() as u64,
            }
        }
        let mut seen = HashSet::new();
        let mut own_entries = HashSet::new();
        for (hash, loc) in objects {
            if !seen.insert(*hash) || (!new_objects_only && self.index.contains(hash)?) {
                continue;
            }
            let mut loc = loc.clone();
            loc.first_entry = seq_at.get(&(loc.seg, loc.offset)).copied();
            own_entries.extend(loc.first_entry);
            let segment = self.name_of(loc.seg)?;
            self.located.push(lookup::RawEntry {
                prefix: lookup::prefix_of(hash),
                segment,
                offset: loc.offset,
                slot: 0,
            });
            self.batch.insert(&keys::object(hash)[..], encode(&loc)?);
            self.new_objects += 1;
            self.totals.add_object(loc.kind, loc.raw_len);
            self.totals.stored_bytes += loc.stored_len;
        }
        Ok(own_entries)
    }

    /// Stage entries of frames of their own as runs from `seq`; returns the next number.
    fn entry_runs(
        &mut self,
        v: &[EntryRec],
        mut seq: u64,
        own: &HashSet<u64>,
        (attrs, unknown): &Attrs<'_>,
    ) -> Result<u64> {
        for chunk in v.chunks(RUN_MAX) {
            let mut tags: Vec<&(String, String)> = chunk.iter().flat_map(|e| &e.tags).collect();
            tags.extend(
                chunk
                    .iter()
                    .filter_map(|e| attrs.get(&(e.seg, e.offset)))
                    .flatten(),
            );
            tags.sort();
            tags.dedup();
            insert_tag_keys(
                &mut self.batch,
                &mut self.filters,
                &tags,
                (seq, chunk.len()),
                &[],
            );
            if chunk.iter().any(|e| unknown.contains(&(e.seg, e.offset))) {
                self.batch
                    .insert(keys::tag(FIELDS_UNKNOWN, "", seq), &[][..]);
            }
            self.batch.insert(
                &keys::entry(seq)[..],
                encode(&RunRec::Entries(chunk.to_vec()))?,
            );
            for e in chunk {
                if !own.contains(&seq) {
                    self.batch.insert(keys::object_entry(&e.hash, seq), &[][..]);
                }
                seq += 1;
            }
        }
        Ok(seq)
    }

    /// Stage a pack: its objects (lookup tables only), its `p` key, and its entries as one
    /// run from `seq`; returns the next number.
    fn pack_run(&mut self, p: &PackUpdate, mut seq: u64) -> Result<u64> {
        let segment = self.name_of(p.seg)?;
        for (hash, slot) in &p.summary.objects {
            self.located.push(lookup::RawEntry {
                prefix: lookup::prefix_of(hash),
                segment,
                offset: p.offset,
                slot: *slot,
            });
            self.new_objects += 1;
        }
        let count = p.summary.entries.len() as u64;
        let first_of_pack = if count == 0 { u64::MAX } else { seq };
        self.batch.insert(
            &keys::pack(p.seg, p.offset)[..],
            &first_of_pack.to_be_bytes()[..],
        );
        if count == 0 {
            return Ok(seq);
        }
        let tags: Vec<&(String, String)> = p.summary.tags.iter().collect();
        insert_tag_keys(
            &mut self.batch,
            &mut self.filters,
            &tags,
            (seq, p.summary.entries.len()),
            &p.summary.many,
        );
        if p.summary.attrs_unknown {
            self.batch
                .insert(keys::tag(FIELDS_UNKNOWN, "", seq), &[][..]);
        }
        let run = RunRec::Pack(PackRun {
            seg: p.seg,
            offset: p.offset,
            count,
            time_min: p.summary.time_min,
            time_max: p.summary.time_max,
        });
        self.batch.insert(&keys::entry(seq)[..], encode(&run)?);
        for h in &p.summary.entries {
            if let Some(h) = h {
                self.batch.insert(keys::object_entry(h, seq), &[][..]);
            }
            seq += 1;
        }
        Ok(seq)
    }

    /// Stage the names the update's entries and records bring: tag keys and record field
    /// paths. A name already known is written again, harmlessly.
    fn names(&mut self, update: &Update) {
        let mut tag_keys: HashSet<&str> = HashSet::new();
        for run in &update.runs {
            match run {
                RunUpdate::Entries(v) => tag_keys.extend(
                    v.iter()
                        .flat_map(|e| e.tags.iter().map(|(k, _)| k.as_str())),
                ),
                RunUpdate::Pack(p) => {
                    tag_keys.extend(p.summary.tags.iter().map(|(k, _)| k.as_str()))
                }
            }
        }
        for k in tag_keys {
            self.batch.insert(keys::name(keys::NAME_TAG, k), &[][..]);
        }
        for f in &update.record_fields {
            self.batch.insert(keys::name(keys::NAME_FIELD, f), &[][..]);
        }
    }

    /// Stage the segments' new high-water marks. They are returned rather than set: the
    /// segment table in memory moves only once what they cover is in the tables and sled (a
    /// `verify` running meanwhile believes them).
    fn marks(&mut self, marks: &[(u32, u64, u64)]) -> Result<Vec<(u32, SegRec)>> {
        let segs = self
            .index
            .segs
            .lock()
            .map_err(|_| Error::internal("segment table lock poisoned"))?;
        let mut moved: Vec<(u32, SegRec)> = Vec::new();
        for (id, to, max) in marks {
            let current = match moved.iter().rposition(|(m, _)| m == id) {
                Some(i) => moved.get(i).map(|(_, r)| r.clone()),
                None => segs.recs.get(*id as usize).cloned(),
            };
            if let Some(mut rec) = current {
                rec.indexed_to = rec.indexed_to.max(*to);
                rec.indexed_max = rec.indexed_max.max(*max).max(rec.indexed_to);
                self.batch.insert(&keys::segment(*id)[..], encode(&rec)?);
                moved.push((*id, rec));
            }
        }
        Ok(moved)
    }
}
