//! `Archive` and `ArchiveBuilder`: open or create a store, put, get, map, list, verify,
//! reindex. Orchestration only: byte layouts live in `format`, files in `segment`, keys in
//! `index`, codecs in `codec`.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use memmap2::Mmap;

use crate::codec::{self, CHUNK_SIZE, Codec};
use crate::error::{Error, Result};
use crate::format::frame::{FrameHeader, FrameKind, SEGMENT_HEADER_LEN, SegmentHeader};
use crate::format::meta::{EntryMeta, FrameMeta, ObjectMeta};
use crate::format::store_header::{STORE_MAGIC, Settings, StoreHeader, VERSION_OFFSET};
use crate::format::{le_u16, version};
use crate::hash::ObjectHash;
use crate::index::lookup::{Located, prefix_of};
use crate::index::{EntryRec, Index, ObjectLoc, PackUpdate, RunRec, RunUpdate, Update};
use crate::object::canonical::Descriptor;
use crate::object::record::Record;
use crate::object::tensor::{Dtype, Shape, Tensor, TensorView};
use crate::object::{CATEGORICAL, Categorical, Kind, Object};
use crate::pack::{PACK_ITEM_MAX, PACK_KIND, Pack, PackBuilder, PackCache};
use crate::segment::reader::{Maps, map_file};
use crate::segment::scan::{Frame, read_frame, scan};
use crate::segment::writer::{SegmentWriter, sync_dir, try_lock};

/// Name of the store header file.
pub const HEADER_FILE: &str = "ARCHIVE";
/// Name of the segments directory.
pub const SEGMENTS_DIR: &str = "segments";
/// Name of the index directory.
pub const INDEX_DIR: &str = "index";
/// Name of the file whose lock guards the index.
pub const LOCK_FILE: &str = "index.lock";

/// Longest tag key, in bytes.
pub const MAX_TAG_KEY: usize = 128;
/// Longest tag value, in bytes.
pub const MAX_TAG_VALUE: usize = 1024;
/// Longest descriptor (dtype name, media type, record schema), in bytes.
pub const MAX_DESC: usize = 255;

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// An id for this writer that no other process or machine picks: a hash of the process id,
/// the time and an address, so segment names never collide without coordination.
fn new_writer_id() -> u64 {
    let marker = 0u8;
    let mut h = blake3::Hasher::new();
    h.update(&std::process::id().to_le_bytes());
    h.update(&now_ns().to_le_bytes());
    h.update(&(&marker as *const u8 as usize as u64).to_le_bytes());
    let bytes = h.finalize();
    let [a, b, c, d, e, f, g, i, ..] = *bytes.as_bytes();
    u64::from_le_bytes([a, b, c, d, e, f, g, i])
}

/// Options for one put.
#[derive(Clone, Debug, Default)]
pub struct PutOptions {
    /// The codec; `None` chooses per object (shuffle+zstd for multi-byte tensors, zstd
    /// otherwise, raw where compression saves less than 10 %).
    pub codec: Option<Codec>,
    /// The zstd level; `None` uses the store's setting, else the codec's default.
    pub level: Option<i32>,
}

/// Configures and opens or creates an archive.
///
/// ## Defaults
/// - `zstd_level`: none (level 1 behind a byte shuffle, 3 for plain zstd)
/// - `lock_timeout`: 10 s waiting for another process to release the index
/// - `segment_size`: 1 GiB before a writer starts a new segment
#[derive(Clone, Debug)]
pub struct ArchiveBuilder {
    zstd_level: Option<i32>,
    lock_timeout: Duration,
    segment_size: u64,
}

impl Default for ArchiveBuilder {
    fn default() -> Self {
        ArchiveBuilder {
            zstd_level: None,
            lock_timeout: Duration::from_secs(10),
            segment_size: 1 << 30,
        }
    }
}

impl ArchiveBuilder {
    /// The zstd level recorded in a new store and used by puts that give none.
    pub fn zstd_level(&mut self, level: i32) -> &mut Self {
        self.zstd_level = Some(level);
        self
    }

    /// How long to wait for another process that holds the index.
    pub fn lock_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.lock_timeout = timeout;
        self
    }

    /// Size past which a writer seals its segment and starts a new one.
    pub fn segment_size(&mut self, bytes: u64) -> &mut Self {
        self.segment_size = bytes.max(SEGMENT_HEADER_LEN as u64 + 1);
        self
    }

    /// Create a new store at `path` (which must not exist, or be an empty directory).
    pub fn create(&self, path: impl AsRef<Path>) -> Result<Archive> {
        let root = path.as_ref();
        let non_empty = std::fs::read_dir(root)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        if non_empty || root.is_file() {
            return Err(Error::AlreadyExists {
                path: root.to_owned(),
            });
        }
        std::fs::create_dir_all(root.join(SEGMENTS_DIR))
            .map_err(|e| Error::io(root.join(SEGMENTS_DIR), e))?;
        let header = StoreHeader {
            version: version::SCHEMA_VERSION,
            settings: Settings {
                created_ns: now_ns(),
                zstd_level: self.zstd_level,
            },
        };
        // A crash leaves either no header (not a store yet) or a whole one.
        write_store_header(root, &header)?;
        sync_dir(&root.join(SEGMENTS_DIR))?;
        self.open(root)
    }

    /// Open the store at `path`, catching the index up with the segments.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Archive> {
        let root = path.as_ref().to_owned();
        let header = read_store_header(&root)?;
        let lock = lock_index(&root.join(LOCK_FILE), self.lock_timeout)?;
        let index_dir = root.join(INDEX_DIR);
        let (index, damaged) = match Index::open(&index_dir) {
            // The index is derived from the segments: one sled finds damaged (seen after a
            // SIGKILL mid-write) or cannot read is rebuilt here, so a killed process never
            // leaves a store that needs a manual `reindex`. Lock and I/O errors are not damage.
            Err(Error::Index { reason, .. })
                if reason.contains("corrupt") || reason.starts_with("Unsupported") =>
            {
                std::fs::remove_dir_all(&index_dir).map_err(|e| Error::io(&index_dir, e))?;
                (Index::open(&index_dir)?.0, Some(reason))
            }
            other => (other?.0, None),
        };
        let archive = self.assemble(root, header.settings, Some(index), None, Some(lock));
        if let Some(reason) = damaged {
            archive.warn(format!(
                "{}: damaged index rebuilt from the segments ({reason})",
                index_dir.display()
            ));
        }
        archive.catch_up(&|_, _| {})?;
        Ok(archive)
    }

    /// Open the store at `path` for logging only: puts and batch writers work, into a segment
    /// of this process's own, with no index and no index lock, so any number of processes log
    /// into one store at once. Reads and listings need the index and return an error; the
    /// index learns of the new frames when a process next opens the store normally. Content
    /// already in the lookup tables is not stored again.
    pub fn open_logger(&self, path: impl AsRef<Path>) -> Result<Archive> {
        let root = path.as_ref().to_owned();
        let header = read_store_header(&root)?;
        let reader = crate::reader::ArchiveReader::open(&root)?;
        Ok(self.assemble(root, header.settings, None, reader, None))
    }

    /// An `Archive` over `root` with nothing written yet by this process.
    fn assemble(
        &self,
        root: PathBuf,
        settings: Settings,
        index: Option<Index>,
        reader: Option<crate::reader::ArchiveReader>,
        lock: Option<File>,
    ) -> Archive {
        let segments_dir = root.join(SEGMENTS_DIR);
        Archive {
            segments_dir: segments_dir.clone(),
            root,
            settings,
            index,
            reader,
            locator: Locator::new(segments_dir),
            writer: Mutex::new(WriterSlot {
                current: None,
                writer_id: new_writer_id(),
                next_seq: 0,
                failures: 0,
                open_batches: HashMap::new(),
                next_batch: 0,
            }),
            claimed: Mutex::new(crate::hash::HashSet::default()),
            segment_size: self.segment_size,
            warnings: Mutex::new(Vec::new()),
            _lock: lock,
        }
    }

    /// Open the store at `path`, creating it if there is none.
    pub fn open_or_create(&self, path: impl AsRef<Path>) -> Result<Archive> {
        match self.open(path.as_ref()) {
            Err(Error::NoStore { .. }) => self.create(path),
            other => other,
        }
    }
}

/// Read and check the store header of the store at `root`: a newer version is refused as
/// newer, not as corrupt, and an older one asks for `archive migrate`.
pub(crate) fn read_store_header(root: &Path) -> Result<StoreHeader> {
    let header = read_any_store_header(root)?;
    version::check(root, header.version)?;
    Ok(header)
}

/// Write the store header of the store at `root`: to a temp name, synced, renamed, the
/// directory synced, so a crash leaves the old header or the new one, whole.
pub(crate) fn write_store_header(root: &Path, header: &StoreHeader) -> Result<()> {
    let tmp = root.join(format!("{HEADER_FILE}.tmp"));
    let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(&header.encode())
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    let dst = root.join(HEADER_FILE);
    std::fs::rename(&tmp, &dst).map_err(|e| Error::io(&dst, e))?;
    sync_dir(root)
}

/// Read the store header at `root` of any version this program knows, old ones included
/// (for migrations); a newer one is refused.
pub(crate) fn read_any_store_header(root: &Path) -> Result<StoreHeader> {
    let header_path = root.join(HEADER_FILE);
    let mut buf = Vec::new();
    match File::open(&header_path) {
        Ok(f) => f
            .take(1 << 20)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(&header_path, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NoStore {
                path: root.to_owned(),
            });
        }
        Err(e) => return Err(Error::io(&header_path, e)),
    };
    if buf.get(..STORE_MAGIC.len()) != Some(&STORE_MAGIC[..]) {
        return Err(Error::corrupt(
            &header_path,
            0,
            "not an archive store header (wrong magic)",
        ));
    }
    let found = le_u16(&buf, VERSION_OFFSET)
        .ok_or_else(|| Error::corrupt(&header_path, 0, "store header is truncated"))?;
    version::check_segment(root, found)?;
    StoreHeader::decode(&buf).map_err(|reason| Error::corrupt(&header_path, 0, reason))
}

