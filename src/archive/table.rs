//! Table: every entry a query matches as a row of Arrow record batches (`archive export -o
//! x.parquet`, Python's `Archive.table`): its time, hash, tags and record fields.

use super::Archive;
use super::query::Hits;
use super::walk::{Match, RunHits};
use crate::error::{Error, Result};
use crate::hash::ObjectHash;
use crate::object::Kind;
use crate::object::record::{Record, Scalar, Value, scan_fields, scan_top_fields};
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
        check_columns(columns)?;
        self.again_if_rebuilt(&|| {
            let mut b = TableBuilder::new(columns);
            self.table_into(query, columns, progress, &mut b, &mut |_| Ok(true))?;
            b.finish()
        })
    }

    /// [`table`](Self::table) handed to `sink` in pieces as the rows are read (each at least
    /// `piece_rows` rows but the last, in order), so that a writer need not hold them all.
    /// Every piece has the columns and types of the rows so far: a later row can widen a
    /// type or add a column, and then a later piece's schema differs. `sink` returns false to
    /// stop. Returns the rows, or `None` when `sink` stopped or the index was rebuilt
    /// meanwhile (by `archive gc` or `reindex`: the pieces given may be stale, and the
    /// caller starts again).
    pub fn table_pieces(
        &self,
        query: &Query,
        columns: Option<&[String]>,
        progress: &dyn Fn(u64, u64),
        piece_rows: usize,
        sink: &mut dyn FnMut(Table) -> Result<bool>,
    ) -> Result<Option<u64>> {
        check_columns(columns)?;
        self.lease.take_rebuilt();
        let mut b = TableBuilder::new(columns);
        let mut more = true;
        let mut after_part = |b: &mut TableBuilder| {
            if b.finished_rows() >= piece_rows.max(1) {
                more = sink(b.take_table()?)?;
            }
            Ok(more)
        };
        let Some(rows) = self.table_into(query, columns, progress, &mut b, &mut after_part)? else {
            return Ok(None);
        };
        if !sink(b.finish()?)? || self.lease.take_rebuilt() {
            return Ok(None);
        }
        Ok(Some(rows))
    }

    /// The rows `query` matches, appended to `b` a run at a time, in order; `after_part`
    /// is called after each and returns false to stop (then `None`). Returns the rows.
    fn table_into(
        &self,
        query: &Query,
        columns: Option<&[String]>,
        progress: &dyn Fn(u64, u64),
        b: &mut TableBuilder,
        after_part: &mut dyn FnMut(&mut TableBuilder) -> Result<bool>,
    ) -> Result<Option<u64>> {
        // The tag keys a column may take. A row reads its tags only while one of them has no
        // value (a record field of the same name comes first): a pack decodes its tag sets (an
        // id per entry, say) only for those who ask.
        let names = self.names()?;
        let tags: Vec<String> = match columns {
            None => names.tag_keys.iter().cloned().collect(),
            Some(c) => c
                .iter()
                .filter(|n| names.tag_keys.contains(n.as_str()))
                .cloned()
                .collect(),
        };
        // Chosen columns, none a nested path: a row reads just those fields of its record.
        let top: Option<Vec<&str>> = columns
            .filter(|c| !c.iter().any(|n| n.contains('.')))
            .map(|c| c.iter().map(String::as_str).collect());
        // Each run's rows are built on a core of their own, then joined in order.
        let part = |rows: usize| (TableBuilder::new(columns), Vec::with_capacity(rows));
        let add = |(part, seqs): &mut (TableBuilder, Vec<u64>), run: &RunHits<'_>| {
            // A pack's rows with their hashes: every address of the pack computed at once,
            // into one buffer, not row by row.
            if let Hits::Packed { pack, hits } = run.hits
                && hits.len() > 1
                && part.wants("hash")
            {
                let _ = pack.object_hashes();
            }
            run.each(&mut |m| {
                seqs.push(m.seq());
                self.add_row(part, m, &tags, top.as_deref())
            })
        };
        let seal = |(part, _): &mut (TableBuilder, Vec<u64>)| part.seal();
        let mut stopped = false;
        let walked = self.fold_runs(
            query,
            progress,
            &part,
            &add,
            &seal,
            &mut |(part, seqs), _| {
                let name = |row: usize| format!("entry {}", seqs.get(row).copied().unwrap_or(0));
                b.append(part, &name)?;
                if !after_part(b)? {
                    stopped = true;
                    return Err(Error::internal("stopped"));
                }
                Ok(())
            },
        );
        if stopped {
            return Ok(None);
        }
        let rows = walked?;
        progress(rows, rows);
        Ok(Some(rows))
    }

    fn add_row(
        &self,
        b: &mut TableBuilder,
        m: &Match<'_>,
        tag_keys: &[String],
        top: Option<&[&str]>,
    ) -> Result<()> {
        let named = |why: String| Error::invalid(m.name(None), why);
        b.set("time", Cell::Time(m.time_ns())).map_err(named)?;
        if b.wants("hash") {
            b.set("hash", Cell::Hash(m.hash())).map_err(named)?;
        }
        match m.packed_stored() {
            Some(o) if o.kind == Kind::Record => self.record_cells(b, m, o.data, top)?,
            Some(o) => {
                if b.wants(VALUE_COLUMN) {
                    let cell = object_cell(o.kind, o.desc, o.shape, o.data, &|| m.hash())?;
                    b.set(VALUE_COLUMN, cell).map_err(named)?;
                }
            }
            None => {
                let hash = m.hash();
                let mapped = self.map(&hash)?;
                if mapped.info().kind == Kind::Record {
                    self.record_cells(b, m, mapped.bytes(), top)?;
                } else if b.wants(VALUE_COLUMN) {
                    b.set(VALUE_COLUMN, self.mapped_cell(&hash)?)
                        .map_err(named)?;
                }
            }
        }
        let open = tag_keys.iter().any(|k| b.takes(k));
        let tags: &[(String, String)] = if open { m.tags() } else { &[] };
        for (k, v) in tags {
            if b.takes(k) {
                b.set(k, Cell::Str(v.clone())).map_err(named)?;
            }
        }
        b.end_row()
    }

    /// The fields of a record's bytes (canonical, or as its pack stores them), read in place
    /// (nested records by their paths); a list's cell is its JSON text, from the decoded
    /// record. With `top` (the table's chosen columns, none a path), only those fields are
    /// read.
    fn record_cells(
        &self,
        b: &mut TableBuilder,
        m: &Match<'_>,
        bytes: &[u8],
        top: Option<&[&str]>,
    ) -> Result<()> {
        let mut failed: Option<Error> = None;
        // A path without a value is a nested record when its fields follow, else a list.
        let mut open: Option<String> = None;
        let mut lists: Vec<String> = Vec::new();
        let mut take = |b: &mut TableBuilder, path: &str, value: Scalar<'_>| {
            if failed.is_none() && b.wants(path) {
                let cell = self.scalar_cell(m, value);
                let set = cell.and_then(|c| {
                    b.set(path, c)
                        .map_err(|why| Error::invalid(m.name(None), why))
                });
                failed = set.err();
            }
        };
        let scanned = match top {
            Some(names) => {
                scan_top_fields(bytes, names, &mut |i, value| match (names.get(i), value) {
                    (Some(name), Some(value)) => take(b, name, value),
                    (Some(name), None) => lists.push((*name).to_owned()),
                    (None, _) => {}
                })
            }
            None => scan_fields(bytes, &mut |path, value| {
                if let Some(p) = open.take()
                    && !path
                        .strip_prefix(p.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))
                {
                    lists.push(p);
                }
                match value {
                    Some(value) => take(b, path, value),
                    None => open = Some(path.to_string()),
                }
            }),
        };
        scanned.map_err(|why| Error::invalid(m.name(None), why))?;
        if let Some(e) = failed {
            return Err(e);
        }
        lists.extend(open);
        self.list_cells(b, m, bytes, lists)
    }

    /// The cell of a record field's scalar: a reference's is the object it names.
    fn scalar_cell(&self, m: &Match<'_>, value: Scalar<'_>) -> Result<Cell> {
        match value {
            Scalar::Null => Ok(Cell::Null),
            Scalar::Bool(x) => Ok(Cell::Bool(x)),
            Scalar::Int(x) => Ok(Cell::Int(x)),
            Scalar::UInt(x) => Ok(i64::try_from(x).map_or(Cell::Float(x as f64), Cell::Int)),
            Scalar::Float(x) => Ok(Cell::Float(x)),
            Scalar::Str(x) => Ok(Cell::Str(x.to_string())),
            Scalar::Ref(h) => match m.packed_before(&h) {
                Some(o) => object_cell(o.kind, o.desc, o.shape, o.data, &|| h),
                None => self.mapped_cell(&h),
            },
            Scalar::Local(back) => match m.packed_back(back) {
                Some((o, hash)) => object_cell(o.kind, o.desc, o.shape, o.data, &hash),
                None => Err(Error::invalid(m.name(None), "a reference out of its pack")),
            },
        }
    }

    /// The cells of the fields at `paths` that hold no scalar (lists, maps, bytes, extension
    /// values: JSON text or bytes), from the decoded record; a nested record has none.
    fn list_cells(
        &self,
        b: &mut TableBuilder,
        m: &Match<'_>,
        bytes: &[u8],
        paths: Vec<String>,
    ) -> Result<()> {
        if !paths.iter().any(|p| b.wants(p)) {
            return Ok(());
        }
        // The canonical bytes, where the pack stores them otherwise.
        let canonical = m.packed_object();
        let bytes = canonical.as_ref().map_or(bytes, |o| o.data);
        let r = Record::from_msgpack(&m.hash().to_string(), bytes)?;
        for p in paths {
            let cell = match r.at_path(&p) {
                Some(Value::Bytes(v)) => Cell::Bytes(v.clone()),
                Some(v @ (Value::List(_) | Value::Map(_) | Value::Ext(..))) => {
                    Cell::Str(v.to_json().to_string())
                }
                _ => continue,
            };
            b.set(&p, cell)
                .map_err(|why| Error::invalid(m.name(None), why))?;
        }
        Ok(())
    }

    /// The cell of a stored object (a record's: its hash).
    fn mapped_cell(&self, hash: &ObjectHash) -> Result<Cell> {
        let mapped = self.map(hash)?;
        let info = mapped.info();
        let desc = match (info.dtype, &info.desc) {
            (Some(d), _) => d.name(),
            (None, Some(d)) => std::borrow::Cow::Borrowed(d.as_str()),
            (None, None) => std::borrow::Cow::Borrowed(""),
        };
        let shape = info.shape.as_ref().map(|s| s.dims()).unwrap_or_default();
        object_cell(info.kind, &desc, shape, mapped.bytes(), &|| *hash)
    }
}

/// An error if `columns` names one twice.
fn check_columns(columns: Option<&[String]>) -> Result<()> {
    if let Some(c) = columns {
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = c.iter().find(|n| !seen.insert(n.as_str())) {
            return Err(Error::invalid(
                format!("column `{dup}`"),
                "is asked for twice",
            ));
        }
    }
    Ok(())
}

/// The cell of an object: a tensor, a string, bytes, or a record's hash.
fn object_cell(
    kind: Kind,
    desc: &str,
    shape: &[u64],
    data: &[u8],
    hash: &dyn Fn() -> ObjectHash,
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
                .map_err(|_| Error::invalid(hash().to_string(), "text that is not UTF-8"))?
                .to_string(),
        ),
        Kind::Bytes => Cell::Bytes(data.to_vec()),
        Kind::Record => Cell::Str(hash().to_string()),
    })
}
