//! Python bindings for model-archive: `import model_archive`. Put numpy arrays (and torch/jax
//! CPU tensors, text, bytes, records) into an archive and get them back, zero-copy from the
//! memory map when stored raw. The GIL is released while hashing, compressing and doing I/O.

mod buffer;
mod convert;

/// mimalloc for this library's own allocations (python/Cargo.toml says why).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod error;
mod remote;
mod table;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use archive::{Archive, ArchiveBuilder, EntryInfo, ObjectHash, PutOptions, Writer};
use pyo3::buffer::PyUntypedBuffer;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::convert::{Item, Ref};
use crate::error::{ArchiveError, to_py};

self_cell::self_cell!(
    /// A batch writer that owns a handle on its archive, so Python can hold it.
    struct OwnedWriter {
        owner: Arc<Archive>,
        #[covariant]
        dependent: Writer,
    }
);

/// Tags as the library takes them: `{key: value}` with str, int or float values.
fn tags_of(tags: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<(String, String)>> {
    let Some(tags) = tags else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(tags.len());
    for (k, v) in tags.iter() {
        let key: String = k
            .extract()
            .map_err(|_| PyTypeError::new_err("tag keys must be str"))?;
        let ok = v.is_instance_of::<pyo3::types::PyString>()
            || v.is_instance_of::<pyo3::types::PyInt>()
            || v.is_instance_of::<pyo3::types::PyFloat>();
        if !ok || v.is_instance_of::<pyo3::types::PyBool>() {
            return Err(PyTypeError::new_err(format!(
                "tag `{key}`: values must be str, int or float, not `{}`",
                v.get_type().name()?
            )));
        }
        out.push((key, v.str()?.to_str()?.to_owned()));
    }
    Ok(out)
}

/// A hash as 64 hex digits, as its `Display` writes them, without a formatter call per byte
/// (that took ~6 % of a small put).
fn hex(hash: &ObjectHash) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in hash.as_bytes() {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Codec options from `codec=` ("raw", "zstd", "shuffle-zstd") and `level=`.
fn options(codec: Option<&str>, level: Option<i32>) -> PyResult<PutOptions> {
    Ok(PutOptions {
        codec: codec
            .map(|c| c.parse::<archive::Codec>())
            .transpose()
            .map_err(to_py)?,
        level,
    })
}

fn merged(base: &[(String, String)], extra: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = base
        .iter()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .cloned()
        .collect();
    out.extend(extra);
    out
}

/// Read `obj` (with the GIL), then store it through `put` (without the GIL).
fn put_with(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    tags: &[(String, String)],
    media_type: Option<&str>,
    put: impl FnOnce(&[(&str, &str)], &Put<'_>) -> archive::Result<ObjectHash> + Send,
) -> PyResult<String> {
    let mut bufs: Vec<PyUntypedBuffer> = Vec::new();
    let item = convert::item(obj, &mut bufs)?;
    if media_type.is_some() && !matches!(item, Item::Bytes(_)) {
        return Err(PyTypeError::new_err(
            "media_type is for bytes; text, arrays and records have none",
        ));
    }
    let hash = py.detach(|| {
        let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let what = match &item {
            Item::Text(s) => Put::Text(s),
            Item::Bytes(i) => Put::Bytes(convert::held_bytes(&bufs, *i)?, media_type),
            Item::Doc(node) => Put::Doc(node.document(&bufs)?),
        };
        put(&tags, &what).map_err(to_py)
    });
    drop(bufs);
    hash.map(|h| hex(&h))
}

/// What one put stores, borrowing the Python value's memory.
enum Put<'a> {
    Text(&'a str),
    Bytes(&'a [u8], Option<&'a str>),
    Doc(archive::interop::Document<'a>),
}

impl Put<'_> {
    fn put_into(&self, w: &mut Writer<'_>, tags: &[(&str, &str)]) -> archive::Result<ObjectHash> {
        match self {
            Put::Text(s) => w.put_text(s, tags),
            Put::Bytes(b, media) => w.put_bytes(b, *media, tags),
            Put::Doc(doc) => archive::document::put_document(w, doc, tags),
        }
    }
}

/// An archive of model outputs: a directory holding content-addressed, compressed objects
/// (tensors, text, bytes, records) and the entries that logged them with tags.
///
/// `Archive(path)` opens the store at `path`, creating it if there is none; use
/// `Archive.open` / `Archive.create` to insist on one or the other. While it is open this
/// process holds the store's index: another process opening it waits up to `lock_timeout`
/// seconds, then raises `Locked` naming this one. Close it (or use `with`) to let go.
///
/// Example::
///
///     import numpy as np, model_archive as ma
///     with ma.Archive("runs.archive") as a:
///         h = a.put(np.ones((2, 3), np.float32), tags={"run": "exp1"})
///         x = a.get(h)            # read-only ndarray, zero-copy when stored raw
///
/// Threads may share one Archive: puts and gets release the GIL.
#[pyclass(frozen, module = "model_archive", name = "Archive")]
struct PyArchive {
    inner: RwLock<Option<Arc<Archive>>>,
    path: PathBuf,
}

impl PyArchive {
    fn archive(&self) -> PyResult<Arc<Archive>> {
        self.inner
            .read()
            .ok()
            .and_then(|g| g.clone())
            .ok_or_else(|| {
                ArchiveError::new_err(format!("{}: the archive is closed", self.path.display()))
            })
    }

    fn with_builder(
        py: Python<'_>,
        path: PathBuf,
        lock_timeout: f64,
        zstd_level: Option<i32>,
        how: fn(&ArchiveBuilder, &PathBuf) -> archive::Result<Archive>,
    ) -> PyResult<Self> {
        let timeout = Duration::try_from_secs_f64(lock_timeout)
            .map_err(|_| PyValueError::new_err("lock_timeout must be a number of seconds >= 0"))?;
        let mut b = Archive::builder();
        b.lock_timeout(timeout);
        if let Some(level) = zstd_level {
            b.zstd_level(level);
        }
        let archive = py.detach(|| how(&b, &path)).map_err(to_py)?;
        Ok(PyArchive {
            inner: RwLock::new(Some(Arc::new(archive))),
            path,
        })
    }

    fn resolve_hash(&self, py: Python<'_>, archive: &Archive, hash: &str) -> PyResult<ObjectHash> {
        let _ = self;
        py.detach(|| archive.resolve(hash)).map_err(to_py)
    }
}

#[pymethods]
impl PyArchive {
    /// Open the store at `path`, creating it if there is none.
    ///
    /// - `lock_timeout`: seconds to wait for another process that holds the index.
    /// - `zstd_level`: the zstd level recorded in a new store (default: 1 behind a byte
    ///   shuffle for multi-byte tensors, 3 for plain zstd).
    #[new]
    #[pyo3(signature = (path, *, lock_timeout = 10.0, zstd_level = None))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        lock_timeout: f64,
        zstd_level: Option<i32>,
    ) -> PyResult<Self> {
        Self::with_builder(py, path, lock_timeout, zstd_level, |b, p| {
            b.open_or_create(p)
        })
    }

    /// Open an existing store; raises `NoStore` if there is none at `path`.
    #[staticmethod]
    #[pyo3(signature = (path, *, lock_timeout = 10.0))]
    fn open(py: Python<'_>, path: PathBuf, lock_timeout: f64) -> PyResult<Self> {
        Self::with_builder(py, path, lock_timeout, None, |b, p| b.open(p))
    }

    /// Create a new store; raises `AlreadyExists` if `path` holds something.
    #[staticmethod]
    #[pyo3(signature = (path, *, lock_timeout = 10.0, zstd_level = None))]
    fn create(
        py: Python<'_>,
        path: PathBuf,
        lock_timeout: f64,
        zstd_level: Option<i32>,
    ) -> PyResult<Self> {
        Self::with_builder(py, path, lock_timeout, zstd_level, |b, p| b.create(p))
    }

    /// The store's directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// True once `close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.read().map(|g| g.is_none()).unwrap_or(true)
    }

    /// Store `obj` and log an entry for it with `tags`; returns the object's hash (64 hex
    /// digits). Durable when it returns (one fsync; use `writer()` to log many at once).
    ///
    /// What is stored depends on the type of `obj`:
    ///
    /// - a numpy array, or anything `np.asarray` takes without copying (torch and jax CPU
    ///   tensors, memoryviews, objects with `__dlpack__`): a tensor. Every numeric dtype, plus
    ///   bfloat16 / float8_e4m3fn / float8_e5m2 from ml_dtypes. Fortran-ordered or strided
    ///   arrays are made C-contiguous first, big-endian ones little-endian; object arrays are
    ///   refused (`InvalidInput`).
    /// - `str`: text.  `bytes` / `bytearray`: bytes, with an optional `media_type`
    ///   (`"image/png"` ...).
    /// - `dict`: a record. Values may be None, bool, int (64-bit), float, str, lists, nested
    ///   dicts, arrays (each stored as a tensor of its own and referred to by hash), and
    ///   `Ref(hash)` to an object already in the archive.
    ///
    /// `tags` is `{key: value}` with str, int or float values, e.g.
    /// `{"run": "exp1", "split": "test", "step": 100}`.
    ///
    /// `codec` picks how new objects are stored: "raw" (memory-mappable: `get` returns a
    /// zero-copy view), "zstd" or "shuffle-zstd"; by default each object gets whichever pays
    /// (raw where compression saves under 10 %). `level` is the zstd level. The hash does not
    /// depend on either.
    ///
    /// The same content put twice is stored once and logged twice (two entries).
    /// Raises `InvalidInput` for what cannot be stored, `TypeError` for unsupported types.
    #[pyo3(signature = (obj, *, tags = None, media_type = None, codec = None, level = None))]
    fn put(
        &self,
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        tags: Option<&Bound<'_, PyDict>>,
        media_type: Option<&str>,
        codec: Option<&str>,
        level: Option<i32>,
    ) -> PyResult<String> {
        let archive = self.archive()?;
        let tags = tags_of(tags)?;
        let opts = options(codec, level)?;
        put_with(py, obj, &tags, media_type, |tags, what| {
            let mut w = archive.writer();
            w.set_options(opts);
            let h = what.put_into(&mut w, tags)?;
            w.commit()?;
            Ok(h)
        })
    }

    /// Get an object by its hash or a unique prefix of it (at least 4 hex digits).
    ///
    /// - a tensor: a read-only numpy array of its dtype and shape. When stored raw in a frame
    ///   of its own (tensors over 4 KiB) its memory is the archive's memory map itself: no
    ///   copy (the array's `base` is a `Mapped` with `zero_copy == True`). Tensors of at
    ///   most 4 KiB are stored packed with other small objects, and compressed ones are
    ///   decoded: both come back in a fresh buffer (`zero_copy == False`). The array stays valid as
    ///   long as it is referenced, even after the archive is closed. bfloat16 and float8
    ///   tensors need ml_dtypes (ImportError otherwise).
    /// - text: `str`.  bytes: `bytes` (the media type is in `info(hash)`).
    /// - a record: a dict, its tensors as arrays, references to other objects as `Ref`.
    /// - categorical outputs: `{"codes": array, "labels": [str, ...]}`.
    ///
    /// By default every read is checked against the hash, which reads every byte.
    /// `verify=False` skips that: a raw tensor then costs the same whatever its size (the
    /// pages are read when the array is), and damage goes unnoticed until `verify()`. Small
    /// (packed) objects are checked with their pack either way, and records are decoded.
    ///
    /// `rows=slice(1000, 1010)` reads those rows (along the first axis) of a tensor, decoding
    /// only the chunks that hold them; a slice is not checked against the hash, which covers
    /// the whole tensor (`verify()` checks it). Steps other than 1 are refused.
    ///
    /// Raises `NotFound`, `Ambiguous`, `Corrupt`.
    #[pyo3(signature = (hash, *, verify = true, rows = None))]
    fn get(
        &self,
        py: Python<'_>,
        hash: &str,
        verify: bool,
        rows: Option<&Bound<'_, pyo3::types::PySlice>>,
    ) -> PyResult<Py<PyAny>> {
        let archive = self.archive()?;
        // A full hash needs no resolving: a missing object is `NotFound` all the same.
        let h = match hash.parse::<ObjectHash>() {
            Ok(h) => h,
            Err(_) => self.resolve_hash(py, &archive, hash)?,
        };
        let Some(rows) = rows else {
            return convert::get(py, &archive, h, verify);
        };
        let range = row_range(rows)?;
        let (tensor, _) = py.detach(|| archive.get_rows(&h, range)).map_err(to_py)?;
        Ok(convert::owned_ndarray(py, tensor, &h)?.unbind())
    }

    /// How two objects differ, as `archive --json diff` says it, as a dict (`equal`, and for
    /// tensors `mismatched`, `nan_changed`, `max_abs`, `max_rel`, `argmax` ...; records
    /// field by field). With `by="id"`, `a` and `b` are queries whose entries are paired by
    /// that tag or record field: `pairs`, `only_in_a`, `only_in_b`, `identical`,
    /// `within_tolerance`, `different`, `most_different` ..., and `table`, a pyarrow.Table
    /// with a row per key (`key`, `status`, `a`, `b`, `max_abs`, `mismatched`,
    /// `argmax_flipped`; `table=False` leaves it out). `rtol`/`atol` default per dtype.
    #[pyo3(signature = (a, b, *, by = None, rtol = None, atol = None, top = 10, table = true))]
    #[allow(clippy::too_many_arguments)]
    fn diff(
        &self,
        py: Python<'_>,
        a: &str,
        b: &str,
        by: Option<&str>,
        rtol: Option<f64>,
        atol: Option<f64>,
        top: usize,
        table: bool,
    ) -> PyResult<Py<PyAny>> {
        let archive = self.archive()?;
        let tol = archive::Tolerance { rtol, atol };
        let report = match by {
            Some(key) => {
                let (report, rows) = py
                    .detach(|| archive.compare_runs_pairs(a, b, key, &tol, top))
                    .map_err(to_py)?;
                let json = py.import("json")?;
                let out = json.call_method1("loads", (report.to_string(),))?;
                if table {
                    out.set_item("table", table::pair_table(py, &rows)?)?;
                }
                return Ok(out.unbind());
            }
            None => {
                let (ha, hb) = (
                    self.resolve_hash(py, &archive, a)?,
                    self.resolve_hash(py, &archive, b)?,
                );
                py.detach(|| archive.compare(&ha, &hb, &tol))
                    .map_err(to_py)?
            }
        };
        let json = py.import("json")?;
        Ok(json.call_method1("loads", (report.to_string(),))?.unbind())
    }

    /// What is in a tensor, as `archive show` says it: `count`, `nan`, `pos_inf`, `neg_inf`,
    /// `zeros`, and over the finite values numpy's `min`, `max`, `mean`, `std`, `quantiles`
    /// (a dict of q to value) and a 20-bin `histogram`; `argmax` (counts per class) when the
    /// rows along the last axis look like probabilities.
    fn show<'py>(&self, py: Python<'py>, hash: &str) -> PyResult<Bound<'py, PyDict>> {
        let archive = self.archive()?;
        let h = self.resolve_hash(py, &archive, hash)?;
        let info = py.detach(|| archive.info(&h)).map_err(to_py)?;
        let (Some(dtype), Some(shape)) = (info.dtype, info.shape) else {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "{h} is {}, not a tensor",
                info.kind.name()
            )));
        };
        // A tensor over 64 MiB is read a block of rows at a time.
        let s = py
            .detach(|| archive.summarise(&h, &|_, _, _| {}))
            .map_err(to_py)?;
        let d = PyDict::new(py);
        d.set_item("dtype", dtype.name())?;
        d.set_item("shape", shape.dims().to_vec())?;
        for (k, v) in [("count", s.count), ("nan", s.nan), ("pos_inf", s.pos_inf)] {
            d.set_item(k, v)?;
        }
        d.set_item("neg_inf", s.neg_inf)?;
        d.set_item("zeros", s.zeros)?;
        for (k, v) in [
            ("min", s.min),
            ("max", s.max),
            ("mean", s.mean),
            ("std", s.std),
        ] {
            d.set_item(k, v)?;
        }
        let q = PyDict::new(py);
        for (at, v) in &s.quantiles {
            q.set_item(at, v)?;
        }
        d.set_item("quantiles", q)?;
        d.set_item("histogram", s.histogram)?;
        d.set_item("argmax", s.argmax)?;
        Ok(d)
    }

    /// The full hash of a unique prefix.
    fn resolve(&self, py: Python<'_>, prefix: &str) -> PyResult<String> {
        let archive = self.archive()?;
        Ok(self.resolve_hash(py, &archive, prefix)?.to_string())
    }

    fn __contains__(&self, py: Python<'_>, hash: &str) -> PyResult<bool> {
        let archive = self.archive()?;
        let Ok(h) = hash.parse::<ObjectHash>() else {
            return Ok(false);
        };
        py.detach(|| archive.contains(&h)).map_err(to_py)
    }

    /// What an object is, from the index: a dict with `hash`, `kind` ("tensor", "text",
    /// "bytes", "record"), `dtype` and `shape` (tensors), `desc` (media type or record
    /// schema), `raw_len`, `stored_len` and `codec` ("raw", "zstd", "shuffle-zstd").
    fn info<'py>(&self, py: Python<'py>, hash: &str) -> PyResult<Bound<'py, PyDict>> {
        let archive = self.archive()?;
        let h = self.resolve_hash(py, &archive, hash)?;
        let info = py.detach(|| archive.info(&h)).map_err(to_py)?;
        let d = PyDict::new(py);
        d.set_item("hash", info.hash.to_string())?;
        d.set_item("kind", info.kind.name())?;
        d.set_item("dtype", info.dtype.map(|t| t.name()))?;
        d.set_item(
            "shape",
            match &info.shape {
                Some(s) => Some(PyTuple::new(py, s.dims())?),
                None => None,
            },
        )?;
        d.set_item("desc", info.desc)?;
        d.set_item("raw_len", info.raw_len)?;
        d.set_item("stored_len", info.stored_len)?;
        d.set_item("codec", info.codec.name())?;
        Ok(d)
    }

    /// Entries, newest first: each an `Entry` with `.hash`, `.time` (datetime, UTC),
    /// `.time_ns`, `.tags` (dict) and `.seq`.
    ///
    /// `tags={"run": "exp1"}` keeps the entries whose tags include every given key=value;
    /// `limit` stops after that many matches. `query` takes a full query.
    #[pyo3(signature = (*, tags = None, limit = None))]
    fn entries(
        &self,
        py: Python<'_>,
        tags: Option<&Bound<'_, PyDict>>,
        limit: Option<usize>,
    ) -> PyResult<Vec<Entry>> {
        let archive = self.archive()?;
        let want = tags_of(tags)?;
        let found = py.detach(|| {
            let mut out = Vec::new();
            for e in archive.entries() {
                if limit.is_some_and(|n| out.len() >= n) {
                    break;
                }
                let e = e?;
                if want.iter().all(|w| e.tags.contains(w)) {
                    out.push(e);
                }
            }
            Ok::<_, archive::Error>(out)
        });
        Ok(found.map_err(to_py)?.into_iter().map(Entry::from).collect())
    }

    /// Entries matching a query, newest first (the query language of `archive query`):
    ///
    ///     a.query('run = "exp1" and split = "test" and time > 2026-11-01 and kind = tensor')
    ///     a.query('model ~ "resnet*" or (has step and not rank = 0)', limit=10)
    ///
    /// `and`, `or`, `not`, parentheses; `=`, `!=`, `<`, `<=`, `>`, `>=`, and `~` (glob: `*`,
    /// `?`); `has NAME`. A field is a name (a tag key, or the path of a field of the logged
    /// record: `label`, `meta.source`), or `time` (RFC 3339, or a date for midnight UTC),
    /// `kind`, `dtype`, `rank`, `size` (decoded bytes), `hash` (`=` matches a prefix). Values
    /// are double-quoted strings or bare words and numbers; comparisons are numeric when both
    /// sides are numbers. A bare word on the right that is a name of this store compares two
    /// names (`label != pred`); quote it to mean the word. A syntax error raises
    /// `InvalidInput` naming the column.
    #[pyo3(signature = (query, *, limit = None))]
    fn query(&self, py: Python<'_>, query: &str, limit: Option<usize>) -> PyResult<Vec<Entry>> {
        let archive = self.archive()?;
        let found = py.detach(|| {
            let q = archive.parse_query(query)?;
            archive
                .query(&q)
                .take(limit.unwrap_or(usize::MAX))
                .collect::<archive::Result<Vec<_>>>()
        });
        Ok(found.map_err(to_py)?.into_iter().map(Entry::from).collect())
    }

    /// One tensor field of every entry `query` matches, stacked into one array of shape
    /// `[N, ...]`, rows in logging order (oldest first): `a.stack('run = "exp1"', "probs")`.
    /// `field` is a record field's path (`probs`, `out.logits`); without it the entries must be
    /// tensors themselves. Every row must have the first row's dtype and shape. The array is
    /// writable, and a view of the bytes the store stacked (its `base`, an `OwnedBytes`): it
    /// is handed over, not copied.
    ///
    /// Raises `InvalidInput` naming the first entry that differs or lacks the field, or when
    /// nothing matches.
    #[pyo3(signature = (query, field = None))]
    fn stack(&self, py: Python<'_>, query: &str, field: Option<&str>) -> PyResult<Py<PyAny>> {
        let archive = self.archive()?;
        let tensor = py
            .detach(|| {
                let q = archive.parse_query(query)?;
                archive.stack(&q, field, &|_, _| {})
            })
            .map_err(to_py)?;
        let what = ObjectHash([0; 32]);
        Ok(convert::owned_ndarray(py, tensor, &what)?.unbind())
    }

    /// The entries `query` matches as a pyarrow.Table, a row per entry in logging order (oldest
    /// first): `time` (UTC), `hash`, then a column per record field (by its path, nested
    /// records flattened: `meta.source`) and per tag key, as queries name them; an entry that
    /// logs a tensor, text or bytes has it in `value`. `columns` picks columns, in order.
    ///
    ///     t = a.table('run = "exp1"', columns=["probs", "label", "id"])
    ///     df = t.to_pandas()            # or polars.from_arrow(t)
    ///     probs = t["probs"].combine_chunks().flatten().to_numpy().reshape(-1, 10)
    ///
    /// Tensors are fixed-size lists of their dtype, nested a level per dimension (lists where
    /// shapes vary). Integers mixed with floats make a float column, other scalar mixes text.
    /// The batches are handed over through the Arrow C stream interface, without a copy.
    /// Raises `InvalidInput` when a column cannot hold a row's value (naming both), or for a
    /// column asked for twice.
    #[pyo3(signature = (query, *, columns = None))]
    fn table<'py>(
        &self,
        py: Python<'py>,
        query: &str,
        columns: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let archive = self.archive()?;
        let t = py
            .detach(|| {
                let q = archive.parse_query(query)?;
                archive.table(&q, columns.as_deref(), &|_, _| {})
            })
            .map_err(to_py)?;
        table::to_pyarrow(py, t)
    }

    /// The entries that logged one object, oldest first.
    fn entries_of(&self, py: Python<'_>, hash: &str) -> PyResult<Vec<Entry>> {
        let archive = self.archive()?;
        let h = self.resolve_hash(py, &archive, hash)?;
        let found = py.detach(|| archive.entries_of(&h)).map_err(to_py)?;
        Ok(found.into_iter().map(Entry::from).collect())
    }

    /// Counts and sizes: objects, entries, logical/raw/stored bytes, segments, by kind.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let archive = self.archive()?;
        let s = py.detach(|| archive.stats()).map_err(to_py)?;
        let d = PyDict::new(py);
        d.set_item("objects", s.objects)?;
        d.set_item("entries", s.entries)?;
        d.set_item("logical_bytes", s.logical_bytes)?;
        d.set_item("raw_bytes", s.raw_bytes)?;
        d.set_item("stored_bytes", s.stored_bytes)?;
        d.set_item("segments", s.segments)?;
        d.set_item("segment_bytes", s.segment_bytes)?;
        d.set_item("index_bytes", s.index_bytes)?;
        d.set_item("removed_entries", s.removed_entries)?;
        d.set_item("removable_bytes", s.removable_bytes)?;
        let by_kind = PyDict::new(py);
        for (k, n) in s.by_kind {
            by_kind.set_item(k, n)?;
        }
        d.set_item("by_kind", by_kind)?;
        Ok(d)
    }

    /// Remove every entry `query` matches (as `archive rm` does); with `dry_run`, only say
    /// what would go. Returns a dict: entries, objects (no live entry logs them any more),
    /// stored_bytes (about what `archive gc` gets back), dry_run. An empty query is refused.
    #[pyo3(signature = (query, dry_run = false))]
    fn rm<'py>(&self, py: Python<'py>, query: &str, dry_run: bool) -> PyResult<Bound<'py, PyDict>> {
        if query.trim().is_empty() {
            return Err(PyValueError::new_err("rm needs a query"));
        }
        let archive = self.archive()?;
        let r = py
            .detach(|| {
                let q = archive.parse_query(query)?;
                archive.rm(&q, query, dry_run)
            })
            .map_err(to_py)?;
        let d = PyDict::new(py);
        d.set_item("entries", r.entries)?;
        d.set_item("objects", r.objects)?;
        d.set_item("stored_bytes", r.stored_bytes)?;
        d.set_item("dry_run", r.dry_run)?;
        Ok(d)
    }

    /// Get back the space of removed entries (as `archive gc` does): rewrite the segments
    /// where garbage takes at least `min_dead` of the bytes, drop the old ones. With
    /// `dry_run`, only say what would be done. Returns the report as a dict (segments and
    /// bytes replaced, written and reclaimed, garbage found and left, objects dropped).
    #[pyo3(signature = (dry_run = false, min_dead = 0.1))]
    fn gc<'py>(
        &self,
        py: Python<'py>,
        dry_run: bool,
        min_dead: f64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let archive = self.archive()?;
        let opts = archive::GcOptions { dry_run, min_dead };
        let r = py
            .detach(|| archive.gc(&opts, &|_, _, _| {}))
            .map_err(to_py)?;
        let d = PyDict::new(py);
        d.set_item("dry_run", r.dry_run)?;
        d.set_item("segments_replaced", r.segments_replaced)?;
        d.set_item("bytes_replaced", r.bytes_replaced)?;
        d.set_item("bytes_written", r.bytes_written)?;
        d.set_item("bytes_reclaimed", r.bytes_reclaimed)?;
        d.set_item("garbage_bytes", r.garbage_bytes)?;
        d.set_item("garbage_left", r.garbage_left)?;
        d.set_item("segments_busy", r.segments_busy)?;
        d.set_item("objects_collected", r.copy.objects_collected)?;
        d.set_item("bytes_collected", r.copy.bytes_collected)?;
        d.set_item("entries_dropped", r.copy.entries_dropped)?;
        Ok(d)
    }

    /// Clone the archive at `url` (`s3://BUCKET/PREFIX`, or `file:///PATH`) into `path` (new,
    /// or an empty directory) and open it; its remote is named `origin`. `endpoint` names an
    /// S3 server other than AWS's (`http://127.0.0.1:8333`); credentials come from the usual
    /// AWS variables or profile files. Raises `RemoteError` (its `failure` says why) or
    /// `AlreadyExists`; a failed clone leaves nothing behind.
    #[staticmethod]
    #[pyo3(name = "clone", signature = (url, path, *, endpoint = None, lock_timeout = 10.0))]
    fn clone_remote(
        py: Python<'_>,
        url: String,
        path: PathBuf,
        endpoint: Option<String>,
        lock_timeout: f64,
    ) -> PyResult<Self> {
        crate::remote::clone(py, archive::remote::RemoteSpec { url, endpoint }, &path)?;
        Self::with_builder(py, path, lock_timeout, None, |b, p| b.open(p))
    }

    /// Add a remote by name (as `archive remote add`).
    #[pyo3(signature = (name, url, *, endpoint = None))]
    fn remote_add(&self, name: &str, url: String, endpoint: Option<String>) -> PyResult<()> {
        crate::remote::add(
            &*self.archive()?,
            name,
            archive::remote::RemoteSpec { url, endpoint },
        )
    }

    /// The remotes: name to `{"url": ..., "endpoint": ...}`.
    fn remotes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        crate::remote::remotes(py, &*self.archive()?)
    }

    /// Upload what the remote lacks (default: the only remote, or `origin`). Returns the
    /// report: pieces, bytes, segments, tables, table_entries, requests, seconds, ...
    #[pyo3(signature = (remote = None))]
    fn push<'py>(&self, py: Python<'py>, remote: Option<&str>) -> PyResult<Bound<'py, PyDict>> {
        crate::remote::with_remote(py, &*self.archive()?, remote, crate::remote::push)
    }

    /// Download what this store lacks of the remote, check it and index it. Returns the
    /// report; remote objects found damaged are listed under `damaged`, never used.
    #[pyo3(signature = (remote = None))]
    fn pull<'py>(&self, py: Python<'py>, remote: Option<&str>) -> PyResult<Bound<'py, PyDict>> {
        crate::remote::with_remote(py, &*self.archive()?, remote, crate::remote::pull)
    }

    /// Re-read and re-hash everything; returns a list of problems (empty when all is well),
    /// each a string naming the file, byte offset and what is wrong.
    fn verify(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let archive = self.archive()?;
        let report = py.detach(|| archive.verify(&|_, _| {})).map_err(to_py)?;
        Ok(report
            .problems
            .iter()
            .map(|p| format!("{}: byte {}: {}", p.path.display(), p.offset, p.reason))
            .collect())
    }

    /// A batch writer: many puts, one fsync at `commit()` (or at the end of a `with` block).
    /// `tags` are added to every put's own tags (a put's tag of the same key wins).
    ///
    /// Example::
    ///
    ///     with a.writer(tags={"run": "exp1"}) as w:
    ///         for step, batch in enumerate(loader):
    ///             w.put(model(batch), tags={"step": step})
    ///
    /// Puts become visible and durable at `commit()`; call it now and then in a long loop.
    /// `codec` and `level` apply to every put of the batch, as in `put`.
    #[pyo3(signature = (*, tags = None, codec = None, level = None))]
    fn writer(
        &self,
        tags: Option<&Bound<'_, PyDict>>,
        codec: Option<&str>,
        level: Option<i32>,
    ) -> PyResult<PyWriter> {
        let archive = self.archive()?;
        let opts = options(codec, level)?;
        Ok(PyWriter {
            inner: Mutex::new(Some(OwnedWriter::new(archive, |a| {
                let mut w = a.writer();
                w.set_options(opts);
                w
            }))),
            tags: tags_of(tags)?,
        })
    }

    /// Hand the index to any other process that needs it (a `archive ls` in a terminal, say),
    /// while this one is idle: the archive stays open and takes the index again when a call
    /// next needs it. Gets of stored objects do not need it.
    fn release_index(&self, py: Python<'_>) -> PyResult<()> {
        let archive = self.archive()?;
        py.detach(|| archive.release_index());
        Ok(())
    }

    /// Let go of the store (and its index lock). Arrays from `get` stay valid; open writers
    /// keep the store open until they are closed. Calling it twice does nothing.
    fn close(&self, py: Python<'_>) {
        let taken = self.inner.write().ok().and_then(|mut g| g.take());
        py.detach(|| drop(taken));
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        format!(
            "model_archive.Archive({:?}{})",
            self.path.display().to_string(),
            if self.closed() { ", closed" } else { "" }
        )
    }
}

