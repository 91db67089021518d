//! Memory maps of segment files. This is the only module allowed `unsafe`: the mmap contract.
//!
//! The contract: a segment file is append-only. Bytes that hold a whole frame are never
//! rewritten, and only the one process holding a segment's write lock truncates it: back to
//! the end of its last whole frame (cutting a torn tail), or back over frames that were never
//! acknowledged (a failed write rolled back to the last sync, a discarded batch), which no
//! index holds. So every byte range that a reader takes from a frame the index has accepted
//! stays valid and unchanged for as long as the map lives.
//!
//! Lookup tables (`index/lookup/`) are mapped through `map_file` too: each is written whole
//! under a temporary name and renamed into place, never modified, and only unlinked after a
//! merge, which leaves existing maps of it valid.
//!
//! So is the index's filter file (`index/filters`): only the process holding the index
//! appends to it, and only that process empties it, in a rebuild, which holds the index
//! exclusively (`&mut`) and drops its map first; no other process maps it meanwhile.

#![allow(unsafe_code)]

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use memmap2::Mmap;

use crate::error::{Error, Result};

/// Map the whole of `path` read-only. `None` for an empty file (which cannot be mapped).
pub fn map_file(path: &Path) -> Result<Option<Mmap>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len == 0 {
        return Ok(None);
    }
    // SAFETY: segments are append-only and never truncated below a whole frame (module docs),
    // so the mapped bytes that readers use do not change underneath them.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    Ok(Some(map))
}

/// A cache of segment maps, remapped when a reader needs bytes past a map's end (the segment
/// has grown since it was mapped).
#[derive(Default)]
pub struct Maps {
    maps: RwLock<HashMap<PathBuf, Arc<Mmap>>>,
}

impl Maps {
    /// A map of `path` covering at least `end` bytes.
    pub fn get(&self, path: &Path, end: u64) -> Result<Arc<Mmap>> {
        if let Ok(maps) = self.maps.read()
            && let Some(m) = maps.get(path).filter(|m| m.len() as u64 >= end)
        {
            return Ok(Arc::clone(m));
        }
        let map = map_file(path)?
            .filter(|m| m.len() as u64 >= end)
            .ok_or_else(|| Error::corrupt(path, end, "segment is shorter than the index says"))?;
        let map = Arc::new(map);
        if let Ok(mut maps) = self.maps.write() {
            maps.insert(path.to_owned(), Arc::clone(&map));
        }
        Ok(map)
    }

    /// Forget every map (after the segments were rewritten by a migration, say).
    pub fn clear(&self) {
        if let Ok(mut maps) = self.maps.write() {
            maps.clear();
        }
    }
}
