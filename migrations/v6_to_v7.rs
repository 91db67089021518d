//! Schema v6 to v7. v7 writes *compact* lookup tables (FORMAT.md, "Lookup tables"): a table
//! of 65,536 entries or more keeps, of each, the hash's first 48 bits and its frame, not the
//! pack item (found by its hash when read), 6 bytes instead of 10 or 12; a remote's tables
//! are written the same way; sled's file grows in smaller segments. The segments are
//! unchanged, so this step drops the index (the next open rebuilds it from the segments, in
//! compact tables) and rewrites the store header's version: a v6 program, which cannot read
//! the new tables (and would rebuild the index, or fail on a remote's), no longer opens the
//! store.

use std::path::Path;

use crate::error::Result;
use crate::format::store_header::StoreHeader;

/// The step's name, as `archive migrate` reports it.
pub const NAME: &str = "v6 to v7: compact lookup tables; the index is rebuilt";

/// The version this step reads.
pub const FROM: u16 = 6;

/// Apply the step to the store at `root`, whose header is `header` (version 6): drop the
/// index and write the next version (`migrate::drop_index_and_bump`).
pub fn apply(root: &Path, header: &StoreHeader) -> Result<StoreHeader> {
    super::drop_index_and_bump(root, header)
}