/// A batch of puts that become durable and visible together, with one fsync, at `commit()`.
/// Made by `Archive.writer()`. Leaving a `with` block commits, also when it is left by an
/// exception (the outputs logged before it are kept); `discard()` drops the uncommitted puts.
#[pyclass(frozen, module = "model_archive", name = "Writer")]
struct PyWriter {
    inner: Mutex<Option<OwnedWriter>>,
    tags: Vec<(String, String)>,
}

impl PyWriter {
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Writer<'_>) -> archive::Result<T> + Send,
    ) -> PyResult<T> {
        py.detach(|| {
            let mut guard = self
                .inner
                .lock()
                .map_err(|_| ArchiveError::new_err("writer lock poisoned"))?;
            let Some(w) = guard.as_mut() else {
                return Err(ArchiveError::new_err("the writer is closed"));
            };
            w.with_dependent_mut(|_, w| f(w)).map_err(to_py)
        })
    }
}

#[pymethods]
impl PyWriter {
    /// Store `obj` as `Archive.put` does (same types, `tags`, `media_type`), in this batch;
    /// returns its hash. Durable and visible at `commit()`.
    #[pyo3(signature = (obj, *, tags = None, media_type = None))]
    fn put(
        &self,
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        tags: Option<&Bound<'_, PyDict>>,
        media_type: Option<&str>,
    ) -> PyResult<String> {
        let tags = merged(&self.tags, tags_of(tags)?);
        let inner = &self.inner;
        put_with(py, obj, &tags, media_type, |tags, what| {
            let mut guard = inner
                .lock()
                .map_err(|_| invalid_lib("writer", "lock poisoned"))?;
            let Some(w) = guard.as_mut() else {
                return Err(invalid_lib("writer", "the writer is closed"));
            };
            w.with_dependent_mut(|_, w| what.put_into(w, tags))
        })
    }

