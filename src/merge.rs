//! Folding one store into another (`archive merge`): objects deduplicated by hash, entries
//! copied with their original times and tags, in sequence order, committed in batches.
//!
//! A merge is idempotent: an entry is skipped when the target already has an entry of the same
//! object with the same time and tags, so re-running a merge that stopped half way (or one that
//! finished) adds only what is missing.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::archive::{Archive, EntryInfo, Writer};
use crate::error::{Error, Result};
use crate::hash::ObjectHash;
use crate::object::Object;

/// Entries per batch (one fsync each) in `merge`.
pub const BATCH_ENTRIES: usize = 10_000;

/// What a merge did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MergeReport {
    /// Entries of the other store.
    pub entries_seen: u64,
    /// Entries copied into the target.
    pub entries_merged: u64,
    /// Entries skipped because the target already had them (same object, time and tags).
    pub entries_skipped: u64,
    /// Objects stored in the target that it did not hold (record parts included).
    pub new_objects: u64,
    /// Decoded bytes of those objects.
    pub raw_bytes: u64,
    /// Bytes they take in the target's segments.
    pub stored_bytes: u64,
    /// Batches committed.
    pub batches: u64,
    /// Entries the other store's removals name that the target had not removed: recorded
    /// in the target too, so that a removed entry does not come back from another copy.
    pub removals_carried: u64,
}

/// Record in `into` the removals of `from` it lacks, in one removal frame.
fn carry_removals(m: &mut Merger<'_>) -> Result<u64> {
    let ids: Vec<crate::format::removal::EntryId> = m
        .from
        .removed_ids()?
        .into_iter()
        .filter(|id| !m.removed.contains(&id.hash, id.time_ns, &id.tags))
        .collect();
    if ids.is_empty() {
        return Ok(0);
    }
    let what = format!("merged from {}", m.from.path().display());
    let body = crate::format::removal::RemovalBody::new(crate::archive::now_ns(), &what, &ids, 0);
    m.writer.log_removal(body)?;
    // A commit that fails resets the batch: nothing of it is indexed.
    m.writer.commit()?;
    m.report.batches += 1;
    Ok(ids.len() as u64)
}

/// Fold every entry of `from` into `into`, with `BATCH_ENTRIES` entries per commit.
///
/// Entries keep their time and tags and are copied oldest first, so the target's sequence
/// order follows the source's. Each object is read from `from` (and so re-hashed) and stored
/// in `into` only if `into` does not hold it; the objects a record refers to (its tensors, a
/// categorical's codes) are copied first, as parts without entries. An entry is skipped when
/// `into` already has one of the same object with the same time and tags, which makes a
/// merge safe to re-run (entries of `from` that are alike in all three become one).
///
/// `progress(done, total)` counts entries of `from`.
///
/// # Errors
///
/// `Error::InvalidInput` when `into` and `from` are the same store. When reading `from` fails
/// (a corrupt or missing object), the error names the other store and the object; when it, or
/// a write to `into`, fails, the current batch is discarded and the batches committed before
/// it stay (run the merge again to finish it).
pub fn merge(into: &Archive, from: &Archive, progress: &dyn Fn(u64, u64)) -> Result<MergeReport> {
    merge_in_batches(into, from, BATCH_ENTRIES, progress)
}

/// `merge` with `batch` entries per commit (at least 1).
pub fn merge_in_batches(
    into: &Archive,
    from: &Archive,
    batch: usize,
    progress: &dyn Fn(u64, u64),
) -> Result<MergeReport> {
    if same_store(into.path(), from.path()) {
        return Err(Error::invalid(
            from.path().display().to_string(),
            "cannot merge a store into itself",
        ));
    }
    // `entries` lists newest first; copying oldest first keeps the source's order.
    let mut entries = from.entries().collect::<Result<Vec<EntryInfo>>>()?;
    entries.reverse();
    let total = entries.len() as u64;
    let mut m = Merger {
        into,
        from,
        writer: into.writer(),
        copied: HashSet::new(),
        entries_of: HashMap::new(),
        removed: into.removed()?,
        report: MergeReport {
            entries_seen: total,
            ..MergeReport::default()
        },
    };
    let batch = batch.max(1);
    let mut in_batch = 0usize;
    progress(0, total);
    for (done, entry) in (1u64..).zip(&entries) {
        if let Err(e) = m.entry(entry) {
            // What this batch appended goes; earlier batches are committed and stay.
            let _ = m.writer.discard();
            return Err(e);
        }
        in_batch += 1;
        if in_batch >= batch {
            if let Err(e) = m.writer.commit() {
                let _ = m.writer.discard();
                return Err(e);
            }
            m.report.batches += 1;
            in_batch = 0;
        }
        progress(done, total);
    }
    if m.writer.pending() > 0 {
        if let Err(e) = m.writer.commit() {
            let _ = m.writer.discard();
            return Err(e);
        }
        m.report.batches += 1;
    }
    m.report.removals_carried = carry_removals(&mut m)?;
    let totals = m.writer.totals();
    m.report.new_objects = totals.new_objects;
    m.report.raw_bytes = totals.raw_bytes;
    m.report.stored_bytes = totals.stored_bytes;
    Ok(m.report)
}

