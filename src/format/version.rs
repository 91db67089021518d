//! Schema versions. Every store header, segment header and frame carries one; a reader refuses
//! a newer version with a clear message and asks for `archive migrate` on an older one.

use std::path::Path;

use crate::error::{Error, Result};

/// The schema version this program writes.
pub const SCHEMA_VERSION: u16 = 8;

/// The oldest schema version of a store this program opens directly (older stores need
/// `archive migrate`). Segments and frames of v1 to v7 stay readable in a v8 store: v2 only
/// adds pack frames, v3 removal and compaction frames, v4 string dtypes and record values, v5
/// the columnar pack layout, v6 pack items as columns; v7 changes only the lookup tables
/// (compact ones); v8 writes tag sets as bytes (pack layout 3) and hashes body frames'
/// payloads as stored, each frame read by the rule of the version in its header.
pub const OLDEST_READABLE: u16 = 8;

/// Check the version of a segment read from `path`: any version up to this program's.
pub fn check_segment(path: &Path, found: u16) -> Result<()> {
    if found > SCHEMA_VERSION {
        return Err(Error::TooNew {
            path: path.to_owned(),
            found,
            current: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Check the version of a store header read from `path`.
pub fn check(path: &Path, found: u16) -> Result<()> {
    check_segment(path, found)?;
    if found < OLDEST_READABLE {
        return Err(Error::NeedsMigration {
            path: path.to_owned(),
            found,
            current: SCHEMA_VERSION,
        });
    }
    Ok(())
}
