//! What the index does with its lookup tables (`lookup`): the tables as they are now, the
//! candidates for a hash, and which tables it checked.

use std::fs;
use std::path::Path;

use super::lookup::{Located, Tables, prefix_of};
use crate::error::{Error, Result};
use crate::hash::ObjectHash;

impl super::Index {
    /// True if the table at `p` passed its check (or was written by an index) and its file
    /// has not changed since (`file_stamp`).
    pub(super) fn was_checked(&self, p: &Path) -> bool {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        let (Some(n), Some(stamp)) = (name, file_stamp(p)) else {
            return false;
        };
        self.db
            .get(super::keys::checked_table(&n))
            .ok()
            .flatten()
            .as_deref()
            == Some(&stamp[..])
    }

    /// Remember the table at `p` as checked, by its file's identity (`file_stamp`).
    pub(super) fn remember_checked(&self, p: &Path) {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        if let (Some(n), Some(stamp)) = (name, file_stamp(p)) {
            let _ = self.db.insert(super::keys::checked_table(&n), stamp);
        }
    }

    /// The lookup tables as they are now.
    pub fn tables(&self) -> std::sync::Arc<Tables> {
        self.tables
            .read()
            .map(|t| std::sync::Arc::clone(&t))
            .unwrap_or_default()
    }

    /// Table locations whose hash prefix is `hash`'s: candidates the caller checks.
    pub fn candidates(&self, hash: &ObjectHash) -> Vec<Located> {
        let p = prefix_of(hash);
        self.tables
            .read()
            .map(|t| t.range(p, p, 16))
            .unwrap_or_default()
    }

    /// Table locations whose hash prefix lies in `lo..=hi`, at most `limit`.
    pub fn table_range(&self, lo: u64, hi: u64, limit: usize) -> Vec<Located> {
        self.tables
            .read()
            .map(|t| t.range(lo, hi, limit))
            .unwrap_or_default()
    }
}

/// What identifies a table file's bytes for `check_tables`'s memo: size, modification time
/// and inode. Any write to the file changes one of them.
pub fn file_stamp(path: &Path) -> Option<Vec<u8>> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::symlink_metadata(path).ok()?;
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(&m.len().to_le_bytes());
    out.extend_from_slice(&m.mtime().to_le_bytes());
    out.extend_from_slice(&m.mtime_nsec().to_le_bytes());
    out.extend_from_slice(&m.ino().to_le_bytes());
    Some(out)
}

/// Remove the table directory (readers then ask sled), or whatever stands in its place.
pub fn drop_all(dir: &Path) -> Result<()> {
    let removed = match fs::symlink_metadata(dir) {
        Ok(m) if !m.is_dir() => fs::remove_file(dir),
        _ => fs::remove_dir_all(dir),
    };
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(dir, e)),
        _ => Ok(()),
    }
}
