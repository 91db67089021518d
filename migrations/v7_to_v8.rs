//! Schema v7 to v8. v8 writes pack bodies in layout 3 (FORMAT.md, "Pack frames": the tag sets
//! compressed apart in a `bin`, which a reader of the items steps over at once) and gives body
//! frames (packs, removals, compactions) the hash of their payload as stored, checked before
//! it is decoded. Frames keep the rule of the version in their header, so v7 segments and the
//! index stay valid as they are: the step only rewrites the store header's version (a v7
//! program, which cannot read the new packs, no longer opens the store).

use std::path::Path;

use crate::error::Result;
use crate::format::store_header::StoreHeader;

/// The step's name, as `archive migrate` reports it.
pub const NAME: &str = "v7 to v8: tag sets compressed apart, stored payloads hashed, in new packs";

/// The version this step reads.
pub const FROM: u16 = 7;

/// Apply the step to the store at `root`, whose header is `header` (version 7): write the
/// next version (`migrate::bump`).
pub fn apply(root: &Path, header: &StoreHeader) -> Result<StoreHeader> {
    super::bump(root, header)
}
