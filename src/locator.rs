//! Finding an object in the segments at the locations an index gives, and reading it: shared
//! by `Archive` (locations from sled and the lookup tables) and `ArchiveReader` (the tables
//! alone). Every location is checked to hold the hash asked for; a location is a hint until
//! the frame there says so.
//!
//! - `ObjectFrame`: an object in a frame of its own, checked and ready to decode or map.
//! - `Source`: an object found, in a frame of its own or as an item of a pack.
//! - `Locator`: table locations to sources, with the segment maps and the last pack cached.
//! - `resolve_prefix`: a short hash to the one object it names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::format::frame::{FrameHeader, FrameKind};
use crate::format::meta::ObjectMeta;
use crate::format::pack::Pack;
use crate::hash::ObjectHash;
use crate::index::lookup::{ANY_SLOT, Located, prefix_of};
use crate::info::{ObjectInfo, info_from_meta};
use crate::mapped::{Data, MappedObject};
use crate::object::Object;
use crate::object::tensor::{Dtype, Shape, Tensor};
use crate::segment::mapped::{MappedFrame, frame_at, header_at};
use crate::segment::pack::PackCache;
use crate::segment::payload::{build_object, decode_payload, decode_payload_range, verify_hash};
use crate::segment::reader::Maps;

/// An object's frame in a mapped segment, checked to hold the object asked for: what `get`
/// and `map` decode, whether the location came from sled or from a lookup table.
pub(crate) struct ObjectFrame {
    mapped: MappedFrame,
    meta: ObjectMeta,
    path: PathBuf,
}

impl ObjectFrame {
    /// Read the frame at `offset` of the segment at `path`; `hash` must be its object's.
    pub(crate) fn read(maps: &Maps, path: &Path, offset: u64, hash: &ObjectHash) -> Result<Self> {
        let (_, header) = header_at(maps, path, offset)?;
        if header.hash != *hash || header.kind != FrameKind::Object {
            return Err(Error::corrupt(
                path,
                offset,
                "frame holds another object than the index says",
            ));
        }
        Self::with_header(maps, path, offset, header)
    }

    /// The rest of `read`, for a header decoded and checked already.
    fn with_header(maps: &Maps, path: &Path, offset: u64, header: FrameHeader) -> Result<Self> {
        let mut mapped = frame_at(maps, path, offset, header)?;
        let meta =
            mapped.frame.meta.object.take().ok_or_else(|| {
                Error::corrupt(path, offset, "object frame without object metadata")
            })?;
        Ok(ObjectFrame {
            mapped,
            meta,
            path: path.to_owned(),
        })
    }

    fn offset(&self) -> u64 {
        self.mapped.frame.offset
    }

