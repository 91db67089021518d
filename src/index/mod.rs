//! The sled index: a cache derived from the segments, rebuildable at any time. It maps hashes
//! to frame locations (with a summary, so `info` and `ls` never touch the segments), keeps
//! entries in logging order, and records how far each segment has been indexed.
//!
//! sled costs about 300 bytes and several microseconds per key, so only what must be found by
//! key has one: each object in a frame of its own (by hash). Objects in pack frames are found
//! through the lookup tables alone. Entries are sequential, so a commit's entries share one
//! key: a run, found by its first sequence number; a pack's entries are one run that points at
//! the pack. Each run has a key per distinct tag (`t`), so a tag query reads only its runs.

mod apply;
mod filters;
pub mod keys;
pub mod lookup;
mod removed;
mod sizes;
mod table_layout;
mod tables;
pub use removed::Removed;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::bloom::Probe;
use crate::hash::{ObjectHash, parse_hex_nibbles};

/// Layout version of the index. The index is a cache: a mismatch means "rebuild", never
/// "migrate".
const INDEX_VERSION: u32 = 7;

/// How the reason an index was cleared starts when another program version wrote it (not
/// damage: an upgrade).
pub(crate) const OTHER_LAYOUT: &str = "the index is of layout";

/// Most entries in one run (one sled value), so a run stays a few tens of KiB.
const RUN_MAX: usize = 512;

/// sled's page cache. Small, because every lookup is one key: the default 1 GiB cache holds
/// ~300 MB resident on a million-key index and buys nothing for single lookups.
const CACHE_BYTES: u64 = 32 << 20;

/// Where an object is and what it is.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ObjectLoc {
    /// Segment id (see `SegRec`).
    pub seg: u32,
    /// Offset of the frame in the segment.
    pub offset: u64,
    /// Kind byte.
    pub kind: u8,
    /// Dtype, media type or record schema.
    pub desc: String,
    /// Tensor shape.
    pub shape: Vec<u64>,
    /// Decoded bytes.
    pub raw_len: u64,
    /// Stored bytes.
    pub stored_len: u64,
    /// Codec byte.
    pub codec: u8,
    /// The entry logged by the object's own frame, if any. Other entries of the object (puts
    /// of content already stored) have `r` keys; this spares the common case a key.
    #[serde(default)]
    pub first_entry: Option<u64>,
}

/// An entry as indexed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EntryRec {
    /// Nanoseconds since the Unix epoch.
    pub time_ns: i64,
    /// The object logged.
    pub hash: ObjectHash,
    /// Tags.
    pub tags: Vec<(String, String)>,
    /// Segment id of the frame that logged it.
    pub seg: u32,
    /// Offset of that frame.
    pub offset: u64,
}

/// The entries of a pack frame, as a run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PackRun {
    /// Segment id.
    pub seg: u32,
    /// Offset of the pack frame.
    pub offset: u64,
    /// Entries in the pack.
    pub count: u64,
    /// Earliest entry time.
    pub time_min: i64,
    /// Latest entry time.
    pub time_max: i64,
}

/// The value of a run key: entries listed, or the pack that holds them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum RunRec {
    /// Entries logged by frames of their own.
    Entries(Vec<EntryRec>),
    /// Entries in a pack frame.
    Pack(PackRun),
}

impl RunRec {
    /// Number of entries.
    pub fn len(&self) -> u64 {
        match self {
            RunRec::Entries(v) => v.len() as u64,
            RunRec::Pack(p) => p.count,
        }
    }
}

/// What the index takes from a pack frame.
#[derive(Clone, Debug)]
pub struct PackUpdate {
    /// Segment id.
    pub seg: u32,
    /// Frame offset.
    pub offset: u64,
    /// What it holds.
    pub summary: crate::format::pack::PackSummary,
}

/// A run of entries in an update, in logging order.
#[derive(Clone, Debug)]
pub enum RunUpdate {
    /// Entries of frames of their own.
    Entries(Vec<EntryRec>),
    /// A pack frame (its objects and entries).
    Pack(PackUpdate),
}

