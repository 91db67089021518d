//! Python exceptions mirroring `archive::Error`, one class per variant under the common
//! base `ArchiveError`, with the Rust error's message unchanged.

use archive::Error;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::{PyErr, create_exception};

create_exception!(
    model_archive,
    ArchiveError,
    PyException,
    "Base class of every error the archive raises."
);
create_exception!(
    model_archive,
    NotFound,
    ArchiveError,
    "No object matches the hash or prefix."
);
create_exception!(
    model_archive,
    Removed,
    NotFound,
    "The object's entries were removed and `archive gc` dropped it."
);
create_exception!(
    model_archive,
    Ambiguous,
    ArchiveError,
    "A short hash matches more than one object."
);
create_exception!(
    model_archive,
    Corrupt,
    ArchiveError,
    "Stored bytes do not decode or do not hash back to their address."
);
create_exception!(
    model_archive,
    NeedsMigration,
    ArchiveError,
    "The store was written by an older schema version; run `archive migrate`."
);
create_exception!(
    model_archive,
    TooNew,
    ArchiveError,
    "The store was written by a newer version of model-archive."
);
create_exception!(
    model_archive,
    Locked,
    ArchiveError,
    "Another process holds the store's index; the message names it."
);
create_exception!(
    model_archive,
    InvalidInput,
    ArchiveError,
    "Input that cannot be stored as given (dtype, tag, record field ...)."
);
create_exception!(
    model_archive,
    NoStore,
    ArchiveError,
    "No archive at the path (`Archive.open`)."
);
create_exception!(
    model_archive,
    AlreadyExists,
    ArchiveError,
    "`Archive.create` on a path that already holds something."
);
create_exception!(
    model_archive,
    IoError,
    ArchiveError,
    "An I/O error on a named file."
);
create_exception!(
    model_archive,
    IndexFailed,
    ArchiveError,
    "The index failed; `archive reindex` rebuilds it from the segments."
);

create_exception!(
    model_archive,
    RemoteError,
    ArchiveError,
    "A remote failed: unreachable, access denied, no archive there, a damaged object, or an \
     unknown remote name. `failure` says which: unreachable, denied, missing, damaged, \
     unknown, other."
);

/// The Python exception for a library error, with the same message.
pub fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::NotFound(_) => NotFound::new_err(msg),
        Error::Removed(_) => Removed::new_err(msg),
        Error::Ambiguous { .. } => Ambiguous::new_err(msg),
        Error::Corrupt { .. } => Corrupt::new_err(msg),
        Error::NeedsMigration { .. } => NeedsMigration::new_err(msg),
        Error::TooNew { .. } => TooNew::new_err(msg),
        Error::Locked { .. } => Locked::new_err(msg),
        Error::InvalidInput { .. } => InvalidInput::new_err(msg),
        Error::NoStore { .. } => NoStore::new_err(msg),
        Error::AlreadyExists { .. } => AlreadyExists::new_err(msg),
        Error::Io { .. } => IoError::new_err(msg),
        Error::Index { .. } | Error::IndexDamaged { .. } => IndexFailed::new_err(msg),
        Error::Remote { failure, .. } => remote_error(msg, remote_failure(failure)),
        Error::UnknownRemote { .. } => remote_error(msg, "unknown"),
        _ => ArchiveError::new_err(msg),
    }
}

fn remote_failure(f: archive::error::RemoteFailure) -> &'static str {
    use archive::error::RemoteFailure as F;
    match f {
        F::Unreachable => "unreachable",
        F::Denied => "denied",
        F::Missing => "missing",
        F::Damaged => "damaged",
        _ => "other",
    }
}

/// A `RemoteError` whose `failure` attribute says which kind.
fn remote_error(msg: String, failure: &'static str) -> PyErr {
    let err = RemoteError::new_err(msg);
    pyo3::Python::attach(|py| {
        let _ = err.value(py).setattr("failure", failure);
    });
    err
}

/// An `InvalidInput` raised by the bindings themselves, formatted as the library's are.
pub fn invalid(input: impl std::fmt::Display, reason: impl std::fmt::Display) -> PyErr {
    InvalidInput::new_err(format!("{input}: {reason}"))
}

/// Add the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ArchiveError", py.get_type::<ArchiveError>())?;
    m.add("NotFound", py.get_type::<NotFound>())?;
    m.add("Removed", py.get_type::<Removed>())?;
    m.add("Ambiguous", py.get_type::<Ambiguous>())?;
    m.add("Corrupt", py.get_type::<Corrupt>())?;
    m.add("NeedsMigration", py.get_type::<NeedsMigration>())?;
    m.add("TooNew", py.get_type::<TooNew>())?;
    m.add("Locked", py.get_type::<Locked>())?;
    m.add("InvalidInput", py.get_type::<InvalidInput>())?;
    m.add("NoStore", py.get_type::<NoStore>())?;
    m.add("AlreadyExists", py.get_type::<AlreadyExists>())?;
    m.add("IoError", py.get_type::<IoError>())?;
    m.add("IndexFailed", py.get_type::<IndexFailed>())?;
    m.add("RemoteError", py.get_type::<RemoteError>())?;
    Ok(())
}
