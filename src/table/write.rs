//! A table written as a Parquet file (zstd-compressed columns, as pyarrow writes by default with
//! `compression="zstd"`) or an Arrow IPC file (`.arrow`, Feather v2; uncompressed, so readers
//! can map it without copying).

use std::io::Write;

use arrow_array::RecordBatch;
use arrow_ipc::writer::FileWriter;
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::arrow_writer::{ArrowLeafColumn, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::{ParquetError, Result as ParquetResult};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use rayon::prelude::*;

use super::Table;
use crate::error::{Error, Result};

/// A file format for tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// Apache Parquet.
    Parquet,
    /// The Arrow IPC file format (Feather v2).
    Arrow,
}

impl TableFormat {
    /// The format a file name's extension names, if it names a table format.
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "parquet" | "pq" => Some(TableFormat::Parquet),
            "arrow" | "feather" | "ipc" => Some(TableFormat::Arrow),
            _ => None,
        }
    }

    /// The format's name, as `--format` takes it.
    pub fn name(self) -> &'static str {
        match self {
            TableFormat::Parquet => "parquet",
            TableFormat::Arrow => "arrow",
        }
    }

    /// Parse a `--format` name.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "parquet" => Some(TableFormat::Parquet),
            "arrow" | "feather" | "ipc" => Some(TableFormat::Arrow),
            _ => None,
        }
    }
}

/// Rows per Parquet row group: four batches. A streamed export writes a group as soon as its
/// rows are read, so its memory is that of a few groups whatever the rows (pyarrow's default
/// is 1 Mi; readers take either alike).
const ROW_GROUP_ROWS: usize = 4 * super::BATCH_ROWS;

/// A table file written as its rows come: [`push`](Self::push) tables of one schema, then
/// [`finish`](Self::finish). Parquet goes in row groups of whole batches, each group's columns
/// encoded and compressed on every core (as the parquet crate's `ArrowColumnWriter` is meant to
/// be used), then appended in order; Arrow IPC a batch at a time.
pub struct TableStream<W: Write + Send> {
    schema: SchemaRef,
    name: String,
    out: Out<W>,
    /// Parquet: batches waiting for a row group's rows.
    pending: Vec<RecordBatch>,
    group_rows: usize,
    group: usize,
}

enum Out<W: Write + Send> {
    Parquet(SerializedFileWriter<W>, ArrowRowGroupWriterFactory),
    Arrow(FileWriter<W>),
}

impl<W: Write + Send> TableStream<W> {
    /// A file of `schema` in `format` through `out`; errors name `name` (the output).
    pub fn new(schema: &SchemaRef, format: TableFormat, name: &str, out: W) -> Result<Self> {
        let failed = |e: &dyn std::fmt::Display| fail(name, e);
        let out = match format {
            TableFormat::Parquet => {
                let props = parquet_properties(schema).map_err(|e| failed(&e))?;
                let w = ArrowWriter::try_new(out, schema.clone(), Some(props))
                    .map_err(|e| failed(&e))?;
                let (file, columns) = w.into_serialized_writer().map_err(|e| failed(&e))?;
                Out::Parquet(file, columns)
            }
            TableFormat::Arrow => {
                Out::Arrow(FileWriter::try_new(out, schema).map_err(|e| failed(&e))?)
            }
        };
        Ok(TableStream {
            schema: schema.clone(),
            name: name.to_owned(),
            out,
            pending: Vec::new(),
            group_rows: ROW_GROUP_ROWS,
            group: 0,
        })
    }

    /// Row groups of at most `rows` rows (whole batches; a bigger batch is a group alone).
    pub fn with_group_rows(mut self, rows: usize) -> Self {
        self.group_rows = rows.max(1);
        self
    }

    /// The schema every table pushed must have.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Write `table`'s rows (its schema must be this stream's), a row group at a time.
    pub fn push(&mut self, table: Table) -> Result<()> {
        if table.schema != self.schema {
            return Err(Error::internal(format!(
                "{}: a table of another schema pushed",
                self.name
            )));
        }
        let batches = table.batches.into_iter().filter(|b| b.num_rows() > 0);
        match &mut self.out {
            Out::Arrow(w) => {
                for b in batches {
                    w.write(&b).map_err(|e| fail(&self.name, &e))?;
                }
            }
            Out::Parquet(..) => {
                self.pending.extend(batches);
                while self
                    .pending
                    .iter()
                    .map(RecordBatch::num_rows)
                    .sum::<usize>()
                    >= self.group_rows
                {
                    self.row_group()?;
                }
            }
        }
        Ok(())
    }

    /// Write what is left and the footer; the output back.
    pub fn finish(mut self) -> Result<W> {
        while !self.pending.is_empty() {
            self.row_group()?;
        }
        match self.out {
            Out::Parquet(file, _) => file.into_inner().map_err(|e| fail(&self.name, &e)),
            Out::Arrow(mut w) => {
                w.finish().map_err(|e| fail(&self.name, &e))?;
                w.into_inner().map_err(|e| fail(&self.name, &e))
            }
        }
    }

