//! Schema v5 to v6. v6 writes a pack's items as columns (FORMAT.md, "Pack frames", layout 2):
//! a flag byte an item, then each field of every item, field after field, with entry times
//! and tag-set indexes as differences from the entry before. Every v5 pack stays valid v6 as
//! it is (its layout field says how it is written), the objects and their addresses are
//! unchanged, and so is the index, so this step only rewrites the store header's version: a
//! program that knows only v5, which cannot read the new packs, no longer opens the store.

use std::path::Path;

use crate::error::Result;
use crate::format::store_header::StoreHeader;

/// The step's name, as `archive migrate` reports it.
pub const NAME: &str = "v5 to v6: pack items as columns; existing packs and the index are kept";

/// The version this step reads.
pub const FROM: u16 = 5;

/// Apply the step to the store at `root`, whose header is `header` (version 5): write the
/// next version under the index lock (`migrate::bump`).
pub fn apply(root: &Path, header: &StoreHeader) -> Result<StoreHeader> {
    super::bump(root, header)
}
