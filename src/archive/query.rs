//! Query: the entries a `Query` matches, newest first. Tag equalities at the query's top level
//! read only the runs the index's tag keys name; time bounds skip packs outside them; in a
//! pack, tags are matched once per distinct tag set. Object fields (kind, dtype, rank, size)
//! are looked up only for queries that name them, and records decoded only for queries that
//! name a field some record of the store has (the index keeps those names).

use std::collections::HashMap;

use std::cell::Cell;
use std::rc::Rc;

use rayon::prelude::*;

use super::Archive;
use crate::error::Result;
use crate::format::pack::Pack;
use crate::hash::ObjectHash;
use crate::index::{Names, RunRec};
use crate::info::{EntryInfo, ObjectInfo};
use crate::locator::Source;
use crate::object::record::{Record, Scalar, scan_fields, scan_top_fields};
use crate::object::{Kind, Object};
use crate::query::{Query, RecordFields, Subject};
use std::sync::Arc;

/// Runs of entries with the sequence number of their first, as the index yields them.
pub(super) type Runs<'a> = Box<dyn Iterator<Item = Result<(u64, RunRec)>> + 'a>;

/// The matches of one run, newest first.
pub(super) enum Hits {
    /// Entries listed in the index.
    Listed(Vec<EntryInfo>),
    /// Entries of a pack, by slot.
    Packed {
        /// The pack.
        pack: std::sync::Arc<Pack>,
        /// The matching entries.
        hits: Vec<PackHit>,
    },
}

impl Hits {
    /// How many entries matched.
    pub fn len(&self) -> usize {
        match self {
            Hits::Listed(v) => v.len(),
            Hits::Packed { hits, .. } => hits.len(),
        }
    }
}

/// A matching entry of a pack.
pub(super) struct PackHit {
    /// Its sequence number.
    pub seq: u64,
    /// Its item's slot.
    pub slot: u32,
    /// Nanoseconds since the Unix epoch.
    pub time_ns: i64,
    /// Index of its tag set in the pack.
    pub tagset: u32,
}

impl Archive {
    /// The runs that can hold entries matching `query`, newest first: those with every tag
    /// the query requires (from the tag keys), and whose times overlap the query's bounds.
    fn runs_for<'q>(&'q self, query: &'q Query, names: &Names) -> Result<Runs<'q>> {
        let index = self.index()?;
        let (lo, hi) = query.time_bounds();
        let in_time = move |r: &Result<(u64, RunRec)>| match r {
            Ok((_, RunRec::Pack(p))) => p.time_max >= lo && p.time_min <= hi,
            _ => true,
        };
        // Each requirement is the runs with one of some tags: a tag equality, or an `or` of
        // them on one key. A run can match only if it meets them all.
        // Runs are filed under their records' text fields as under their tags, so a record
        // field narrows them alike (with the runs whose records the index does not know).
        let mut required: Vec<(&str, Vec<&str>)> = query
            .required_tags()
            .into_iter()
            .map(|(k, v)| (k, vec![v]))
            .collect();
        required.extend(query.required_alternatives());

        if required.is_empty() {
            return Ok(Box::new(index.runs_newest_first().filter(in_time)));
        }
        let mut firsts: Option<Vec<u64>> = None;
        for (k, values) in required {
            let field = names.record_fields.contains(k);
            let mut these = index.runs_tagged_any(k, &values, field)?;
            if let Some(prev) = firsts {
                these.retain(|s| prev.binary_search(s).is_ok());
            }
            firsts = Some(these);
        }
        let firsts = firsts.unwrap_or_default();
        Ok(Box::new(
            firsts
                .into_iter()
                .rev()
                .filter_map(move |first| index.run_containing(first).transpose())
                .filter(in_time),
        ))
    }

    /// The entries of one run that match `query`, newest first; with `detail`, what each
    /// object is when its pack (read for the match) holds it.
    fn run_matches(
        &self,
        first: u64,
        run: RunRec,
        query: &Query,
        needs_record: bool,
        detail: bool,
    ) -> Result<Vec<(EntryInfo, Option<ObjectInfo>)>> {
        // Listed hits come from `run_entries`, which leaves removed entries out already;
        // hits read straight from a pack are checked here.
        let removed = self.index()?.removed()?;
        Ok(match self.run_hits(first, run, query, needs_record)? {
            Hits::Listed(v) => v.into_iter().map(|e| (e, None)).collect(),
            Hits::Packed { pack, hits } => {
                let segment = pack.location().0.file_name().map(|n| n.to_string_lossy());
                let segment = segment.unwrap_or_default().into_owned();
                hits.into_iter()
                    .filter_map(|h| {
                        let e = EntryInfo {
                            seq: h.seq,
                            time_ns: h.time_ns,
                            hash: pack.item_hash(h.slot)?,
                            tags: pack.tags_owned(h.tagset),
                        };
                        if removed.contains(&e.hash, e.time_ns, &e.tags) {
                            return None;
                        }
                        let info = detail.then(|| {
                            let slot = h.slot;
                            let (pack, segment) = (Arc::clone(&pack), segment.clone());
                            Source::Packed {
                                pack,
                                slot,
                                segment,
                            }
                            .info()
                            .ok()
                        });
                        Some((e, info.flatten()))
                    })
                    .collect()
            }
        })
    }

