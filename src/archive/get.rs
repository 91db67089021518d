//! Get: an object by hash, decoded and verified (`get`), or its bytes, zero-copy when stored
//! raw in a frame of its own (`map`); what it is (`info`); and a short hash resolved to the
//! one object it names. Objects are found through the lookup tables first (they cover
//! everything sled holds, and are the only index of packed objects), then through sled.

use super::Archive;
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::hash::ObjectHash;
use crate::index::ObjectLoc;
use crate::info::{ObjectInfo, describe};
use crate::locator::{Source, resolve_prefix};
use crate::mapped::MappedObject;
use crate::object::{Kind, Object};
use crate::reader::ReadObject;
use crate::store_dir::INDEX_DIR;

impl Archive {
    /// Resolve a full hash or a unique prefix (at least 4 hex digits).
    pub fn resolve(&self, prefix: &str) -> Result<ObjectHash> {
        let index = self.index()?;
        let known = match index.resolve(prefix) {
            Ok(h) => vec![h],
            Err(Error::NotFound(_)) => Vec::new(),
            Err(Error::Ambiguous { candidates, .. }) => candidates,
            Err(e) => return Err(e),
        };
        resolve_prefix(
            prefix,
            known,
            &|lo, hi| index.table_range(lo, hi, 64),
            &|at| self.locator.hash_at(at),
        )?
        .map_or_else(
            || match prefix.parse::<ObjectHash>() {
                Ok(h) => Err(self.missing(&h)),
                Err(_) => Err(Error::NotFound(prefix.to_owned())),
            },
            Ok,
        )
    }

    /// True if a compaction frame lists `hash` among the objects gc dropped.
    fn was_collected(&self, hash: &ObjectHash) -> Result<bool> {
        let index = self.index()?;
        for (seg, offset) in index.compactions()? {
            let path = self.segments_dir.join(index.segment(seg)?.name);
            let Some(map) = crate::segment::reader::map_file(&path)? else {
                continue;
            };
            let Ok((frame, payload)) = crate::segment::scan::read_frame(&map, offset) else {
                continue;
            };
            let body = crate::segment::pack::decode_compaction(&frame, payload, &path)?;
            if body.collected().any(|h| h == *hash) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The error for an object that is not here: removed (gc dropped it) or not found.
    fn missing(&self, hash: &ObjectHash) -> Error {
        match self.was_collected(hash) {
            Ok(true) => Error::Removed(hash.to_string()),
            _ => Error::NotFound(hash.to_string()),
        }
    }

    /// True if the object is in the archive.
    pub fn contains(&self, hash: &ObjectHash) -> Result<bool> {
        let index = self.index()?;
        Ok(index.contains(hash)? || self.locator.find(&index.candidates(hash), hash)?.is_some())
    }

    /// What an object is: from the index for objects in frames of their own, from its pack
    /// for packed ones.
    pub fn info(&self, hash: &ObjectHash) -> Result<ObjectInfo> {
        match self.index()?.get(hash)? {
            Some(loc) => self.info_of(*hash, &loc),
            None => self.source(hash)?.info(),
        }
    }

    /// Rows `rows` along the first axis of a tensor (clamped to it), decoding only the
    /// chunks that hold them; with how many chunks were decoded, of how many the tensor has.
    /// A slice is not re-hashed: the hash covers the whole tensor (`verify` checks it), and
    /// each chunk decoded is checked against its declared size.
    pub fn get_rows(
        &self,
        hash: &ObjectHash,
        rows: std::ops::Range<u64>,
    ) -> Result<(crate::Tensor, (usize, usize))> {
        self.source(hash)?.rows(rows)
    }

    /// Decode and verify an object.
    pub fn get(&self, hash: &ObjectHash) -> Result<Object> {
        self.source(hash)?.object()
    }

    /// The bytes of an object, verified: zero-copy from the memory map when stored raw in a
    /// frame of its own (packed objects, at most 4 KiB, are copied out of their pack).
    pub fn map(&self, hash: &ObjectHash) -> Result<MappedObject> {
        self.source(hash)?.mapped(true)
    }

    /// `map` without re-hashing: O(1) in the object's size for raw objects. The bytes are not
    /// checked against the address; `verify` checks everything.
    pub fn map_unchecked(&self, hash: &ObjectHash) -> Result<MappedObject> {
        self.source(hash)?.mapped(false)
    }

    /// An object's `ObjectInfo` from its sled record.
    fn info_of(&self, hash: ObjectHash, loc: &ObjectLoc) -> Result<ObjectInfo> {
        let seg = self.index()?.segment(loc.seg)?;
        let bad_index = |reason: String| Error::corrupt(self.root.join(INDEX_DIR), 0, reason);
        let kind =
            Kind::from_code(loc.kind).ok_or_else(|| bad_index("unknown kind in index".into()))?;
        let mut info =
            describe(hash, kind, &loc.desc, &loc.shape, loc.raw_len).map_err(bad_index)?;
        info.stored_len = loc.stored_len;
        info.codec = Codec::from_code(loc.codec).unwrap_or(Codec::Raw);
        info.segment = seg.name;
        info.offset = loc.offset;
        Ok(info)
    }

    /// Where an object is: through the lookup tables, else through sled. The tables are read
    /// once: a damaged copy there is the error only when sled knows no other.
    fn source(&self, hash: &ObjectHash) -> Result<Source> {
        let index = self.index()?;
        let in_tables = self.locator.find(&index.candidates(hash), hash);
        if let Ok(Some(found)) = in_tables {
            return Ok(found);
        }
        if let Some(loc) = index.get(hash)? {
            let seg = index.segment(loc.seg)?;
            return self
                .locator
                .object_frame(&seg.name, loc.offset, hash)
                .map(|f| Source::Frame(Box::new(f)));
        }
        // Not found anywhere, or only in a damaged pack: say which.
        in_tables?.ok_or_else(|| self.missing(hash))
    }
}

impl ReadObject for Archive {
    fn read_object(&self, hash: &ObjectHash) -> Result<Object> {
        self.get(hash)
    }
}