/// A segment and how far it has been indexed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SegRec {
    /// File name under `segments/`.
    pub name: String,
    /// Frames before this offset are indexed.
    pub indexed_to: u64,
    /// Some frames before this offset may be indexed too (a commit that could not move
    /// `indexed_to` past another batch's frames): a rescan checks them before indexing.
    #[serde(default)]
    pub indexed_max: u64,
}

/// A set of changes applied atomically.
#[derive(Default, Debug)]
pub struct Update {
    /// New objects in frames of their own (duplicates of indexed ones are skipped).
    pub objects: Vec<(ObjectHash, ObjectLoc)>,
    /// New runs of entries, in order; they get the next sequence numbers. Pack runs also
    /// bring the pack's objects, which go to the lookup tables only.
    pub runs: Vec<RunUpdate>,
    /// Segments indexed up to an offset.
    pub marks: Vec<(u32, u64, u64)>,
    /// Field paths of the records among the new objects (see `Record::paths`).
    pub record_fields: HashSet<String>,
    /// Record (path, value) pairs of entries in frames of their own, by (segment, offset).
    pub attrs: HashMap<(u32, u64), Vec<(String, String)>>,
    /// Entries in frames of their own that log content whose record fields are not known.
    pub attrs_unknown: HashSet<(u32, u64)>,
    /// Decoded sizes of the content entry frames (no object of their own) log, by frame.
    pub entry_raw: HashMap<(u32, u64), u64>,
    /// One hash per entry whose content the index did not hold when it was read (its size
    /// counts once the content is indexed: `sizes.rs`).
    pub waiting: Vec<ObjectHash>,
    /// Removal frames: segment id, offset, body.
    pub removals: Vec<(u32, u64, crate::format::removal::RemovalBody)>,
    /// Segments compactions replaced.
    pub superseded: Vec<String>,
    /// Compaction frames: (segment id, offset, entries left out, stored bytes dropped).
    pub compactions: Vec<(u32, u64, u64, u64)>,
}

impl Update {
    /// Add an entry of a frame of its own, after the runs so far.
    pub fn push_entry(&mut self, e: EntryRec) {
        match self.runs.last_mut() {
            Some(RunUpdate::Entries(v)) => v.push(e),
            _ => self.runs.push(RunUpdate::Entries(vec![e])),
        }
    }
}

struct Segs {
    recs: Vec<SegRec>,
    by_name: HashMap<String, u32>,
}

/// Name of the lookup-table directory inside the index directory.
pub const LOOKUP_DIR: &str = "lookup";

/// The open index.
pub struct Index {
    path: PathBuf,
    lookup: PathBuf,
    db: sled::Db,
    tables: std::sync::RwLock<std::sync::Arc<lookup::Tables>>,
    segs: Mutex<Segs>,
    /// Next entry sequence number; the lock also serializes `apply`.
    next_seq: Mutex<u64>,
    /// The removals, once read (`removed`).
    removed: std::sync::RwLock<Option<std::sync::Arc<Removed>>>,
    /// Entries waiting for their content, once read (`sizes.rs`).
    waiting: sizes::Waiting,
    /// The bloom filters too large for sled (`filters.rs`).
    filters: filters::Filters,
}

/// Most values of one tag key that a run gets a tag key each for. A run with more (records of
/// many runs interleaved in one stream, say) gets one `MANY_VALUES` key for that tag key, and
/// queries read it whatever value they look for: this bounds the index to a few keys per run.
pub(crate) const TAG_VALUES_PER_RUN: usize = 32;

/// The value of the tag key of a run with more than `TAG_VALUES_PER_RUN` values of a key. Tag
/// values hold no control characters, so no real value is this.
const MANY_VALUES: &str = "\u{1}";

/// The tag key of a run with an entry that logs content whose record fields the index does not
/// know (a record stored elsewhere): queries on a record field read the run whatever they look
/// for. Tag keys hold no control characters, so no real key is this.
const FIELDS_UNKNOWN: &str = "\u{1}";

