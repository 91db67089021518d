//! Schema migrations: the ordered steps that bring a store written by an older schema version
//! to the current one, each kept in its own file under `migrations/` (see its README) with a
//! frozen store of the version it reads under `tests/fixtures/`.
//!
//! Schema v1 is the first released version, so there is no step yet: `migrate` checks the
//! store's version and reports that nothing needs doing (or refuses a newer store).

use std::path::Path;

use crate::archive::read_store_header;
use crate::error::Result;
use crate::format::version::SCHEMA_VERSION;

/// What `migrate` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationReport {
    /// The version the store was at.
    pub from: u16,
    /// The version it is at now.
    pub to: u16,
    /// The steps applied, by name, in order.
    pub steps: Vec<String>,
}

/// Bring the store at `path` to the current schema version. A store of a newer version is
/// refused (`Error::TooNew`); a damaged header is `Error::Corrupt`.
pub fn migrate(path: impl AsRef<Path>) -> Result<MigrationReport> {
    let header = read_store_header(path.as_ref())?;
    Ok(MigrationReport {
        from: header.version,
        to: SCHEMA_VERSION,
        steps: Vec::new(),
    })
}
