//! `ArchiveReader`: reads objects through the lookup tables (`index/lookup/`), without the
//! index lock and without opening sled. This is what makes a one-shot `archive get <hash>`
//! fast on a big store (sled takes ~100 ms to open at a million objects) and lets it run
//! while another process holds the index.
//!
//! The tables are hints: every location is checked against the hash in the frame it points at,
//! and a miss is reported as `None`, so the caller can fall back to `Archive`, which knows
//! everything sled knows.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::archive::{INDEX_DIR, MappedObject, ObjectFrame, SEGMENTS_DIR, read_store_header};
use crate::error::{Error, Result};
use crate::format::frame::FrameHeader;
use crate::hash::{ObjectHash, parse_hex_nibbles};
use crate::index::LOOKUP_DIR;
use crate::index::lookup::{Located, Tables, prefix_of};
use crate::object::Object;
use crate::segment::reader::Maps;

/// Where objects can be read from by hash: an open `Archive`, or an `ArchiveReader`. Code
/// that follows references (records, categoricals) takes either.
pub trait ReadObject {
    /// Decode and verify an object; `Error::NotFound` if this source does not know it.
    fn read_object(&self, hash: &ObjectHash) -> Result<Object>;
}

impl ReadObject for crate::archive::Archive {
    fn read_object(&self, hash: &ObjectHash) -> Result<Object> {
        self.get(hash)
    }
}

impl ReadObject for ArchiveReader {
    fn read_object(&self, hash: &ObjectHash) -> Result<Object> {
        self.get(hash)?
            .ok_or_else(|| Error::NotFound(hash.to_string()))
    }
}

/// A lock-free reader of a store's objects.
pub struct ArchiveReader {
    segments_dir: PathBuf,
    tables: Tables,
    maps: Maps,
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
            segments_dir: root.join(SEGMENTS_DIR),
            tables,
            maps: Maps::default(),
        }))
    }

    /// The full hash of the frame a table entry points at, if it is a whole object frame.
    fn hash_at(&self, at: &Located) -> Option<ObjectHash> {
        let path = self.segments_dir.join(&at.segment);
        let map = self.maps.get(&path, at.offset + 64).ok()?;
        let header = FrameHeader::decode(map.get(at.offset as usize..)?).ok()?;
        Some(header.hash).filter(|h| prefix_of(h) == at.prefix)
    }

    /// Resolve a full hash or a unique prefix (at least 4 hex digits) among the objects the
    /// tables know. `Ok(None)` if they know none that matches.
    pub fn resolve(&self, prefix: &str) -> Result<Option<ObjectHash>> {
        let nibbles = parse_hex_nibbles(prefix)
            .filter(|n| (4..=64).contains(&n.len()))
            .ok_or_else(|| {
                Error::invalid(prefix, "not a hash or hash prefix (4 to 64 hex digits)")
            })?;
        let (mut lo, mut hi) = (0u64, 0u64);
        for i in 0..16 {
            let n = nibbles.get(i).copied();
            lo = (lo << 4) | u64::from(n.unwrap_or(0));
            hi = (hi << 4) | u64::from(n.unwrap_or(0xf));
        }
        let matches = |h: &ObjectHash| {
            let hex = h.to_string();
            hex.len() >= nibbles.len()
                && hex
                    .chars()
                    .zip(prefix.chars())
                    .all(|(a, b)| a.eq_ignore_ascii_case(&b))
        };
        let found: BTreeSet<ObjectHash> = self
            .tables
            .range(lo, hi, 64)
            .iter()
            .filter_map(|at| self.hash_at(at))
            .filter(matches)
            .collect();
        let found: Vec<ObjectHash> = found.into_iter().collect();
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            _ => Err(Error::Ambiguous {
                prefix: prefix.to_owned(),
                candidates: found,
            }),
        }
    }

    fn frame(&self, hash: &ObjectHash) -> Result<Option<ObjectFrame>> {
        let p = prefix_of(hash);
        for at in self.tables.range(p, p, 16) {
            if self.hash_at(&at) == Some(*hash) {
                let path = self.segments_dir.join(&at.segment);
                return ObjectFrame::read(&self.maps, &path, at.offset, hash).map(Some);
            }
        }
        Ok(None)
    }

    /// True if the tables know the object (its frame header says so; nothing is decoded).
    pub fn contains(&self, hash: &ObjectHash) -> bool {
        let p = prefix_of(hash);
        self.tables
            .range(p, p, 16)
            .iter()
            .any(|at| self.hash_at(at) == Some(*hash))
    }

    /// Decode and verify an object; `Ok(None)` if the tables do not know it.
    pub fn get(&self, hash: &ObjectHash) -> Result<Option<Object>> {
        self.frame(hash)?.map(|f| f.object()).transpose()
    }

    /// As `Archive::map` (`verify`) or `Archive::map_unchecked`; `Ok(None)` if unknown.
    pub fn map(&self, hash: &ObjectHash, verify: bool) -> Result<Option<MappedObject>> {
        self.frame(hash)?.map(|f| f.mapped(verify)).transpose()
    }
}