    fn segment(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// What the object is, from its frame.
    pub(crate) fn info(&self) -> Result<ObjectInfo> {
        let header = &self.mapped.frame.header;
        let mut info = info_from_meta(header.hash, &self.meta, &self.path, self.offset())?;
        info.stored_len = header.payload_len;
        info.codec = header.codec;
        info.segment = self.segment();
        Ok(info)
    }

    /// Rows `rows` (along the first axis, clamped to it) of a tensor, decoding only the
    /// chunks that hold them; with how many chunks were decoded, of how many. Not re-hashed
    /// (the hash covers the whole tensor; `verify` checks it).
    pub(crate) fn rows(&self, rows: std::ops::Range<u64>) -> Result<(Tensor, (usize, usize))> {
        let (meta, path, offset) = (&self.meta, &self.path, self.offset());
        let bad = |why: String| Error::corrupt(path, offset, why);
        if meta.kind != "tensor" || meta.shape.is_empty() {
            return Err(Error::invalid(
                self.mapped.frame.header.hash.to_string(),
                "rows are read from tensors of rank 1 or more",
            ));
        }
        let dtype: Dtype = meta
            .desc
            .parse()
            .map_err(|_| bad(format!("unknown dtype {}", meta.desc)))?;
        let row_len = meta
            .shape
            .iter()
            .skip(1)
            .try_fold(dtype.size() as u64, |a, d| a.checked_mul(*d));
        let row_len = row_len.ok_or_else(|| bad("a shape that overflows".into()))?;
        let first = meta.shape.first().copied().unwrap_or(0);
        let (start, end) = (
            rows.start.min(first),
            rows.end.min(first).max(rows.start.min(first)),
        );
        let range = usize::try_from(start * row_len).unwrap_or(usize::MAX)
            ..usize::try_from(end * row_len).unwrap_or(usize::MAX);
        let (bytes, decoded) =
            decode_payload_range(&self.mapped.frame, meta, self.mapped.payload(), path, range)?;
        let mut dims = meta.shape.clone();
        if let Some(d) = dims.first_mut() {
            *d = end - start;
        }
        let chunks = meta.chunks.len();
        Ok((
            Tensor::new(dtype, Shape::new(dims), bytes.into_owned())?,
            (decoded, chunks),
        ))
    }

    /// Decode and verify.
    pub(crate) fn object(&self) -> Result<Object> {
        let (meta, path, offset) = (&self.meta, &self.path, self.offset());
        let bytes = decode_payload(&self.mapped.frame, meta, self.mapped.payload(), path)?;
        verify_hash(&self.mapped.frame.header.hash, meta, &bytes, path, offset)?;
        build_object(meta, bytes.into_owned(), path, offset)
    }

    /// The bytes: a view into the map when raw, decoded otherwise; verified if asked.
    pub(crate) fn mapped(&self, verify: bool) -> Result<MappedObject> {
        let (meta, path, offset) = (&self.meta, &self.path, self.offset());
        let info = self.info()?;
        let payload = self.mapped.payload();
        let hash = &self.mapped.frame.header.hash;
        let data = if self.mapped.frame.header.codec == Codec::Raw {
            if meta.raw_len != payload.len() as u64 {
                return Err(Error::corrupt(path, offset, "raw length disagrees"));
            }
            if verify {
                verify_hash(hash, meta, payload, path, offset)?;
            }
            Data::Mapped {
                map: Arc::clone(&self.mapped.map),
                start: self.mapped.start,
                len: payload.len(),
            }
        } else {
            let bytes = decode_payload(&self.mapped.frame, meta, payload, path)?.into_owned();
            if verify {
                verify_hash(hash, meta, &bytes, path, offset)?;
            }
            Data::Owned(bytes)
        };
        Ok(MappedObject { info, data })
    }
}

/// An object found in a segment: a frame of its own, or an item of a pack frame.
pub(crate) enum Source {
    /// A frame of its own.
    Frame(Box<ObjectFrame>),
    /// Item `slot` (index + 1) of a pack.
    Packed {
        pack: Arc<Pack>,
        slot: u32,
        segment: String,
    },
}

impl Source {
    /// The packed object of a `Packed` source, or the error that names the damage.
    fn packed(pack: &Pack, slot: u32) -> Result<crate::format::pack::PackedObject<'_>> {
        let (path, offset) = pack.location();
        pack.object(slot)
            .ok_or_else(|| Error::corrupt(path, offset, format!("no object in item {slot}")))
    }

    /// What the object is.
    pub(crate) fn info(&self) -> Result<ObjectInfo> {
        match self {
            Source::Frame(f) => f.info(),
            Source::Packed {
                pack,
                slot,
                segment,
            } => {
                let (path, offset) = pack.location();
                // As the pack stores it: its canonical length and address are computed for
                // this object alone, without expanding the pack's other records.
                let (Some(o), Some(hash)) = (pack.stored_object(*slot), pack.object_hash(*slot))
                else {
                    return Err(Error::corrupt(
                        path,
                        offset,
                        format!("no object in item {slot}"),
                    ));
                };
                let raw_total = pack.data().len().max(1) as u64;
                let mut meta = o.meta();
                meta.raw_len = pack.canonical_len(*slot).unwrap_or(meta.raw_len);
                let mut info = info_from_meta(hash, &meta, path, offset)?;
                // A share of the pack's stored bytes, in proportion to the item's size.
                info.stored_len =
                    (pack.stored_len as u128 * o.data.len() as u128 / u128::from(raw_total)) as u64;
                info.codec = pack.codec;
                info.segment = segment.clone();
                info.slot = *slot;
                Ok(info)
            }
        }
    }

    /// Rows of a tensor (see `ObjectFrame::rows`); a packed tensor (4 KiB at most) is
    /// decoded whole and cut.
    pub(crate) fn rows(&self, rows: std::ops::Range<u64>) -> Result<(Tensor, (usize, usize))> {
        match self {
            Source::Frame(f) => f.rows(rows),
            Source::Packed { .. } => {
                let Object::Tensor(t) = self.object()? else {
                    return Err(Error::invalid(
                        "object",
                        "rows are read from tensors of rank 1 or more",
                    ));
                };
                Ok((slice_rows(&t, rows)?, (0, 0)))
            }
        }
    }

    /// Decode and verify.
    pub(crate) fn object(&self) -> Result<Object> {
        match self {
            Source::Frame(f) => f.object(),
            Source::Packed { pack, slot, .. } => {
                let (path, offset) = pack.location();
                let o = Self::packed(pack, *slot)?;
                build_object(&o.meta(), o.data.to_vec(), path, offset)
            }
        }
    }

