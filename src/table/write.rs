//! A table written as a Parquet file (zstd-compressed columns, as pyarrow writes by default with
//! `compression="zstd"`) or an Arrow IPC file (`.arrow`, Feather v2; uncompressed, so readers
//! can map it without copying).

use std::io::Write;

use arrow_ipc::writer::FileWriter;
use arrow_schema::DataType;
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

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
            let mut w = ArrowWriter::try_new(out, table.schema.clone(), Some(props))
                .map_err(|e| fail(&e))?;
            for b in &table.batches {
                w.write(b).map_err(|e| fail(&e))?;
            }
            w.into_inner().map_err(|e| fail(&e))
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
