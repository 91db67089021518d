//! Stack: one tensor field of every entry a query matches, as one tensor with a row per entry
//! in logging order (oldest first): "every probability vector of run X as one array". What
//! `archive export --field` and Python's `Archive.stack` return.

use std::borrow::Cow;
use std::cell::OnceCell;

use super::Archive;
use super::query::{Hits, PackHit};
use super::walk::{Match, RunHits};
use crate::error::{Error, Result};
use crate::format::pack::{Pack, PackedObject};
use crate::hash::ObjectHash;
use crate::info::EntryInfo;
use crate::object::Kind;
use crate::object::record::{Record, Target, Value, find_target};
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
        let mut first: Option<(Dtype, Shape, String)> = None;
        let mut data = Vec::new();
        // Each run's rows are gathered on a core of their own, then joined in order.
        let add = |part: &mut Part, run: &RunHits<'_>| {
            if let (Some(f), Hits::Packed { pack, hits }) = (field, run.hits)
                && run.removed.is_empty()
            {
                return Ok(self.pack_rows(part, pack, hits, f));
            }
            run.each(&mut |m| {
                if part.problem.is_none() {
                    let row = match m {
                        Match::Listed(e) => self.row(e, field),
                        Match::Packed { .. } => self.packed_row(m, field),
                    };
                    part.add(row, &|| m.name(field));
                }
                Ok(())
            })
        };
        let mut take = |part: Part, bound: u64| -> Result<()> {
            let Some(head) = &part.first else {
                return part.problem.map_or(Ok(()), |p| Err(p.error(None)));
            };
            match &first {
                None => {
                    // Room for every row the plan can give: pages are touched only as rows
                    // land, and the array is never copied to grow.
                    let row = part.data.len() / part.rows.max(1);
                    let most = usize::try_from(bound).unwrap_or(usize::MAX);
                    // Not reserving is only slower: the rows still land.
                    let _ = data.try_reserve_exact(row.saturating_mul(most).min(STACK_RESERVE_MAX));
                    first = Some(head.clone());
                }
                Some(f) if (f.0, &f.1) != (head.0, &head.1) => {
                    return Err(Problem::Differs(head.clone()).error(Some(f)));
                }
                Some(_) => {}
            }
            data.extend_from_slice(&part.data);
            part.problem
                .map_or(Ok(()), |p| Err(p.error(first.as_ref())))
        };
        let rows = self.fold_runs(
            query,
            progress,
            &Part::expecting,
            &add,
            &|_| Ok(()),
            &mut take,
        )?;
        let Some((dtype, shape, _)) = first else {
            return Err(Error::invalid(
                "query",
                "no entries match: there is nothing to stack",
            ));
        };
        progress(rows, rows);
        let mut dims = vec![rows];
        dims.extend_from_slice(shape.dims());
        Tensor::new(dtype, Shape::new(dims), data)
    }

    /// The rows of `hits` (newest first) of a pack none of whose entries are removed, added
    /// to `part` oldest first; returns how many. A record whose `field` refers to a tensor of
    /// the pack by a local reference (as a logger writes them) is read here, straight from
    /// the pack; any other row through `packed_row`.
    fn pack_rows(&self, part: &mut Part, pack: &Pack, hits: &[PackHit], field: &str) -> u64 {
        // Each descriptor's dtype, parsed once for the pack.
        let dtypes: Vec<Option<Dtype>> = pack
            .descs()
            .iter()
            .map(|(k, d)| match Kind::from_code(*k) {
                Some(Kind::Tensor) => d.parse().ok(),
                _ => None,
            })
            .collect();
        let record = |slot: u32| pack.stored_object(slot).filter(|o| o.kind == Kind::Record);
        let local = |hit: &PackHit| -> Option<Row<'_>> {
            let Ok(Some(Target::Local(back))) = find_target(record(hit.slot)?.data, field) else {
                return None;
            };
            let (d, shape, bytes) = pack.stored_item(hit.slot.checked_sub(u32::from(back))?)?;
            let dtype = (*dtypes.get(d as usize)?)?;
            Some((dtype, Cow::Borrowed(shape), Cow::Borrowed(bytes)))
        };
        // Rows whose bytes follow each other in the pack's data (a tensor group holds a run's
        // tensors in order) are copied as one: (start, end, rows).
        let data = pack.data();
        let at = |b: &[u8]| {
            let start = (b.as_ptr() as usize).checked_sub(data.as_ptr() as usize)?;
            (start.checked_add(b.len())? <= data.len()).then_some(start)
        };
        let mut span: Option<(usize, usize, usize)> = None;
        let flush = |part: &mut Part, span: &mut Option<(usize, usize, usize)>| {
            if let Some((start, end, n)) = span.take() {
                part.add_same(data.get(start..end).unwrap_or_default(), n);
            }
        };
        let mut rows = 0;
        for hit in hits.iter().rev() {
            if part.problem.is_some() {
                break;
            }
            let m = Match::Packed {
                pack,
                hit,
                hash: OnceCell::new(),
            };
            match local(hit) {
                Some((dtype, shape, bytes))
                    if part.is_like_first(dtype, &shape)
                        && let Some(start) = at(&bytes) =>
                {
                    match &mut span {
                        Some((_, end, n)) if *end == start => {
                            *end += bytes.len();
                            *n += 1;
                        }
                        _ => {
                            flush(part, &mut span);
                            span = Some((start, start + bytes.len(), 1));
                        }
                    }
                }
                row => {
                    flush(part, &mut span);
                    let row = row.map_or_else(|| self.packed_row(&m, Some(field)), Ok);
                    part.add(row, &|| m.name(Some(field)));
                }
            }
            rows += 1;
        }
        flush(part, &mut span);
        rows
    }

    /// One row of a pack's entry: read in place from the pack when the record (and the tensor
    /// it refers to, which a logger packs just before it) are there, through the store if not.
    fn packed_row<'p>(&self, m: &'p Match<'_>, field: Option<&str>) -> Result<Row<'p>> {
        // The record as its pack stores it: a reference to a tensor stored before it in the
        // pack is local, and leads to that tensor without hashing anything.
        let here = m.packed_stored();
        let target = match (field, &here) {
            (None, Some(o)) if o.kind == Kind::Tensor => return tensor_row(o),
            (Some(f), Some(o)) if o.kind == Kind::Record => {
                match find_target(o.data, f).map_err(|why| Error::invalid("record", why))? {
                    Some(Target::Hash(h)) => h,
                    Some(Target::Local(back)) => match m.packed_back(back) {
                        Some((o, _)) if o.kind == Kind::Tensor => return tensor_row(&o),
                        _ => return self.slow_row(m, field),
                    },
                    // Not a reference, or no such field: the general path says which.
                    None => return self.slow_row(m, field),
                }
            }
            _ => return self.slow_row(m, field),
        };
        if let Some(o) = m.packed_before(&target) {
            return tensor_row(&o);
        }
        let mapped = self.map(&target)?;
        match mapped.tensor() {
            Some((d, s, b)) => Ok((d, Cow::Owned(s.dims().to_vec()), Cow::Owned(b.to_vec()))),
            None => self.slow_row(m, field),
        }
    }

    /// A pack entry's row through the store, with the errors `row` gives.
    fn slow_row(&self, m: &Match<'_>, field: Option<&str>) -> Result<Row<'static>> {
        let e = EntryInfo {
            seq: m.seq(),
            time_ns: m.time_ns(),
            hash: m.hash(),
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

/// A row's dtype, shape, and how errors name it.
type Head = (Dtype, Shape, String);

/// A run's rows: the first one's dtype and shape, the bytes of all, and what stopped them.
struct Part {
    first: Option<Head>,
    data: Vec<u8>,
    rows: usize,
    /// The most rows the run can give: room for them all is made at the first.
    expect: usize,
    problem: Option<Problem>,
}

/// Why a run's rows stop.
enum Problem {
    /// A row's dtype or shape differs from the first's.
    Differs(Head),
    /// A row could not be read.
    Failed(Error),
}

impl Problem {
    /// The error, a row that differs compared with the `first` row of all.
    fn error(self, first: Option<&Head>) -> Error {
        match (self, first) {
            (Problem::Failed(e), _) => e,
            (Problem::Differs((dtype, s, name)), Some((fd, fs, fname))) => Error::invalid(
                name,
                format!(
                    "is {dtype} {s}, but the first row ({fname}) is {fd} {fs}: stacked rows need \
                     one dtype and shape"
                ),
            ),
            (Problem::Differs((_, _, name)), None) => {
                Error::internal(format!("{name}: a row that differs from no first row"))
            }
        }
    }
}

impl Part {
    /// A part of a run of at most `expect` rows.
    fn expecting(expect: usize) -> Part {
        Part {
            first: None,
            data: Vec::new(),
            rows: 0,
            expect,
            problem: None,
        }
    }

    /// True if a row of `dtype` and `shape` is like the first row (there is one).
    #[inline]
    fn is_like_first(&self, dtype: Dtype, shape: &[u64]) -> bool {
        matches!(&self.first, Some((fd, fs, _)) if *fd == dtype && same_dims(fs.dims(), shape))
    }

    /// Add `n` rows like the first (`is_like_first`), their bytes one after the other.
    fn add_same(&mut self, bytes: &[u8], n: usize) {
        self.data.extend_from_slice(bytes);
        self.rows += n;
    }

    /// Add a row (named by `name` when it is first or differs).
    fn add(&mut self, row: Result<Row<'_>>, name: &dyn Fn() -> String) {
        let (dtype, shape, bytes) = match row {
            Ok(r) => r,
            Err(e) => return self.problem = Some(Problem::Failed(e)),
        };
        match &self.first {
            None => {
                self.first = Some((dtype, Shape::new(shape.to_vec()), name()));
                // Not reserving is only slower: the rows still land.
                let _ = self
                    .data
                    .try_reserve_exact(self.expect.saturating_mul(bytes.len()));
            }
            Some((fd, fs, _)) if *fd != dtype || !same_dims(fs.dims(), &shape) => {
                let head = (dtype, Shape::new(shape.to_vec()), name());
                return self.problem = Some(Problem::Differs(head));
            }
            Some(_) => {}
        }
        self.data.extend_from_slice(&bytes);
        self.rows += 1;
    }
}

/// `a == b`, inline: a row's shape is a dimension or two, and `==` on slices is a call to
/// `memcmp` for every row.
#[inline(always)]
fn same_dims(a: &[u64], b: &[u64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// The most a stack reserves ahead of its rows (it grows past this as needed).
const STACK_RESERVE_MAX: usize = 4 << 30;

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
        Value::F32(_) => "a float32",
        Value::BigUint(_) => "an integer",
        Value::Bytes(_) => "bytes",
        Value::Ext(..) => "a msgpack extension value",
        Value::Map(_) => "a map",
    }
}
