//! Batches a logger hands to the catch-up of its own process. A writer opened for logging only
//! (`ArchiveBuilder::open_logger`) builds at commit what the index would learn of its frames,
//! as any writer does; a logger that also catches the index up (`archive log`) passes it on
//! (`Writer::hand_over`, `ArchiveBuilder::open_with_logged`), and the catch-up applies it
//! instead of reading the frames back: decoding each pack again, hashing its objects, scanning
//! its records and tag sets cost ~40 % of `archive log`'s CPU.
//!
//! A batch is taken only where it is exactly the next thing to index: the segment's frames from
//! its high-water mark on are, offset for offset, the batch's frames. Anything else (a batch
//! already indexed, another writer's frames between, one whose frames went into two segments
//! or that logs content stored elsewhere) is left to the catch-up's reading, as before.

use super::Archive;
use crate::error::Result;
use crate::index::{RunUpdate, Update};
use crate::segment::scan::Frame;

/// What the index learns of one committed batch of a logger, for its own catch-up.
#[derive(Debug)]
pub struct LoggedBatch {
    /// The segment its frames went into.
    segment: String,
    /// Its frames' offsets, in order.
    frames: Vec<u64>,
    /// The update, its segment ids not yet the index's, and its packs' summaries without
    /// the tags and record values the catch-up files from `packs`.
    update: Update,
    /// The records and tag sets of each pack, in order.
    packs: Vec<PackRecords>,
}

/// The records a logger put into a pack (their canonical bytes), and its tag sets: what the
/// catch-up files the pack under, as it would find them reading the pack.
#[derive(Debug, Default)]
pub(super) struct PackRecords {
    bytes: Vec<u8>,
    /// Where each record ends in `bytes`, and whether it is an entry's.
    ends: Vec<(usize, bool)>,
    tagsets: Vec<Vec<(String, String)>>,
}

impl PackRecords {
    /// Add a record the pack stores.
    pub(super) fn push(&mut self, canonical: &[u8], entry: bool) {
        self.bytes.extend_from_slice(canonical);
        self.ends.push((self.bytes.len(), entry));
    }

    /// The pack's tag sets, once it is finished.
    pub(super) fn set_tagsets(&mut self, tagsets: Vec<Vec<(String, String)>>) {
        self.tagsets = tagsets;
    }

    fn records(&self) -> impl Iterator<Item = (&[u8], bool)> {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|(e, _)| *e));
        starts
            .zip(&self.ends)
            .map(|(s, (e, entry))| (self.bytes.get(s..*e).unwrap_or_default(), *entry))
    }
}

impl LoggedBatch {
    /// The batch of `update` whose frames all went into `segment`, if it holds only packs of
    /// new objects (the update of anything else is left to the catch-up's reading), `packs`
    /// their records and tag sets.
    pub(super) fn of(
        segment: &str,
        update: Update,
        packs: Vec<(u64, PackRecords)>,
    ) -> Option<LoggedBatch> {
        let plain = update.objects.is_empty()
            && update.attrs.is_empty()
            && update.attrs_unknown.is_empty()
            && update.entry_raw.is_empty()
            && update.waiting.is_empty()
            && update.removals.is_empty()
            && update.superseded.is_empty()
            && update.compactions.is_empty();
        if !plain {
            return None;
        }
        let mut frames = Vec::with_capacity(update.runs.len());
        for run in &update.runs {
            match run {
                RunUpdate::Pack(p) if p.summary.entries.iter().all(Option::is_none) => {
                    frames.push(p.offset);
                }
                _ => return None,
            }
        }
        if !packs.iter().map(|(o, _)| *o).eq(frames.iter().copied()) {
            return None;
        }
        Some(LoggedBatch {
            segment: segment.to_owned(),
            frames,
            update,
            packs: packs.into_iter().map(|(_, r)| r).collect(),
        })
    }
}

impl Archive {
    /// Apply the logged batches that are the next frames of segment `name` (index id `id`),
    /// whose frames from its high-water mark on are `found`; returns how many of `found` they
    /// covered. Each batch taken is forgotten, and so is every batch of `name` that is not
    /// the next (already indexed, or never to be).
    pub(super) fn apply_logged(&self, id: u32, name: &str, found: &[Frame]) -> Result<usize> {
        let mut done = 0;
        loop {
            let next = found.get(done).map(|f| f.offset);
            let batch = {
                let Ok(mut logged) = self.logged.lock() else {
                    return Ok(done);
                };
                // Batches of this segment that start before the next frame are past.
                logged.retain(|b| b.segment != name || b.frames.first() >= next.as_ref());
                let at = logged
                    .iter()
                    .position(|b| b.segment == name && b.frames.first() == next.as_ref());
                match at {
                    Some(i) => logged.swap_remove(i),
                    None => return Ok(done),
                }
            };
            let ours = found
                .get(done..done + batch.frames.len())
                .filter(|f| f.iter().map(|f| f.offset).eq(batch.frames.iter().copied()));
            let Some(frames) = ours else {
                return Ok(done);
            };
            let end = frames.last().map_or(0, |f| f.offset + f.header.frame_len());
            let mut update = batch.update;
            let fields = &mut update.record_fields;
            for (run, records) in update.runs.iter_mut().zip(&batch.packs) {
                if let RunUpdate::Pack(p) = run {
                    p.seg = id;
                    let s = &mut p.summary;
                    let (mut tags, many, unknown) = super::recover::logged_attrs(
                        records.records(),
                        &records.tagsets,
                        s.entries.len(),
                        fields,
                    );
                    tags.sort();
                    tags.dedup();
                    (s.tags, s.many, s.attrs_unknown) = (tags, many, unknown);
                }
            }
            update.marks = vec![(id, end, end)];
            self.index()?.apply(update, false)?;
            done += frames.len();
            self.logged_taken
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// How many batches a logger handed over this archive's catch-up applied as they were
    /// (`ArchiveBuilder::open_with_logged`), rather than reading their frames back.
    pub fn logged_taken(&self) -> u64 {
        self.logged_taken.load(std::sync::atomic::Ordering::Relaxed)
    }
}