/// Take the index lock, waiting up to `timeout`; on time-out, say who holds it. The kernel
/// drops the lock when its holder dies, so a dead holder never blocks anyone.
pub(crate) fn lock_index(path: &Path, timeout: Duration) -> Result<File> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut owner = String::new();
                let _ = File::open(path).and_then(|mut f| f.read_to_string(&mut owner));
                let owner = owner.trim();
                return Err(Error::Locked {
                    path: path.to_owned(),
                    owner: if owner.is_empty() {
                        "another process".into()
                    } else {
                        owner.into()
                    },
                    waited_ms: start.elapsed().as_millis() as u64,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
        }
    }
    let cmd: Vec<String> = std::env::args().collect();
    let owner = format!("pid {} ({})", std::process::id(), cmd.join(" "));
    file.set_len(0)
        .and_then(|()| file.write_all(owner.as_bytes()))
        .and_then(|()| file.flush())
        .map_err(|e| Error::io(path, e))?;
    Ok(file)
}

struct WriterSlot {
    current: Option<(SegmentWriter, u32)>,
    writer_id: u64,
    next_seq: u64,
    /// Failed appends or syncs so far; a batch that saw this change lost frames.
    failures: u64,
    /// Uncommitted batches: for each, where its first frame in each segment went. A commit
    /// moves a segment's high-water mark only up to the first frame of another open batch, so
    /// a crash before that batch commits leaves its frames to be indexed on the next open.
    open_batches: HashMap<u64, Vec<(u32, u64)>>,
    /// Hands out batch ids.
    next_batch: u64,
}

/// An open archive. `Send + Sync`: share it between threads by reference or `Arc`.
pub struct Archive {
    root: PathBuf,
    segments_dir: PathBuf,
    settings: Settings,
    /// The index; `None` when opened for logging only (`ArchiveBuilder::open_logger`).
    index: Option<Index>,
    /// Lookup tables, to find objects already stored when the index is not open.
    reader: Option<crate::reader::ArchiveReader>,
    locator: Locator,
    writer: Mutex<WriterSlot>,
    /// New objects appended by a batch but not yet in the index. A put of the same content
    /// meanwhile logs an entry instead of storing it again, and the index can take a batch's
    /// objects without looking each one up first.
    claimed: Mutex<crate::hash::HashSet>,
    segment_size: u64,
    warnings: Mutex<Vec<String>>,
    /// The index lock, held while the index is open.
    _lock: Option<File>,
}

/// What `info` shows about an object; everything comes from the index.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectInfo {
    /// The address.
    pub hash: ObjectHash,
    /// The kind.
    pub kind: Kind,
    /// Dtype (tensors).
    pub dtype: Option<Dtype>,
    /// Shape (tensors).
    pub shape: Option<Shape>,
    /// Media type (bytes) or record schema (records), if any.
    pub desc: Option<String>,
    /// Decoded size.
    pub raw_len: u64,
    /// Stored size.
    pub stored_len: u64,
    /// How it is stored.
    pub codec: Codec,
    /// Segment file name.
    pub segment: String,
    /// Offset of its frame in the segment.
    pub offset: u64,
    /// 0 for an object in a frame of its own; item index + 1 in a pack frame.
    pub slot: u32,
}

/// One entry, as `entries` lists them.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryInfo {
    /// Sequence number, in logging order.
    pub seq: u64,
    /// Nanoseconds since the Unix epoch.
    pub time_ns: i64,
    /// The object logged.
    pub hash: ObjectHash,
    /// Tags.
    pub tags: Vec<(String, String)>,
}

/// Counts and sizes of a store.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    /// Distinct objects.
    pub objects: u64,
    /// Entries.
    pub entries: u64,
    /// Sum over entries of their object's decoded size: what a store without dedup holds.
    pub logical_bytes: u64,
    /// Sum of decoded object sizes.
    pub raw_bytes: u64,
    /// Sum of stored object sizes.
    pub stored_bytes: u64,
    /// Segment files.
    pub segments: u64,
    /// Bytes in segment files.
    pub segment_bytes: u64,
    /// Bytes of the index on disk.
    pub index_bytes: u64,
    /// Objects by kind name.
    pub by_kind: Vec<(String, u64)>,
}

/// One problem `verify` found.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// The object, when the problem is an object's.
    pub hash: Option<ObjectHash>,
    /// The segment file.
    pub path: PathBuf,
    /// The frame's offset.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

/// What `verify` found.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    /// Object frames decoded and re-hashed.
    pub objects_checked: u64,
    /// Decoded bytes re-hashed.
    pub bytes_checked: u64,
    /// Frames read.
    pub frames: u64,
    /// Everything that is wrong.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// True if nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The bytes of an object from `map`: a view into the segment's memory map when stored raw,
/// a decoded buffer otherwise.
#[derive(Debug)]
pub struct MappedObject {
    info: ObjectInfo,
    data: Data,
}

#[derive(Debug)]
enum Data {
    Mapped {
        map: Arc<Mmap>,
        start: usize,
        len: usize,
    },
    Owned(Vec<u8>),
}

impl MappedObject {
    /// What the object is.
    pub fn info(&self) -> &ObjectInfo {
        &self.info
    }

    /// The decoded bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.data {
            Data::Mapped { map, start, len } => map.get(*start..start + len).unwrap_or_default(),
            Data::Owned(v) => v,
        }
    }

    /// True when `bytes` points into the memory map (no copy was made).
    pub fn is_zero_copy(&self) -> bool {
        matches!(self.data, Data::Mapped { .. })
    }

    /// The whole mapped segment, when zero-copy (to check where `bytes` lies).
    pub fn mapping(&self) -> Option<&[u8]> {
        match &self.data {
            Data::Mapped { map, .. } => Some(&map[..]),
            Data::Owned(_) => None,
        }
    }

    /// The object as a tensor view, if it is a tensor.
    pub fn tensor(&self) -> Option<(Dtype, &Shape, &[u8])> {
        Some((self.info.dtype?, self.info.shape.as_ref()?, self.bytes()))
    }

    /// The elements as a typed slice (`f32`, `i64` …). Fails if the element size differs from
    /// the dtype's, or if the bytes are not aligned for `T` (mapped payloads are 64-byte
    /// aligned, so this does not happen for them). Little-endian hosts only.
    pub fn as_slice<T: bytemuck::Pod>(&self) -> Result<&[T]> {
        let input = self.info.hash.to_string();
        if cfg!(target_endian = "big") {
            return Err(Error::invalid(
                input,
                "typed views need a little-endian host",
            ));
        }
        let size = self.info.dtype.map(|d| d.size()).unwrap_or(1);
        if size != std::mem::size_of::<T>() {
            return Err(Error::invalid(
                input,
                format!(
                    "elements are {size} bytes, the type asked for is {}",
                    size_of::<T>()
                ),
            ));
        }
        bytemuck::try_cast_slice(self.bytes())
            .map_err(|e| Error::invalid(input, format!("cannot view as a typed slice: {e}")))
    }
}

/// An object's frame in a mapped segment, checked to hold the object asked for: what `get`
/// and `map` decode, whether the location came from sled or from a lookup table.
pub(crate) struct ObjectFrame {
    map: Arc<Mmap>,
    frame: Frame,
    start: usize,
    path: PathBuf,
}

impl ObjectFrame {
    /// Read the frame at `offset` of the segment at `path`; `hash` must be its object's.
    pub(crate) fn read(maps: &Maps, path: &Path, offset: u64, hash: &ObjectHash) -> Result<Self> {
        let corrupt = |reason: String| Error::corrupt(path, offset, reason);
        let head_end = offset + crate::format::frame::FRAME_HEADER_LEN as u64;
        let map = maps.get(path, head_end)?;
        // Remap if the frame runs past the current map (the segment grew since it was mapped).
        let header = FrameHeader::decode(map.get(offset as usize..).unwrap_or_default())
            .map_err(|e| corrupt(e.to_string()))?;
        let map = maps.get(path, offset + header.frame_len())?;
        let (frame, payload) = read_frame(&map, offset).map_err(|e| corrupt(e.to_string()))?;
        if frame.header.hash != *hash || frame.header.kind != FrameKind::Object {
            return Err(corrupt(
                "frame holds another object than the index says".into(),
            ));
        }
        object_meta(&frame, path)?;
        let start = payload.as_ptr() as usize - map.as_ptr() as usize;
        Ok(ObjectFrame {
            map,
            frame,
            start,
            path: path.to_owned(),
        })
    }

    fn meta(&self) -> &ObjectMeta {
        // `read` checked that the metadata describes an object.
        self.frame.meta.object.as_ref().unwrap_or(&EMPTY_META)
    }

    fn payload(&self) -> &[u8] {
        let len = self.frame.header.payload_len as usize;
        self.map
            .get(self.start..self.start + len)
            .unwrap_or_default()
    }

    /// What the object is, from its frame.
    pub(crate) fn info(&self, segment: &str) -> Result<ObjectInfo> {
        let mut info = info_from_meta(
            self.frame.header.hash,
            self.meta(),
            &self.path,
            self.frame.offset,
        )?;
        info.stored_len = self.frame.header.payload_len;
        info.codec = self.frame.header.codec;
        info.segment = segment.to_owned();
        Ok(info)
    }

    /// Decode and verify.
    pub(crate) fn object(&self) -> Result<Object> {
        let (meta, path, offset) = (self.meta(), &self.path, self.frame.offset);
        let bytes = decode_payload(&self.frame, meta, self.payload(), path)?;
        verify_hash(&self.frame.header.hash, meta, &bytes, path, offset)?;
        build_object(meta, bytes.into_owned(), path, offset)
    }

