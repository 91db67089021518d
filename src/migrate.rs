//! Schema migrations: the ordered steps that bring a store written by an older schema version
//! to the current one, each kept in its own file under `migrations/` (see its README) with a
//! frozen store of the version it reads under `tests/fixtures/`.

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::store_header::StoreHeader;
use crate::format::version::SCHEMA_VERSION;
use crate::store_dir::{
    INDEX_DIR, LOCK_FILE, lock_index, read_any_store_header, write_store_header,
};
use std::time::Duration;

#[path = "../migrations/v1_to_v2.rs"]
mod v1_to_v2;
#[path = "../migrations/v2_to_v3.rs"]
mod v2_to_v3;
#[path = "../migrations/v3_to_v4.rs"]
mod v3_to_v4;
#[path = "../migrations/v4_to_v5.rs"]
mod v4_to_v5;
#[path = "../migrations/v5_to_v6.rs"]
mod v5_to_v6;
#[path = "../migrations/v6_to_v7.rs"]
mod v6_to_v7;
#[path = "../migrations/v7_to_v8.rs"]
mod v7_to_v8;

/// The step of a schema version whose segments are valid in the next one unchanged: under
/// the index lock, drop the index (the next open rebuilds it from the segments), then write
/// the store header with the next version. A crash between the two is safe either way: the
/// old header asks for the step again, and the new header with no index rebuilds it.
pub(crate) fn drop_index_and_bump(root: &Path, header: &StoreHeader) -> Result<StoreHeader> {
    let _lock = lock_index(&root.join(LOCK_FILE), Duration::from_secs(10))?;
    let index = root.join(INDEX_DIR);
    match std::fs::remove_dir_all(&index) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&index, e)),
        _ => {}
    }
    write_next(root, header)
}

/// The step of a schema version whose store is valid in the next one as it is, index
/// included: under the index lock, write the store header with the next version.
pub(crate) fn bump(root: &Path, header: &StoreHeader) -> Result<StoreHeader> {
    let _lock = lock_index(&root.join(LOCK_FILE), Duration::from_secs(10))?;
    write_next(root, header)
}

fn write_next(root: &Path, header: &StoreHeader) -> Result<StoreHeader> {
    let next = StoreHeader {
        version: header.version + 1,
        settings: header.settings.clone(),
    };
    write_store_header(root, &next)?;
    Ok(next)
}

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

/// Bring the store at `path` to the current schema version, one step at a time. A store of
/// a newer version is refused (`Error::TooNew`); a damaged header is `Error::Corrupt`.
/// Running it on a current store does nothing.
pub fn migrate(path: impl AsRef<Path>) -> Result<MigrationReport> {
    let root = path.as_ref();
    let mut header = read_any_store_header(root)?;
    let from = header.version;
    let mut steps = Vec::new();
    while header.version < SCHEMA_VERSION {
        header = match header.version {
            v1_to_v2::FROM => {
                let next = v1_to_v2::apply(root, &header)?;
                steps.push(v1_to_v2::NAME.to_owned());
                next
            }
            v2_to_v3::FROM => {
                let next = v2_to_v3::apply(root, &header)?;
                steps.push(v2_to_v3::NAME.to_owned());
                next
            }
            v3_to_v4::FROM => {
                let next = v3_to_v4::apply(root, &header)?;
                steps.push(v3_to_v4::NAME.to_owned());
                next
            }
            v4_to_v5::FROM => {
                let next = v4_to_v5::apply(root, &header)?;
                steps.push(v4_to_v5::NAME.to_owned());
                next
            }
            v5_to_v6::FROM => {
                let next = v5_to_v6::apply(root, &header)?;
                steps.push(v5_to_v6::NAME.to_owned());
                next
            }
            v6_to_v7::FROM => {
                let next = v6_to_v7::apply(root, &header)?;
                steps.push(v6_to_v7::NAME.to_owned());
                next
            }
            v7_to_v8::FROM => {
                let next = v7_to_v8::apply(root, &header)?;
                steps.push(v7_to_v8::NAME.to_owned());
                next
            }
            v => {
                return Err(Error::NeedsMigration {
                    path: root.to_owned(),
                    found: v,
                    current: SCHEMA_VERSION,
                });
            }
        };
    }
    Ok(MigrationReport {
        from,
        to: header.version,
        steps,
    })
}
