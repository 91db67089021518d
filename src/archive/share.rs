//! What a remote is given of this store: the live segments, each as far as the index covers
//! it (whole, synced frames; an open batch's frames are left for a later push).

use std::collections::HashMap;
use std::path::PathBuf;

use super::Archive;
use crate::error::Result;

/// A segment and the end of its indexed frames.
#[derive(Clone, Debug)]
pub struct IndexedSegment {
    /// File name under `segments/`.
    pub name: String,
    /// Its path.
    pub path: PathBuf,
    /// Every frame before this offset is whole, synced and indexed.
    pub indexed_to: u64,
}

impl Archive {
    /// Index what other processes (or a pull) wrote into the segments since this archive
    /// last looked.
    pub fn refresh(&self) -> Result<()> {
        self.catch_up(&|_, _| {})
    }

    /// The segments no compaction replaced, each with the end of its indexed frames, after
    /// catching the index up with what other processes wrote.
    pub fn indexed_segments(&self) -> Result<Vec<IndexedSegment>> {
        self.catch_up(&|_, _| {})?;
        let files = self.segment_files()?;
        let marks: HashMap<String, u64> = self
            .index()?
            .segments()?
            .into_iter()
            .map(|r| (r.name, r.indexed_to))
            .collect();
        Ok(files
            .into_iter()
            .filter_map(|(name, path)| {
                let indexed_to = *marks.get(&name)?;
                Some(IndexedSegment {
                    name,
                    path,
                    indexed_to,
                })
            })
            .collect())
    }
}
