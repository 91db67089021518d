//! Schema v2 to v3. v3 adds removal frames (`archive rm`) and compaction frames (`archive gc`),
//! and index layout 4 (the removals). Segments and frames of v2 are valid in v3 unchanged, so
//! this step drops the index, which the next open rebuilds from the segments, and rewrites the
//! store header's version, so that a program that knows only v2 no longer opens the store (it
//! would show removed entries). Either order of a crash between the two is safe: a v2 header
//! asks for this step again, and a v3 header with an old index makes the next open rebuild it.

use std::path::Path;

use crate::error::Result;
use crate::format::store_header::StoreHeader;

/// The step's name, as `archive migrate` reports it.
pub const NAME: &str = "v2 to v3: removal and compaction frames; the index is rebuilt";

/// The version this step reads.
pub const FROM: u16 = 2;

/// Apply the step to the store at `root`, whose header is `header` (version 2): drop the
/// index and write the next version (`migrate::drop_index_and_bump`).
pub fn apply(root: &Path, header: &StoreHeader) -> Result<StoreHeader> {
    super::drop_index_and_bump(root, header)
}