    /// The bytes: a view into the map when raw, decoded otherwise; verified if asked.
    pub(crate) fn mapped(&self, verify: bool) -> Result<MappedObject> {
        let (meta, path, offset) = (self.meta(), &self.path, self.frame.offset);
        let segment = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let info = self.info(&segment)?;
        let payload = self.payload();
        let hash = &self.frame.header.hash;
        let data = if self.frame.header.codec == Codec::Raw {
            if meta.raw_len != payload.len() as u64 {
                return Err(Error::corrupt(path, offset, "raw length disagrees"));
            }
            if verify {
                verify_hash(hash, meta, payload, path, offset)?;
            }
            Data::Mapped {
                map: Arc::clone(&self.map),
                start: self.start,
                len: payload.len(),
            }
        } else {
            let bytes = decode_payload(&self.frame, meta, payload, path)?.into_owned();
            if verify {
                verify_hash(hash, meta, &bytes, path, offset)?;
            }
            Data::Owned(bytes)
        };
        Ok(MappedObject { info, data })
    }
}

/// Runs of entries with the sequence number of their first, as the index yields them.
type Runs<'a> = Box<dyn Iterator<Item = Result<(u64, RunRec)>> + 'a>;

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
    /// What the object is.
    pub(crate) fn info(&self) -> Result<ObjectInfo> {
        match self {
            Source::Frame(f) => {
                let segment = f
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                f.info(&segment)
            }
            Source::Packed {
                pack,
                slot,
                segment,
            } => {
                let (path, offset) = pack.location();
                let o = pack.object(*slot).ok_or_else(|| {
                    Error::corrupt(path, offset, format!("no object in item {slot}"))
                })?;
                let raw_total = pack.body.data.len().max(1) as u64;
                let mut info = info_from_meta(o.hash(), &o.meta(), path, offset)?;
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

    /// Decode and verify.
    pub(crate) fn object(&self) -> Result<Object> {
        match self {
            Source::Frame(f) => f.object(),
            Source::Packed { pack, slot, .. } => {
                let (path, offset) = pack.location();
                let o = pack.object(*slot).ok_or_else(|| {
                    Error::corrupt(path, offset, format!("no object in item {slot}"))
                })?;
                build_object(&o.meta(), o.data.to_vec(), path, offset)
            }
        }
    }

    /// The bytes: a view into the map when raw in a frame of its own, a copy otherwise.
    pub(crate) fn mapped(&self, verify: bool) -> Result<MappedObject> {
        match self {
            Source::Frame(f) => f.mapped(verify),
            Source::Packed { pack, slot, .. } => {
                let (path, offset) = pack.location();
                let o = pack.object(*slot).ok_or_else(|| {
                    Error::corrupt(path, offset, format!("no object in item {slot}"))
                })?;
                Ok(MappedObject {
                    info: self.info()?,
                    data: Data::Owned(o.data.to_vec()),
                })
            }
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

    /// The pack frame at `offset` of segment `segment`.
    pub(crate) fn pack(&self, segment: &str, offset: u64) -> Result<Arc<Pack>> {
        self.packs
            .get(&self.maps, &self.segments_dir.join(segment), offset)
    }

    /// The full hash of the object a table entry points at, if it holds one there.
    pub(crate) fn hash_at(&self, at: &Located) -> Option<ObjectHash> {
        let h = if at.slot == 0 {
            let path = self.segments_dir.join(&at.segment);
            let map = self.maps.get(&path, at.offset + 64).ok()?;
            let header = FrameHeader::decode(map.get(at.offset as usize..)?).ok()?;
            (header.kind == FrameKind::Object).then_some(header.hash)?
        } else {
            self.pack(&at.segment, at.offset)
                .ok()?
                .object(at.slot)?
                .hash()
        };
        Some(h).filter(|h| prefix_of(h) == at.prefix)
    }

    /// The object `hash` at `at`; `Ok(None)` if it is not there. A pack that does not decode
    /// is an error: the tables say the object is in it.
    pub(crate) fn open(&self, at: &Located, hash: &ObjectHash) -> Result<Option<Source>> {
        if at.prefix != prefix_of(hash) {
            return Ok(None);
        }
        if at.slot == 0 {
            if self.hash_at(at) != Some(*hash) {
                return Ok(None);
            }
            let path = self.segments_dir.join(&at.segment);
            return ObjectFrame::read(&self.maps, &path, at.offset, hash)
                .map(|f| Some(Source::Frame(Box::new(f))));
        }
        let pack = self.pack(&at.segment, at.offset)?;
        let found = pack.object(at.slot).is_some_and(|o| o.hash() == *hash);
        Ok(found.then(|| Source::Packed {
            pack,
            slot: at.slot,
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
/// the objects at the table locations `range(lo, hi)` gives (checked through `hash_at`).
pub(crate) fn resolve_prefix(
    prefix: &str,
    known: Vec<ObjectHash>,
    range: &dyn Fn(u64, u64) -> Vec<Located>,
    hash_at: &dyn Fn(&Located) -> Option<ObjectHash>,
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
            .filter_map(hash_at)
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

/// An `ObjectInfo` from what an object is; how and where it is stored are left for the caller
/// (raw, at offset 0). The error is a reason (a dtype this program does not know).
fn describe(
    hash: ObjectHash,
    kind: Kind,
    desc: &str,
    shape: &[u64],
    raw_len: u64,
) -> std::result::Result<ObjectInfo, String> {
    let (dtype, shape, desc) = match kind {
        Kind::Tensor => (
            Some(desc.parse::<Dtype>().map_err(|e| e.to_string())?),
            Some(Shape::new(shape.to_vec())),
            None,
        ),
        _ => (None, None, Some(desc.to_owned()).filter(|d| !d.is_empty())),
    };
    Ok(ObjectInfo {
        hash,
        kind,
        dtype,
        shape,
        desc,
        raw_len,
        stored_len: raw_len,
        codec: Codec::Raw,
        segment: String::new(),
        offset: 0,
        slot: 0,
    })
}

/// An `ObjectInfo` from object metadata (the location fields are left for the caller).
fn info_from_meta(
    hash: ObjectHash,
    meta: &ObjectMeta,
    path: &Path,
    offset: u64,
) -> Result<ObjectInfo> {
    let corrupt = |reason: String| Error::corrupt(path, offset, reason);
    let kind = meta
        .kind
        .parse::<Kind>()
        .map_err(|e| corrupt(e.to_string()))?;
    let mut info = describe(hash, kind, &meta.desc, &meta.shape, meta.raw_len).map_err(corrupt)?;
    info.offset = offset;
    Ok(info)
}

static EMPTY_META: ObjectMeta = ObjectMeta {
    kind: String::new(),
    desc: String::new(),
    shape: Vec::new(),
    raw_len: 0,
    chunk_size: 0,
    chunks: Vec::new(),
    level: None,
};

/// An object ready to put: descriptor and payload bytes.
struct Prepared<'a> {
    kind: Kind,
    desc: Cow<'a, str>,
    shape: Cow<'a, [u64]>,
    payload: Cow<'a, [u8]>,
    elem: usize,
    /// Objects this one refers to (records), which must exist.
    refs: Vec<ObjectHash>,
}

impl Archive {
    /// Open the store at `path` with default settings.
    pub fn open(path: impl AsRef<Path>) -> Result<Archive> {
        ArchiveBuilder::default().open(path)
    }

    /// Create a store at `path` with default settings.
    pub fn create(path: impl AsRef<Path>) -> Result<Archive> {
        ArchiveBuilder::default().create(path)
    }

    /// A builder for non-default settings.
    pub fn builder() -> ArchiveBuilder {
        ArchiveBuilder::default()
    }

    /// The store's root directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Problems found while opening (damaged frames skipped, torn tails cut), for display.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.lock().map(|w| w.clone()).unwrap_or_default()
    }

    fn warn(&self, msg: String) {
        if let Ok(mut w) = self.warnings.lock() {
            w.push(msg);
        }
    }

    fn segment_files(&self) -> Result<Vec<(String, PathBuf)>> {
        let dir = &self.segments_dir;
        let mut out = Vec::new();
        for item in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let item = item.map_err(|e| Error::io(dir, e))?;
            let name = item.file_name().to_string_lossy().into_owned();
            if name.ends_with(".seg") {
                out.push((name, item.path()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The index, or an error saying this archive was opened for logging only.
    fn index(&self) -> Result<&Index> {
        self.index.as_ref().ok_or_else(|| {
            Error::invalid(
                self.root.display().to_string(),
                "opened for logging only: this needs the index (open the archive normally)",
            )
        })
    }

    /// True if the object is stored: per the index, or (logging only) the lookup tables.
    fn known(&self, hash: &ObjectHash) -> Result<bool> {
        match (&self.index, &self.reader) {
            // A copy in a damaged pack does not count: the content is stored again.
            (Some(index), _) => Ok(index.contains(hash)?
                || self
                    .locator
                    .find(&index.candidates(hash), hash)
                    .ok()
                    .flatten()
                    .is_some()),
            (None, Some(reader)) => Ok(reader.contains(hash)),
            (None, None) => Ok(false),
        }
    }

    fn claimed(&self) -> Result<MutexGuard<'_, crate::hash::HashSet>> {
        self.claimed
            .lock()
            .map_err(|_| Error::invalid("archive", "claim lock poisoned"))
    }

    /// Forget claims: their objects are in the index now, or were never stored.
    fn release(&self, hashes: &[ObjectHash]) {
        if let Ok(mut claimed) = self.claimed.lock() {
            for h in hashes {
                claimed.remove(h);
            }
        }
    }

    fn slot(&self) -> Result<MutexGuard<'_, WriterSlot>> {
        self.writer
            .lock()
            .map_err(|_| Error::invalid("archive", "writer lock poisoned"))
    }

    /// Index every frame past each segment's high-water mark; cut torn tails of segments that
    /// no writer holds. `progress(done, total)` counts bytes scanned.
    fn catch_up(&self, progress: &dyn Fn(u64, u64)) -> Result<()> {
        let files = self.segment_files()?;
        let own = self
            .slot()?
            .current
            .as_ref()
            .map(|(w, _)| w.name().to_owned());
        let mut todo = Vec::new();
        for (name, path) in files {
            let id = self.index()?.segment_id(&name, SEGMENT_HEADER_LEN as u64)?;
            let from = self.index()?.segment(id)?.indexed_to;
            let len = std::fs::metadata(&path)
                .map_err(|e| Error::io(&path, e))?
                .len();
            if len > from && Some(&name) != own.as_ref() {
                todo.push((id, path, from, len));
            }
        }
        let total: u64 = todo.iter().map(|(_, _, from, len)| len - from).sum();
        let mut done = 0;
        for (id, path, from, _) in todo {
            let Some(map) = map_file(&path)? else {
                continue;
            };
            if from == SEGMENT_HEADER_LEN as u64 {
                self.check_segment_header(&path, &map)?;
            }
            let found = scan(&map, from);
            for d in &found.damage {
                self.warn(format!(
                    "{}: damaged frame at byte {}: {}",
                    path.display(),
                    d.offset,
                    d.reason
                ));
            }
            let mut update = self.rescan_update(id, &found.frames, &map, &path)?;
            update.marks.push((id, found.valid_end, found.valid_end));
            self.index()?.apply(update, false)?;
            if let Some(tail) = &found.tail {
                self.cut_tail(&path, found.valid_end, &tail.reason)?;
            }
            done += map.len() as u64 - from;
            progress(done, total);
        }
        Ok(())
    }

    /// What a rescan of segment `seg` adds to the index: its frames, less those before the
    /// segment's `indexed_max` that a commit indexed already.
    fn rescan_update(&self, seg: u32, frames: &[Frame], map: &[u8], path: &Path) -> Result<Update> {
        let max = self.index()?.segment(seg)?.indexed_max;
        let mut update = Update::default();
        for frame in frames {
            if frame.offset < max
                && self
                    .index()?
                    .frame_indexed(&frame.header.hash, seg, frame.offset)?
            {
                continue;
            }
            if frame.header.kind == FrameKind::Pack {
                // A pack whose payload does not check out costs that pack alone, like any
                // damaged frame.
                let pack = read_frame(map, frame.offset)
                    .map_err(|e| Error::corrupt(path, frame.offset, e.to_string()))
                    .and_then(|(f, payload)| crate::pack::decode_frame(&f, payload, path));
                match pack {
                    Ok(pack) => update.runs.push(RunUpdate::Pack(PackUpdate {
                        seg,
                        offset: frame.offset,
                        summary: pack.summary(),
                    })),
                    Err(e) => self.warn(format!("damaged pack skipped: {e}")),
                }
                continue;
            }
            add_frame(&mut update, seg, frame);
        }
        Ok(update)
    }

    fn check_segment_header(&self, path: &Path, map: &[u8]) -> Result<()> {
        match SegmentHeader::decode(map) {
            Ok(h) => version::check_segment(path, h.version),
            Err(reason) => {
                // Frames describe themselves, so a damaged segment header costs nothing else.
                self.warn(format!("{}: {reason}", path.display()));
                Ok(())
            }
        }
    }

    /// Truncate a torn tail, if no writer holds the segment (a writer's unfinished frame
    /// looks the same, and is left alone).
    fn cut_tail(&self, path: &Path, valid_end: u64, reason: &str) -> Result<()> {
        if let Some(file) = try_lock(path)? {
            let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
            if len > valid_end {
                file.set_len(valid_end)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| Error::io(path, e))?;
                self.warn(format!(
                    "{}: cut {} bytes of torn tail at byte {valid_end} ({reason})",
                    path.display(),
                    len - valid_end
                ));
            }
        }
        Ok(())
    }

    /// The writer's current segment, opening one if needed: an existing segment no other
    /// writer holds and that has room, else a new one.
    fn ensure_segment<'s>(&self, slot: &'s mut WriterSlot) -> Result<&'s mut (SegmentWriter, u32)> {
        let full = slot
            .current
            .as_ref()
            .is_some_and(|(w, _)| w.len() >= self.segment_size);
        if full && let Some((mut w, _)) = slot.current.take() {
            w.sync()?;
        }
        if slot.current.is_none() {
            slot.current = Some(self.adopt_or_create(slot)?);
        }
        slot.current
            .as_mut()
            .ok_or_else(|| Error::invalid("archive", "no segment"))
    }

    fn adopt_or_create(&self, slot: &mut WriterSlot) -> Result<(SegmentWriter, u32)> {
        // A logger cannot index what another writer left in a segment, so it starts its own.
        let reusable = if self.index.is_some() {
            self.segment_files()?
        } else {
            Vec::new()
        };
        for (name, path) in reusable.into_iter().rev() {
            let len = std::fs::metadata(&path)
                .map_err(|e| Error::io(&path, e))?
                .len();
            if len >= self.segment_size {
                continue;
            }
            let Some(file) = try_lock(&path)? else {
                continue;
            };
            // An empty segment's creator died before writing its header: adopting it would
            // put frames after 64 zero bytes, a segment `verify` reports forever.
            if len == 0 {
                continue;
            }
            // Holding the lock, index what the last writer left, then cut any torn tail.
            let id = self.index()?.segment_id(&name, SEGMENT_HEADER_LEN as u64)?;
            let from = self.index()?.segment(id)?.indexed_to;
            let mut valid_end = from;
            if let Some(map) = map_file(&path)? {
                if SegmentHeader::decode(&map).is_err() {
                    continue;
                }
                let found = scan(&map, from);
                let mut update = self.rescan_update(id, &found.frames, &map, &path)?;
                update.marks.push((id, found.valid_end, found.valid_end));
                self.index()?.apply(update, false)?;
                valid_end = found.valid_end;
            }
            return Ok((SegmentWriter::adopt(&path, file, valid_end)?, id));
        }
        let w = SegmentWriter::create(&self.segments_dir, slot.writer_id, slot.next_seq, now_ns())?;
        slot.next_seq += 1;
        let id = match &self.index {
            Some(index) => index.segment_id(w.name(), SEGMENT_HEADER_LEN as u64)?,
            None => 0,
        };
        Ok((w, id))
    }

    /// Start a batch: many puts, one fsync at `commit`.
    pub fn writer(&self) -> Writer<'_> {
        Writer {
            archive: self,
            opts: PutOptions::default(),
            span: None,
            batch: None,
            totals: WriterTotals::default(),
            update: Update::default(),
            pending: crate::hash::HashSet::default(),
            failures_at_start: None,
            count: 0,
            pack: PackBuilder::default(),
        }
    }

    fn put_one(
        &self,
        p: Prepared<'_>,
        tags: &[(&str, &str)],
        opts: &PutOptions,
    ) -> Result<ObjectHash> {
        let mut w = self.writer();
        let h = w.put_prepared(p, tags, opts, Some(now_ns()))?;
        w.commit()?;
        Ok(h)
    }

    /// Put a tensor with an entry carrying `tags`; returns its address.
    pub fn put_tensor(&self, view: &TensorView<'_>, tags: &[(&str, &str)]) -> Result<ObjectHash> {
        self.put_one(Prepared::tensor(view), tags, &PutOptions::default())
    }

    /// `put_tensor` with explicit codec options.
    pub fn put_tensor_with(
        &self,
        view: &TensorView<'_>,
        tags: &[(&str, &str)],
        opts: &PutOptions,
    ) -> Result<ObjectHash> {
        self.put_one(Prepared::tensor(view), tags, opts)
    }

    /// Put UTF-8 text.
    pub fn put_text(&self, text: &str, tags: &[(&str, &str)]) -> Result<ObjectHash> {
        self.put_one(Prepared::text(text), tags, &PutOptions::default())
    }

    /// Put opaque bytes with an optional media type (`image/png` …).
    pub fn put_bytes(
        &self,
        data: &[u8],
        media_type: Option<&str>,
        tags: &[(&str, &str)],
    ) -> Result<ObjectHash> {
        self.put_one(
            Prepared::bytes(data, media_type),
            tags,
            &PutOptions::default(),
        )
    }

    /// Put a record. Every object it refers to must already be in the archive.
    pub fn put_record(&self, record: &Record, tags: &[(&str, &str)]) -> Result<ObjectHash> {
        self.put_one(Prepared::record(record, ""), tags, &PutOptions::default())
    }

    /// Put categorical outputs: integer `codes` (stored as a tensor of their own) and the
    /// label of each code. Every code must index into `labels`. Returns the categorical
    /// record's address.
    pub fn put_categorical(
        &self,
        codes: &TensorView<'_>,
        labels: &[String],
        tags: &[(&str, &str)],
    ) -> Result<ObjectHash> {
        let mut w = self.writer();
        let h = w.put_categorical(codes, labels, tags)?;
        w.commit()?;
        Ok(h)
    }

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
        .ok_or_else(|| Error::NotFound(prefix.to_owned()))
    }

    /// True if the object is in the archive.
    pub fn contains(&self, hash: &ObjectHash) -> Result<bool> {
        let index = self.index()?;
        Ok(index.contains(hash)? || self.locator.find(&index.candidates(hash), hash)?.is_some())
    }

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

    /// What an object is: from the index for objects in frames of their own, from its pack
    /// for packed ones.
    pub fn info(&self, hash: &ObjectHash) -> Result<ObjectInfo> {
        match self.index()?.get(hash)? {
            Some(loc) => self.info_of(*hash, &loc),
            None => self.source(hash)?.info(),
        }
    }

    /// Where an object is: through the lookup tables (which cover everything sled holds, and
    /// are the only index of packed objects), else through sled.
    fn source(&self, hash: &ObjectHash) -> Result<Source> {
        let index = self.index()?;
        if let Ok(Some(found)) = self.locator.find(&index.candidates(hash), hash) {
            return Ok(found);
        }
        if let Some(loc) = index.get(hash)? {
            return self
                .object_frame(hash, &loc)
                .map(|f| Source::Frame(Box::new(f)));
        }
        // Not found anywhere, or only in a damaged pack: say which.
        self.locator
            .find(&index.candidates(hash), hash)?
            .ok_or_else(|| Error::NotFound(hash.to_string()))
    }

    /// The entries of one run, oldest first.
    fn run_entries(&self, first: u64, run: RunRec) -> Result<Vec<EntryInfo>> {
        Ok(match run {
            RunRec::Entries(v) => v
                .into_iter()
                .enumerate()
                .map(|(i, e)| entry_info(first + i as u64, e))
                .collect(),
            RunRec::Pack(p) => {
                let seg = self.index()?.segment(p.seg)?;
                let pack = self.locator.pack(&seg.name, p.offset)?;
                pack.entries()
                    .into_iter()
                    .enumerate()
                    .map(|(i, e)| EntryInfo {
                        seq: first + i as u64,
                        time_ns: e.time_ns,
                        hash: e.hash,
                        tags: pack.tags(e.tagset).to_vec(),
                    })
                    .collect()
            }
        })
    }

    /// The entries that logged an object, oldest first.
    pub fn entries_of(&self, hash: &ObjectHash) -> Result<Vec<EntryInfo>> {
        let index = self.index()?;
        let mut seqs = index.entry_seqs_of(hash)?;
        // The entry of a packed object's own item.
        if index.get(hash)?.is_none()
            && let Ok(Some(Source::Packed {
                pack,
                slot,
                segment,
            })) = self.locator.find(&index.candidates(hash), hash)
        {
            let (_, offset) = pack.location();
            if let Some(seg) = index.known_segment(&segment)?
                && let Some(Some(first)) = index.pack_seq(seg, offset)?
                && let Some(i) = pack.entries().iter().position(|e| e.slot == slot)
            {
                seqs.push(first + i as u64);
            }
        }
        seqs.sort_unstable();
        seqs.dedup();
        let mut out = Vec::with_capacity(seqs.len());
        for seq in seqs {
            if let Some((first, run)) = index.run_containing(seq)? {
                let found = self
                    .run_entries(first, run)?
                    .into_iter()
                    .find(|e| e.seq == seq);
                out.extend(found);
            }
        }
        Ok(out)
    }

    /// Runs newest first, each expanded newest first.
    fn expand<'a>(
        &'a self,
        runs: impl Iterator<Item = Result<(u64, RunRec)>> + 'a,
    ) -> impl Iterator<Item = Result<EntryInfo>> + 'a {
        runs.flat_map(move |r| {
            let items: Vec<Result<EntryInfo>> =
                match r.and_then(|(first, run)| self.run_entries(first, run)) {
                    Ok(v) => v.into_iter().rev().map(Ok).collect(),
                    Err(e) => vec![Err(e)],
                };
            items
        })
    }

    /// Every entry, newest first.
    pub fn entries(&self) -> Box<dyn Iterator<Item = Result<EntryInfo>> + '_> {
        match self.index() {
            Ok(index) => Box::new(self.expand(index.runs_newest_first())),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }

    /// The runs that can hold entries matching `query`, newest first: those with every tag
    /// the query requires (from the tag keys), and whose times overlap the query's bounds.
    fn runs_for<'q>(&'q self, query: &'q crate::query::Query) -> Result<Runs<'q>> {
        let index = self.index()?;
        let (lo, hi) = query.time_bounds();
        let in_time = move |r: &Result<(u64, RunRec)>| match r {
            Ok((_, RunRec::Pack(p))) => p.time_max >= lo && p.time_min <= hi,
            _ => true,
        };
        let required = query.required_tags();
        if required.is_empty() {
            return Ok(Box::new(index.runs_newest_first().filter(in_time)));
        }
        let mut firsts: Option<Vec<u64>> = None;
        for (k, v) in required {
            let mut these = index.runs_tagged(k, v)?;
            if let Some(prev) = firsts {
                these.retain(|s| prev.binary_search(s).is_ok());
            }
            firsts = Some(these);
        }
        let firsts = firsts.unwrap_or_default();
        Ok(Box::new(
            firsts
                .into_iter()
                .rev()
                .filter_map(move |first| index.run_containing(first).transpose())
                .filter(in_time),
        ))
    }

    /// The entries of one run that match `query`, newest first. In a pack, tags are matched
    /// once per distinct tag set when the query looks at nothing else, and hashes are computed
    /// only for the entries that match, unless the query looks at them.
    fn run_matches(
        &self,
        first: u64,
        run: RunRec,
        query: &crate::query::Query,
    ) -> Result<Vec<EntryInfo>> {
        let needs_object = query.needs_object();
        let matches = |e: &EntryInfo| {
            let info = if needs_object {
                self.info(&e.hash).ok()
            } else {
                None
            };
            query.matches(e, info.as_ref())
        };
        let RunRec::Pack(p) = run else {
            let mut v = self.run_entries(first, run)?;
            v.retain(|e| matches(e));
            v.reverse();
            return Ok(v);
        };
        let seg = self.index()?.segment(p.seg)?;
        let pack = self.locator.pack(&seg.name, p.offset)?;
        let by_tags_only = !query.needs_more_than_tags();
        let needs_hash = query.needs_hash();
        let mut tagset_matches: HashMap<u32, bool> = HashMap::new();
        let mut out = Vec::new();
        for (i, (slot, time_ns, tagset)) in pack.entry_items().enumerate() {
            let tags = pack.tags(tagset);
            let mut e = EntryInfo {
                seq: first + i as u64,
                time_ns,
                hash: ObjectHash([0; 32]),
                tags: Vec::new(),
            };
            let hit = if by_tags_only {
                *tagset_matches.entry(tagset).or_insert_with(|| {
                    e.tags = tags.to_vec();
                    matches(&e)
                })
            } else {
                e.tags = tags.to_vec();
                if needs_hash {
                    e.hash = pack.item_hash(slot).unwrap_or(e.hash);
                }
                matches(&e)
            };
            if hit {
                if e.tags.is_empty() {
                    e.tags = tags.to_vec();
                }
                if let Some(h) = pack.item_hash(slot) {
                    e.hash = h;
                    out.push(e);
                }
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Entries matching `query`, newest first. Tag equalities and time bounds narrow the runs
    /// read through the index; object fields (kind, dtype, rank, size) are looked up only for
    /// queries that name them.
    pub fn query<'q>(
        &'q self,
        query: &'q crate::query::Query,
    ) -> impl Iterator<Item = Result<EntryInfo>> + 'q {
        let runs: Runs<'q> = match self.runs_for(query) {
            Ok(runs) => runs,
            Err(e) => Box::new(std::iter::once(Err(e))),
        };
        runs.flat_map(move |r| {
            let items: Vec<Result<EntryInfo>> =
                match r.and_then(|(first, run)| self.run_matches(first, run, query)) {
                    Ok(v) => v.into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e)],
                };
            items
        })
    }

    fn object_frame(&self, hash: &ObjectHash, loc: &ObjectLoc) -> Result<ObjectFrame> {
        let seg = self.index()?.segment(loc.seg)?;
        ObjectFrame::read(
            &self.locator.maps,
            &self.segments_dir.join(&seg.name),
            loc.offset,
            hash,
        )
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

    /// Re-read every segment: check every frame, decode and re-hash every object, and check
    /// that every indexed object points at a good frame. `progress(done, total)` counts bytes.
    pub fn verify(&self, progress: &dyn Fn(u64, u64)) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let files = self.segment_files()?;
        let total: u64 = files
            .iter()
            .filter_map(|(_, p)| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        let mut done = 0;
        let mut good: HashSet<(String, u64)> = HashSet::new();
        // How much of each segment the scan saw: frames committed after it (by other threads
        // of this process) are in the index but not in the scan, and are not damage.
        let mut scanned: HashMap<String, u64> = HashMap::new();
        let own = self
            .slot()?
            .current
            .as_ref()
            .map(|(w, _)| w.name().to_owned());
        for (name, path) in &files {
            let Some(map) = map_file(path)? else { continue };
            scanned.insert(name.clone(), map.len() as u64);
            let problem = |offset, reason: String, hash| Problem {
                hash,
                path: path.clone(),
                offset,
                reason,
            };
            if let Err(reason) = SegmentHeader::decode(&map) {
                report.problems.push(problem(0, reason, None));
            }
            let found = scan(&map, SEGMENT_HEADER_LEN as u64);
            for d in found.damage {
                report.problems.push(problem(d.offset, d.reason, None));
            }
            if let Some(t) = found.tail {
                // A segment some writer holds may end in the frame it is writing.
                let busy = own.as_ref() == Some(name) || try_lock(path)?.is_none();
                if !busy {
                    report.problems.push(problem(
                        t.offset,
                        format!("torn tail: {}", t.reason),
                        None,
                    ));
                }
            }
            for frame in &found.frames {
                report.frames += 1;
                if frame.header.kind == FrameKind::Pack {
                    let checked = read_frame(&map, frame.offset)
                        .map_err(|e| Error::corrupt(path, frame.offset, e.to_string()))
                        .and_then(|(f, payload)| crate::pack::decode_frame(&f, payload, path));
                    match checked {
                        Ok(pack) => {
                            for (_, o) in pack.objects() {
                                report.objects_checked += 1;
                                report.bytes_checked += o.data.len() as u64;
                            }
                            good.insert((name.clone(), frame.offset));
                        }
                        Err(e) => report
                            .problems
                            .push(problem(frame.offset, e.to_string(), None)),
                    }
                    continue;
                }
                if frame.header.kind != FrameKind::Object {
                    continue;
                }
                report.objects_checked += 1;
                let h = frame.header.hash;
                let checked = (|| {
                    let meta = object_meta(frame, path)?;
                    let (_, payload) = read_frame(&map, frame.offset)
                        .map_err(|e| Error::corrupt(path, frame.offset, e.to_string()))?;
                    let bytes = decode_payload(frame, meta, payload, path)?;
                    verify_hash(&h, meta, &bytes, path, frame.offset)?;
                    Ok::<u64, Error>(bytes.len() as u64)
                })();
                match checked {
                    Ok(n) => {
                        report.bytes_checked += n;
                        good.insert((name.clone(), frame.offset));
                    }
                    Err(e) => report
                        .problems
                        .push(problem(frame.offset, e.to_string(), Some(h))),
                }
            }
            done += map.len() as u64;
            progress(done, total);
        }
        // Packed objects: their table entries must point at good packs.
        for at in self.index()?.tables().all().filter(|at| at.slot != 0) {
            let newer = match scanned.get(&at.segment) {
                Some(len) => at.offset >= *len,
                None => self.segments_dir.join(&at.segment).is_file(),
            };
            if !newer && !good.contains(&(at.segment.clone(), at.offset)) {
                let path = self.segments_dir.join(&at.segment);
                let already = report
                    .problems
                    .iter()
                    .any(|p| p.path == path && p.offset == at.offset);
                if !already {
                    report.problems.push(Problem {
                        hash: None,
                        path,
                        offset: at.offset,
                        reason: "the index points at no good pack here".into(),
                    });
                }
            }
        }
        let segs = self.index()?.segments()?;
        for item in self.index()?.objects() {
            let (h, loc) = item?;
            let name = segs
                .get(loc.seg as usize)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            let newer = match scanned.get(&name) {
                Some(len) => loc.offset >= *len,
                None => self.segments_dir.join(&name).is_file(),
            };
            if !newer && !good.contains(&(name.clone(), loc.offset)) {
                let already = report.problems.iter().any(|p| p.hash == Some(h));
                if !already {
                    report.problems.push(Problem {
                        hash: Some(h),
                        path: self.segments_dir.join(name),
                        offset: loc.offset,
                        reason: "the index points at no good frame for this object".into(),
                    });
                }
            }
        }
        Ok(report)
    }

    /// Rebuild the index from the segments alone.
    pub fn reindex(&mut self, progress: &dyn Fn(u64, u64)) -> Result<()> {
        // Make our own frames durable and visible to the scan first.
        {
            let mut slot = self.slot()?;
            if let Some((w, _)) = slot.current.as_mut() {
                w.sync()?;
            }
            slot.current = None;
        }
        self.index
            .as_mut()
            .ok_or_else(|| Error::invalid("archive", "opened for logging only"))?
            .clear()?;
        self.locator.clear();
        self.catch_up(progress)?;
        self.index()?.flush()
    }

    /// Counts and sizes.
    pub fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        let mut raw_of: HashMap<ObjectHash, u64> = HashMap::new();
        let mut kinds: HashMap<&'static str, u64> = HashMap::new();
        for item in self.index()?.objects() {
            let (h, loc) = item?;
            s.objects += 1;
            s.raw_bytes += loc.raw_len;
            s.stored_bytes += loc.stored_len;
            raw_of.insert(h, loc.raw_len);
            let kind = Kind::from_code(loc.kind).map_or("unknown", |k| k.name());
            *kinds.entry(kind).or_default() += 1;
        }
        // Packed objects: from their packs, each pack read once.
        let mut packs: Vec<(String, u64)> = self
            .index()?
            .tables()
            .all()
            .filter(|at| at.slot != 0)
            .map(|at| (at.segment, at.offset))
            .collect();
        packs.sort();
        packs.dedup();
        for (segment, offset) in packs {
            let pack = self.locator.pack(&segment, offset)?;
            s.stored_bytes += pack.stored_len;
            for (_, o) in pack.objects() {
                let h = o.hash();
                if raw_of.insert(h, o.data.len() as u64).is_none() {
                    s.objects += 1;
                    s.raw_bytes += o.data.len() as u64;
                    *kinds.entry(o.kind.name()).or_default() += 1;
                }
            }
        }
        for item in self.entries() {
            let e = item?;
            s.entries += 1;
            s.logical_bytes += raw_of.get(&e.hash).copied().unwrap_or(0);
        }
        for (_, path) in self.segment_files()? {
            s.segments += 1;
            s.segment_bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        }
        s.index_bytes = self.index()?.size_on_disk();
        let mut by_kind: Vec<(String, u64)> =
            kinds.into_iter().map(|(k, n)| (k.to_owned(), n)).collect();
        by_kind.sort();
        s.by_kind = by_kind;
        Ok(s)
    }
}

impl Drop for Archive {
    fn drop(&mut self) {
        if let Ok(mut slot) = self.writer.lock()
            && let Some((w, _)) = slot.current.as_mut()
        {
            let _ = w.sync();
        }
        if let Some(index) = &self.index {
            let _ = index.flush();
        }
    }
}

fn entry_info(seq: u64, e: EntryRec) -> EntryInfo {
    EntryInfo {
        seq,
        time_ns: e.time_ns,
        hash: e.hash,
        tags: e.tags,
    }
}

/// How a payload was stored, as frame metadata.
fn payload_meta(
    kind: &str,
    desc: &str,
    shape: &[u64],
    raw_len: usize,
    e: &codec::Encoded<'_>,
    level: Option<i32>,
) -> ObjectMeta {
    let raw = e.codec() == Codec::Raw;
    ObjectMeta {
        kind: kind.to_owned(),
        desc: desc.to_owned(),
        shape: shape.to_vec(),
        raw_len: raw_len as u64,
        chunk_size: if raw { 0 } else { CHUNK_SIZE as u64 },
        chunks: e.chunk_lens(),
        level: (!raw).then(|| level.unwrap_or(e.codec().default_level())),
    }
}

/// Add what a frame holds to an index update.
fn add_frame(update: &mut Update, seg: u32, frame: &Frame) {
    let h = frame.header.hash;
    if let Some(o) = &frame.meta.object {
        let kind = o.kind.parse::<Kind>().map(|k| k as u8).unwrap_or(0);
        update.objects.push((
            h,
            ObjectLoc {
                seg,
                offset: frame.offset,
                kind,
                desc: o.desc.clone(),
                shape: o.shape.clone(),
                raw_len: o.raw_len,
                stored_len: frame.header.payload_len,
                codec: frame.header.codec as u8,
                first_entry: None,
            },
        ));
    }
    if let Some(e) = &frame.meta.entry {
        update.push_entry(EntryRec {
            time_ns: e.time_ns,
            hash: h,
            tags: e.tags.clone(),
            seg,
            offset: frame.offset,
        });
    }
}

fn object_meta<'f>(frame: &'f Frame, path: &Path) -> Result<&'f ObjectMeta> {
    frame
        .meta
        .object
        .as_ref()
        .ok_or_else(|| Error::corrupt(path, frame.offset, "object frame without object metadata"))
}

