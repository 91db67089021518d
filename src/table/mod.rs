//! Tables: entries as rows of Arrow record batches, as `archive export -o x.parquet` writes them
//! and Python's `Archive.table` hands them over. A row is an entry: its time, its hash, and a
//! column per name, as queries name things: a record field by its path (`probs`,
//! `meta.source`), or a tag by its key. Where a record field and a tag share a name they are
//! one column, the field's value where the record has it.
//!
//! A column's type follows its values: booleans, 64-bit integers, 64-bit floats (integers and
//! floats mixed), strings (other mixes, as the text queries compare), binary, or a tensor
//! column: the tensor's dtype in fixed-size lists, nested a level per dimension, while every
//! row has one shape, and in lists when the shape varies (the rank may not). Nulls stand for
//! rows without the name.

mod cells;
mod tensor;
pub mod write;

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{Field, Schema, SchemaRef};

pub use cells::Cell;
use cells::{ColKind, build, convert, widen};
pub use tensor::TensorCell;

use crate::error::{Error, Result};

/// Rows per record batch.
pub const BATCH_ROWS: usize = 65_536;

/// Entries as Arrow record batches sharing one schema.
#[derive(Debug, Clone)]
pub struct Table {
    /// The columns.
    pub schema: SchemaRef,
    /// The rows, in batches of at most [`BATCH_ROWS`].
    pub batches: Vec<RecordBatch>,
}

impl Table {
    /// The number of rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// One column while rows are added.
struct Column {
    name: String,
    kind: ColKind,
    /// Finished batches (`None`: every row null, the column not seen yet).
    chunks: Vec<Option<ArrayRef>>,
    /// The current batch's cells.
    cur: Vec<Cell>,
}

/// Builds a [`Table`] a row at a time: `set` each name of the row, then `end_row`.
pub struct TableBuilder {
    columns: Vec<Column>,
    by_name: HashMap<String, usize>,
    /// Only these columns, in this order, when the caller chose them.
    chosen: bool,
    /// Rows in the current batch.
    batch_rows: usize,
    /// Rows of each finished batch.
    batch_lens: Vec<usize>,
    /// How errors name the current row.
    row_name: String,
}

impl TableBuilder {
    /// A builder for every name the rows have (`None`), or for `columns` alone, in that order.
    pub fn new(columns: Option<&[String]>) -> Self {
        let mut b = TableBuilder {
            columns: Vec::new(),
            by_name: HashMap::new(),
            chosen: columns.is_some(),
            batch_rows: 0,
            batch_lens: Vec::new(),
            row_name: String::new(),
        };
        for name in columns.unwrap_or_default() {
            b.column(name);
        }
        b
    }

    /// True if the table has (or would take) a column `name`: what a caller asks before it
    /// reads a value it may not need.
    pub fn wants(&self, name: &str) -> bool {
        !self.chosen || self.by_name.contains_key(name)
    }

    /// Start a row; errors about it name it `name` (built only when needed).
    pub fn start_row(&mut self, name: impl FnOnce() -> String) {
        self.row_name.clear();
        self.row_name.push_str(&name());
    }

    /// Set `name` in the current row. A name already set in it keeps its first value.
    pub fn set(&mut self, name: &str, cell: Cell) -> Result<()> {
        let Some(i) = self.column_index(name) else {
            return Ok(());
        };
        let rows = self.batch_rows;
        let Some(col) = self.columns.get_mut(i) else {
            return Err(Error::internal("a table column out of range"));
        };
        if col.cur.len() > rows {
            return Ok(());
        }
        let kind = widen(&col.kind, &cell).map_err(|why| {
            Error::invalid(format!("{}: column `{}`", self.row_name, col.name), why)
        })?;
        if kind != col.kind {
            for chunk in col.chunks.iter_mut().flatten() {
                *chunk = convert(chunk, &col.kind, &kind)
                    .map_err(|why| Error::invalid(format!("column `{}`", col.name), why))?;
            }
            col.kind = kind;
        }
        col.cur.push(cell);
        Ok(())
    }

    /// End the current row: names it did not set are null.
    pub fn end_row(&mut self) -> Result<()> {
        self.batch_rows += 1;
        for col in &mut self.columns {
            if col.cur.len() < self.batch_rows {
                col.cur.push(Cell::Null);
            }
        }
        if self.batch_rows == BATCH_ROWS {
            self.finish_batch()?;
        }
        Ok(())
    }

    /// The table of the rows added.
    pub fn finish(mut self) -> Result<Table> {
        if self.batch_rows > 0 || self.batch_lens.is_empty() {
            self.finish_batch()?;
        }
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| Field::new(&c.name, c.kind.data_type(), true))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let mut out = Vec::with_capacity(self.batch_lens.len());
        let mut columns: Vec<_> = self
            .columns
            .into_iter()
            .map(|c| (c.kind, c.chunks.into_iter()))
            .collect();
        for rows in self.batch_lens {
            let mut arrays = Vec::with_capacity(columns.len());
            for (kind, chunks) in &mut columns {
                arrays.push(match chunks.next().flatten() {
                    Some(a) => a,
                    None => kind.nulls(rows)?,
                });
            }
            let options = RecordBatchOptions::new().with_row_count(Some(rows));
            let batch = RecordBatch::try_new_with_options(Arc::clone(&schema), arrays, &options)
                .map_err(|e| Error::internal(format!("a table batch: {e}")))?;
            out.push(batch);
        }
        Ok(Table {
            schema,
            batches: out,
        })
    }

    fn column_index(&mut self, name: &str) -> Option<usize> {
        if let Some(i) = self.by_name.get(name) {
            return Some(*i);
        }
        (!self.chosen).then(|| self.column(name))
    }

    fn column(&mut self, name: &str) -> usize {
        if let Some(i) = self.by_name.get(name) {
            return *i;
        }
        let done = self.batch_lens.len();
        let mut cur = Vec::with_capacity(BATCH_ROWS.min(1024));
        cur.resize_with(self.batch_rows, || Cell::Null);
        self.columns.push(Column {
            name: name.to_string(),
            kind: ColKind::Null,
            chunks: vec![None; done],
            cur,
        });
        let i = self.columns.len() - 1;
        self.by_name.insert(name.to_string(), i);
        i
    }

    fn finish_batch(&mut self) -> Result<()> {
        let rows = self.batch_rows;
        for col in &mut self.columns {
            let cells = std::mem::take(&mut col.cur);
            if col.kind == ColKind::Null {
                col.chunks.push(None);
                continue;
            }
            let array = build(&col.kind, cells, rows)
                .map_err(|why| Error::invalid(format!("column `{}`", col.name), why))?;
            col.chunks.push(Some(array));
        }
        self.batch_lens.push(rows);
        self.batch_rows = 0;
        Ok(())
    }
}