    /// Write the pending batches' first row group: whole batches, up to a group's rows (at
    /// least one batch).
    fn row_group(&mut self) -> Result<()> {
        let Out::Parquet(file, columns) = &mut self.out else {
            return Ok(());
        };
        let mut rows = 0;
        let take = self
            .pending
            .iter()
            .take_while(|b| {
                rows += b.num_rows();
                rows <= self.group_rows
            })
            .count()
            .max(1)
            .min(self.pending.len());
        let these: Vec<RecordBatch> = self.pending.drain(..take).collect();
        write_row_group(file, columns, self.group, &self.schema, &these)
            .map_err(|e| fail(&self.name, &e))?;
        self.group += 1;
        Ok(())
    }
}

fn fail(name: &str, e: &dyn std::fmt::Display) -> Error {
    Error::invalid(name, format!("cannot write: {e}"))
}

/// zstd for every column; dictionaries only where values repeat: not for the elements of
/// tensors (floats, mostly) nor for hashes, which are unique.
fn parquet_properties(schema: &SchemaRef) -> ParquetResult<WriterProperties> {
    let mut props =
        WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default()));
    let leaves = ArrowSchemaConverter::new().convert(schema)?;
    for leaf in leaves.columns() {
        let root = leaf.path().parts().first().map(String::as_str);
        let field = root.and_then(|r| schema.field_with_name(r).ok());
        let plain = field.is_some_and(|f| {
            f.name() == "hash"
                || matches!(
                    f.data_type(),
                    DataType::FixedSizeList(..) | DataType::List(..)
                )
        });
        if plain {
            props = props.set_column_dictionary_enabled(leaf.path().clone(), false);
        }
    }
    Ok(props.build())
}

/// One row group of `batches`: each leaf column's values, batch by batch, encoded by a writer
/// of its own on every core, then the chunks appended in order.
fn write_row_group<W: Write + Send>(
    file: &mut SerializedFileWriter<W>,
    columns: &ArrowRowGroupWriterFactory,
    group: usize,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> ParquetResult<()> {
    let writers = columns.create_column_writers(group)?;
    let mut leaves: Vec<Vec<ArrowLeafColumn>> = writers.iter().map(|_| Vec::new()).collect();
    for batch in batches {
        let mut at = 0;
        for (field, array) in schema.fields().iter().zip(batch.columns()) {
            for leaf in compute_leaves(field, array)? {
                leaves
                    .get_mut(at)
                    .ok_or_else(|| ParquetError::General("more leaves than columns".into()))?
                    .push(leaf);
                at += 1;
            }
        }
    }
    let chunks = writers
        .into_par_iter()
        .zip(leaves)
        .map(|(mut w, leaves)| {
            for leaf in &leaves {
                w.write(leaf)?;
            }
            w.close()
        })
        .collect::<ParquetResult<Vec<_>>>()?;
    let mut row_group = file.next_row_group()?;
    for chunk in chunks {
        chunk.append_to_row_group(&mut row_group)?;
    }
    row_group.close().map(|_| ())
}

/// Write `table` to `out` in `format`; errors name `name` (the output).
pub fn write<W: Write + Send>(table: &Table, format: TableFormat, name: &str, out: W) -> Result<W> {
    let mut s = TableStream::new(&table.schema, format, name, out)?;
    s.push(table.clone())?;
    s.finish()
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;
    use crate::table::{Cell, TableBuilder};

    #[test]
    fn row_groups_written_column_by_column_read_back_in_order() {
        // Three parts, three batches: two row groups of at most 2 batches' rows.
        let mut b = TableBuilder::new(None);
        for part_rows in [70_000, 5, 70_000] {
            let mut part = TableBuilder::new(None);
            for _ in 0..part_rows {
                let n = b.rows() + part.rows();
                part.set("n", Cell::Int(n as i64)).expect("n");
                part.set("s", Cell::Str(format!("v{}", n % 7))).expect("s");
                part.end_row().expect("row");
            }
            b.append(part, &|r| r.to_string()).expect("append");
        }
        let table = b.finish().expect("table");
        let batches = table.batches.len();
        let file = tempfile::tempfile().expect("a file");
        let mut w = TableStream::new(&table.schema, TableFormat::Parquet, "t", file)
            .expect("w")
            .with_group_rows(2 * crate::table::BATCH_ROWS);
        w.push(table).expect("push");
        let file = w.finish().expect("write");
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).expect("read");
        assert_eq!(reader.metadata().num_row_groups(), 2, "{batches} batches");
        let mut next = 0i64;
        for batch in reader.build().expect("reader") {
            let batch = batch.expect("batch");
            let n = batch.column(0).as_primitive::<Int64Type>();
            let s = batch.column(1).as_string::<i32>();
            for i in 0..batch.num_rows() {
                assert_eq!(n.value(i), next);
                assert_eq!(s.value(i), format!("v{}", next % 7));
                next += 1;
            }
        }
        assert_eq!(next, 140_005);
    }
}