    /// Make every put since the last commit durable (one fsync) and visible.
    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |w| w.commit())
    }

    /// Number of puts since the last commit.
    #[getter]
    fn pending(&self) -> PyResult<usize> {
        let guard = self
            .inner
            .lock()
            .map_err(|_| ArchiveError::new_err("writer lock poisoned"))?;
        Ok(guard.as_ref().map_or(0, |w| w.borrow_dependent().pending()))
    }

    /// Undo every put since the last commit, leaving the store as it was; closes the writer.
    fn discard(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self.inner.lock().ok().and_then(|mut g| g.take());
        let Some(w) = taken else {
            return Ok(());
        };
        py.detach(|| {
            // `discard` consumes the writer; the owner (the archive handle) is dropped after.
            let mut result = Ok(());
            let mut w = w;
            w.with_dependent_mut(|owner, writer| {
                let fresh = owner.writer();
                let batch = std::mem::replace(writer, fresh);
                result = batch.discard();
            });
            result
        })
        .map_err(to_py)
    }

    /// Commit and close the writer. Calling it twice does nothing.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self.inner.lock().ok().and_then(|mut g| g.take());
        let Some(mut w) = taken else {
            return Ok(());
        };
        py.detach(move || w.with_dependent_mut(|_, w| w.commit()))
            .map_err(to_py)
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }
}