/// The names a store knows: tag keys, and field paths of its records.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Names {
    /// Tag keys of the entries.
    pub tag_keys: HashSet<String>,
    /// Field paths of the records (`label`, `meta.source`).
    pub record_fields: HashSet<String>,
}

impl Names {
    /// True if `name` is a tag key or a record field path.
    pub fn contains(&self, name: &str) -> bool {
        self.tag_keys.contains(name) || self.record_fields.contains(name)
    }
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    rmp_serde::to_vec(v).map_err(|e| Error::internal(format!("cannot encode an index value: {e}")))
}

/// sled's segment size in a store's index: its file grows by whole segments, and what the
/// index keeps in sled is small (pack runs, postings of few values, totals), so small segments
/// (sled's default is 512 KiB) keep the file near the data's size. sled refuses to open a
/// database with another (the index is then rebuilt), so a tool that opens it must pass this.
pub const SLED_SEGMENT: usize = 64 << 10;

/// Open the sled database in `path` (its files beside the lookup tables and filters).
fn open_db(path: &Path) -> Result<sled::Db> {
    // The caller holds `index.lock`, so a sled lock still held belongs to an index this
    // process just dropped: sled can let go of its file lock a moment after the drop (seen
    // as a flaky "could not acquire lock" when a test reopens a store). Wait up to 3 s.
    let mut waits = 0;
    loop {
        let opened = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .segment_size(SLED_SEGMENT)
            .open();
        match opened {
            Err(e) if waits < 300 && e.to_string().contains("could not acquire lock") => {
                waits += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => break other,
        }
    }
    .map_err(|e| match e {
        // Damage (seen after a SIGKILL mid-write) or a layout sled cannot read: the
        // caller rebuilds. Lock and I/O errors are not damage.
        sled::Error::Corruption { .. } | sled::Error::Unsupported(_) => Error::IndexDamaged {
            path: path.to_owned(),
            reason: e.to_string(),
        },
        other => Error::Index {
            path: path.to_owned(),
            reason: other.to_string(),
        },
    })
}

impl Index {
    fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::Index {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    fn decode<T: for<'de> Deserialize<'de>>(&self, bytes: &[u8]) -> Result<T> {
        rmp_serde::from_slice(bytes).map_err(|e| self.err(format!("bad index value: {e}")))
    }

    /// Open (or create) the index at `path`. An index found damaged (a lookup table that
    /// fails its checksum, `lookup/` missing or not a directory) or of another layout is
    /// cleared, and the reason returned: the caller rebuilds it from the segments. A new index
    /// is empty too, with no reason.
    pub fn open(path: &Path) -> Result<(Index, Option<String>)> {
        let db = open_db(path)?;
        let mut index = Index {
            path: path.to_owned(),
            lookup: path.join(LOOKUP_DIR),
            db,
            tables: std::sync::RwLock::default(),
            segs: Mutex::new(Segs {
                recs: Vec::new(),
                by_name: HashMap::new(),
            }),
            next_seq: Mutex::new(0),
            removed: std::sync::RwLock::default(),
            waiting: sizes::Waiting::default(),
            filters: filters::Filters::new(path),
        };
        let version = index.db.get(keys::VERSION).map_err(|e| index.err(e))?;
        let current = INDEX_VERSION.to_be_bytes();
        // The lookup tables are the only index of packed objects: without them, or with one
        // damaged, rebuild all.
        let stale = match version.as_deref() {
            None => None,
            Some(v) if v != current => Some(format!(
                "{OTHER_LAYOUT} {}, this program's is {INDEX_VERSION}",
                <[u8; 4]>::try_from(v).map_or(0, u32::from_be_bytes)
            )),
            Some(_) if !index.lookup.is_dir() => Some(format!(
                "{} is missing or not a directory",
                index.lookup.display()
            )),
            Some(_) => index.check_tables(),
        };
        if version.is_none() || stale.is_some() {
            index.clear()?;
        } else {
            index.load()?;
        }
        index.reload_tables();
        Ok((index, stale))
    }

    /// Check the lookup tables against their checksums, each table file once: a table that
    /// passed is remembered by its file's identity (`tables::file_stamp`), and hashed again
    /// only once that changes, so opening a big store does not hash all its tables every time
    /// (`verify` still checks them all). The reason a table failed, if one did.
    fn check_tables(&self) -> Option<String> {
        let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
        let mut live = HashSet::new();
        let mut known = |p: &Path| {
            if let Some(n) = name(p) {
                live.insert(keys::checked_table(&n));
            }
            self.was_checked(p)
        };
        let mut checked = |p: &Path| self.remember_checked(p);
        let mut failed = lookup::check_tables(&self.lookup, &mut known, &mut checked).err();
        // A table gone missing holds the only index of its packed objects.
        let expected = self.table_entries().unwrap_or(0);
        let found = lookup::Tables::open(&self.lookup).map_or(0, |t| t.entries());
        if failed.is_none() && found < expected {
            failed = Some(format!(
                "{}: the lookup tables hold {found} entries, the index recorded {expected}: a \
                 table is missing",
                self.lookup.display()
            ));
        }
        // Forget the tables merged away since.
        for item in self.db.scan_prefix([keys::CHECKED_TABLE]) {
            if let Ok((k, _)) = item
                && !live.contains(&k[..])
            {
                let _ = self.db.remove(k);
            }
        }
        failed
    }

    /// How many entries the lookup tables should hold (`keys::TABLE_ENTRIES`).
    fn table_entries(&self) -> Result<u64> {
        let v = self.db.get(keys::TABLE_ENTRIES).map_err(|e| self.err(e))?;
        Ok(v.and_then(|v| <[u8; 8]>::try_from(&v[..]).ok())
            .map_or(0, u64::from_be_bytes))
    }

    fn load(&mut self) -> Result<()> {
        let mut segs = Segs {
            recs: Vec::new(),
            by_name: HashMap::new(),
        };
        for item in self.db.scan_prefix([keys::SEGMENT]) {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let rec: SegRec = self.decode(&v)?;
            let id = k
                .get(1..5)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes);
            if id != Some(segs.recs.len() as u32) {
                return Err(self.err("segment ids are not contiguous"));
            }
            segs.by_name
                .insert(rec.name.clone(), segs.recs.len() as u32);
            segs.recs.push(rec);
        }
        let last = self.db.scan_prefix([keys::ENTRY]).next_back();
        let next = match last {
            Some(item) => {
                let (k, v) = item.map_err(|e| self.err(e))?;
                let run: RunRec = self.decode(&v)?;
                keys::entry_seq(&k).map_or(0, |s| s + run.len())
            }
            None => 0,
        };
        self.segs = Mutex::new(segs);
        self.next_seq = Mutex::new(next);
        Ok(())
    }

    /// Reopen the lookup tables (after a commit added one).
    fn reload_tables(&self) {
        let tables = lookup::Tables::open(&self.lookup).unwrap_or_default();
        if let Ok(mut t) = self.tables.write() {
            *t = std::sync::Arc::new(tables);
        }
    }

    /// Replace the sled database with an empty one. Not sled's `clear`: the pages it frees
    /// leave free segments in the middle of its file, which sled writes out again (zeroes) at
    /// every open after: 19 MB, 20 ms a command, once a ten-million-record index is cleared.
    fn fresh_db(&mut self) -> Result<()> {
        let stand_in = sled::Config::new()
            .temporary(true)
            .open()
            .map_err(|e| self.err(e))?;
        drop(std::mem::replace(&mut self.db, stand_in));
        let entries = std::fs::read_dir(&self.path).map_err(|e| Error::io(&self.path, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.path, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let p = entry.path();
            let gone = match name.as_str() {
                "blobs" => std::fs::remove_dir_all(&p),
                "db" | "conf" => std::fs::remove_file(&p),
                n if n.starts_with("snap.") => std::fs::remove_file(&p),
                _ => continue,
            };
            gone.map_err(|e| Error::io(&p, e))?;
        }
        self.db = open_db(&self.path)?;
        Ok(())
    }

    /// Drop everything (before a rebuild).
    pub fn clear(&mut self) -> Result<()> {
        let generation = self.generation()?.wrapping_add(1);
        tables::drop_all(&self.lookup)?;
        std::fs::create_dir_all(&self.lookup).map_err(|e| Error::io(&self.lookup, e))?;
        // The tables read before must go too: they would find content in segments the
        // rebuild leaves out (those a gc replaced) or has not read yet.
        self.reload_tables();
        // Before sled: a key left naming bytes past the file's end answers "may hold".
        self.filters.clear()?;
        if !self.db.is_empty() {
            self.fresh_db()?;
        }
        let version = INDEX_VERSION.to_be_bytes();
        for (k, v) in [
            (keys::VERSION, &version[..]),
            (keys::GENERATION, &generation.to_be_bytes()),
        ] {
            self.db.insert(k, v).map_err(|e| self.err(e))?;
        }
        self.segs = Mutex::new(Segs {
            recs: Vec::new(),
            by_name: HashMap::new(),
        });
        self.next_seq = Mutex::new(0);
        self.forget_removed();
        self.forget_waiting();
        Ok(())
    }

    /// Make the index durable now (sled also flushes on its own every half second).
    pub fn flush(&self) -> Result<()> {
        self.db.flush().map(|_| ()).map_err(|e| self.err(e))
    }

    /// The id of segment `name`, registering it (indexed to `start`) if new.
    pub fn segment_id(&self, name: &str, start: u64) -> Result<u32> {
        let mut segs = self
            .segs
            .lock()
            .map_err(|_| Error::internal("segment table lock poisoned"))?;
        if let Some(id) = segs.by_name.get(name) {
            return Ok(*id);
        }
        let id = segs.recs.len() as u32;
        let rec = SegRec {
            name: name.to_owned(),
            indexed_to: start,
            indexed_max: start,
        };
        self.db
            .insert(keys::segment(id), encode(&rec)?)
            .map_err(|e| self.err(e))?;
        segs.by_name.insert(name.to_owned(), id);
        segs.recs.push(rec);
        Ok(id)
    }

    /// The id of segment `name`, if it is registered (nothing is written).
    pub fn known_segment(&self, name: &str) -> Result<Option<u32>> {
        let segs = self
            .segs
            .lock()
            .map_err(|_| Error::internal("segment table lock poisoned"))?;
        Ok(segs.by_name.get(name).copied())
    }

    /// The record of segment `id`.
    pub fn segment(&self, id: u32) -> Result<SegRec> {
        let segs = self
            .segs
            .lock()
            .map_err(|_| Error::internal("segment table lock poisoned"))?;
        segs.recs
            .get(id as usize)
            .cloned()
            .ok_or_else(|| self.err(format!("no segment {id}")))
    }

    /// All segment records by id.
    pub fn segments(&self) -> Result<Vec<SegRec>> {
        let segs = self
            .segs
            .lock()
            .map_err(|_| Error::internal("segment table lock poisoned"))?;
        Ok(segs.recs.clone())
    }

    /// The location of an object.
    pub fn get(&self, hash: &ObjectHash) -> Result<Option<ObjectLoc>> {
        match self.db.get(keys::object(hash)).map_err(|e| self.err(e))? {
            Some(v) => Ok(Some(self.decode(&v)?)),
            None => Ok(None),
        }
    }

    /// True if the object is indexed.
    pub fn contains(&self, hash: &ObjectHash) -> Result<bool> {
        self.db
            .contains_key(keys::object(hash))
            .map_err(|e| self.err(e))
    }

    /// Resolve a full hash or a unique prefix of at least 4 hex digits.
    pub fn resolve(&self, prefix: &str) -> Result<ObjectHash> {
        let nibbles = parse_hex_nibbles(prefix)
            .filter(|n| (4..=64).contains(&n.len()))
            .ok_or_else(|| {
                Error::invalid(prefix, "not a hash or hash prefix (4 to 64 hex digits)")
            })?;
        let bytes: Vec<u8> = nibbles
            .chunks_exact(2)
            .map(|p| p.iter().fold(0u8, |a, n| (a << 4) | n))
            .collect();
        let odd = nibbles.get(bytes.len() * 2).copied();
        let mut found = Vec::new();
        for item in self.db.scan_prefix(keys::object_prefix(&bytes)) {
            let (k, _) = item.map_err(|e| self.err(e))?;
            let Some(h) = k.get(1..).and_then(ObjectHash::from_slice) else {
                continue;
            };
            if let Some(n) = odd
                && h.as_bytes().get(bytes.len()).map(|b| b >> 4) != Some(n)
            {
                continue;
            }
            found.push(h);
            if found.len() > 8 {
                break;
            }
        }
        match found.as_slice() {
            [] => Err(Error::NotFound(prefix.to_owned())),
            [one] => Ok(*one),
            _ => Err(Error::Ambiguous {
                prefix: prefix.to_owned(),
                candidates: found,
            }),
        }
    }

    fn run_of(&self, item: sled::Result<(sled::IVec, sled::IVec)>) -> Result<(u64, RunRec)> {
        let (k, v) = item.map_err(|e| self.err(e))?;
        let first = keys::entry_seq(&k).ok_or_else(|| self.err("bad entry key"))?;
        Ok((first, self.decode(&v)?))
    }

    /// Runs of entries, newest first, with the sequence number of their first entry.
    pub fn runs_newest_first(
        self: &std::sync::Arc<Self>,
    ) -> impl Iterator<Item = Result<(u64, RunRec)>> + use<> {
        let index = std::sync::Arc::clone(self);
        self.db
            .scan_prefix([keys::ENTRY])
            .rev()
            .map(move |item| index.run_of(item))
    }

    /// The run that holds sequence number `seq`.
    pub fn run_containing(&self, seq: u64) -> Result<Option<(u64, RunRec)>> {
        let found = self
            .db
            .range(&keys::entry(0)[..]..=&keys::entry(seq)[..])
            .next_back();
        found
            .map(|item| self.run_of(item))
            .transpose()
            .map(|r| r.filter(|(first, run)| seq < first + run.len()))
    }

    /// The first sequence numbers of the runs with an entry tagged `key=v` for any of
    /// `values`, sorted (the runs with too many values of `key` to list are read once). With
    /// `record_field`, `key` is also a field of some record, and the runs with an entry whose
    /// record fields are not known are added.
    pub fn runs_tagged_any(
        &self,
        key: &str,
        values: &[&str],
        record_field: bool,
    ) -> Result<Vec<u64>> {
        let mut prefixes: Vec<Vec<u8>> = values
            .iter()
            .copied()
            .chain([MANY_VALUES])
            .map(|v| keys::tag_prefix(key, v))
            .collect();
        if record_field {
            prefixes.push(keys::tag_prefix(FIELDS_UNKNOWN, ""));
        }
        // A run with too many values to list is read only if its filter may hold one.
        let many = keys::tag_prefix(key, MANY_VALUES);
        let probes: Vec<Probe> = values.iter().map(|v| Probe::of(v)).collect();
        let mut out = Vec::new();
        for prefix in prefixes {
            let filtered = prefix == many;
            for item in self.db.scan_prefix(prefix) {
                let (k, v) = item.map_err(|e| self.err(e))?;
                if filtered && !self.filters.may_hold_any(&v, &probes) {
                    continue;
                }
                out.push(keys::tag_seq(&k).ok_or_else(|| self.err("bad tag key"))?);
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Every indexed pack frame, as (segment name, offset).
    pub fn packs(&self) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix([keys::PACK]) {
            let (k, _) = item.map_err(|e| self.err(e))?;
            let seg = k
                .get(1..5)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes);
            let offset = k
                .get(5..13)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes);
            let (Some(seg), Some(offset)) = (seg, offset) else {
                return Err(self.err("bad pack key"));
            };
            out.push((self.segment(seg)?.name, offset));
        }
        Ok(out)
    }

    /// The store's totals, as kept by `apply`.
    pub fn totals(&self) -> Result<crate::totals::Totals> {
        match self.db.get(keys::TOTALS).map_err(|e| self.err(e))? {
            Some(v) => self.decode(&v),
            None => Ok(crate::totals::Totals::default()),
        }
    }

    /// The names the store knows: tag keys and record field paths.
    pub fn names(&self) -> Result<Names> {
        let mut names = Names::default();
        for item in self.db.scan_prefix([keys::NAME]) {
            let (k, _) = item.map_err(|e| self.err(e))?;
            let (Some(&kind), Some(name)) = (k.get(1), k.get(2..)) else {
                continue;
            };
            let name = String::from_utf8_lossy(name).into_owned();
            match kind {
                keys::NAME_TAG => names.tag_keys.insert(name),
                keys::NAME_FIELD => names.record_fields.insert(name),
                _ => false,
            };
        }
        Ok(names)
    }

    /// Whether the pack frame at (`seg`, `offset`) is indexed, and the sequence number of its
    /// first entry if it has any.
    pub fn pack_seq(&self, seg: u32, offset: u64) -> Result<Option<Option<u64>>> {
        let v = self
            .db
            .get(keys::pack(seg, offset))
            .map_err(|e| self.err(e))?;
        Ok(v.map(|v| {
            v.as_ref()
                .try_into()
                .ok()
                .map(u64::from_be_bytes)
                .filter(|s| *s != u64::MAX)
        }))
    }

    /// True if the frame at (`seg`, `offset`), holding or logging `hash`, is indexed already:
    /// it is the object's location, one of its entries came from it, or it is an indexed pack.
    pub fn frame_indexed(&self, hash: &ObjectHash, seg: u32, offset: u64) -> Result<bool> {
        if self.pack_seq(seg, offset)?.is_some() {
            return Ok(true);
        }
        if self
            .get(hash)?
            .is_some_and(|loc| loc.seg == seg && loc.offset == offset)
        {
            return Ok(true);
        }
        for seq in self.entry_seqs_of(hash)? {
            if let Some((first, RunRec::Entries(v))) = self.run_containing(seq)?
                && let Some(e) = usize::try_from(seq - first).ok().and_then(|i| v.get(i))
                && e.seg == seg
                && e.offset == offset
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Sequence numbers of the entries of one object that the index lists by hash: the entry
    /// of its own frame, and entries of content stored before. (The entry of an object's own
    /// pack item is found through the pack.)
    pub fn entry_seqs_of(&self, hash: &ObjectHash) -> Result<Vec<u64>> {
        let mut seqs: Vec<u64> = self
            .get(hash)?
            .and_then(|loc| loc.first_entry)
            .into_iter()
            .collect();
        for item in self.db.scan_prefix(keys::object_entries(hash)) {
            let (k, _) = item.map_err(|e| self.err(e))?;
            let seq = k
                .get(33..41)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| self.err("bad object-entry key"))?;
            seqs.push(seq);
        }
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// Every object, in hash order.
    pub fn objects(&self) -> impl Iterator<Item = Result<(ObjectHash, ObjectLoc)>> + '_ {
        self.db.scan_prefix([keys::OBJECT]).map(move |item| {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let h = k
                .get(1..)
                .and_then(ObjectHash::from_slice)
                .ok_or_else(|| self.err("bad key"))?;
            Ok((h, self.decode(&v)?))
        })
    }

    /// Bytes the index takes on disk: sled and the lookup tables.
    pub fn size_on_disk(&self) -> u64 {
        let tables: u64 = std::fs::read_dir(&self.lookup)
            .map(|d| {
                d.filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        self.db.size_on_disk().unwrap_or(0) + tables
    }
}
