//! The per-pair results of `Archive.diff(..., by=...)` as a pyarrow.Table (pyarrow builds it
//! from Python lists: a row per key, a few columns).

use pyo3::exceptions::PyImportError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// A pyarrow.Table of `rows`: `key`, `status`, `a`, `b` (hashes, null on a side without the
/// key), `max_abs` (null where no tensor was compared), `mismatched`, `argmax_flipped`.
pub fn pair_table<'py>(py: Python<'py>, rows: &[archive::PairRow]) -> PyResult<Bound<'py, PyAny>> {
    let pa = py.import("pyarrow").map_err(|_| {
        PyImportError::new_err(
            "diff(..., by=...) gives its per-pair results as a pyarrow.Table: install pyarrow, \
             or pass table=False",
        )
    })?;
    let hex = |h: Option<archive::ObjectHash>| h.map(|h| h.to_string());
    let cols = PyDict::new(py);
    cols.set_item(
        "key",
        rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
    )?;
    cols.set_item("status", rows.iter().map(|r| r.status).collect::<Vec<_>>())?;
    cols.set_item("a", rows.iter().map(|r| hex(r.a)).collect::<Vec<_>>())?;
    cols.set_item("b", rows.iter().map(|r| hex(r.b)).collect::<Vec<_>>())?;
    cols.set_item(
        "max_abs",
        rows.iter().map(|r| r.max_abs).collect::<Vec<_>>(),
    )?;
    cols.set_item(
        "mismatched",
        rows.iter().map(|r| r.mismatched).collect::<Vec<_>>(),
    )?;
    let flipped: Vec<u64> = rows.iter().map(|r| r.argmax_flipped).collect();
    cols.set_item("argmax_flipped", flipped)?;
    let field = |name: &str, ty: &str| -> PyResult<Bound<'py, PyAny>> {
        pa.call_method1("field", (name, pa.call_method0(ty)?))
    };
    let fields = PyList::new(
        py,
        [
            field("key", "string")?,
            field("status", "string")?,
            field("a", "string")?,
            field("b", "string")?,
            field("max_abs", "float64")?,
            field("mismatched", "uint64")?,
            field("argmax_flipped", "uint64")?,
        ],
    )?;
    let schema = pa.call_method1("schema", (fields,))?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("schema", schema)?;
    pa.call_method("table", (cols,), Some(&kwargs))
}
