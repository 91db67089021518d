//! Schema v4 to v5. v5 writes packs in a columnar layout (FORMAT.md, "Pack frames"): the
//! objects' payloads grouped by descriptor, each tensor group byte-shuffled, and a record's
//! references to objects stored before it in the same pack written as 4-byte local references.
//! Every v4 pack stays valid v5 as it is (a body without the layout field is read as before),
//! the objects and their addresses are unchanged, and so is the index layout, so this step
//! only rewrites the store header's version: a program that knows only v4, which cannot read
//! the new packs, no longer opens the store.

use std::path::Path;

use crate::error::Result;
use crate::format::store_header::StoreHeader;

/// The step's name, as `archive migrate` reports it.
pub const NAME: &str = "v4 to v5: columnar packs; existing packs and the index are kept";

/// The version this step reads.
pub const FROM: u16 = 4;

/// Apply the step to the store at `root`, whose header is `header` (version 4): write the
/// next version under the index lock (`migrate::bump`).
pub fn apply(root: &Path, header: &StoreHeader) -> Result<StoreHeader> {
    super::bump(root, header)
}
