//! `get --remote`: one object read from a remote without cloning it.
//!
//! The remote's lookup tables (one per push, immutable) are fetched once into the store's
//! cache, each believed only if its checksum holds. An object is then found in a bounded
//! number of requests: one LIST of `index/`, a GET of each table not cached yet, and one
//! ranged GET of the frame that holds it (two if the frame is over 256 KiB: the first read
//! tells its length). A record's parts are found the same way. What is fetched is written at
//! its offset into a sparse scratch copy of the piece, and read there by the same code as a
//! local store's segments: every frame's checksums, every pack's hash and every object's
//! address are checked, so nothing damaged is served.

use std::collections::HashSet;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::pieces::{SEGMENTS, TABLES};
use super::{Remote, RemoteSpec, cache_dir};
use crate::archive::now_ns;
use crate::error::{Error, RemoteFailure, Result};
use crate::format::frame::{FRAME_HEADER_LEN, FrameHeader};
use crate::hash::ObjectHash;
use crate::index::lookup::{Located, Tables, checked_names, prefix_of};
use crate::locator::{Locator, resolve_prefix};
use crate::object::Object;
use crate::reader::ReadObject;

/// The first read of a frame: enough for most packs and small objects whole.
const FIRST_READ: u64 = 256 << 10;

/// Fetch every table under `index/` not in `cache` yet; the names (piece keys) each table
/// covers, by table key. A table whose checksum fails is an error naming it.
pub(super) async fn sync_tables(
    remote: &Remote,
    cache: &Path,
) -> Result<Vec<(String, Vec<String>)>> {
    std::fs::create_dir_all(cache).map_err(|e| Error::io(cache, e))?;
    let mut out = Vec::new();
    for meta in remote.list(TABLES).await? {
        let key = meta.location.to_string();
        let Some(file) = meta.location.filename().filter(|f| f.ends_with(".tbl")) else {
            continue;
        };
        let path = cache.join(file);
        if let Some(names) = checked_names(&path) {
            out.push((key, names));
            continue;
        }
        let bytes = remote.get(&key).await?.unwrap_or_default();
        let tmp = cache.join(format!(".{file}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, &bytes).map_err(|e| Error::io(&tmp, e))?;
        let Some(names) = checked_names(&tmp) else {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::Remote {
                remote: remote.url_of(&key),
                failure: RemoteFailure::Damaged,
                reason: format!(
                    "a damaged lookup table ({} bytes): it does not parse or its checksum fails",
                    bytes.len()
                ),
            });
        };
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        out.push((key, names));
    }
    Ok(out)
}

/// A reader of one remote's objects, through its tables.
pub struct RemoteReader {
    remote: Remote,
    tables: Tables,
    locator: Locator,
    scratch: PathBuf,
    fetched: Mutex<HashSet<(String, u64)>>,
}

impl RemoteReader {
    /// Connect to remote `spec` of the store at `root` and fetch the tables it lacks.
    pub fn open(root: &Path, spec: &RemoteSpec) -> Result<RemoteReader> {
        let remote = Remote::connect(spec)?;
        let cache = cache_dir(root, remote.url());
        remote.block_on(sync_tables(&remote, &cache))?;
        let tables = Tables::open(&cache).unwrap_or_default();
        let scratch = std::env::temp_dir().join(format!(
            "model-archive-remote-{}-{:x}",
            std::process::id(),
            now_ns()
        ));
        std::fs::create_dir_all(&scratch).map_err(|e| Error::io(&scratch, e))?;
        Ok(RemoteReader {
            locator: Locator::new(scratch.clone()),
            remote,
            tables,
            scratch,
            fetched: Mutex::new(HashSet::new()),
        })
    }

    /// Requests sent so far.
    pub fn requests(&self) -> u64 {
        self.remote.requests()
    }

    /// The remote's URL.
    pub fn url(&self) -> &str {
        self.remote.url()
    }

    /// A full hash, or the one object a prefix (4+ hex digits) names on the remote.
    pub fn resolve(&self, prefix: &str) -> Result<ObjectHash> {
        if let Ok(h) = prefix.trim().parse::<ObjectHash>() {
            return Ok(h);
        }
        let found = resolve_prefix(
            prefix.trim(),
            Vec::new(),
            &|lo, hi| self.tables.range(lo, hi, 64),
            &|at| match self.fetch(at) {
                Ok(()) => self.locator.hashes_at(at),
                Err(_) => Vec::new(),
            },
        )?;
        found.ok_or_else(|| self.not_here(prefix))
    }

    /// The object `hash`, decoded and checked against its address.
    pub fn get(&self, hash: &ObjectHash) -> Result<Object> {
        let p = prefix_of(hash);
        let candidates = self.tables.range(p, p, 16);
        for at in &candidates {
            self.fetch(at)?;
        }
        let source = self
            .locator
            .find(&candidates, hash)
            .map_err(|e| self.damaged(&candidates, e))?
            .ok_or_else(|| self.not_here(&hash.to_string()))?;
        source.object().map_err(|e| self.damaged(&candidates, e))
    }

    fn not_here(&self, what: &str) -> Error {
        Error::NotFound(format!("{what} (on {})", self.remote.url()))
    }

    /// A damaged frame's error, naming the remote object rather than the scratch copy.
    fn damaged(&self, candidates: &[Located], e: Error) -> Error {
        match e {
            Error::Corrupt { offset, reason, .. } => Error::Remote {
                remote: candidates.first().map_or_else(
                    || self.remote.url().to_owned(),
                    |c| self.remote.url_of(&c.segment),
                ),
                failure: RemoteFailure::Damaged,
                reason: format!("corrupt data at byte {offset} of this piece: {reason}"),
            },
            other => other,
        }
    }

    /// Fetch the frame at `at` into the scratch copy of its piece, once.
    fn fetch(&self, at: &Located) -> Result<()> {
        let id = (at.segment.clone(), at.offset);
        if self.fetched.lock().is_ok_and(|f| f.contains(&id)) {
            return Ok(());
        }
        let size = piece_size(&at.segment)
            .ok_or_else(|| Error::invalid(self.remote.url_of(&at.segment), "not a piece name"))?;
        let end = (at.offset + FIRST_READ).min(size);
        if at.offset >= end {
            return Err(self.short(&at.segment, "a table points past the end of this piece"));
        }
        let mut bytes = self
            .remote
            .block_on(self.remote.get_range(&at.segment, at.offset..end))?
            .to_vec();
        if let Some(h) = bytes
            .get(..FRAME_HEADER_LEN)
            .and_then(|b| FrameHeader::decode(b).ok())
        {
            let frame_end = at.offset.saturating_add(h.frame_len());
            if frame_end > size {
                return Err(self.short(&at.segment, "a frame runs past the end of this piece"));
            }
            if frame_end > end {
                let rest = self
                    .remote
                    .block_on(self.remote.get_range(&at.segment, end..frame_end))?;
                bytes.extend_from_slice(&rest);
            }
        }
        let path = self.scratch.join(&at.segment);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(size).map(|()| f))
            .map_err(|e| Error::io(&path, e))?;
        file.write_all_at(&bytes, at.offset)
            .map_err(|e| Error::io(&path, e))?;
        self.locator.clear();
        if let Ok(mut f) = self.fetched.lock() {
            f.insert(id);
        }
        Ok(())
    }

    fn short(&self, key: &str, why: &str) -> Error {
        Error::Remote {
            remote: self.remote.url_of(key),
            failure: RemoteFailure::Damaged,
            reason: why.to_owned(),
        }
    }
}

impl ReadObject for RemoteReader {
    fn read_object(&self, hash: &ObjectHash) -> Result<Object> {
        self.get(hash)
    }
}

impl Drop for RemoteReader {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// The size a piece key's name gives (`segments/<segment>/<from>-<to>-<sum>`); `None` for a
/// key of any other shape (a table is read from a remote: its names are never paths to
/// follow).
fn piece_size(key: &str) -> Option<u64> {
    let mut parts = key.split('/');
    let (top, segment, leaf) = (parts.next()?, parts.next()?, parts.next()?);
    if top != SEGMENTS
        || parts.next().is_some()
        || !segment.ends_with(".seg")
        || segment.starts_with('.')
    {
        return None;
    }
    let mut f = leaf.split('-');
    let from = u64::from_str_radix(f.next()?, 16).ok()?;
    let to = u64::from_str_radix(f.next()?, 16).ok()?;
    to.checked_sub(from).filter(|&n| n > 0)
}
