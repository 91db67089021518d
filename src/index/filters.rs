//! The bloom filters of runs with too many values of a tag key or record field to list (unique
//! ids, interleaved runs), and where they are kept.
//!
//! A small filter (a commit of a few hundred entries) is the value of its run's "many values"
//! key. A large one (a pack's: 8 KiB for 4,096 entries) is appended to `index/filters`, and the
//! key holds where: a lookup of a unique id at ten million records probes ~2,400 filters, and
//! reading them out of sled (20 MB, copied and allocated) was half of the query. Mapped, a
//! probe touches the page it needs. Like all of `index/`, the file is derived: a rebuild
//! truncates it, and bytes no key names (a run a gc replaced) stay until then.
//!
//! The file is written and made durable before the sled batch that names its bytes is
//! applied, so a key never names bytes a crash lost; a key naming bytes past the file's end,
//! or a filter that does not parse, answers "may hold": it can cost a read, never a miss.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use memmap2::Mmap;

use crate::segment::reader::map_file;

use super::{MANY_VALUES, keys};
use crate::error::{Error, Result};
use crate::format::bloom::{Bloom, Probe, may_hold};

/// A filter of at least this many bytes is kept in the file (a run of 512 listed entries has
/// one of 1,025 bytes, and stays in sled).
const IN_FILE_MIN: usize = 2048;

/// First byte of a key's value that names bytes of the file (a filter's first byte is its
/// probe count, never this): then offset u64 and length u32, big-endian.
const IN_FILE: u8 = 0xff;

/// The filter file of an index.
#[derive(Debug)]
pub(super) struct Filters {
    path: PathBuf,
    /// The file as last mapped; mapped again when a key names bytes past its end.
    map: RwLock<Option<Arc<Mmap>>>,
}

impl Filters {
    pub(super) fn new(index: &Path) -> Filters {
        Filters {
            path: index.join("filters"),
            map: RwLock::default(),
        }
    }

    /// The file's length: where the next filter staged goes.
    pub(super) fn len(&self) -> Result<u64> {
        match std::fs::metadata(&self.path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(Error::io(&self.path, e)),
        }
    }

    /// Append `staged` (which the caller staged for offset `at`) and make it durable.
    pub(super) fn append(&self, at: u64, staged: &[u8]) -> Result<()> {
        if staged.is_empty() {
            return Ok(());
        }
        let io = |e| Error::io(&self.path, e);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        let len = f.metadata().map_err(io)?.len();
        if len != at {
            return Err(Error::internal(format!(
                "{}: filters staged for offset {at}, but the file is {len} bytes",
                self.path.display()
            )));
        }
        f.write_all(staged).map_err(io)?;
        f.sync_data().map_err(io)
    }

    /// Empty the file (before a rebuild).
    pub(super) fn clear(&self) -> Result<()> {
        if let Ok(mut m) = self.map.write() {
            *m = None;
        }
        match File::create(&self.path) {
            Ok(_) => Ok(()),
            Err(e) => Err(Error::io(&self.path, e)),
        }
    }

    /// The file mapped, covering at least `end` bytes if the file does.
    fn mapped(&self, end: u64) -> Option<Arc<Mmap>> {
        if let Ok(m) = self.map.read()
            && let Some(m) = m.as_ref()
            && m.len() as u64 >= end
        {
            return Some(Arc::clone(m));
        }
        let m = Arc::new(map_file(&self.path).ok()??);
        if let Ok(mut slot) = self.map.write() {
            *slot = Some(Arc::clone(&m));
        }
        Some(m)
    }

    /// Might the filter that a "many values" key's value `v` holds or names hold a value of
    /// one of `probes`?
    pub(super) fn may_hold_any(&self, v: &[u8], probes: &[Probe]) -> bool {
        let holds = |bytes: &[u8]| probes.iter().any(|p| may_hold(bytes, *p));
        let Some((&IN_FILE, at)) = v.split_first() else {
            return holds(v);
        };
        let (Some(offset), Some(len)) = (
            at.get(..8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes),
            at.get(8..12)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes),
        ) else {
            return true;
        };
        let end = offset.saturating_add(u64::from(len));
        let Some(map) = self.mapped(end) else {
            return true;
        };
        match usize::try_from(offset)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(s, e)| map.get(s..e))
        {
            Some(bytes) => holds(bytes),
            None => true,
        }
    }
}