fn descriptor(meta: &ObjectMeta) -> std::result::Result<Descriptor<'_>, String> {
    let kind = meta.kind.parse::<Kind>().map_err(|e| e.to_string())?;
    Ok(Descriptor {
        kind,
        desc: &meta.desc,
        shape: &meta.shape,
    })
}

fn elem_size(meta: &ObjectMeta) -> usize {
    if meta.kind == Kind::Tensor.name() {
        meta.desc.parse::<Dtype>().map(|d| d.size()).unwrap_or(1)
    } else {
        1
    }
}

/// Decode a payload to its raw bytes, bounded by the declared length.
pub(crate) fn decode_payload<'p>(
    frame: &Frame,
    meta: &ObjectMeta,
    payload: &'p [u8],
    path: &Path,
) -> Result<Cow<'p, [u8]>> {
    let corrupt = |reason: String| Error::corrupt(path, frame.offset, reason);
    if frame.header.codec == Codec::Raw {
        if meta.raw_len != payload.len() as u64 {
            return Err(corrupt(format!(
                "raw payload of {} bytes, metadata says {}",
                payload.len(),
                meta.raw_len
            )));
        }
        return Ok(Cow::Borrowed(payload));
    }
    if meta.chunk_size != CHUNK_SIZE as u64 {
        return Err(corrupt(format!(
            "unsupported chunk size {}",
            meta.chunk_size
        )));
    }
    if meta.raw_len > crate::format::frame::MAX_PAYLOAD_LEN {
        return Err(corrupt(format!("claims {} decoded bytes", meta.raw_len)));
    }
    let mut parts = Vec::with_capacity(meta.chunks.len().min(1 << 20));
    let mut at = 0usize;
    for &len in &meta.chunks {
        let end = usize::try_from(len).ok().and_then(|l| at.checked_add(l));
        let part = end
            .and_then(|e| payload.get(at..e))
            .ok_or_else(|| corrupt("chunk lengths run past the payload".into()))?;
        parts.push(part);
        at += part.len();
    }
    if at != payload.len() {
        return Err(corrupt("chunk lengths do not add up to the payload".into()));
    }
    let mut out = codec::zeroed(meta.raw_len as usize)
        .ok_or_else(|| corrupt(format!("cannot allocate {} bytes to decode", meta.raw_len)))?;
    codec::decode_chunks(frame.header.codec, elem_size(meta), &parts, &mut out).map_err(corrupt)?;
    Ok(Cow::Owned(out))
}