    /// The bytes: a view into the map when raw in a frame of its own, a copy otherwise.
    pub(crate) fn mapped(&self, verify: bool) -> Result<MappedObject> {
        match self {
            Source::Frame(f) => f.mapped(verify),
            Source::Packed { pack, slot, .. } => Ok(MappedObject {
                info: self.info()?,
                data: Data::Owned(Self::packed(pack, *slot)?.data.to_vec()),
            }),
        }
    }
}

/// Reads objects at the locations the lookup tables give: shared by `Archive` and
/// `ArchiveReader`. Every location is checked to hold the hash asked for.
#[derive(Default)]
pub(crate) struct Locator {
    segments_dir: PathBuf,
    pub(crate) maps: Maps,
    packs: PackCache,
}

impl Locator {
    pub(crate) fn new(segments_dir: PathBuf) -> Self {
        Locator {
            segments_dir,
            maps: Maps::default(),
            packs: PackCache::default(),
        }
    }

    /// Forget maps and the cached pack (after segments were rewritten).
    pub(crate) fn clear(&self) {
        self.maps.clear();
        self.packs.clear();
    }

    /// The file of segment `segment`; `None` for a name that would lead out of the segments
    /// directory (absolute, or with a `..` part: a damaged or hostile lookup table).
    fn path(&self, segment: &str) -> Option<PathBuf> {
        let name = Path::new(segment);
        let plain = !segment.is_empty()
            && name
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        plain.then(|| self.segments_dir.join(name))
    }

    /// `path`, or the error for a name that is not a segment's.
    fn named(&self, segment: &str) -> Result<PathBuf> {
        self.path(segment)
            .ok_or_else(|| Error::invalid(segment, "not a segment name"))
    }

    /// The pack frame at `offset` of segment `segment`.
    pub(crate) fn pack(&self, segment: &str, offset: u64) -> Result<Arc<Pack>> {
        self.packs.get(&self.maps, &self.named(segment)?, offset)
    }

    /// The object frame at `offset` of segment `segment`; `hash` must be its object's.
    pub(crate) fn object_frame(
        &self,
        segment: &str,
        offset: u64,
        hash: &ObjectHash,
    ) -> Result<ObjectFrame> {
        ObjectFrame::read(&self.maps, &self.named(segment)?, offset, hash)
    }

    /// The full hashes of the objects a table entry may name: the object of the frame it
    /// points at, or of the pack item, or (`ANY_SLOT`) of the frame or of each item whose hash
    /// starts with the entry's prefix.
    pub(crate) fn hashes_at(&self, at: &Located) -> Vec<ObjectHash> {
        let Some(path) = self.path(&at.segment) else {
            return Vec::new();
        };
        let found = match (at.slot, header_at(&self.maps, &path, at.offset)) {
            (0 | ANY_SLOT, Ok((_, h))) if h.kind == FrameKind::Object => vec![h.hash],
            (0, _) | (_, Err(_)) => Vec::new(),
            (slot, Ok(_)) => match self.pack(&at.segment, at.offset) {
                Ok(pack) if slot == ANY_SLOT => pack
                    .object_hashes()
                    .map(|all| all.iter().flatten().copied().collect())
                    .unwrap_or_default(),
                Ok(pack) => pack.object_hash(slot).into_iter().collect(),
                Err(_) => Vec::new(),
            },
        };
        found
            .into_iter()
            .filter(|h| at.may_hold(prefix_of(h)))
            .collect()
    }

    /// The object `hash` at `at`; `Ok(None)` if it is not there. The frame header is decoded
    /// once. A pack or frame that does not decode is an error: the tables say the object is
    /// in it.
    pub(crate) fn open(&self, at: &Located, hash: &ObjectHash) -> Result<Option<Source>> {
        let Some(path) = self
            .path(&at.segment)
            .filter(|_| at.may_hold(prefix_of(hash)))
        else {
            return Ok(None);
        };
        if at.slot == 0 || at.slot == ANY_SLOT {
            // A header that does not decode holds no object of ours: not there.
            let Ok((_, header)) = header_at(&self.maps, &path, at.offset) else {
                return Ok(None);
            };
            match header.kind {
                FrameKind::Object if header.hash == *hash => {
                    return ObjectFrame::with_header(&self.maps, &path, at.offset, header)
                        .map(|f| Some(Source::Frame(Box::new(f))));
                }
                FrameKind::Pack if at.slot == ANY_SLOT => {}
                _ => return Ok(None),
            }
        }
        let pack = self.pack(&at.segment, at.offset)?;
        let slot = match at.slot {
            ANY_SLOT => match pack.slot_of(hash) {
                Some(slot) => slot,
                None => {
                    // References that name no object: the pack is damaged, not silent.
                    pack.check_locals()?;
                    return Ok(None);
                }
            },
            slot if pack.object_hash(slot) == Some(*hash) => slot,
            _ => return Ok(None),
        };
        Ok(Some(Source::Packed {
            pack,
            slot,
            segment: at.segment.clone(),
        }))
    }