/// True if both paths name one directory (compared canonically, so `./a` and `a/` match).
fn same_store(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// What makes two entries of one object the same: time and tags.
type EntryKey = (i64, Vec<(String, String)>);

/// One merge in progress.
struct Merger<'a> {
    into: &'a Archive,
    from: &'a Archive,
    writer: Writer<'a>,
    /// Objects this merge stored: not in `into`'s index until their batch commits.
    copied: HashSet<ObjectHash>,
    /// The entries `into` has of each object met so far, those this merge logged included
    /// (they are not in the index before their batch commits). Read once per object: an object
    /// logged a million times costs one lookup, not a million.
    entries_of: HashMap<ObjectHash, HashSet<EntryKey>>,
    /// What `into` removed.
    removed: std::sync::Arc<crate::index::Removed>,
    report: MergeReport,
}

impl Merger<'_> {
    /// Copy one entry of `from`, with its object and that object's parts, unless `into` has it.
    fn entry(&mut self, e: &EntryInfo) -> Result<()> {
        let key = (e.time_ns, e.tags.clone());
        // An entry the target removed stays removed: it is not copied back.
        if self.removed.contains(&e.hash, e.time_ns, &e.tags)
            || self.target_entries(&e.hash)?.contains(&key)
        {
            self.report.entries_skipped += 1;
            return Ok(());
        }
        let tags: Vec<(&str, &str)> = e
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if self.has_object(&e.hash)? {
            // Content `into` holds already: the entry alone, without reading the object.
            self.writer.put_entry(&e.hash, &tags, e.time_ns)?;
        } else {
            let object = self.read(&e.hash)?;
            self.copy_parts(refs_of(&object))?;
            self.put(&e.hash, &object, Some((&tags, e.time_ns)))?;
        }
        self.target_entries(&e.hash)?.insert(key);
        self.report.entries_merged += 1;
        Ok(())
    }

    /// The entries `into` has of `hash`, read from its index the first time.
    fn target_entries(&mut self, hash: &ObjectHash) -> Result<&mut HashSet<EntryKey>> {
        let known = match self.entries_of.entry(*hash) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                // An object `into` lacks has no entries there: no lookup needed.
                let have = if self.into.contains(hash)? {
                    self.into
                        .entries_of(hash)?
                        .into_iter()
                        .map(|e| (e.time_ns, e.tags))
                        .collect()
                } else {
                    HashSet::new()
                };
                v.insert(have)
            }
        };
        Ok(known)
    }

    fn has_object(&self, hash: &ObjectHash) -> Result<bool> {
        Ok(self.copied.contains(hash) || self.into.contains(hash)?)
    }

    /// Copy the objects `refs` name, and theirs, parts first, skipping those `into` holds.
    /// Iterative, so a deep chain of records cannot overflow the stack; content addressing
    /// rules out cycles.
    fn copy_parts(&mut self, refs: Vec<ObjectHash>) -> Result<()> {
        let mut stack: Vec<(ObjectHash, Option<Object>)> =
            refs.into_iter().map(|h| (h, None)).collect();
        while let Some((hash, object)) = stack.pop() {
            if self.has_object(&hash)? {
                continue;
            }
            match object {
                // Its parts are stored by now: store it.
                Some(object) => self.put(&hash, &object, None)?,
                None => {
                    let object = self.read(&hash)?;
                    let parts = refs_of(&object);
                    stack.push((hash, Some(object)));
                    stack.extend(parts.into_iter().map(|h| (h, None)));
                }
            }
        }
        Ok(())
    }

    /// Read an object of `from`; the error names the other store and the object.
    fn read(&self, hash: &ObjectHash) -> Result<Object> {
        let store = self.from.path().display();
        self.from.get(hash).map_err(|e| match e {
            Error::Corrupt {
                path,
                offset,
                reason,
            } => Error::Corrupt {
                path,
                offset,
                reason: format!("object {hash} of the store being merged ({store}): {reason}"),
            },
            Error::NotFound(_) => Error::corrupt(
                self.from.path(),
                0,
                format!("object {hash} is listed but cannot be found in {store}"),
            ),
            other => other,
        })
    }

    fn put(
        &mut self,
        hash: &ObjectHash,
        object: &Object,
        entry: Option<(&[(&str, &str)], i64)>,
    ) -> Result<()> {
        let stored = self.writer.put_object(object, entry)?;
        if stored != *hash {
            // A decoded object re-encodes to its own address, or refs to it would dangle.
            return Err(Error::corrupt(
                self.from.path(),
                0,
                format!("object {hash} re-encodes as {stored}; it was not merged"),
            ));
        }
        self.copied.insert(stored);
        Ok(())
    }
}

/// The objects an object refers to.
fn refs_of(object: &Object) -> Vec<ObjectHash> {
    match object {
        Object::Record(r) => r.refs(),
        Object::Categorical(c) => vec![c.codes],
        Object::Tensor(_) | Object::Text(_) | Object::Bytes { .. } => Vec::new(),
    }
}