fn verify_hash(
    h: &ObjectHash,
    meta: &ObjectMeta,
    bytes: &[u8],
    path: &Path,
    offset: u64,
) -> Result<()> {
    let desc = descriptor(meta).map_err(|r| Error::corrupt(path, offset, r))?;
    if desc.hash(bytes) != *h {
        return Err(Error::corrupt(
            path,
            offset,
            "content does not hash back to its address",
        ));
    }
    Ok(())
}

fn build_object(meta: &ObjectMeta, bytes: Vec<u8>, path: &Path, offset: u64) -> Result<Object> {
    let corrupt = |reason: String| Error::corrupt(path, offset, reason);
    let kind = meta
        .kind
        .parse::<Kind>()
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(match kind {
        Kind::Tensor => {
            let dtype = meta
                .desc
                .parse::<Dtype>()
                .map_err(|e| corrupt(e.to_string()))?;
            Object::Tensor(
                Tensor::new(dtype, Shape::new(meta.shape.clone()), bytes)
                    .map_err(|e| corrupt(e.to_string()))?,
            )
        }
        Kind::Text => Object::Text(String::from_utf8(bytes).map_err(|e| corrupt(e.to_string()))?),
        Kind::Bytes => Object::Bytes {
            media_type: Some(meta.desc.clone()).filter(|d| !d.is_empty()),
            data: bytes,
        },
        Kind::Record => {
            let rec = Record::from_msgpack(&path.display().to_string(), &bytes)
                .map_err(|e| corrupt(e.to_string()))?;
            if meta.desc == CATEGORICAL {
                Object::Categorical(
                    Categorical::from_record("record", &rec).map_err(|e| corrupt(e.to_string()))?,
                )
            } else {
                Object::Record(rec)
            }
        }
    })
}