    /// The object `hash` at the first of `candidates` that holds it.
    pub(crate) fn find(&self, candidates: &[Located], hash: &ObjectHash) -> Result<Option<Source>> {
        // A damaged copy is an error only if no other copy is good.
        let mut damaged = None;
        for at in candidates {
            match self.open(at, hash) {
                Ok(Some(s)) => return Ok(Some(s)),
                Ok(None) => {}
                Err(e) => {
                    damaged.get_or_insert(e);
                }
            }
        }
        damaged.map_or(Ok(None), Err)
    }
}

/// Resolve a full hash or a unique prefix (at least 4 hex digits) among `known` hashes and
/// the objects at the table locations `range(lo, hi)` gives (checked through `hashes_at`).
pub(crate) fn resolve_prefix(
    prefix: &str,
    known: Vec<ObjectHash>,
    range: &dyn Fn(u64, u64) -> Vec<Located>,
    hashes_at: &dyn Fn(&Located) -> Vec<ObjectHash>,
) -> Result<Option<ObjectHash>> {
    let nibbles = crate::hash::parse_hex_nibbles(prefix)
        .filter(|n| (4..=64).contains(&n.len()))
        .ok_or_else(|| Error::invalid(prefix, "not a hash or hash prefix (4 to 64 hex digits)"))?;
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
    let mut found: std::collections::BTreeSet<ObjectHash> =
        known.into_iter().filter(|h| matches(h)).collect();
    found.extend(
        range(lo, hi)
            .iter()
            .flat_map(hashes_at)
            .filter(|h| matches(h)),
    );
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

/// Rows `rows` (clamped) of a tensor in memory.
pub(crate) fn slice_rows(t: &Tensor, rows: std::ops::Range<u64>) -> Result<Tensor> {
    let dims = t.shape.dims();
    let Some(&first) = dims.first() else {
        return Err(Error::invalid(
            "tensor",
            "rows are read from tensors of rank 1 or more",
        ));
    };
    let row_len = (t.data.len() as u64).checked_div(first).unwrap_or(0);
    let (start, end) = (
        rows.start.min(first),
        rows.end.min(first).max(rows.start.min(first)),
    );
    let bytes = t
        .data
        .get((start * row_len) as usize..(end * row_len) as usize)
        .unwrap_or_default();
    let mut d = dims.to_vec();
    if let Some(x) = d.first_mut() {
        *x = end - start;
    }
    Tensor::new(t.dtype, Shape::new(d), bytes.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::Archive;
    use crate::object::tensor::{Dtype, Shape, TensorView};

    /// A table location naming a segment outside the store's (`..`, or an absolute path) is
    /// no location, even where a frame holding the object lies there: a damaged or hostile
    /// table cannot make a store serve another directory's files.
    #[test]
    fn a_location_outside_the_segments_directory_holds_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let other = Archive::create(dir.path().join("other")).expect("create");
        let data: Vec<u8> = (0..20_000u32).flat_map(|i| (i * 7).to_le_bytes()).collect();
        let shape = Shape::new(vec![20_000]);
        let view = TensorView::new(Dtype::U32, &shape, &data).expect("view");
        let h = other.put_tensor(&view, &[]).expect("put");
        let info = other.info(&h).expect("info");
        drop(other);
        let ours = dir.path().join("ours").join("segments");
        std::fs::create_dir_all(&ours).expect("mkdir");
        let outside = dir.path().join("other/segments").join(&info.segment);
        let locator = Locator::new(ours);
        for segment in [
            format!("../../other/segments/{}", info.segment),
            outside.display().to_string(),
        ] {
            for slot in [0, crate::index::lookup::ANY_SLOT] {
                let at = Located {
                    prefix: prefix_of(&h),
                    segment: segment.clone(),
                    offset: info.offset,
                    slot,
                };
                assert!(locator.open(&at, &h).expect("open").is_none(), "{segment}");
                assert!(locator.hashes_at(&at).is_empty(), "{segment}");
            }
            assert!(locator.pack(&segment, info.offset).is_err());
            assert!(locator.object_frame(&segment, info.offset, &h).is_err());
        }
        // The same frame through a plain name is found.
        let inside = Locator::new(dir.path().join("other/segments"));
        let at = Located {
            prefix: prefix_of(&h),
            segment: info.segment.clone(),
            offset: info.offset,
            slot: 0,
        };
        assert!(inside.open(&at, &h).expect("open").is_some());
    }
}
