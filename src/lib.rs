#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::indexing_slicing))]

pub mod archive;
pub mod codec;
pub mod document;
pub mod error;
pub mod format;
pub mod hash;
mod index;
pub mod info;
pub mod interop;
mod locator;
pub mod mapped;
pub mod merge;
pub mod migrate;
pub mod object;
pub mod query;
pub mod reader;
#[cfg(feature = "remote")]
pub mod remote;
mod segment;
pub mod store_dir;
pub mod summary;
#[cfg(feature = "table")]
pub mod table;
pub mod tags;
pub mod totals;

pub use archive::{
    Archive, ArchiveBuilder, CopyCounts, GcOptions, GcReport, IndexWaits, LoggedBatch, PairRow,
    PutOptions, Stats, Tolerance, VerifyReport, Writer, WriterTotals,
};
pub use codec::Codec;
pub use error::{Error, Result};
pub use hash::ObjectHash;
pub use index::{Names, SLED_SEGMENT};
pub use info::{EntryInfo, ObjectInfo};
pub use mapped::MappedObject;
pub use merge::MergeReport;
pub use object::record::{Record, Value};
pub use object::tensor::{Dtype, Shape, Tensor, TensorView};
pub use object::{Categorical, Kind, Object};
pub use reader::{ArchiveReader, ReadObject};
