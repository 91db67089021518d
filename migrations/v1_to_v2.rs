//! Schema v1 to v2. v2 adds pack frames (many small objects and their entries in one frame)
//! and a new index layout (entry runs that point at packs, tag keys). Segments and frames of
//! v1 are valid in v2 unchanged, so this step drops the index, which the next open rebuilds
//! from the segments, and rewrites the store header's version. Either order of a crash
//! between the two is safe: a v1 header asks for this step again, and a v2 header with an
//! old index makes the next open rebuild it.

use std::path::Path;

use crate::error::Result;
use crate::format::store_header::StoreHeader;

/// The step's name, as `archive migrate` reports it.
pub const NAME: &str = "v1 to v2: pack frames; the index is rebuilt from the segments";

/// The version this step reads.
pub const FROM: u16 = 1;

/// Apply the step to the store at `root`, whose header is `header` (version 1): drop the
/// index and write the next version (`migrate::drop_index_and_bump`).
pub fn apply(root: &Path, header: &StoreHeader) -> Result<StoreHeader> {
    super::drop_index_and_bump(root, header)
}