impl<'a> Prepared<'a> {
    fn tensor(view: &TensorView<'a>) -> Self {
        Prepared {
            kind: Kind::Tensor,
            desc: Cow::Borrowed(view.dtype().name()),
            shape: Cow::Borrowed(view.shape().dims()),
            payload: Cow::Borrowed(view.data()),
            elem: view.dtype().size(),
            refs: Vec::new(),
        }
    }

    fn text(text: &'a str) -> Self {
        Prepared {
            kind: Kind::Text,
            desc: Cow::Borrowed(""),
            shape: Cow::Borrowed(&[]),
            payload: Cow::Borrowed(text.as_bytes()),
            elem: 1,
            refs: Vec::new(),
        }
    }

    fn bytes(data: &'a [u8], media_type: Option<&'a str>) -> Self {
        Prepared {
            kind: Kind::Bytes,
            desc: Cow::Borrowed(media_type.unwrap_or_default()),
            shape: Cow::Borrowed(&[]),
            payload: Cow::Borrowed(data),
            elem: 1,
            refs: Vec::new(),
        }
    }

    fn record(record: &Record, schema: &'a str) -> Self {
        Prepared {
            kind: Kind::Record,
            desc: Cow::Borrowed(schema),
            shape: Cow::Borrowed(&[]),
            payload: Cow::Owned(record.to_msgpack()),
            elem: 1,
            refs: record.refs(),
        }
    }
}

