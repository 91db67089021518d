//! A table written as a Parquet file (zstd-compressed columns, as pyarrow writes by default with
//! `compression="zstd"`) or an Arrow IPC file (`.arrow`, Feather v2; uncompressed, so readers
//! can map it without copying).

use std::io::Write;

use arrow_ipc::writer::FileWriter;
use arrow_schema::DataType;
use parquet::arrow::arrow_writer::{ArrowLeafColumn, compute_leaves};
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::{ParquetError, Result as ParquetResult};
use parquet::file::properties::{DEFAULT_MAX_ROW_GROUP_ROW_COUNT, WriterProperties};
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

/// Rows per Parquet row group (pyarrow's and the parquet crate's default, 1 Mi).
const ROW_GROUP_ROWS: usize = DEFAULT_MAX_ROW_GROUP_ROW_COUNT;

/// Write `table` through `w` in row groups of at most `group_rows` (whole batches), each
/// group's columns encoded and compressed on every core (as the parquet crate's
/// `ArrowColumnWriter` is meant to be used), then appended in order.
fn parquet_columns<W: Write + Send>(
    table: &Table,
    w: ArrowWriter<W>,
    group_rows: usize,
) -> ParquetResult<W> {
    let (mut file, columns) = w.into_serialized_writer()?;
    let mut batches = table.batches.as_slice();
    let mut group = 0;
    while !batches.is_empty() {
        // Whole batches, up to a row group's rows (at least one batch).
        let mut rows = 0;
        let take = batches
            .iter()
            .take_while(|b| {
                rows += b.num_rows();
                rows <= group_rows
            })
            .count()
            .max(1);
        let (these, rest) = batches.split_at(take.min(batches.len()));
        batches = rest;
        // Each leaf column's values, batch by batch, for its own writer.
        let writers = columns.create_column_writers(group)?;
        let mut leaves: Vec<Vec<ArrowLeafColumn>> = writers.iter().map(|_| Vec::new()).collect();
        for batch in these {
            let mut at = 0;
            for (field, array) in table.schema.fields().iter().zip(batch.columns()) {
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
        row_group.close()?;
        group += 1;
    }
    // Writes the footer.
    file.into_inner()
}

/// Write `table` to `out` in `format`; errors name `name` (the output).
pub fn write<W: Write + Send>(table: &Table, format: TableFormat, name: &str, out: W) -> Result<W> {
    let fail = |e: &dyn std::fmt::Display| Error::invalid(name, format!("cannot write: {e}"));
    match format {
        TableFormat::Parquet => {
            let mut props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::default()));
            // Dictionaries pay only for repeated values: not for the elements of tensors
            // (floats, mostly) nor for hashes, which are unique.
            let leaves = ArrowSchemaConverter::new()
                .convert(&table.schema)
                .map_err(|e| fail(&e))?;
            for leaf in leaves.columns() {
                let root = leaf.path().parts().first().map(String::as_str);
                let field = root.and_then(|r| table.schema.field_with_name(r).ok());
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
            let props = props.build();
            let w = ArrowWriter::try_new(out, table.schema.clone(), Some(props))
                .map_err(|e| fail(&e))?;
            parquet_columns(table, w, ROW_GROUP_ROWS).map_err(|e| fail(&e))
        }
        TableFormat::Arrow => {
            let mut w = FileWriter::try_new(out, &table.schema).map_err(|e| fail(&e))?;
            for b in &table.batches {
                w.write(b).map_err(|e| fail(&e))?;
            }
            w.finish().map_err(|e| fail(&e))?;
            w.into_inner().map_err(|e| fail(&e))
        }
    }
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
        let w = ArrowWriter::try_new(file, table.schema.clone(), None).expect("writer");
        let file = parquet_columns(&table, w, 2 * crate::table::BATCH_ROWS).expect("write");
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