/// Filters staged by one update, for the file from `at`.
pub(super) struct Staging {
    at: u64,
    bytes: Vec<u8>,
}

impl Staging {
    pub(super) fn new(at: u64) -> Staging {
        Staging {
            at,
            bytes: Vec::new(),
        }
    }

    /// The value of a "many values" key for `bloom`: the filter itself, or where in the file
    /// it is staged.
    fn value(&mut self, bloom: Vec<u8>) -> Vec<u8> {
        if bloom.len() < IN_FILE_MIN {
            return bloom;
        }
        let offset = self.at + self.bytes.len() as u64;
        self.bytes.extend_from_slice(&bloom);
        let mut v = Vec::with_capacity(13);
        v.push(IN_FILE);
        v.extend_from_slice(&offset.to_be_bytes());
        v.extend_from_slice(&(bloom.len() as u32).to_be_bytes());
        v
    }

    /// Where the staged bytes go, and the bytes.
    pub(super) fn staged(&self) -> (u64, &[u8]) {
        (self.at, &self.bytes)
    }
}

/// Tag keys of the run starting at `seq`, of `entries` entries, whose distinct tags and record
/// (path, value) pairs are `tags` (sorted), and `many` the paths whose values were too many to
/// list, with a filter of them. A key with more than `TAG_VALUES_PER_RUN` values gets one
/// `MANY_VALUES` key whose value is a bloom filter of them all, or where `filters` stages it.
pub(super) fn insert_tag_keys(
    batch: &mut sled::Batch,
    filters: &mut Staging,
    tags: &[&(String, String)],
    (seq, entries): (u64, usize),
    many: &[(String, Bloom)],
) {
    let mut filed: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for group in tags.chunk_by(|a, b| a.0 == b.0) {
        let Some((k, _)) = group.first() else {
            continue;
        };
        let listed = many.iter().find(|(p, _)| p == k).map(|(_, b)| b);
        if group.len() > super::TAG_VALUES_PER_RUN || listed.is_some() {
            let mut bloom = listed
                .cloned()
                .unwrap_or_else(|| Bloom::with_capacity(entries));
            for (_, v) in group {
                bloom.insert(v);
            }
            let v = filters.value(bloom.into_bytes());
            batch.insert(keys::tag(k, MANY_VALUES, seq), v);
            filed.insert(k);
        } else {
            for (k, v) in group {
                batch.insert(keys::tag(k, v, seq), &[][..]);
            }
        }
    }
    for (k, bloom) in many {
        if !filed.contains(k.as_str()) {
            let v = filters.value(bloom.clone().into_bytes());
            batch.insert(keys::tag(k, MANY_VALUES, seq), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_filter_is_staged_for_the_file_and_read_back_from_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let filters = Filters::new(dir.path());
        let mut staging = Staging::new(filters.len().expect("len"));
        let mut small = Bloom::with_capacity(10);
        small.insert("a");
        let mut large = Bloom::with_capacity(4096);
        large.insert("img-1");
        let small_v = staging.value(small.clone().into_bytes());
        let large_v = staging.value(large.clone().into_bytes());
        // The small one is its own value; the large one a place in the file.
        assert_eq!(small_v, small.into_bytes());
        assert_eq!(large_v.len(), 13);
        let (at, bytes) = staging.staged();
        assert_eq!((at, bytes), (0, &large.into_bytes()[..]));
        // Before the bytes are there, and for a value that is not a place, "may hold".
        let (yes, no) = (Probe::of("img-1"), Probe::of("img-2"));
        assert!(filters.may_hold_any(&large_v, &[no]));
        assert!(filters.may_hold_any(&[IN_FILE, 0, 1], &[no]));
        filters.append(at, bytes).expect("append");
        assert!(filters.may_hold_any(&large_v, &[yes]));
        assert!(!filters.may_hold_any(&large_v, &[no]));
        assert!(filters.may_hold_any(&small_v, &[Probe::of("a")]));
        // Staged for another offset than the file's end: refused, nothing written.
        assert!(filters.append(at, b"xyz").is_err());
        assert_eq!(filters.len().expect("len"), bytes.len() as u64);
    }
}
