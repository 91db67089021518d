//! Schema versions. Every store header, segment header and frame carries one; a reader refuses
//! a newer version with a clear message and asks for `archive migrate` on an older one.

use std::path::Path;

use crate::error::{Error, Result};

/// The schema version this program writes.
pub const SCHEMA_VERSION: u16 = 1;

/// The oldest schema version this program can read directly (older ones need a migration).
pub const OLDEST_READABLE: u16 = 1;

/// Check a version read from `path`.
pub fn check(path: &Path, found: u16) -> Result<()> {
    if found > SCHEMA_VERSION {
        return Err(Error::TooNew {
            path: path.to_owned(),
            found,
            current: SCHEMA_VERSION,
        });
    }
    if found < OLDEST_READABLE {
        return Err(Error::NeedsMigration {
            path: path.to_owned(),
            found,
            current: SCHEMA_VERSION,
        });
    }
    Ok(())
}
