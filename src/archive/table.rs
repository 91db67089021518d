//! Table: every entry a query matches as a row of Arrow record batches (`archive export -o
//! x.parquet`, Python's `Archive.table`): its time, hash, tags and record fields.

use super::Archive;
use super::walk::Match;
use crate::error::{Error, Result};
use crate::hash::ObjectHash;
use crate::object::Kind;
use crate::object::record::{Record, Value};
use crate::object::tensor::Dtype;
use crate::query::Query;
use crate::table::{Cell, Table, TableBuilder, TensorCell};

/// The column of an entry that logs a tensor, text or bytes rather than a record.
pub const VALUE_COLUMN: &str = "value";

impl Archive {
    /// Every entry `query` matches as a row, oldest first: `time` (UTC nanoseconds), `hash`,
    /// then a column per record field (by its path, nested records flattened: `meta.source`)
    /// and per tag key, as queries name them; an entry of a tensor, text or bytes has it under
    /// `value`. With `columns`, only those, in that order. See [`crate::table`] for the column
    /// types. `progress(done, total)` counts rows.
    pub fn table(
        &self,
        query: &Query,
        columns: Option<&[String]>,
        progress: &dyn Fn(u64, u64),
    ) -> Result<Table> {
        if let Some(c) = columns {
            let mut seen = std::collections::HashSet::new();
            if let Some(dup) = c.iter().find(|n| !seen.insert(n.as_str())) {
                return Err(Error::invalid(
                    format!("column `{dup}`"),
                    "is asked for twice",
                ));
            }
        }
        self.again_if_rebuilt(&|| {
            let mut b = TableBuilder::new(columns);
            let rows = self.each_match(query, progress, &mut |m| self.add_row(&mut b, m))?;
            progress(rows, rows);
            b.finish()
        })
    }

    fn add_row(&self, b: &mut TableBuilder, m: &Match<'_>) -> Result<()> {
        let hash = m.hash();
        b.start_row(|| m.name(None));
        b.set("time", Cell::Time(m.time_ns()))?;
        if b.wants("hash") {
            b.set("hash", Cell::Str(hash.to_string()))?;
        }
        match m.packed_object() {
            Some(o) if o.kind == Kind::Record => {
                let r = Record::from_msgpack(&hash.to_string(), o.data)?;
                self.record_cells(b, m, "", &r)?;
            }
            Some(o) => {
                if b.wants(VALUE_COLUMN) {
                    let cell = object_cell(o.kind, o.desc, o.shape, o.data, &hash)?;
                    b.set(VALUE_COLUMN, cell)?;
                }
            }
            None => {
                let mapped = self.map(&hash)?;
                if mapped.info().kind == Kind::Record {
                    let r = Record::from_msgpack(&hash.to_string(), mapped.bytes())?;
                    self.record_cells(b, m, "", &r)?;
                } else if b.wants(VALUE_COLUMN) {
                    b.set(VALUE_COLUMN, self.mapped_cell(&hash)?)?;
                }
            }
        }
        for (k, v) in m.tags() {
            if b.wants(k) {
                b.set(k, Cell::Str(v.clone()))?;
            }
        }
        b.end_row()
    }

    /// A record's fields, under `prefix`.
    fn record_cells(
        &self,
        b: &mut TableBuilder,
        m: &Match<'_>,
        prefix: &str,
        r: &Record,
    ) -> Result<()> {
        for (name, v) in r.fields() {
            let path = match prefix {
                "" => name.clone(),
                p => format!("{p}.{name}"),
            };
            if let Value::Record(inner) = v {
                self.record_cells(b, m, &path, inner)?;
                continue;
            }
            if !b.wants(&path) {
                continue;
            }
            let cell = match v {
                Value::Null => Cell::Null,
                Value::Bool(x) => Cell::Bool(*x),
                Value::Int(x) => Cell::Int(*x),
                Value::Float(x) => Cell::Float(*x),
                Value::Str(x) => Cell::Str(x.clone()),
                Value::List(_) => Cell::Str(v.to_json().to_string()),
                Value::Ref(h) => match m.packed_before(h) {
                    Some(o) => object_cell(o.kind, o.desc, o.shape, o.data, h)?,
                    None => self.mapped_cell(h)?,
                },
                Value::Record(_) => continue,
            };
            b.set(&path, cell)?;
        }
        Ok(())
    }

    /// The cell of a stored object (a record's: its hash).
    fn mapped_cell(&self, hash: &ObjectHash) -> Result<Cell> {
        let mapped = self.map(hash)?;
        let info = mapped.info();
        let desc = match (info.dtype, &info.desc) {
            (Some(d), _) => d.name(),
            (None, Some(d)) => d.as_str(),
            (None, None) => "",
        };
        let shape = info.shape.as_ref().map(|s| s.dims()).unwrap_or_default();
        object_cell(info.kind, desc, shape, mapped.bytes(), hash)
    }
}

/// The cell of an object: a tensor, a string, bytes, or a record's hash.
fn object_cell(
    kind: Kind,
    desc: &str,
    shape: &[u64],
    data: &[u8],
    hash: &ObjectHash,
) -> Result<Cell> {
    Ok(match kind {
        Kind::Tensor => Cell::Tensor(TensorCell {
            dtype: desc
                .parse::<Dtype>()
                .map_err(|_| Error::invalid(desc, "not a dtype this program knows"))?,
            shape: shape.to_vec(),
            data: data.to_vec(),
        }),
        Kind::Text => Cell::Str(
            std::str::from_utf8(data)
                .map_err(|_| Error::invalid(hash.to_string(), "text that is not UTF-8"))?
                .to_string(),
        ),
        Kind::Bytes => Cell::Bytes(data.to_vec()),
        Kind::Record => Cell::Str(hash.to_string()),
    })
}
