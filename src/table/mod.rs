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
use arrow_select::concat::concat_batches;
use rayon::prelude::*;

pub use cells::Cell;
use cells::{ColKind, build, convert, fits, widen, widen_kinds};
pub use tensor::TensorCell;

use crate::error::{Error, Result};

/// Rows per record batch.
pub const BATCH_ROWS: usize = 65_536;
/// Up to this many columns a name is found by comparing it with each (`TableBuilder::find`).
const FEW_COLUMNS: usize = 16;

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
    /// The first row with a value, and what it is (for errors).
    first: Option<(usize, String)>,
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
    /// The column set last (a guess at the next one is the column after it).
    last: usize,
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
            last: usize::MAX,
        };
        for name in columns.unwrap_or_default() {
            b.column(name);
        }
        b
    }

    /// The rows added so far.
    pub fn rows(&self) -> usize {
        self.batch_lens.iter().sum::<usize>() + self.batch_rows
    }

    /// Build a part's arrays, where it was built (on its own core), before it is appended.
    pub fn seal(&mut self) -> Result<()> {
        match self.batch_rows {
            0 => Ok(()),
            _ => self.finish_batch(),
        }
    }

    /// Add the rows of `part` (a builder of the same columns, best [`seal`](Self::seal)ed
    /// where it was built) after these, its arrays as they are. An error names the part's
    /// first row of a column here that cannot take its values, by `row_name(its index in the
    /// part)`.
    pub fn append(
        &mut self,
        mut part: TableBuilder,
        row_name: &dyn Fn(usize) -> String,
    ) -> Result<()> {
        self.seal()?;
        part.seal()?;
        let done = self.batch_lens.len();
        let mut taken = vec![false; self.columns.len()];
        for col in part.columns {
            let Some(i) = self.column_index(&col.name) else {
                continue;
            };
            let mine = self
                .columns
                .get(i)
                .map_or(ColKind::Null, |c| c.kind.clone());
            let (row, what) = col.first.clone().unwrap_or_default();
            let kind = widen_kinds(&mine, &col.kind, &|| what.clone()).map_err(|why| {
                Error::invalid(row_name(row), format!("column `{}` {why}", col.name))
            })?;
            let named = |why| Error::invalid(format!("column `{}`", col.name), why);
            self.rekind(i, kind.clone()).map_err(named)?;
            let mut chunks = col.chunks;
            if col.kind != kind && col.kind != ColKind::Null {
                for chunk in chunks.iter_mut().flatten() {
                    *chunk = convert(chunk, &col.kind, &kind).map_err(named)?;
                }
            }
            if let Some(c) = self.columns.get_mut(i) {
                c.chunks.truncate(done);
                c.chunks.extend(chunks);
            }
            taken.resize(self.columns.len(), false);
            if let Some(t) = taken.get_mut(i) {
                *t = true;
            }
        }
        let batches = part.batch_lens.len();
        for (col, taken) in self.columns.iter_mut().zip(taken) {
            if !taken {
                col.chunks.truncate(done);
                col.chunks.resize(done + batches, None);
            }
        }
        self.batch_lens.extend(part.batch_lens);
        Ok(())
    }

    /// True if the table has (or would take) a column `name`: what a caller asks before it
    /// reads a value it may not need.
    pub fn wants(&self, name: &str) -> bool {
        !self.chosen || self.find(name).is_some()
    }

    /// The column named `name`: among a few, by comparing names (a row asks for each of its
    /// record's fields, and a few string compares cost less than hashing the name).
    fn find(&self, name: &str) -> Option<usize> {
        if self.columns.len() <= FEW_COLUMNS {
            return self.columns.iter().position(|c| c.name == name);
        }
        self.by_name.get(name).copied()
    }

    /// True if `set(name, ..)` would take a value now: the column is wanted and the current
    /// row has none yet.
    pub fn takes(&self, name: &str) -> bool {
        match self.find(name) {
            Some(i) => self
                .columns
                .get(i)
                .is_some_and(|c| c.cur.len() <= self.batch_rows),
            None => !self.chosen,
        }
    }

    /// Set `name` in the current row. A name already set in it keeps its first value. An
    /// error (a value the column cannot hold) names the column and says why; the caller names
    /// the row.
    pub fn set(&mut self, name: &str, cell: Cell) -> std::result::Result<(), String> {
        let Some(i) = self.column_index(name) else {
            return Ok(());
        };
        let rows = self.batch_rows;
        let Some(col) = self.columns.get_mut(i) else {
            return Err("a table column out of range".into());
        };
        if col.cur.len() > rows {
            return Ok(());
        }
        if col.first.is_none() && !matches!(cell, Cell::Null) {
            let row = self.batch_lens.iter().sum::<usize>() + rows;
            col.first = Some((row, cell.describe()));
        }
        if !fits(&col.kind, &cell) {
            let kind =
                widen(&col.kind, &cell).map_err(|why| format!("column `{}` {why}", col.name))?;
            let name = col.name.clone();
            self.rekind(i, kind)
                .map_err(|why| format!("column `{name}`: {why}"))?;
        }
        if let Some(col) = self.columns.get_mut(i) {
            col.cur.push(cell);
        }
        Ok(())
    }

    /// Make column `i` one of `kind` (a kind `widen` gave it), its finished batches too.
    fn rekind(&mut self, i: usize, kind: ColKind) -> std::result::Result<(), String> {
        let Some(col) = self.columns.get_mut(i) else {
            return Err("a table column out of range".into());
        };
        if kind != col.kind {
            for chunk in col.chunks.iter_mut().flatten() {
                *chunk = convert(chunk, &col.kind, &kind)?;
            }
            col.kind = kind;
        }
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

    /// The table of the rows added (less those [`take_table`](Self::take_table) took).
    pub fn finish(mut self) -> Result<Table> {
        if self.batch_rows > 0 || self.batch_lens.is_empty() {
            self.finish_batch()?;
        }
        self.take_table()
    }

    /// Rows of finished batches (appended parts, sealed batches) not taken yet.
    pub fn finished_rows(&self) -> usize {
        self.batch_lens.iter().sum()
    }

    /// Take out the finished batches' rows as a table, so a writer can go on with them while
    /// more rows come. The builder keeps its columns and their kinds; a later row can still
    /// widen a kind or add a column, so a later table's schema can differ from this one's.
    pub fn take_table(&mut self) -> Result<Table> {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| Field::new(&c.name, c.kind.data_type(), true))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let lens = std::mem::take(&mut self.batch_lens);
        let mut out = Vec::with_capacity(lens.len());
        let mut columns: Vec<_> = self
            .columns
            .iter_mut()
            .map(|c| (c.kind.clone(), std::mem::take(&mut c.chunks).into_iter()))
            .collect();
        for rows in lens {
            let mut arrays = Vec::with_capacity(columns.len());
            for (kind, chunks) in &mut columns {
                arrays.push(match chunks.next().flatten() {
                    Some(a) => a,
                    None => kind.nulls(rows),
                });
            }
            let options = RecordBatchOptions::new().with_row_count(Some(rows));
            let batch = RecordBatch::try_new_with_options(Arc::clone(&schema), arrays, &options)
                .map_err(|e| Error::internal(format!("a table batch: {e}")))?;
            out.push(batch);
        }
        Ok(Table {
            batches: coalesce(&schema, out)?,
            schema,
        })
    }

    fn column_index(&mut self, name: &str) -> Option<usize> {
        // Rows mostly set their names in one order: try the column after the last one first.
        let guess = self.last.wrapping_add(1);
        if self.columns.get(guess).is_some_and(|c| c.name == name) {
            self.last = guess;
            return Some(guess);
        }
        if let Some(i) = self.find(name) {
            self.last = i;
            return Some(i);
        }
        (!self.chosen).then(|| self.column(name))
    }

    fn column(&mut self, name: &str) -> usize {
        if let Some(i) = self.find(name) {
            return i;
        }
        let done = self.batch_lens.len();
        let mut cur = Vec::with_capacity(BATCH_ROWS.min(1024));
        cur.resize_with(self.batch_rows, || Cell::Null);
        self.columns.push(Column {
            name: name.to_string(),
            kind: ColKind::Null,
            chunks: vec![None; done],
            cur,
            first: None,
        });
        let i = self.columns.len() - 1;
        self.by_name.insert(name.to_string(), i);
        self.last = i;
        i
    }

    fn finish_batch(&mut self) -> Result<()> {
        let rows = self.batch_rows;
        // Each column's array on a core of its own.
        self.columns
            .par_iter_mut()
            .try_for_each(|col| -> Result<()> {
                let cells = std::mem::take(&mut col.cur);
                if col.kind == ColKind::Null {
                    col.chunks.push(None);
                    return Ok(());
                }
                let array = build(&col.kind, cells, rows)
                    .map_err(|why| Error::invalid(format!("column `{}`", col.name), why))?;
                col.chunks.push(Some(array));
                Ok(())
            })?;
        self.batch_lens.push(rows);
        self.batch_rows = 0;
        Ok(())
    }
}

