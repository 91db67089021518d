//! Schema v2 to v3. v3 adds removal frames (`archive rm`) and compaction frames (`archive gc`),
//! and index layout 4 (the removals). Segments and frames of v2 are valid in v3 unchanged, so
//! this step drops the index, which the next open rebuilds from the segments, and rewrites the
//! store header's version, so that a program that knows only v2 no longer opens the store (it
//! would show removed entries). Either order of a crash between the two is safe: a v2 header
//! asks for this step again, and a v3 header with an old index makes the next open rebuild it.

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::format::store_header::StoreHeader;
use crate::store_dir::{INDEX_DIR, LOCK_FILE, lock_index, write_store_header};

/// The step's name, as `archive migrate` reports it.
pub const NAME: &str = "v2 to v3: removal and compaction frames; the index is rebuilt";

/// The version this step reads.
pub const FROM: u16 = 2;

/// Apply the step to the store at `root`, whose header is `header` (version 2). Holds the
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