fn invalid_lib(input: &str, reason: &str) -> archive::Error {
    archive::Error::InvalidInput {
        input: input.into(),
        reason: reason.into(),
    }
}

/// One act of logging: which object, when, with which tags.
#[pyclass(frozen, module = "model_archive")]
struct Entry {
    /// Sequence number, in logging order.
    #[pyo3(get)]
    seq: u64,
    /// Nanoseconds since the Unix epoch.
    #[pyo3(get)]
    time_ns: i64,
    hash: ObjectHash,
    tags: Vec<(String, String)>,
}

impl From<EntryInfo> for Entry {
    fn from(e: EntryInfo) -> Self {
        Entry {
            seq: e.seq,
            time_ns: e.time_ns,
            hash: e.hash,
            tags: e.tags,
        }
    }
}

#[pymethods]
impl Entry {
    /// The object's hash.
    #[getter]
    fn hash(&self) -> String {
        hex(&self.hash)
    }

    /// The tags, as a dict.
    #[getter]
    fn tags<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in &self.tags {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// When it was logged: a timezone-aware datetime in UTC (microsecond precision;
    /// `time_ns` has all of it).
    #[getter]
    fn time<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let dt = py.import("datetime")?;
        let utc = dt.getattr("timezone")?.getattr("utc")?;
        let epoch = dt
            .getattr("datetime")?
            .call1((1970, 1, 1, 0, 0, 0, 0, utc))?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("microseconds", self.time_ns.div_euclid(1000))?;
        let delta = dt.getattr("timedelta")?.call((), Some(&kwargs))?;
        epoch.call_method1("__add__", (delta,))
    }

