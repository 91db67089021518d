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
            &|at| self.locator.hashes_at(at),
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

#[cfg(test)]
mod tests {
    use crate::archive::Archive;
    use crate::hash::ObjectHash;
    use crate::object::record::{Record, Value};
    use crate::object::tensor::{Dtype, Shape, TensorView};
    use crate::reader::ArchiveReader;

    /// Records and their tensors, `n` of each, from `seed`; their hashes.
    fn put_some(a: &Archive, n: u32, seed: u32) -> Vec<ObjectHash> {
        let mut w = a.writer();
        let shape = Shape::new(vec![10]);
        let mut out = Vec::new();
        for i in seed..seed + n {
            let data: Vec<u8> = (0..10u32)
                .flat_map(|j| ((i * 10 + j) as f32).to_le_bytes())
                .collect();
            let view = TensorView::new(Dtype::F32, &shape, &data).expect("view");
            let t = w.put_tensor_part(&view).expect("part");
            let rec = Record::new()
                .with("probs", Value::Ref(t))
                .and_then(|r| r.with("id", Value::Str(format!("img-{i}"))))
                .expect("record");
            out.push(t);
            out.push(w.put_record(&rec, &[("split", "val")]).expect("record"));
        }
        w.commit().expect("commit");
        out
    }

    /// A store big enough for compact lookup tables (in tests, 1,024 entries or more), which
    /// keep an object's frame and 48 bits of its hash, not its pack item: every object is found
    /// by its hash and by a short one, through the index and without it; a hash that shares
    /// the 48 bits with one stored is not found; the same content stored again is found
    /// stored, not stored twice; verify finds the index whole.
    #[test]
    fn objects_in_compact_tables_are_found_by_their_hashes() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().join("s");
        let a = Archive::create(&root).expect("create");
        let mut hashes = put_some(&a, 3000, 0);
        // An object in a frame of its own, in the next table.
        let big: Vec<u8> = (0..50_000u32)
            .flat_map(|i| (i ^ 0x5bd1).to_le_bytes())
            .collect();
        let shape = Shape::new(vec![50_000]);
        let view = TensorView::new(Dtype::U32, &shape, &big).expect("view");
        hashes.push(a.put_tensor(&view, &[("big", "1")]).expect("big"));
        hashes.extend(put_some(&a, 2000, 3000));
        let lookup = root.join("index/lookup");
        let magics: Vec<u8> = std::fs::read_dir(&lookup)
            .expect("tables")
            .map(|e| std::fs::read(e.expect("table").path()).expect("read")[3])
            .collect();
        assert!(magics.contains(&b'C'), "compact tables: {magics:?}");
        let r = ArchiveReader::open(&root).expect("open").expect("tables");
        for h in &hashes {
            let info = r.info(h).expect("info").expect("found by the tables");
            assert_eq!(info.hash, *h);
            assert!(r.get(h).expect("get").is_some());
            assert!(a.contains(h).expect("contains"));
        }
        // Read by a new reader from the last: each pack's first get searches it item by item.
        let fresh = ArchiveReader::open(&root).expect("open").expect("tables");
        for h in hashes.iter().rev().step_by(7) {
            assert_eq!(fresh.info(h).expect("info").expect("found").hash, *h);
        }
        for h in hashes.iter().step_by(97) {
            let hex = h.to_string();
            for digits in [10, 12, 16, 20] {
                assert_eq!(r.resolve(&hex[..digits]).expect("resolve"), Some(*h));
                assert_eq!(a.resolve(&hex[..digits]).expect("resolve"), *h);
            }
        }
        // The first 48 bits of a stored object's hash, the rest another's.
        let mut bytes = *hashes[0].as_bytes();
        bytes[6..].copy_from_slice(&hashes[1].as_bytes()[6..]);
        let other = ObjectHash::from_slice(&bytes).expect("hash");
        assert!(r.get(&other).expect("get").is_none());
        assert!(!a.contains(&other).expect("contains"));
        let objects = a.stats().expect("stats").objects;
        let again = put_some(&a, 3000, 0);
        assert_eq!(again[..], hashes[..6000]);
        assert_eq!(a.stats().expect("stats").objects, objects, "stored once");
        assert!(a.verify(&|_, _| {}).expect("verify").is_ok());
    }
}