    /// The matches of one run, newest first. In a pack, tags are matched once per distinct tag
    /// set when the query looks at nothing else, and hashes are computed only if the query
    /// looks at them: a hit is its slot in the pack.
    pub(super) fn run_hits(
        &self,
        first: u64,
        run: RunRec,
        query: &Query,
        needs_record: bool,
    ) -> Result<Hits> {
        let needs_object = query.needs_object();
        let matches = |e: &Subject<'_>, record: Option<&dyn RecordFields>| {
            let info = needs_object.then(|| self.info(e.hash).ok()).flatten();
            query.matches_fields(e, info.as_ref(), record)
        };
        let RunRec::Pack(p) = run else {
            return self.listed_hits(first, run, needs_record, &matches);
        };
        let names = query.names();
        let seg = self.index()?.segment(p.seg)?;
        let pack = self.locator.pack(&seg.name, p.offset)?;
        let by_tags_only = !query.needs_more_than_tags() && !needs_record;
        let needs_hash = query.needs_hash();
        let mut tagset_matches: HashMap<u32, bool> = HashMap::new();
        let mut last: Option<(u32, bool)> = None;
        // A query that names nothing never looks at tags: they are not even decoded.
        let needs_tags = !names.is_empty();
        let view = match needs_tags {
            true => pack.tag_view(),
            false => Default::default(),
        };
        let mut out = Vec::new();
        for (i, (slot, time_ns, tagset)) in pack.entry_items().enumerate() {
            let tags = view.get(tagset);
            let mut hash = ObjectHash([0; 32]);
            let hit = if by_tags_only {
                // Without tags to tell them apart, every entry gets one answer.
                let key = if needs_tags { tagset } else { 0 };
                match last {
                    // Consecutive entries share a tag set mostly: no lookup.
                    Some((k, hit)) if k == key => hit,
                    _ => {
                        let hit = *tagset_matches.entry(key).or_insert_with(|| {
                            let s = Subject {
                                tags,
                                time_ns,
                                hash: &hash,
                            };
                            matches(&s, None)
                        });
                        last = Some((key, hit));
                        hit
                    }
                }
            } else {
                if needs_hash {
                    hash = pack.item_hash(slot).unwrap_or(hash);
                }
                let s = Subject {
                    tags,
                    time_ns,
                    hash: &hash,
                };
                match needs_record {
                    false => matches(&s, None),
                    true => {
                        self.with_packed_record(&pack, slot, &names, &mut |r| matches(&s, r))?
                    }
                }
            };
            if hit {
                out.push(PackHit {
                    seq: first + i as u64,
                    slot,
                    time_ns,
                    tagset,
                });
            }
        }
        out.reverse();
        Ok(Hits::Packed { pack, hits: out })
    }

    /// `run_hits` of a run of entries listed in the index.
    fn listed_hits(
        &self,
        first: u64,
        run: RunRec,
        needs_record: bool,
        matches: &dyn Fn(&Subject<'_>, Option<&dyn RecordFields>) -> bool,
    ) -> Result<Hits> {
        let mut out = Vec::new();
        for e in self.run_entries(first, run)? {
            let record = match needs_record {
                true => self.record_of(&e.hash)?,
                false => None,
            };
            let tags = crate::query::borrowed(&e.tags);
            let s = Subject {
                tags: &tags,
                time_ns: e.time_ns,
                hash: &e.hash,
            };
            if matches(&s, record.as_ref().map(|r| r as &dyn RecordFields)) {
                out.push(e);
            }
        }
        out.reverse();
        Ok(Hits::Listed(out))
    }

    /// Entries matching `query`, newest first. Tag equalities and time bounds narrow the runs
    /// read through the index; object fields (kind, dtype, rank, size) are looked up only for
    /// queries that name them.
    pub fn query<'q>(&'q self, query: &'q Query) -> impl Iterator<Item = Result<EntryInfo>> + 'q {
        self.matches(query, false, usize::MAX)
            .map(|r| r.map(|(e, _)| e))
    }

    /// `query`, for a caller that takes at most `first` entries (`ls --limit`): runs are read
    /// ahead only as far as the hits so far say that many need.
    pub fn query_first<'q>(
        &'q self,
        query: &'q Query,
        first: usize,
    ) -> impl Iterator<Item = Result<EntryInfo>> + 'q {
        self.matches(query, false, first).map(|r| r.map(|(e, _)| e))
    }

    /// `query`, each entry with what its object is (as `info` says): for listings that show
    /// it. Packed objects are described from the packs the query reads anyway.
    pub fn query_detailed<'q>(
        &'q self,
        query: &'q Query,
    ) -> impl Iterator<Item = Result<(EntryInfo, Option<ObjectInfo>)>> + 'q {
        self.query_detailed_first(query, usize::MAX)
    }

    /// `query_detailed`, for a caller that takes at most `first` entries (see `query_first`).
    pub fn query_detailed_first<'q>(
        &'q self,
        query: &'q Query,
        first: usize,
    ) -> impl Iterator<Item = Result<(EntryInfo, Option<ObjectInfo>)>> + 'q {
        self.matches(query, true, first).map(move |r| {
            r.map(|(e, info)| {
                let info = info.or_else(|| self.info(&e.hash).ok());
                (e, info)
            })
        })
    }

    fn matches<'q>(
        &'q self,
        query: &'q Query,
        detail: bool,
        first: usize,
    ) -> impl Iterator<Item = Result<(EntryInfo, Option<ObjectInfo>)>> + 'q {
        let (runs, needs_record): (Runs<'q>, bool) = match self.plan(query) {
            Ok(p) => p,
            Err(e) => (Box::new(std::iter::once(Err(e))), false),
        };
        // Runs are matched a batch at a time on every core; batches grow from one run, so a
        // query that stops early (`--limit 20`) reads little ahead, and no more than the
        // matches so far say the first `first` need.
        let progress = Rc::new(Cell::new((0usize, 0usize)));
        let counted = Rc::clone(&progress);
        read_ahead(runs, first, progress).flat_map(move |batch| {
            let p = Rc::clone(&counted);
            p.set((p.get().0 + batch.len(), p.get().1));
            self.match_batch(batch, query, needs_record, detail)
                .inspect(move |_| p.set((p.get().0, p.get().1 + 1)))
        })
    }

    /// The matches of a batch of runs, matched on every core, in order.
    fn match_batch(
        &self,
        batch: Vec<Result<(u64, RunRec)>>,
        query: &Query,
        needs_record: bool,
        detail: bool,
    ) -> impl Iterator<Item = Result<(EntryInfo, Option<ObjectInfo>)>> + use<> {
        let per_run: Vec<Vec<Result<_>>> = batch
            .into_par_iter()
            .map(|r| {
                match r.and_then(|(first, run)| {
                    self.run_matches(first, run, query, needs_record, detail)
                }) {
                    Ok(v) => v.into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e)],
                }
            })
            .collect();
        per_run.into_iter().flatten()
    }
}

