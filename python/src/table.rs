//! Tables for Python: `Archive.table`'s record batches handed to pyarrow through the Arrow C
//! stream interface (a PyCapsule, no copy), and the per-pair results of
//! `Archive.diff(..., by=...)` (pyarrow builds those from Python lists: a row per key).

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{RecordBatch, RecordBatchIterator};
use pyo3::exceptions::PyImportError;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict, PyList};

/// `table` as a pyarrow.Table: its batches are moved to pyarrow through the C stream
/// interface, their buffers shared, not copied.
pub fn to_pyarrow<'py>(
    py: Python<'py>,
    table: archive::table::Table,
) -> PyResult<Bound<'py, PyAny>> {
    let pa = py.import("pyarrow").map_err(|_| {
        PyImportError::new_err("Archive.table gives a pyarrow.Table: install pyarrow")
    })?;
    let reader = RecordBatchIterator::new(
        table.batches.into_iter().map(Ok::<RecordBatch, _>),
        table.schema,
    );
    let stream = FFI_ArrowArrayStream::new(Box::new(reader));
    // pyarrow moves the stream out of the capsule; dropping the capsule afterwards releases
    // nothing (a moved stream's release is null), and releases it if pyarrow never took it.
    let capsule = PyCapsule::new_with_value(py, stream, c"arrow_array_stream")?;
    let reader = pa
        .getattr("RecordBatchReader")?
        .call_method1("_import_from_c_capsule", (capsule,))?;
    reader.call_method0("read_all")
}

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
