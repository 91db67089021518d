//! Remotes from Python: `Archive.clone`, `a.push()`, `a.pull()`, `a.remote_add()`,
//! `a.remotes()`. Each report comes back as a dict of the Rust report's fields.

use std::path::Path;

use archive::Archive;
use archive::remote::{self, Remote, RemoteSpec};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde::Serialize;

use crate::error::to_py;

/// A report as a dict (through its JSON form: numbers, strings and lists of strings).
fn as_dict<'py>(py: Python<'py>, report: &impl Serialize) -> PyResult<Bound<'py, PyDict>> {
    let json = serde_json::to_string(report)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    let loads = py.import("json")?.getattr("loads")?;
    Ok(loads.call1((json,))?.cast_into::<PyDict>()?)
}

/// Clone the archive at `spec` into `path`.
pub fn clone(py: Python<'_>, spec: RemoteSpec, path: &Path) -> PyResult<()> {
    py.detach(|| remote::clone_store(&spec, path, &|_, _| {}))
        .map(drop)
        .map_err(to_py)
}

/// `what` (push or pull) with remote `name` (default: the only one, or `origin`), its report
/// as a dict.
pub fn with_remote<'py, R: Serialize + Send>(
    py: Python<'py>,
    archive: &Archive,
    name: Option<&str>,
    what: fn(&Archive, &Remote) -> archive::Result<R>,
) -> PyResult<Bound<'py, PyDict>> {
    let report = py
        .detach(|| {
            let (_, spec) = remote::remote_named(archive.path(), name)?;
            what(archive, &Remote::connect(&spec)?)
        })
        .map_err(to_py)?;
    as_dict(py, &report)
}

/// Push: what the remote lacks.
pub fn push(archive: &Archive, r: &Remote) -> archive::Result<remote::PushReport> {
    remote::push(archive, r, &|_, _| {})
}

/// Pull: what this store lacks; damaged remote objects are listed under `damaged`.
pub fn pull(archive: &Archive, r: &Remote) -> archive::Result<remote::PullReport> {
    remote::pull(archive, r, &|_, _| {})
}

/// The store's remotes: name to `{"url", "endpoint"}`.
pub fn remotes<'py>(py: Python<'py>, archive: &Archive) -> PyResult<Bound<'py, PyDict>> {
    let all = remote::remotes(archive.path()).map_err(to_py)?;
    as_dict(py, &all)
}

/// Add remote `name` at `spec`.
pub fn add(archive: &Archive, name: &str, spec: RemoteSpec) -> PyResult<()> {
    remote::add_remote(archive.path(), name, spec).map_err(to_py)
}
