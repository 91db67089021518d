//! Stack: one tensor field of every entry a query matches, as one tensor with a row per entry
//! in logging order (oldest first): "every probability vector of run X as one array". What
//! `archive export --field` and Python's `Archive.stack` return.

use std::borrow::Cow;

use super::Archive;
use super::query::{Hits, PackHit};
use crate::error::{Error, Result};
use crate::format::pack::{Pack, PackedObject};
use crate::hash::ObjectHash;
use crate::info::EntryInfo;
use crate::object::Kind;
use crate::object::record::{Record, Value, find_ref};
use crate::object::tensor::{Dtype, Shape, Tensor};
use crate::query::Query;

impl Archive {
    /// Stack the tensor at record field `field` (a path, as queries name it: `probs`,
    /// `out.logits`) of every entry `query` matches, or with `None` the entries' own tensors,
    /// into one tensor of shape `[N, ...]`, rows in logging order. Every row must have the
    /// first row's dtype and shape: the error names the first entry that differs, or that
    /// lacks the field. A query that matches nothing is an error too (there is no shape to
    /// give). `progress(done, total)` counts rows.
    pub fn stack(
        &self,
        query: &Query,
        field: Option<&str>,
        progress: &dyn Fn(u64, u64),
    ) -> Result<Tensor> {
        self.again_if_rebuilt(&|| self.stack_once(query, field, progress))
    }

