//! Query: the entries a `Query` matches, newest first. Tag equalities at the query's top level
//! read only the runs the index's tag keys name; time bounds skip packs outside them; in a
//! pack, tags are matched once per distinct tag set. Object fields (kind, dtype, rank, size)
//! are looked up only for queries that name them.

use std::collections::HashMap;

use super::Archive;
use crate::error::Result;
use crate::hash::ObjectHash;
use crate::index::RunRec;
use crate::info::EntryInfo;
use crate::query::Query;

/// Runs of entries with the sequence number of their first, as the index yields them.
type Runs<'a> = Box<dyn Iterator<Item = Result<(u64, RunRec)>> + 'a>;

impl Archive {
    /// The runs that can hold entries matching `query`, newest first: those with every tag
    /// the query requires (from the tag keys), and whose times overlap the query's bounds.
    fn runs_for<'q>(&'q self, query: &'q Query) -> Result<Runs<'q>> {
        let index = self.index()?;
        let (lo, hi) = query.time_bounds();
        let in_time = move |r: &Result<(u64, RunRec)>| match r {
            Ok((_, RunRec::Pack(p))) => p.time_max >= lo && p.time_min <= hi,
            _ => true,
        };
        // Each requirement is the runs with one of some tags: a tag equality, or an `or` of
        // them on one key. A run can match only if it meets them all.
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
            let mut these = index.runs_tagged_any(k, &values)?;
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

    /// The entries of one run that match `query`, newest first. In a pack, tags are matched
    /// once per distinct tag set when the query looks at nothing else, and hashes are computed
    /// only for the entries that match, unless the query looks at them.
    fn run_matches(&self, first: u64, run: RunRec, query: &Query) -> Result<Vec<EntryInfo>> {
        let needs_object = query.needs_object();
        let matches = |e: &EntryInfo| {
            let info = if needs_object {
                self.info(&e.hash).ok()
            } else {
                None
            };
            query.matches(e, info.as_ref())
        };
        let RunRec::Pack(p) = run else {
            let mut v = self.run_entries(first, run)?;
            v.retain(|e| matches(e));
            v.reverse();
            return Ok(v);
        };
        let seg = self.index()?.segment(p.seg)?;
        let pack = self.locator.pack(&seg.name, p.offset)?;
        let by_tags_only = !query.needs_more_than_tags();
        let needs_hash = query.needs_hash();
        let mut tagset_matches: HashMap<u32, bool> = HashMap::new();
        let mut out = Vec::new();
        for (i, (slot, time_ns, tagset)) in pack.entry_items().enumerate() {
            let tags = pack.tags(tagset);
            let mut e = EntryInfo {
                seq: first + i as u64,
                time_ns,
                hash: ObjectHash([0; 32]),
                tags: Vec::new(),
            };
            let hit = if by_tags_only {
                *tagset_matches.entry(tagset).or_insert_with(|| {
                    e.tags = tags.to_vec();
                    matches(&e)
                })
            } else {
                e.tags = tags.to_vec();
                if needs_hash {
                    e.hash = pack.item_hash(slot).unwrap_or(e.hash);
                }
                matches(&e)
            };
            if hit {
                if e.tags.is_empty() {
                    e.tags = tags.to_vec();
                }
                if let Some(h) = pack.item_hash(slot) {
                    e.hash = h;
                    out.push(e);
                }
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Entries matching `query`, newest first. Tag equalities and time bounds narrow the runs
    /// read through the index; object fields (kind, dtype, rank, size) are looked up only for
    /// queries that name them.
    pub fn query<'q>(&'q self, query: &'q Query) -> impl Iterator<Item = Result<EntryInfo>> + 'q {
        let runs: Runs<'q> = match self.runs_for(query) {
            Ok(runs) => runs,
            Err(e) => Box::new(std::iter::once(Err(e))),
        };
        runs.flat_map(move |r| {
            let items: Vec<Result<EntryInfo>> =
                match r.and_then(|(first, run)| self.run_matches(first, run, query)) {
                    Ok(v) => v.into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e)],
                };
            items
        })
    }
}