/// Owned copies of tags.
fn owned_tags(tags: &[(&str, &str)]) -> Vec<(String, String)> {
    tags.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Check tags against the archive's rules.
pub(crate) fn validate_tags(tags: &[(&str, &str)]) -> Result<()> {
    tags.iter().try_for_each(|(k, v)| {
        let input = || format!("tag {k}={v}");
        if k.is_empty() || k.len() > MAX_TAG_KEY {
            return Err(Error::invalid(
                input(),
                format!("a tag key takes 1 to {MAX_TAG_KEY} bytes"),
            ));
        }
        if k.chars()
            .any(|c| c == '=' || c.is_whitespace() || c.is_control())
        {
            return Err(Error::invalid(
                input(),
                "a tag key cannot hold `=`, spaces or control characters",
            ));
        }
        if v.len() > MAX_TAG_VALUE || v.chars().any(char::is_control) {
            return Err(Error::invalid(
                input(),
                format!(
                    "a tag value takes at most {MAX_TAG_VALUE} bytes and no control characters"
                ),
            ));
        }
        Ok(())
    })
}

/// What a writer has done since it was made (across commits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterTotals {
    /// Puts that logged an entry.
    pub entries: u64,
    /// Of those, puts of content already stored (an entry, and no new object).
    pub duplicates: u64,
    /// Objects stored (content not stored before, parts of records included).
    pub new_objects: u64,
    /// Decoded bytes of those objects.
    pub raw_bytes: u64,
    /// Bytes they take in segments.
    pub stored_bytes: u64,
}

/// A batch of puts that become durable together, with one fsync, at `commit`. Dropping an
/// uncommitted writer commits it; call `commit` to see the error if that fails.
pub struct Writer<'a> {
    archive: &'a Archive,
    opts: PutOptions,
    /// Where this batch's first frame went, and where its last one ended.
    span: Option<(u32, u64, u64)>,
    /// This batch's id among the open batches (`WriterSlot::open_batches`), once it appended.
    batch: Option<u64>,
    totals: WriterTotals,
    update: Update,
    pending: crate::hash::HashSet,
    failures_at_start: Option<u64>,
    count: usize,
    /// Small objects and entries not yet written: one pack frame at commit (or when full).
    pack: PackBuilder,
}