    fn stack_once(
        &self,
        query: &Query,
        field: Option<&str>,
        progress: &dyn Fn(u64, u64),
    ) -> Result<Tensor> {
        // Runs come newest first: each run's rows are gathered oldest first, and the runs
        // put in order at the end, where rows are checked in logging order.
        let (runs, needs_record) = self.plan(query)?;
        // Listed first, so that the index can be handed to a waiting process between runs.
        let runs = runs.collect::<Result<Vec<_>>>()?;
        let mut parts: Vec<Part> = Vec::new();
        let mut rows = 0u64;
        for (first_seq, run) in runs {
            self.lease.yield_to_waiters();
            let mut part = Part::default();
            match self.run_hits(first_seq, run, query, needs_record)? {
                Hits::Listed(v) => {
                    for e in v.iter().rev() {
                        let row = self.row(e, field)?;
                        part.add(row, &|| entry_name(e.seq, &e.hash, field));
                    }
                    rows += v.len() as u64;
                }
                Hits::Packed { pack, hits } => {
                    for h in hits.iter().rev() {
                        let row = self.packed_row(&pack, h, field)?;
                        part.add(row, &|| {
                            let hash = pack.item_hash(h.slot).unwrap_or(ObjectHash([0; 32]));
                            entry_name(h.seq, &hash, field)
                        });
                    }
                    rows += hits.len() as u64;
                }
            }
            parts.push(part);
            progress(rows, 0);
        }
        let mut first: Option<(Dtype, Shape, String)> = None;
        for part in parts.iter().rev() {
            for (d, s, name) in part.first.iter().chain(&part.odd) {
                match &first {
                    None => first = Some((*d, s.clone(), name.clone())),
                    Some((fd, fs, fname)) if fd != d || fs != s => {
                        return Err(Error::invalid(
                            name,
                            format!(
                                "is {d} {s}, but the first row ({fname}) is {fd} {fs}: \
                                 stacked rows need one dtype and shape"
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        let Some((dtype, shape, _)) = first else {
            return Err(Error::invalid(
                "query",
                "no entries match: there is nothing to stack",
            ));
        };
        let mut data = Vec::with_capacity(parts.iter().map(|p| p.data.len()).sum());
        for part in parts.iter().rev() {
            data.extend_from_slice(&part.data);
        }
        progress(rows, rows);
        let mut dims = vec![rows];
        dims.extend_from_slice(shape.dims());
        Tensor::new(dtype, Shape::new(dims), data)
    }

    /// One row of a pack's entry: read in place from the pack when the record (and the tensor
    /// it refers to, which a logger packs just before it) are there, through the store if not.
    fn packed_row<'p>(
        &self,
        pack: &'p Pack,
        hit: &PackHit,
        field: Option<&str>,
    ) -> Result<Row<'p>> {
        let slot = hit.slot;
        let here = pack.object(slot);
        let target = match (field, &here) {
            (None, Some(o)) if o.kind == Kind::Tensor => return tensor_row(o),
            (Some(f), Some(o)) if o.kind == Kind::Record => {
                match find_ref(o.data, f).map_err(|why| Error::invalid("record", why))? {
                    Some(h) => h,
                    // Not a reference, or no such field: the general path says which.
                    None => return self.slow_row(pack, hit, field),
                }
            }
            _ => return self.slow_row(pack, hit, field),
        };
        // The tensor is usually packed a few items before the record that refers to it.
        for s in (slot.saturating_sub(8).max(1)..slot).rev() {
            if let Some(o) = pack.object(s)
                && o.kind == Kind::Tensor
                && o.hash() == target
            {
                return tensor_row(&o);
            }
        }
        let m = self.map(&target)?;
        match m.tensor() {
            Some((d, s, b)) => Ok((d, Cow::Owned(s.dims().to_vec()), Cow::Owned(b.to_vec()))),
            None => self.slow_row(pack, hit, field),
        }
    }

    /// A pack entry's row through the store, with the errors `row` gives.
    fn slow_row(&self, pack: &Pack, hit: &PackHit, field: Option<&str>) -> Result<Row<'static>> {
        let hash = pack
            .item_hash(hit.slot)
            .ok_or_else(|| Error::internal("a pack entry without a hash"))?;
        let e = EntryInfo {
            seq: hit.seq,
            time_ns: hit.time_ns,
            hash,
            tags: Vec::new(),
        };
        self.row(&e, field)
    }

    /// One row: the tensor an entry logs, or the one its record's `field` refers to.
    fn row(&self, e: &EntryInfo, field: Option<&str>) -> Result<Row<'static>> {
        let target: ObjectHash = match field {
            None => e.hash,
            Some(f) => {
                let m = self.map(&e.hash)?;
                let kind = m.info().kind;
                if kind != Kind::Record {
                    return Err(Error::invalid(
                        entry_name(e.seq, &e.hash, field),
                        format!("the entry logs a {}, not a record", kind.name()),
                    ));
                }
                let r = Record::from_msgpack(&e.hash.to_string(), m.bytes())?;
                match r.at_path(f) {
                    Some(Value::Ref(h)) => *h,
                    Some(other) => {
                        return Err(Error::invalid(
                            entry_name(e.seq, &e.hash, field),
                            format!("is {}, not a tensor", describe(other)),
                        ));
                    }
                    None => {
                        return Err(Error::invalid(
                            entry_name(e.seq, &e.hash, field),
                            "the record has no such field",
                        ));
                    }
                }
            }
        };
        let m = self.map(&target)?;
        match m.tensor() {
            Some((d, s, b)) => Ok((d, Cow::Owned(s.dims().to_vec()), Cow::Owned(b.to_vec()))),
            None => Err(Error::invalid(
                entry_name(e.seq, &e.hash, field),
                format!("is a {}, not a tensor", m.info().kind.name()),
            )),
        }
    }
}

/// A row: dtype, shape and bytes.
type Row<'a> = (Dtype, Cow<'a, [u64]>, Cow<'a, [u8]>);

/// A row of a tensor in a pack.
fn tensor_row<'p>(o: &PackedObject<'p>) -> Result<Row<'p>> {
    let dtype = o
        .desc
        .parse::<Dtype>()
        .map_err(|_| Error::invalid(o.desc, "not a dtype this program knows"))?;
    Ok((dtype, Cow::Borrowed(o.shape), Cow::Borrowed(o.data)))
}

/// One run's rows, oldest first: their bytes, the first row's dtype, shape and name, and the
/// first row that differs from it.
#[derive(Default)]
struct Part {
    data: Vec<u8>,
    first: Option<(Dtype, Shape, String)>,
    odd: Option<(Dtype, Shape, String)>,
}

impl Part {
    fn add(&mut self, (dtype, shape, bytes): Row<'_>, name: &dyn Fn() -> String) {
        match &self.first {
            None => self.first = Some((dtype, Shape::new(shape.to_vec()), name())),
            Some((d, s, _)) if self.odd.is_none() && (*d != dtype || s.dims() != &shape[..]) => {
                self.odd = Some((dtype, Shape::new(shape.to_vec()), name()));
            }
            Some(_) => {}
        }
        self.data.extend_from_slice(&bytes);
    }
}

/// How an error names a row: the entry, and the field when there is one.
fn entry_name(seq: u64, hash: &ObjectHash, field: Option<&str>) -> String {
    match field {
        Some(f) => format!("entry {seq} ({}) field `{f}`", hash.short(12)),
        None => format!("entry {seq} ({})", hash.short(12)),
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Int(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Str(_) => "a string",
        Value::List(_) => "a list",
        Value::Record(_) => "a record",
        Value::Ref(_) => "a reference",
    }
}
