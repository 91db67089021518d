//! Schema v3 to v4. v4 adds string tensors (dtypes `STR<n>` and `BYTES<n>`, numpy's `<U<n>`
//! and `|S<n>`) and the record values msgpack has beyond plain records (raw bytes, extension
//! types, float32s, maps with keys that are not strings), each with a canonical form of its own
//! (FORMAT.md, "Canonical encoding"). Everything a v3 store holds is valid v4 unchanged, and
//! the index layout is the same, so this step only rewrites the store header's version: a
//! program that knows only v3, which could not read such objects, no longer opens the store.

use std::path::Path;

use crate::error::Result;
use crate::format::store_header::StoreHeader;

/// The step's name, as `archive migrate` reports it.
pub const NAME: &str = "v3 to v4: string tensors and msgpack's kept values; the index is kept";

/// The version this step reads.
pub const FROM: u16 = 3;

/// Apply the step to the store at `root`, whose header is `header` (version 3): write the
/// next version under the index lock (`migrate::bump`).
pub fn apply(root: &Path, header: &StoreHeader) -> Result<StoreHeader> {
    super::bump(root, header)
}