impl Writer<'_> {
    /// Codec options for the puts of this batch that give none.
    pub fn set_options(&mut self, opts: PutOptions) -> &mut Self {
        self.opts = opts;
        self
    }

    /// Put a tensor.
    pub fn put_tensor(
        &mut self,
        view: &TensorView<'_>,
        tags: &[(&str, &str)],
    ) -> Result<ObjectHash> {
        self.put_prepared(
            Prepared::tensor(view),
            tags,
            &self.opts.clone(),
            Some(now_ns()),
        )
    }

    /// Put a tensor with explicit codec options.
    pub fn put_tensor_with(
        &mut self,
        view: &TensorView<'_>,
        tags: &[(&str, &str)],
        opts: &PutOptions,
    ) -> Result<ObjectHash> {
        self.put_prepared(Prepared::tensor(view), tags, opts, Some(now_ns()))
    }

    /// Store a tensor without logging an entry for it: for the parts of a record (the arrays
    /// of an `.npz`, say), whose record is what gets logged.
    pub fn put_tensor_part(&mut self, view: &TensorView<'_>) -> Result<ObjectHash> {
        self.put_prepared(Prepared::tensor(view), &[], &self.opts.clone(), None)
    }

    /// Put UTF-8 text.
    pub fn put_text(&mut self, text: &str, tags: &[(&str, &str)]) -> Result<ObjectHash> {
        self.put_prepared(
            Prepared::text(text),
            tags,
            &self.opts.clone(),
            Some(now_ns()),
        )
    }

    /// Put opaque bytes.
    pub fn put_bytes(
        &mut self,
        data: &[u8],
        media_type: Option<&str>,
        tags: &[(&str, &str)],
    ) -> Result<ObjectHash> {
        self.put_prepared(
            Prepared::bytes(data, media_type),
            tags,
            &self.opts.clone(),
            Some(now_ns()),
        )
    }

    /// Put a record.
    pub fn put_record(&mut self, record: &Record, tags: &[(&str, &str)]) -> Result<ObjectHash> {
        self.put_prepared(
            Prepared::record(record, ""),
            tags,
            &self.opts.clone(),
            Some(now_ns()),
        )
    }

    /// Put categorical outputs (see `Archive::put_categorical`).
    pub fn put_categorical(
        &mut self,
        codes: &TensorView<'_>,
        labels: &[String],
        tags: &[(&str, &str)],
    ) -> Result<ObjectHash> {
        let dtype = codes.dtype();
        if !dtype.is_integer() {
            return Err(Error::invalid(
                "codes",
                format!("categorical codes must be integers, not {dtype}"),
            ));
        }
        let size = dtype.size();
        for (i, c) in codes.data().chunks_exact(size).enumerate() {
            let mut le = [0u8; 8];
            le.get_mut(..size).unwrap_or_default().copy_from_slice(c);
            let signed_neg = matches!(dtype, Dtype::I8 | Dtype::I16 | Dtype::I32 | Dtype::I64)
                && c.last().is_some_and(|b| b & 0x80 != 0);
            let v = u64::from_le_bytes(le);
            if signed_neg || v >= labels.len() as u64 {
                return Err(Error::invalid(
                    "codes",
                    format!("code at index {i} is outside the {} labels", labels.len()),
                ));
            }
        }
        let codes_hash =
            self.put_prepared(Prepared::tensor(codes), &[], &self.opts.clone(), None)?;
        let cat = Categorical {
            codes: codes_hash,
            labels: labels.to_vec(),
        };
        self.put_prepared(
            Prepared::record(&cat.to_record(), CATEGORICAL),
            tags,
            &self.opts.clone(),
            Some(now_ns()),
        )
    }

    /// Log an entry of content already stored (by this batch or before), with `tags` at
    /// `time_ns`, without handing the content over again. `Error::NotFound` if the content is
    /// not stored.
    pub fn put_entry(
        &mut self,
        hash: &ObjectHash,
        tags: &[(&str, &str)],
        time_ns: i64,
    ) -> Result<()> {
        let archive = self.archive;
        validate_tags(tags)?;
        let known = self.pending.contains(hash)
            || archive.claimed()?.contains(hash)
            || archive.known(hash)?;
        if !known {
            return Err(Error::NotFound(hash.to_string()));
        }
        self.pack.push_entry(*hash, time_ns, tags);
        self.totals.entries += 1;
        self.totals.duplicates += 1;
        self.count += 1;
        if self.pack.is_full() {
            self.flush_pack()?;
        }
        Ok(())
    }

    /// Put any object. `entry` gives the tags and time (nanoseconds since the Unix epoch) of
    /// the entry that logs it; `None` stores it without an entry, as a part of a record. This
    /// is how objects are copied between stores with their entries' times (`merge`).
    pub fn put_object(
        &mut self,
        object: &Object,
        entry: Option<(&[(&str, &str)], i64)>,
    ) -> Result<ObjectHash> {
        let (tags, time) = match entry {
            Some((tags, time)) => (tags, Some(time)),
            None => (&[][..], None),
        };
        let opts = self.opts.clone();
        let p = match object {
            Object::Tensor(t) => Prepared::tensor(&t.view()),
            Object::Text(text) => Prepared::text(text),
            Object::Bytes { media_type, data } => Prepared::bytes(data, media_type.as_deref()),
            Object::Record(r) => Prepared::record(r, ""),
            Object::Categorical(c) => Prepared::record(&c.to_record(), CATEGORICAL),
        };
        self.put_prepared(p, tags, &opts, time)
    }

    fn put_prepared(
        &mut self,
        p: Prepared<'_>,
        tags: &[(&str, &str)],
        opts: &PutOptions,
        entry_time: Option<i64>,
    ) -> Result<ObjectHash> {
        let archive = self.archive;
        validate_tags(tags)?;
        if p.desc.len() > MAX_DESC {
            return Err(Error::invalid(
                p.desc.as_ref(),
                format!("longer than {MAX_DESC} bytes"),
            ));
        }
        for r in &p.refs {
            if !self.pending.contains(r) && !archive.known(r)? {
                return Err(Error::invalid(
                    format!("reference {r}"),
                    "a record may only refer to objects already in the archive",
                ));
            }
        }
        let desc = Descriptor {
            kind: p.kind,
            desc: &p.desc,
            shape: &p.shape,
        };
        let level = opts.level.or(archive.settings.zstd_level);
        let payload: &[u8] = &p.payload;
        // Big payloads: hash and compress at once on every core. Small ones: hash first, so a
        // duplicate costs no compression.
        let (hash, encoded) = if payload.len() >= CHUNK_SIZE {
            let (h, e) = rayon::join(
                || desc.hash(payload),
                || codec::encode(payload, p.elem, opts.codec, level),
            );
            (h, Some(e?))
        } else {
            (desc.hash(payload), None)
        };
        let known = self.pending.contains(&hash) || {
            let mut claimed = archive.claimed()?;
            let known = claimed.contains(&hash) || archive.known(&hash)?;
            if !known {
                claimed.insert(hash);
                self.pending.insert(hash);
            }
            known
        };
        if known && entry_time.is_none() {
            return Ok(hash);
        }
        // Small objects, and entries of content stored before, go into the batch's pack;
        // a codec asked for (raw, to map a tensor, say) gets a frame of its own.
        let packable = payload.len() <= PACK_ITEM_MAX && opts.codec.is_none();
        if known || packable {
            match (entry_time, known) {
                (Some(t), true) => self.pack.push_entry(hash, t, tags),
                (t, _) => {
                    self.pack
                        .push_object(hash, &desc, payload, t.map(|t| (t, tags)));
                    self.totals.new_objects += 1;
                    self.totals.raw_bytes += payload.len() as u64;
                }
            }
            if entry_time.is_some() {
                self.totals.entries += 1;
                self.totals.duplicates += u64::from(known);
            }
            self.count += 1;
            if self.pack.is_full() {
                self.flush_pack()?;
            }
            return Ok(hash);
        }
        let entry = entry_time.map(|time_ns| EntryMeta {
            time_ns,
            tags: owned_tags(tags),
        });
        // Entries stay in put order: the pack's entries go first.
        if entry.is_some() && self.pack.entry_count() > 0 {
            self.flush_pack()?;
        }
        let encoded = match encoded {
            Some(e) => e,
            None => codec::encode(payload, p.elem, opts.codec, level)?,
        };
        let meta = FrameMeta {
            object: Some(payload_meta(
                p.kind.name(),
                &p.desc,
                &p.shape,
                payload.len(),
                &encoded,
                level,
            )),
            entry: entry.clone(),
        };
        let mappable = matches!(p.kind, Kind::Tensor | Kind::Bytes);
        let align = FrameHeader::payload_align(mappable, encoded.codec(), payload.len() as u64);
        let appended = self.append(
            FrameKind::Object,
            encoded.codec(),
            hash,
            &meta.encode(),
            &encoded.parts(),
            align,
        );
        let (seg, offset) = match appended {
            Ok(at) => at,
            Err(e) => {
                self.pending.remove(&hash);
                archive.release(&[hash]);
                return Err(e);
            }
        };
        self.totals.new_objects += 1;
        self.totals.raw_bytes += payload.len() as u64;
        self.totals.stored_bytes += encoded.stored_len();
        self.update.objects.push((
            hash,
            ObjectLoc {
                seg,
                offset,
                kind: p.kind as u8,
                desc: p.desc.to_string(),
                shape: p.shape.to_vec(),
                raw_len: payload.len() as u64,
                stored_len: encoded.stored_len(),
                codec: encoded.codec() as u8,
                first_entry: None,
            },
        ));
        if let Some(e) = entry {
            self.totals.entries += 1;
            self.update.push_entry(EntryRec {
                time_ns: e.time_ns,
                hash,
                tags: e.tags,
                seg,
                offset,
            });
        }
        self.count += 1;
        Ok(hash)
    }

    /// Append a frame to this process's segment, as part of this batch.
    fn append(
        &mut self,
        kind: FrameKind,
        codec: Codec,
        hash: ObjectHash,
        meta: &[u8],
        parts: &[&[u8]],
        align: u64,
    ) -> Result<(u32, u64)> {
        let archive = self.archive;
        let mut slot = archive.slot()?;
        // Any failure from here on fails the batch's commit: a pack holds earlier puts.
        self.failures_at_start.get_or_insert(slot.failures);
        let (w, seg) = match archive.ensure_segment(&mut slot) {
            Ok(s) => s,
            Err(e) => {
                slot.failures += 1;
                return Err(e);
            }
        };
        let seg = *seg;
        let offset = match w.append(kind, codec, hash, meta, parts, align) {
            Ok(o) => o,
            Err(e) => {
                slot.failures += 1;
                return Err(e);
            }
        };
        // The index's high-water mark for this segment moves past this frame at commit,
        // so reopening does not index it a second time.
        let end = w.len();
        self.span = match self.span {
            Some((first_seg, first, _)) => Some((first_seg, first, end)),
            None => Some((seg, offset, end)),
        };
        match self.update.marks.iter_mut().find(|(s, _, _)| *s == seg) {
            Some((_, to, max)) => (*to, *max) = ((*to).max(end), (*max).max(end)),
            None => self.update.marks.push((seg, end, end)),
        }
        let batch = *self.batch.get_or_insert_with(|| {
            slot.next_batch += 1;
            slot.next_batch
        });
        let firsts = slot.open_batches.entry(batch).or_default();
        if !firsts.iter().any(|(s, _)| *s == seg) {
            firsts.push((seg, offset));
        }
        Ok((seg, offset))
    }

    /// Write the pack of small objects and entries gathered so far as one frame.
    fn flush_pack(&mut self) -> Result<()> {
        if self.pack.is_empty() {
            return Ok(());
        }
        let (body, summary) = self.pack.finish();
        // zstd level 1 unless the store or the writer asks for another: packs are written on
        // the logging path, where level 3 costs ~40 % more time for ~5 % fewer bytes.
        let level = Some(
            self.opts
                .level
                .or(self.archive.settings.zstd_level)
                .unwrap_or(1),
        );
        let encoded = codec::encode(&body, 1, None, level)?;
        let meta = FrameMeta {
            object: Some(payload_meta(
                PACK_KIND,
                "",
                &[],
                body.len(),
                &encoded,
                level,
            )),
            entry: None,
        };
        let hash = ObjectHash::from(blake3::hash(&body));
        let align = FrameHeader::payload_align(false, encoded.codec(), body.len() as u64);
        let (seg, offset) = self.append(
            FrameKind::Pack,
            encoded.codec(),
            hash,
            &meta.encode(),
            &encoded.parts(),
            align,
        )?;
        self.totals.stored_bytes += encoded.stored_len();
        self.update.runs.push(RunUpdate::Pack(PackUpdate {
            seg,
            offset,
            summary,
        }));
        Ok(())
    }

    /// What this writer has done so far, across commits.
    pub fn totals(&self) -> WriterTotals {
        self.totals
    }

    /// Number of puts since the last commit.
    pub fn pending(&self) -> usize {
        self.count
    }

    /// Make every put of this batch durable (one fsync) and visible to readers.
    pub fn commit(&mut self) -> Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        if let Err(e) = self.flush_pack() {
            self.reset();
            return Err(e);
        }
        let archive = self.archive;
        {
            let mut slot = archive.slot()?;
            if self.failures_at_start.is_some_and(|f| f != slot.failures) {
                let n = self.count;
                // `reset` takes the slot lock itself: release it first, or this thread waits
                // on itself forever.
                drop(slot);
                self.reset();
                return Err(Error::invalid(
                    "batch",
                    format!(
                        "a write failed before this commit; the batch's {n} puts were not stored"
                    ),
                ));
            }
            if let Some((w, _)) = slot.current.as_mut()
                && let Err(e) = w.sync()
            {
                slot.failures += 1;
                drop(slot);
                self.reset();
                return Err(e);
            }
            // Marks stop at the first frame of any other open batch in the same segment.
            let mine = self.batch.take();
            if let Some(b) = mine {
                slot.open_batches.remove(&b);
            }
            for (seg, to, _) in &mut self.update.marks {
                for firsts in slot.open_batches.values() {
                    for (s, first) in firsts {
                        if s == seg {
                            *to = (*to).min(*first);
                        }
                    }
                }
            }
        }
        let update = std::mem::take(&mut self.update);
        let claims: Vec<ObjectHash> = self.pending.drain().collect();
        self.reset();
        // The claims make the objects this batch stored new to the index: no lookups needed.
        // Opened for logging only: the frames are durable; the index learns of them when a
        // process next opens it.
        let applied = match &archive.index {
            Some(index) => index.apply(update, true).map(|_| ()),
            None => Ok(()),
        };
        archive.release(&claims);
        applied
    }

    /// Undo every put since the last commit: cut the segment back to where this batch began,
    /// so the store is exactly as it was. This works when nothing else was appended to the
    /// segment after the batch (always, for a process that writes one batch at a time); if
    /// something was, the batch is left uncommitted (its frames are indexed on the next open)
    /// and the error says so.
    pub fn discard(mut self) -> Result<()> {
        let span = self.span;
        let n = self.count;
        self.reset();
        let Some((seg, first, end)) = span else {
            return Ok(());
        };
        let mut slot = self.archive.slot()?;
        match slot.current.as_mut() {
            Some((w, s)) if *s == seg && w.len() == end => w.truncate_to(first),
            _ => Err(Error::invalid(
                "batch",
                format!("cannot discard {n} puts: other puts were appended after them"),
            )),
        }
    }

    fn reset(&mut self) {
        self.span = None;
        self.pack = PackBuilder::default();
        self.update = Update::default();
        let claims: Vec<ObjectHash> = self.pending.drain().collect();
        self.archive.release(&claims);
        if let Some(b) = self.batch.take()
            && let Ok(mut slot) = self.archive.slot()
        {
            slot.open_batches.remove(&b);
        }
        self.failures_at_start = None;
        self.count = 0;
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        let _ = self.commit();
    }
}