/// `batches` joined where they are small (appended parts: a pack's matches each), in
/// order, into batches of at most [`BATCH_ROWS`] rows where they fit; on every core.
fn coalesce(schema: &SchemaRef, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    let mut groups: Vec<Vec<RecordBatch>> = Vec::new();
    let mut rows = 0;
    for b in batches {
        match groups.last_mut() {
            Some(g) if rows + b.num_rows() <= BATCH_ROWS => {
                rows += b.num_rows();
                g.push(b);
            }
            _ => {
                rows = b.num_rows();
                groups.push(vec![b]);
            }
        }
    }
    groups
        .into_par_iter()
        .map(|mut g| match g.len() {
            1 => g
                .pop()
                .ok_or_else(|| Error::internal("an empty group of batches")),
            _ => concat_batches(schema, &g)
                .map_err(|e| Error::internal(format!("joining table batches: {e}"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float32Type, Float64Type, Int64Type};
    use arrow_array::{Array, ListArray};
    use arrow_schema::DataType;

    use super::*;
    use crate::object::tensor::Dtype;

    fn tensor(dtype: Dtype, shape: &[u64], values: &[f32]) -> Cell {
        Cell::Tensor(TensorCell {
            dtype,
            shape: shape.to_vec(),
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        })
    }

    fn column<'t>(t: &'t Table, name: &str) -> Vec<&'t ArrayRef> {
        let i = t.schema.index_of(name).expect("column");
        t.batches.iter().map(|b| b.column(i)).collect()
    }

    #[test]
    fn integers_turn_float_when_a_float_comes_after_a_whole_batch() {
        let mut b = TableBuilder::new(None);
        for i in 0..BATCH_ROWS as i64 + 3 {
            let cell = if i == BATCH_ROWS as i64 + 1 {
                Cell::Float(0.5)
            } else {
                Cell::Int(i)
            };
            b.set("x", cell).expect("set");
            b.end_row().expect("row");
        }
        let t = b.finish().expect("table");
        assert_eq!(t.num_rows(), BATCH_ROWS + 3);
        assert_eq!(t.schema.field(0).data_type(), &DataType::Float64);
        let chunks = column(&t, "x");
        assert_eq!(chunks.len(), 2);
        let first = chunks[0].as_primitive::<Float64Type>();
        assert_eq!(first.value(7), 7.0);
        let second = chunks[1].as_primitive::<Float64Type>();
        assert_eq!(second.values().to_vec(), vec![65536.0, 0.5, 65538.0]);
    }

    #[test]
    fn scalars_of_mixed_types_become_the_text_queries_compare() {
        let mut b = TableBuilder::new(None);
        for c in [
            Cell::Int(3),
            Cell::Bool(true),
            Cell::Float(2.5),
            Cell::Str("x".into()),
        ] {
            b.set("v", c).expect("set");
            b.end_row().expect("row");
        }
        let t = b.finish().expect("table");
        let v = column(&t, "v")[0].as_string::<i32>();
        let got: Vec<_> = v.iter().map(|s| s.map(str::to_string)).collect();
        let want = ["3", "true", "2.5", "x"].map(|s| Some(s.to_string()));
        assert_eq!(got, want);
    }

    #[test]
    fn a_column_first_seen_late_is_null_before_and_names_keep_first_appearance() {
        let mut b = TableBuilder::new(None);
        for i in 0..BATCH_ROWS + 2 {
            b.set("a", Cell::Int(1)).expect("set");
            if i == BATCH_ROWS + 1 {
                b.set("late", Cell::Str("here".into())).expect("set");
                // A second value of a name in one row is ignored: the first stays.
                b.set("late", Cell::Str("again".into())).expect("set");
            }
            b.end_row().expect("row");
        }
        let t = b.finish().expect("table");
        let names: Vec<_> = t.schema.fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["a", "late"]);
        let late = column(&t, "late");
        assert_eq!(late[0].null_count(), BATCH_ROWS);
        assert_eq!(late[0].data_type(), &DataType::Utf8);
        let second = late[1].as_string::<i32>();
        assert!(second.is_null(0));
        assert_eq!(second.value(1), "here");
    }

    #[test]
    fn tensors_are_nested_fixed_size_lists_until_a_shape_differs() {
        let mut b = TableBuilder::new(None);
        b.set("t", tensor(Dtype::F32, &[2, 3], &[1., 2., 3., 4., 5., 6.]))
            .expect("set");
        b.end_row().expect("row");
        b.end_row().expect("row");
        let fixed = TableBuilder::finish(std::mem::replace(&mut b, TableBuilder::new(None)));
        let fixed = fixed.expect("table");
        let dt = fixed.schema.field(0).data_type().clone();
        let DataType::FixedSizeList(inner, 2) = dt else {
            panic!("{dt}");
        };
        assert!(
            matches!(inner.data_type(), DataType::FixedSizeList(f, 3) if f.data_type() == &DataType::Float32)
        );
        assert_eq!(column(&fixed, "t")[0].null_count(), 1);

        for (shape, v) in [
            (vec![2u64, 2], vec![1f32, 2., 3., 4.]),
            (vec![1, 2], vec![5., 6.]),
        ] {
            b.set("t", tensor(Dtype::F32, &shape, &v)).expect("set");
            b.end_row().expect("row");
        }
        b.end_row().expect("row");
        let t = b.finish().expect("table");
        let outer = column(&t, "t")[0]
            .as_any()
            .downcast_ref::<ListArray>()
            .expect("list");
        assert_eq!(outer.value_offsets(), &[0, 2, 3, 3]);
        assert!(outer.is_null(2));
        let inner = outer
            .values()
            .as_any()
            .downcast_ref::<ListArray>()
            .expect("inner");
        assert_eq!(inner.value_offsets(), &[0, 2, 4, 6]);
        let flat = inner.values().as_primitive::<Float32Type>();
        assert_eq!(flat.values().to_vec(), vec![1., 2., 3., 4., 5., 6.]);
    }

    #[test]
    fn fixed_tensors_of_a_finished_batch_turn_ragged() {
        let mut b = TableBuilder::new(None);
        for i in 0..=BATCH_ROWS {
            let cell = match i == BATCH_ROWS {
                true => tensor(Dtype::F32, &[3], &[7., 8., 9.]),
                false => tensor(Dtype::F32, &[2], &[i as f32, 1.]),
            };
            b.set("t", cell).expect("set");
            b.end_row().expect("row");
        }
        let t = b.finish().expect("table");
        let chunks = column(&t, "t");
        let first = chunks[0]
            .as_any()
            .downcast_ref::<ListArray>()
            .expect("list");
        assert_eq!(first.value_offsets()[..3], [0, 2, 4]);
        assert_eq!(
            first
                .value(5)
                .as_primitive::<Float32Type>()
                .values()
                .to_vec(),
            vec![5., 1.]
        );
        let last = chunks[1]
            .as_any()
            .downcast_ref::<ListArray>()
            .expect("list");
        assert_eq!(
            last.value(0)
                .as_primitive::<Float32Type>()
                .values()
                .to_vec(),
            vec![7., 8., 9.]
        );
    }

    #[test]
    fn values_a_column_cannot_hold_name_it_and_say_why() {
        let mut b = TableBuilder::new(None);
        b.set("t", tensor(Dtype::F32, &[2], &[1., 2.]))
            .expect("set");
        b.end_row().expect("row");
        let e = b.set("t", Cell::Int(3)).expect_err("mixed");
        assert!(
            e.contains("column `t` is an integer") && e.contains("F32 tensors"),
            "{e}"
        );
        let e = b
            .set(
                "t",
                Cell::Tensor(TensorCell {
                    dtype: Dtype::I64,
                    shape: vec![1],
                    data: vec![0; 8],
                }),
            )
            .expect_err("dtype");
        assert!(e.contains("i64") || e.contains("I64"), "{e}");
        let e = b
            .set(
                "u",
                Cell::Tensor(TensorCell {
                    dtype: Dtype::BF16,
                    shape: vec![1],
                    data: vec![0; 2],
                }),
            )
            .expect_err("bf16");
        assert!(e.contains("no Arrow type"), "{e}");
    }

    #[test]
    fn chosen_columns_come_in_their_order_and_others_are_left_out() {
        let cols = ["b".to_string(), "a".to_string(), "missing".to_string()];
        let mut b = TableBuilder::new(Some(&cols));
        assert!(b.wants("a") && !b.wants("c"));
        b.set("a", Cell::Int(1)).expect("set");
        b.set("c", Cell::Int(2)).expect("set");
        b.set("b", Cell::Int(3)).expect("set");
        b.end_row().expect("row");
        let t = b.finish().expect("table");
        let names: Vec<_> = t.schema.fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["b", "a", "missing"]);
        assert_eq!(column(&t, "b")[0].as_primitive::<Int64Type>().value(0), 3);
        assert_eq!(column(&t, "missing")[0].data_type(), &DataType::Null);
    }

    /// Row `i` of the rows the part tests use: an integer column that turns float late, a
    /// tensor column whose shape changes, a column only early rows have, one only late rows
    /// have.
    fn row(b: &mut TableBuilder, i: usize) {
        let x = i as i64;
        let a = if i == 69_000 {
            Cell::Float(0.5)
        } else {
            Cell::Int(x)
        };
        b.set("a", a).expect("a");
        let shape: &[u64] = if i < 50_000 { &[2] } else { &[3] };
        let values: Vec<f32> = (0..shape[0]).map(|k| (i + k as usize) as f32).collect();
        b.set("t", tensor(Dtype::F32, shape, &values)).expect("t");
        if i < 3 {
            b.set("gone", Cell::Str(format!("s{i}"))).expect("gone");
        }
        if i > 60_000 && i.is_multiple_of(2) {
            b.set("late", Cell::Bool(true)).expect("late");
        }
        b.end_row().expect("row");
    }

    /// Each column of a table as one array.
    fn whole(t: &Table) -> Vec<ArrayRef> {
        (0..t.schema.fields().len())
            .map(|i| {
                let parts: Vec<&dyn Array> =
                    t.batches.iter().map(|b| b.column(i).as_ref()).collect();
                arrow_select::concat::concat(&parts).expect("concat")
            })
            .collect()
    }

    #[test]
    fn parts_appended_in_order_make_the_table_rows_set_one_by_one_make() {
        let rows = 70_001;
        let mut one = TableBuilder::new(None);
        for i in 0..rows {
            row(&mut one, i);
        }
        let one = one.finish().expect("table");
        // Parts of every size: one row, a few, most of a batch, more than a batch.
        let mut b = TableBuilder::new(None);
        let mut start = 0;
        for len in [1, 2, 5, 40_000, 70, BATCH_ROWS + 10] {
            let mut part = TableBuilder::new(None);
            for i in start..(start + len).min(rows) {
                row(&mut part, i);
            }
            if len.is_multiple_of(2) {
                part.seal().expect("seal");
            }
            b.append(part, &|r| format!("row {r}")).expect("append");
            start += len;
        }
        let parts = b.finish().expect("table");
        assert_eq!(parts.schema, one.schema);
        assert_eq!(parts.num_rows(), rows);
        assert!(parts.batches.iter().all(|b| b.num_rows() <= BATCH_ROWS));
        assert_eq!(parts.batches.len(), 2, "small parts are joined");
        let (got, want) = (whole(&parts), whole(&one));
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.as_ref(), w.as_ref());
        }
        // The checks above would pass on two empty tables: look at values.
        assert_eq!(got[0].as_primitive::<Float64Type>().value(69_000), 0.5);
        assert_eq!(got[0].as_primitive::<Float64Type>().value(68_999), 68_999.0);
        assert_eq!(parts.schema.field(3).name(), "late");
        assert_eq!(got[3].null_count(), 60_001 + 4_999 + 1);
        let t = got[1].as_list::<i32>();
        assert_eq!(
            t.value(50_000)
                .as_primitive::<Float32Type>()
                .values()
                .to_vec(),
            vec![50_000.0, 50_001.0, 50_002.0]
        );
    }

    #[test]
    fn a_part_the_table_cannot_take_names_its_first_row_that_differs() {
        let mut b = TableBuilder::new(None);
        let mut part = TableBuilder::new(None);
        part.set("v", tensor(Dtype::F32, &[2], &[1.0, 2.0]))
            .expect("set");
        part.end_row().expect("row");
        b.append(part, &|r| format!("entry {r}")).expect("append");
        let mut part = TableBuilder::new(None);
        for i in 0..3 {
            if i > 0 {
                part.set("v", Cell::Str(format!("x{i}"))).expect("set");
            }
            part.end_row().expect("row");
        }
        let e = b
            .append(part, &|r| format!("entry {}", 100 + r))
            .expect_err("a string where tensors are")
            .to_string();
        assert!(
            e.contains("entry 101") && e.contains("column `v`") && e.contains("a string"),
            "{e}"
        );
    }
}