    fn __repr__(&self) -> String {
        let tags: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "<model_archive.Entry #{} {} {}>",
            self.seq,
            self.hash.short(12),
            tags.join(" ")
        )
    }
}

/// model_archive: a persistent, content-addressed, compressed archive for model outputs.
///
/// `Archive(path)` opens or creates a store; `put` stores numpy arrays, text, bytes and
/// records; `get` returns them (arrays zero-copy from the memory map when stored raw);
/// `entries` lists what was logged; `writer` batches many puts into one fsync. Errors are
/// `ArchiveError` subclasses mirroring the Rust library's: NotFound, Ambiguous, Corrupt,
/// NeedsMigration, TooNew, Locked, InvalidInput, NoStore, AlreadyExists, IoError, IndexFailed,
/// RemoteError.
#[pymodule]
fn model_archive(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyArchive>()?;
    m.add_class::<PyWriter>()?;
    m.add_class::<Entry>()?;
    m.add_class::<Ref>()?;
    m.add_class::<buffer::Mapped>()?;
    m.add_class::<buffer::OwnedBytes>()?;
    error::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

/// A Python slice of rows as a range (step 1; `None` ends open; negative ends refused).
fn row_range(rows: &Bound<'_, pyo3::types::PySlice>) -> PyResult<std::ops::Range<u64>> {
    let bad = |why: &str| pyo3::exceptions::PyValueError::new_err(format!("rows: {why}"));
    let end_of = |name: &str| -> PyResult<Option<u64>> {
        let v = rows.getattr(name)?;
        if v.is_none() {
            return Ok(None);
        }
        let n: i64 = v.extract()?;
        u64::try_from(n)
            .map(Some)
            .map_err(|_| bad("negative ends are not supported"))
    };
    if end_of("step")?.is_some_and(|s| s != 1) {
        return Err(bad("a step other than 1"));
    }
    let start = end_of("start")?.unwrap_or(0);
    let stop = end_of("stop")?.unwrap_or(u64::MAX);
    Ok(start..stop.max(start))
}