/// The most runs matched at once.
const MAX_BATCH: usize = 32;

/// `runs` in batches of 1, 2, 4 ... up to `MAX_BATCH`, in order; for a caller that takes the
/// first `first` matches, of which `progress` holds (runs matched, matches taken) so far, no
/// more runs than the matches per run so far say the rest of them needs.
fn read_ahead<T>(
    mut runs: impl Iterator<Item = T>,
    first: usize,
    progress: Rc<Cell<(usize, usize)>>,
) -> impl Iterator<Item = Vec<T>> {
    let mut size = 1;
    std::iter::from_fn(move || {
        let (matched, taken) = progress.get();
        let rest = first.saturating_sub(taken);
        let n = match (taken, rest) {
            (0, _) | (_, 0) => size,
            _ => size.min(rest.saturating_mul(matched).div_ceil(taken)),
        };
        let batch: Vec<T> = runs.by_ref().take(n.max(1)).collect();
        size = (size * 2).min(MAX_BATCH);
        (!batch.is_empty()).then_some(batch)
    })
}

impl Archive {
    /// The runs that can hold matches of `query`, newest first, and whether matching them
    /// reads records.
    pub(super) fn plan<'q>(&'q self, query: &'q Query) -> Result<(Runs<'q>, bool)> {
        let names = self.names()?;
        let needs_record = query
            .names()
            .iter()
            .any(|n| names.record_fields.contains(*n));
        Ok((self.runs_for(query, &names)?, needs_record))
    }

    /// Call `f` with the fields of the record a pack item logs, if it is a record: read in
    /// place when stored in the pack (only the fields the query names), through the store
    /// when stored elsewhere (an entry of content logged before).
    fn with_packed_record(
        &self,
        pack: &Pack,
        slot: u32,
        names: &[&str],
        f: &mut dyn FnMut(Option<&dyn RecordFields>) -> bool,
    ) -> Result<bool> {
        // Its stored bytes: a pack-local reference reads as a reference (no text), as the
        // canonical one would.
        Ok(match pack.stored_object(slot) {
            Some(o) if o.kind == Kind::Record => f(Some(&ScannedFields::scan(o.data, names)?)),
            Some(_) => f(None),
            None => {
                let record = match pack.item_hash(slot) {
                    Some(h) => self.record_of(&h)?,
                    None => None,
                };
                f(record.as_ref().map(|r| r as &dyn RecordFields))
            }
        })
    }

    /// The names this store knows: tag keys of its entries and field paths of its records.
    pub fn names(&self) -> Result<Names> {
        self.index()?.names()
    }

    /// Parse a query against this store: a bare word on the right that is a tag key or record
    /// field here names that field (`label != pred`), as [`Query::parse_with`] describes.
    pub fn parse_query(&self, src: &str) -> Result<Query> {
        let names = self.names()?;
        Query::parse_with(src, &|w| names.contains(w))
    }

    /// The record an entry logs, if its object is a record (categoricals included).
    pub(super) fn record_of(&self, hash: &ObjectHash) -> Result<Option<Record>> {
        if self.info(hash)?.kind != Kind::Record {
            return Ok(None);
        }
        Ok(match self.get(hash)? {
            Object::Record(r) => Some(r),
            Object::Categorical(c) => Some(c.to_record()),
            _ => None,
        })
    }
}

