//! Stack: one tensor field of every entry a query matches, as one tensor with a row per entry
//! in logging order (oldest first): "every probability vector of run X as one array". What
//! `archive export --field` and Python's `Archive.stack` return.

use super::Archive;
use crate::error::{Error, Result};
use crate::hash::ObjectHash;
use crate::info::EntryInfo;
use crate::object::Kind;
use crate::object::record::{Record, Value};
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
        let mut entries: Vec<EntryInfo> = self.query(query).collect::<Result<_>>()?;
        entries.reverse();
        let total = entries.len() as u64;
        let Some(first) = entries.first() else {
            return Err(Error::invalid(
                "query",
                "no entries match: there is nothing to stack",
            ));
        };
        let (dtype, shape, bytes) = self.row(first, field)?;
        let mut data = Vec::with_capacity(bytes.len().saturating_mul(entries.len()));
        data.extend_from_slice(&bytes);
        for (i, e) in entries.iter().enumerate().skip(1) {
            let (d, s, b) = self.row(e, field)?;
            if d != dtype || s != shape {
                return Err(Error::invalid(
                    entry_name(e, field),
                    format!(
                        "is {d} {s}, but the first row (entry {}, {}) is {dtype} {shape}: \
                         stacked rows need one dtype and shape",
                        first.seq,
                        first.hash.short(12)
                    ),
                ));
            }
            data.extend_from_slice(&b);
            if i % 4096 == 0 {
                progress(i as u64, total);
            }
        }
        progress(total, total);
        let mut dims = vec![total];
        dims.extend_from_slice(shape.dims());
        Tensor::new(dtype, Shape::new(dims), data)
    }

    /// One row: the tensor an entry logs, or the one its record's `field` refers to.
    fn row(&self, e: &EntryInfo, field: Option<&str>) -> Result<(Dtype, Shape, Vec<u8>)> {
        let target: ObjectHash = match field {
            None => e.hash,
            Some(f) => {
                let m = self.map(&e.hash)?;
                let kind = m.info().kind;
                if kind != Kind::Record {
                    return Err(Error::invalid(
                        entry_name(e, field),
                        format!("the entry logs a {}, not a record", kind.name()),
                    ));
                }
                let r = Record::from_msgpack(&e.hash.to_string(), m.bytes())?;
                match r.at_path(f) {
                    Some(Value::Ref(h)) => *h,
                    Some(other) => {
                        return Err(Error::invalid(
                            entry_name(e, field),
                            format!("is {}, not a tensor", describe(other)),
                        ));
                    }
                    None => {
                        return Err(Error::invalid(
                            entry_name(e, field),
                            "the record has no such field",
                        ));
                    }
                }
            }
        };
        let m = self.map(&target)?;
        match m.tensor() {
            Some((d, s, b)) => Ok((d, s.clone(), b.to_vec())),
            None => Err(Error::invalid(
                entry_name(e, field),
                format!("is a {}, not a tensor", m.info().kind.name()),
            )),
        }
    }
}

/// How an error names a row: the entry, and the field when there is one.
fn entry_name(e: &EntryInfo, field: Option<&str>) -> String {
    match field {
        Some(f) => format!("entry {} ({}) field `{f}`", e.seq, e.hash.short(12)),
        None => format!("entry {} ({})", e.seq, e.hash.short(12)),
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
