//! `ArchiveReader`: reads objects through the lookup tables (`index/lookup/`), without the
//! index lock and without opening sled. This is what makes a one-shot `archive get <hash>`
//! fast on a big store (sled takes ~100 ms to open at a million objects) and lets it run
//! while another process holds the index.
//!
//! The tables are hints: every location is checked against the hash in the frame it points at,
//! and a miss is reported as `None`, so the caller can fall back to `Archive`, which knows
//! everything sled knows.

use std::path::Path;

use crate::error::{Error, Result};
use crate::hash::ObjectHash;
use crate::index::LOOKUP_DIR;
use crate::index::lookup::{Tables, prefix_of};
use crate::locator::{Locator, Source, resolve_prefix};
use crate::mapped::MappedObject;
use crate::object::Object;
use crate::store_dir::{INDEX_DIR, SEGMENTS_DIR, read_store_header};

/// Where objects can be read from by hash: an open `Archive`, or an `ArchiveReader`. Code
/// that follows references (records, categoricals) takes either.
pub trait ReadObject {
    /// Decode and verify an object; `Error::NotFound` if this source does not know it.
    fn read_object(&self, hash: &ObjectHash) -> Result<Object>;
}

impl ReadObject for ArchiveReader {
    fn read_object(&self, hash: &ObjectHash) -> Result<Object> {
        self.get(hash)?
            .ok_or_else(|| Error::NotFound(hash.to_string()))
    }
}

/// A lock-free reader of a store's objects.
pub struct ArchiveReader {
    tables: Tables,
    locator: Locator,
}

impl ArchiveReader {
    /// Open the store at `path` for reading. `Ok(None)` if it has no lookup tables (they are
    /// rebuilt the next time an `Archive` opens it).
    pub fn open(path: impl AsRef<Path>) -> Result<Option<ArchiveReader>> {
        let root = path.as_ref();
        read_store_header(root)?;
        let Some(tables) = Tables::open(&root.join(INDEX_DIR).join(LOOKUP_DIR)) else {
            return Ok(None);
        };
        Ok(Some(ArchiveReader {
            tables,
            locator: Locator::new(root.join(SEGMENTS_DIR)),
        }))
    }

    /// Resolve a full hash or a unique prefix (at least 4 hex digits) among the objects the
    /// tables know. `Ok(None)` if they know none that matches.
    pub fn resolve(&self, prefix: &str) -> Result<Option<ObjectHash>> {
        resolve_prefix(
            prefix,
            Vec::new(),
            &|lo, hi| self.tables.range(lo, hi, 64),
            &|at| self.locator.hashes_at(at),
        )
    }

    fn source(&self, hash: &ObjectHash) -> Result<Option<Source>> {
        let p = prefix_of(hash);
        self.locator.find(&self.tables.range(p, p, 16), hash)
    }

    /// Where the tables say `hash` may be (unchecked).
    pub(crate) fn candidates(&self, hash: &ObjectHash) -> Vec<crate::index::lookup::Located> {
        let p = prefix_of(hash);
        self.tables.range(p, p, 16)
    }

    /// True if the tables know the object (checked against its frame or pack).
    pub fn contains(&self, hash: &ObjectHash) -> bool {
        self.source(hash).ok().flatten().is_some()
    }

    /// Decode and verify an object; `Ok(None)` if the tables do not know it.
    pub fn get(&self, hash: &ObjectHash) -> Result<Option<Object>> {
        self.source(hash)?.map(|f| f.object()).transpose()
    }

    /// What an object is (kind, dtype, shape, sizes), without decoding it; `Ok(None)` if the
    /// tables do not know it.
    pub fn info(&self, hash: &ObjectHash) -> Result<Option<crate::ObjectInfo>> {
        self.source(hash)?.map(|f| f.info()).transpose()
    }

    /// As `Archive::map` (`verify`) or `Archive::map_unchecked`; `Ok(None)` if unknown.
    pub fn map(&self, hash: &ObjectHash, verify: bool) -> Result<Option<MappedObject>> {
        self.source(hash)?.map(|f| f.mapped(verify)).transpose()
    }
}