/// The fields a query names, read out of a record's bytes (canonical, or as a pack stores
/// them) without decoding the rest.
struct ScannedFields<'q, 'r> {
    names: &'q [&'q str],
    /// For each name: `None` if the record has no such field, else its text, if it has one
    /// (a string borrowed from the record's bytes).
    found: Vec<Option<Option<std::borrow::Cow<'r, str>>>>,
}

impl<'q, 'r> ScannedFields<'q, 'r> {
    fn scan(bytes: &'r [u8], names: &'q [&'q str]) -> Result<Self> {
        let mut found: Vec<Option<Option<std::borrow::Cow<'r, str>>>> = vec![None; names.len()];
        let mut keep = |i: usize, value: Option<Scalar<'r>>| {
            if let Some(slot) = found.get_mut(i)
                && slot.is_none()
            {
                *slot = Some(value.and_then(|v| v.query_text()));
            }
        };
        // Names of top-level fields (the usual query) are looked for alone.
        let scanned = match names.iter().any(|n| n.contains('.')) {
            false => scan_top_fields(bytes, names, &mut keep),
            true => scan_fields(bytes, &mut |path, value| {
                if let Some(i) = names.iter().position(|n| *n == path) {
                    keep(i, value);
                }
            }),
        };
        scanned.map_err(|why| crate::error::Error::invalid("record", why))?;
        Ok(ScannedFields { names, found })
    }
}

impl RecordFields for ScannedFields<'_, '_> {
    fn field(&self, path: &str) -> Option<Option<std::borrow::Cow<'_, str>>> {
        let i = self.names.iter().position(|n| *n == path)?;
        let found = self.found.get(i)?.as_ref()?;
        Some(found.as_deref().map(std::borrow::Cow::Borrowed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_read_ahead_no_further_than_the_matches_so_far_say_are_needed() {
        let sizes = |first: usize, per_run: usize| {
            let progress = Rc::new(Cell::new((0usize, 0usize)));
            let batches = read_ahead(0..200, first, Rc::clone(&progress));
            let mut out = Vec::new();
            for b in batches.take(7) {
                out.push(b.len());
                // Every run matched `per_run` entries, all taken.
                let (runs, taken) = progress.get();
                progress.set((runs + b.len(), taken + b.len() * per_run));
            }
            out
        };
        // No limit, or no matches yet: 1, 2, 4 ... up to MAX_BATCH.
        assert_eq!(sizes(usize::MAX, 10), [1, 2, 4, 8, 16, 32, 32]);
        assert_eq!(sizes(1000, 0), [1, 2, 4, 8, 16, 32, 32]);
        // 1,000 wanted at 136 a run: 1 + 2 + 4 runs give 952, then one more (not 8).
        assert_eq!(sizes(1000, 136)[..4], [1, 2, 4, 1]);
        // Once that many are taken, a caller that goes on gets the rest as without a limit.
        assert_eq!(sizes(20, 100)[..3], [1, 2, 4]);
    }
}
