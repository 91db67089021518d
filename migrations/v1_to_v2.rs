//! Schema v1 to v2. v2 adds pack frames (many small objects and their entries in one frame)
//! and a new index layout (entry runs that point at packs, tag keys). Segments and frames of
//! v1 are valid in v2 unchanged, so this step drops the index, which the next open rebuilds
//! from the segments, and rewrites the store header's version. Either order of a crash
//! between the two is safe: a v1 header asks for this step again, and a v2 header with an
//! old index makes the next open rebuild it.

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::format::store_header::StoreHeader;
use crate::store_dir::{INDEX_DIR, LOCK_FILE, lock_index, write_store_header};

/// The step's name, as `archive migrate` reports it.
pub const NAME: &str = "v1 to v2: pack frames; the index is rebuilt from the segments";

/// The version this step reads.
pub const FROM: u16 = 1;

/// Apply the step to the store at `root`, whose header is `header` (version 1). Holds the
/// index lock, so no other process has the store open for reading its index meanwhile.
pub fn apply(root: &Path, header: &StoreHeader) -> Result<StoreHeader> {
    let _lock = lock_index(&root.join(LOCK_FILE), Duration::from_secs(10))?;
    let index = root.join(INDEX_DIR);
    match std::fs::remove_dir_all(&index) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&index, e)),
        _ => {}
    }
    let next = StoreHeader {
        version: FROM + 1,
        settings: header.settings.clone(),
    };
    write_store_header(root, &next)?;
    Ok(next)
}
