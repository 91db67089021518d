//! Between Python values and the archive's: numpy arrays (and anything `np.asarray` takes) to
//! tensors without a copy where they are C-contiguous little-endian, dicts to records, and
//! stored objects back to numpy arrays, `str`, `bytes` and dicts.

use std::borrow::Cow;

use archive::interop::{Array, Document};
use archive::{Archive, Dtype, Kind, Object, ObjectHash, Record, Shape, Value};
use pyo3::buffer::PyUntypedBuffer;
use pyo3::exceptions::{PyImportError, PySystemError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple,
};

use crate::buffer::{Mapped, bytes_of};
use crate::error::{invalid, to_py};

/// A reference to another object in the archive, as a record field holds it.
#[pyclass(frozen, module = "model_archive", eq, hash)]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Ref {
    hash: ObjectHash,
}

#[pymethods]
impl Ref {
    /// A reference to the object with this full hash.
    #[new]
    fn new(hash: &str) -> PyResult<Self> {
        let hash = hash.parse::<ObjectHash>().map_err(|e| to_py(e.into()))?;
        Ok(Ref { hash })
    }

    /// The full hash (64 hex digits).
    #[getter]
    fn hash(&self) -> String {
        self.hash.to_string()
    }

    fn __repr__(&self) -> String {
        format!("model_archive.Ref(\"{}\")", self.hash)
    }
}

/// A value to put, its tensors' memory held as Python buffers.
pub enum Item {
    Text(String),
    Bytes(usize),
    Doc(Node),
}

/// A document whose tensors are indices into the held buffers.
pub enum Node {
    Tensor {
        dtype: Dtype,
        shape: Shape,
        buf: usize,
    },
    Map(Vec<(String, Node)>),
    List(Vec<Node>),
    Scalar(Value),
}

impl Node {
    /// The document, borrowing every tensor's bytes from `bufs`. Runs without the GIL.
    pub fn document<'b>(&self, bufs: &'b [PyUntypedBuffer]) -> PyResult<Document<'b>> {
        Ok(match self {
            Node::Tensor { dtype, shape, buf } => Document::Tensor(
                Array::new(
                    "array",
                    *dtype,
                    shape.clone(),
                    Cow::Borrowed(held_bytes(bufs, *buf)?),
                )
                .map_err(to_py)?,
            ),
            Node::Map(fields) => Document::Map(
                fields
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), v.document(bufs)?)))
                    .collect::<PyResult<_>>()?,
            ),
            Node::List(items) => Document::List(
                items
                    .iter()
                    .map(|v| v.document(bufs))
                    .collect::<PyResult<_>>()?,
            ),
            Node::Scalar(v) => Document::Scalar(v.clone()),
        })
    }
}

/// The bytes of the held buffer at `index` (as `item` and `Node` refer to them). Runs without
/// the GIL; the errors it makes are raised once it is taken again.
pub fn held_bytes(bufs: &[PyUntypedBuffer], index: usize) -> PyResult<&[u8]> {
    let buf = bufs.get(index).ok_or_else(|| {
        PySystemError::new_err(format!(
            "internal error: buffer {index} of {} held",
            bufs.len()
        ))
    })?;
    Ok(bytes_of(buf)?)
}

/// Read a Python value to put: `str` is text; `bytes`/`bytearray` are bytes; a dict is a
/// record; anything numpy can view as an array is a tensor.
pub fn item(obj: &Bound<'_, PyAny>, bufs: &mut Vec<PyUntypedBuffer>) -> PyResult<Item> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Item::Text(s.to_str()?.to_owned()));
    }
    if obj.is_instance_of::<PyBytes>() || obj.is_instance_of::<PyByteArray>() {
        let buf = PyUntypedBuffer::get(obj)?;
        bufs.push(buf);
        return Ok(Item::Bytes(bufs.len() - 1));
    }
    if obj.is_instance_of::<PyDict>() {
        return Ok(Item::Doc(node(obj, bufs, 0)?));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        return Err(PyTypeError::new_err(
            "a list is neither a tensor nor a record: pass np.asarray(values) for a tensor, \
             or a dict for a record",
        ));
    }
    match array(obj)? {
        Some(arr) => tensor(&arr, bufs).map(Item::Doc),
        None => Err(unsupported(obj, "put")),
    }
}

fn unsupported(obj: &Bound<'_, PyAny>, what: &str) -> PyErr {
    let ty = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    PyTypeError::new_err(format!(
        "cannot {what} a `{ty}`: expected a numpy array (or anything np.asarray takes: torch \
         and jax CPU tensors, buffers), str, bytes or a dict"
    ))
}

/// numpy's module, imported once (`py.import` goes through `__import__` on every call).
fn numpy(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static NUMPY: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    NUMPY
        .get_or_try_init(py, || Ok::<_, PyErr>(py.import("numpy")?.unbind()))
        .map(|m| m.bind(py))
}

/// `numpy.NAME`, looked up once.
fn numpy_attr<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyAny>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyAny>> {
    cell.get_or_try_init(py, || Ok::<_, PyErr>(numpy(py)?.getattr(name)?.unbind()))
        .map(|a| a.bind(py))
}

static NDARRAY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static GENERIC: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The value as a numpy array, if it is array-like: an ndarray or numpy scalar, or an object
/// with `__array__`, `__array_interface__`, `__dlpack__` or the buffer protocol. No copy is
/// made where numpy can avoid one.
fn array<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = obj.py();
    let ndarray = numpy_attr(py, &NDARRAY, "ndarray")?;
    if obj.get_type().is(ndarray) {
        return Ok(Some(obj.clone())); // what `np.asarray` would return; subclasses go through it
    }
    let np = numpy(py)?;
    let is_array = obj.is_instance(ndarray)?
        || obj.is_instance(numpy_attr(py, &GENERIC, "generic")?)?
        || obj.is_instance_of::<PyMemoryView>()
        || obj.hasattr(intern!(py, "__array__"))?
        || obj.hasattr(intern!(py, "__array_interface__"))?;
    if is_array {
        return Ok(Some(np.call_method1(intern!(py, "asarray"), (obj,))?));
    }
    if obj.hasattr(intern!(py, "__dlpack__"))? {
        return Ok(Some(np.call_method1(intern!(py, "from_dlpack"), (obj,))?));
    }
    Ok(None)
}

fn node(obj: &Bound<'_, PyAny>, bufs: &mut Vec<PyUntypedBuffer>, depth: usize) -> PyResult<Node> {
    if depth > archive::interop::MAX_DOCUMENT_DEPTH {
        return Err(invalid(
            "record",
            format!(
                "nested deeper than {} levels",
                archive::interop::MAX_DOCUMENT_DEPTH
            ),
        ));
    }
    if obj.is_none() {
        return Ok(Node::Scalar(Value::Null));
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Node::Scalar(Value::Bool(b.is_true())));
    }
    if obj.is_instance_of::<PyInt>() {
        let v: i64 = obj.extract().map_err(|_| {
            invalid(
                obj.repr().map_or("integer".into(), |r| r.to_string()),
                "a record integer must fit in 64 bits (signed); store big numbers as a string",
            )
        })?;
        return Ok(Node::Scalar(Value::Int(v)));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Node::Scalar(Value::Float(f.value())));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Node::Scalar(Value::Str(s.to_str()?.to_owned())));
    }
    if let Ok(r) = obj.cast::<Ref>() {
        return Ok(Node::Scalar(Value::Ref(r.get().hash)));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut fields = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            let Ok(k) = k.cast::<PyString>() else {
                return Err(PyTypeError::new_err(format!(
                    "record field names must be str, not `{}`",
                    k.get_type().name()?
                )));
            };
            fields.push((k.to_str()?.to_owned(), node(&v, bufs, depth + 1)?));
        }
        return Ok(Node::Map(fields));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for v in obj.try_iter()? {
            items.push(node(&v?, bufs, depth + 1)?);
        }
        return Ok(Node::List(items));
    }
    if obj.is_instance_of::<PyBytes>() || obj.is_instance_of::<PyByteArray>() {
        return Err(PyTypeError::new_err(
            "a record cannot hold bytes: put them first (`h = a.put(data)`) and store \
             `model_archive.Ref(h)` in the record",
        ));
    }
    // numpy's scalar numbers (np.int64(3) from `argmax`, np.bool_) are record scalars; other
    // numpy scalars (complex, bfloat16) are 0-d tensors.
    let np = numpy(obj.py())?;
    if obj.is_instance(numpy_attr(obj.py(), &GENERIC, "generic")?)? {
        let number = obj.is_instance(&np.getattr("integer")?)?
            || obj.is_instance(&np.getattr("floating")?)?
            || obj.is_instance(&np.getattr("bool_")?)?;
        let standard = obj
            .getattr("dtype")?
            .getattr("isbuiltin")?
            .extract::<i64>()?
            != 0;
        if number && standard {
            return node(&obj.call_method0("item")?, bufs, depth);
        }
    }
    match array(obj)? {
        Some(arr) => tensor(&arr, bufs),
        None => Err(unsupported(obj, "store in a record")),
    }
}

/// The archive dtype of a numpy dtype. Builtin dtypes are told by kind and size; `name` is
/// read only for user-defined ones (ml_dtypes) and for errors, as numpy formats it anew on
/// every access (microseconds, the most expensive step of a small put).
fn dtype_of(dt: &Bound<'_, PyAny>) -> PyResult<Dtype> {
    let py = dt.py();
    // NPY_USERDEF: type numbers from 256 on are registered by other packages.
    let user_defined = dt.getattr(intern!(py, "num"))?.extract::<i64>()? >= 256;
    let kind: char = dt.getattr(intern!(py, "kind"))?.extract()?;
    let size: usize = dt.getattr(intern!(py, "itemsize"))?.extract()?;
    let name = || -> PyResult<String> { dt.getattr(intern!(py, "name"))?.extract() };
    let d = if user_defined {
        match name()?.as_str() {
            "bfloat16" => Some(Dtype::BF16),
            "float8_e4m3fn" => Some(Dtype::F8E4M3),
            "float8_e5m2" => Some(Dtype::F8E5M2),
            _ => None,
        }
    } else {
        match (kind, size) {
            ('b', 1) => Some(Dtype::Bool),
            ('u', 1) => Some(Dtype::U8),
            ('u', 2) => Some(Dtype::U16),
            ('u', 4) => Some(Dtype::U32),
            ('u', 8) => Some(Dtype::U64),
            ('i', 1) => Some(Dtype::I8),
            ('i', 2) => Some(Dtype::I16),
            ('i', 4) => Some(Dtype::I32),
            ('i', 8) => Some(Dtype::I64),
            ('f', 2) => Some(Dtype::F16),
            ('f', 4) => Some(Dtype::F32),
            ('f', 8) => Some(Dtype::F64),
            ('c', 8) => Some(Dtype::C64),
            ('c', 16) => Some(Dtype::C128),
            // Fixed-width text (UTF-32) and bytes; a width past the archive's is refused below.
            ('U', n) if n > 0 && n % 4 == 0 => {
                Some(format!("STR{}", n / 4)).and_then(|s| s.parse::<Dtype>().ok())
            }
            ('S', n) if n > 0 => Some(format!("BYTES{n}")).and_then(|s| s.parse::<Dtype>().ok()),
            _ => None,
        }
    };
    if let Some(d) = d {
        return Ok(d);
    }
    let name = name()?;
    Err(if kind == 'M' || kind == 'm' {
        invalid(
            format!("dtype {name}"),
            "datetime64 and timedelta64 arrays are not stored yet; store them as int64 \
             (`a.view(np.int64)`) and keep the unit in a tag",
        )
    } else if kind == 'O' {
        invalid(
            format!("dtype {name}"),
            "object arrays hold Python objects (they would need pickle, which can run \
             code) and are refused; convert to a numeric dtype",
        )
    } else {
        invalid(
            format!("dtype {name}"),
            "not a tensor dtype the archive stores (bool, u8-u64, i8-i64, f16, f32, f64, \
             c64, c128, fixed-width str and bytes (<U, S), and \
             bfloat16/float8_e4m3fn/float8_e5m2 from ml_dtypes)",
        )
    })
}

/// A numpy array as a tensor node: little-endian and C-contiguous (converted only if it is
/// not already), its memory held as a buffer.
fn tensor(arr: &Bound<'_, PyAny>, bufs: &mut Vec<PyUntypedBuffer>) -> PyResult<Node> {
    let py = arr.py();
    let mut arr = arr.clone();
    let mut dt = arr.getattr(intern!(py, "dtype"))?;
    let dtype = dtype_of(&dt)?;
    if dt.getattr(intern!(py, "byteorder"))?.extract::<String>()? == ">" {
        dt = dt.call_method1(intern!(py, "newbyteorder"), ("<",))?;
        arr = arr.call_method1(intern!(py, "astype"), (&dt,))?;
    }
    let dims: Vec<u64> = arr.getattr(intern!(py, "shape"))?.extract()?;
    let shape = Shape::new(dims);
    // The common case: numpy exports a builtin dtype's C-contiguous memory as it is. Any
    // other layout (strided, transposed, Fortran-ordered) is copied to C order below.
    if let Ok(buf) = PyUntypedBuffer::get(&arr)
        && bytes_of(&buf).is_ok()
    {
        bufs.push(buf);
        return Ok(Node::Tensor {
            dtype,
            shape,
            buf: bufs.len() - 1,
        });
    }
    if !arr
        .getattr(intern!(py, "flags"))?
        .getattr(intern!(py, "c_contiguous"))?
        .extract::<bool>()?
    {
        let kwargs = PyDict::new(py);
        kwargs.set_item("order", "C")?;
        arr = arr.call_method(intern!(py, "copy"), (), Some(&kwargs))?;
    }
    // Viewed as flat bytes: numpy cannot export a buffer of ml_dtypes' types. Both steps are
    // views, not copies.
    static UINT8: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let flat = arr
        .call_method1(intern!(py, "reshape"), (-1,))?
        .call_method1(intern!(py, "view"), (numpy_attr(py, &UINT8, "uint8")?,))?;
    let buf = PyUntypedBuffer::get(&flat)?;
    if let Err(e) = bytes_of(&buf) {
        return Err(invalid(
            "array",
            format!("its memory is unreadable after conversion to C order: {e}"),
        ));
    }
    bufs.push(buf);
    Ok(Node::Tensor {
        dtype,
        shape,
        buf: bufs.len() - 1,
    })
}

/// The numpy dtype for an archive dtype, made once per dtype; bfloat16 and float8 need
/// ml_dtypes.
fn numpy_dtype<'py>(
    py: Python<'py>,
    dtype: Dtype,
    hash: &ObjectHash,
) -> PyResult<Bound<'py, PyAny>> {
    static DTYPES: [PyOnceLock<Py<PyAny>>; 17] = [const { PyOnceLock::new() }; 17];
    if let Dtype::Str(_) | Dtype::Bytes(_) = dtype {
        // One per width: made each time (`<U7`, `|S7`).
        let descr = archive::interop::npy::descr(dtype).unwrap_or_default();
        return numpy(py)?.getattr("dtype")?.call1((descr.as_ref(),));
    }
    let (slot, module, name) = match dtype {
        Dtype::Bool => (0, "numpy", "bool_"),
        Dtype::U8 => (1, "numpy", "uint8"),
        Dtype::U16 => (2, "numpy", "<u2"),
        Dtype::U32 => (3, "numpy", "<u4"),
        Dtype::U64 => (4, "numpy", "<u8"),
        Dtype::I8 => (5, "numpy", "int8"),
        Dtype::I16 => (6, "numpy", "<i2"),
        Dtype::I32 => (7, "numpy", "<i4"),
        Dtype::I64 => (8, "numpy", "<i8"),
        Dtype::F16 => (9, "numpy", "<f2"),
        Dtype::F32 => (10, "numpy", "<f4"),
        Dtype::F64 => (11, "numpy", "<f8"),
        Dtype::C64 => (12, "numpy", "<c8"),
        Dtype::C128 => (13, "numpy", "<c16"),
        Dtype::BF16 => (14, "ml_dtypes", "bfloat16"),
        Dtype::F8E4M3 => (15, "ml_dtypes", "float8_e4m3fn"),
        Dtype::F8E5M2 => (16, "ml_dtypes", "float8_e5m2"),
        _ => {
            return Err(invalid(
                hash,
                format!("dtype {dtype} has no numpy equivalent yet"),
            ));
        }
    };
    let Some(cell) = DTYPES.get(slot) else {
        return Err(invalid(hash, format!("dtype {dtype}: no cache slot")));
    };
    let make = || -> PyResult<Py<PyAny>> {
        let np_dtype = numpy(py)?.getattr("dtype")?;
        let made = if module == "ml_dtypes" {
            // A failed import is not cached: installing ml_dtypes later works.
            let ml = py.import("ml_dtypes").map_err(|_| {
                PyImportError::new_err(format!(
                    "{hash}: is a {dtype} tensor, which numpy has no dtype for; install \
                     ml_dtypes (`pip install ml_dtypes`) to read it as an ml_dtypes.{name} array"
                ))
            })?;
            np_dtype.call1((ml.getattr(name)?,))?
        } else {
            np_dtype.call1((name,))?
        };
        Ok(made.unbind())
    };
    cell.get_or_try_init(py, make).map(|d| d.bind(py).clone())
}

/// A tensor's bytes as a read-only numpy array of its dtype and shape, sharing `mapped`'s
/// memory (the memory map itself when stored raw).
pub fn ndarray<'py>(py: Python<'py>, mapped: archive::MappedObject) -> PyResult<Bound<'py, PyAny>> {
    let info = mapped.info();
    let (Some(dtype), Some(shape)) = (info.dtype, info.shape.as_ref()) else {
        return Err(invalid(info.hash, "is not a tensor"));
    };
    let dt = numpy_dtype(py, dtype, &info.hash)?;
    let dims = PyTuple::new(py, shape.dims())?;
    let owner = Bound::new(py, Mapped::new(mapped))?;
    // One call, `np.ndarray(shape, dtype, buffer)`, read-only because the buffer is. numpy
    // first asks for a writable buffer; a memoryview refuses with a C-level error that numpy
    // clears at no cost, where a refusal from `Mapped` itself is a full Python exception
    // (~0.7 us of a ~4 us small get). numpy keeps the memoryview's exporter, `owner`, as
    // the array's `base`.
    let owner = PyMemoryView::from(owner.as_any())?;
    numpy_attr(py, &NDARRAY, "ndarray")?.call1((dims, dt, owner))
}

/// An owned tensor as a writable numpy array of its dtype and shape (its bytes are copied once,
/// into a `bytearray` the array keeps as its base). `what` names it in a dtype error.
pub fn owned_ndarray<'py>(
    py: Python<'py>,
    tensor: archive::Tensor,
    what: &ObjectHash,
) -> PyResult<Bound<'py, PyAny>> {
    let dt = numpy_dtype(py, tensor.dtype, what)?;
    let dims = PyTuple::new(py, tensor.shape.dims())?;
    // Handed over, not copied: the array is a writable view of the tensor's own bytes.
    let buffer = Bound::new(py, crate::buffer::OwnedBytes::new(tensor.data))?;
    numpy_attr(py, &NDARRAY, "ndarray")?.call1((dims, dt, buffer))
}

/// Get an object as Python: a tensor as a numpy array (zero-copy when stored raw), text as
/// `str`, bytes as `bytes`, a record as a dict (its tensors as arrays), a categorical as
/// `{"codes": array, "labels": [...]}`. Without `verify`, bytes are not re-hashed (O(1) for a
/// raw tensor); records are decoded, and so checked, either way.
pub fn get(
    py: Python<'_>,
    archive: &Archive,
    hash: ObjectHash,
    verify: bool,
) -> PyResult<Py<PyAny>> {
    // One lookup: `map` gives the kind with the bytes, so tensors, text and bytes need no
    // other; only records are decoded again by `get`.
    let mapped = py
        .detach(|| {
            if verify {
                archive.map(&hash)
            } else {
                archive.map_unchecked(&hash)
            }
        })
        .map_err(to_py)?;
    match mapped.info().kind {
        Kind::Tensor => return Ok(ndarray(py, mapped)?.unbind()),
        Kind::Text => {
            if let Ok(s) = std::str::from_utf8(mapped.bytes()) {
                return Ok(PyString::new(py, s).into_any().unbind());
            }
            // Not UTF-8: `get` reports it as corrupt, naming the file and offset.
        }
        Kind::Bytes => return Ok(PyBytes::new(py, mapped.bytes()).into_any().unbind()),
        _ => {}
    }
    drop(mapped);
    let object = py.detach(|| archive.get(&hash)).map_err(to_py)?;
    Ok(match object {
        Object::Text(s) => PyString::new(py, &s).into_any().unbind(),
        Object::Bytes { data, .. } => PyBytes::new(py, &data).into_any().unbind(),
        Object::Record(r) => record(py, archive, &r, 0, verify)?.unbind(),
        Object::Categorical(c) => {
            let d = PyDict::new(py);
            d.set_item("codes", get(py, archive, c.codes, verify)?)?;
            d.set_item("labels", PyList::new(py, &c.labels)?)?;
            d.into_any().unbind()
        }
        Object::Tensor(t) => {
            return Err(invalid(
                t.dtype,
                "tensor listed as another kind in the index",
            ));
        }
        _ => return Err(invalid(hash, "is of a kind these bindings do not know yet")),
    })
}

fn record<'py>(
    py: Python<'py>,
    archive: &Archive,
    r: &Record,
    depth: usize,
    verify: bool,
) -> PyResult<Bound<'py, PyAny>> {
    if let [(name, value)] = r.fields()
        && name == archive::interop::ROOT_FIELD
    {
        return value_py(py, archive, value, depth, verify);
    }
    let d = PyDict::new(py);
    for (k, v) in r.fields() {
        d.set_item(k, value_py(py, archive, v, depth + 1, verify)?)?;
    }
    Ok(d.into_any())
}

fn value_py<'py>(
    py: Python<'py>,
    archive: &Archive,
    v: &Value,
    depth: usize,
    verify: bool,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::Float(f) => PyFloat::new(py, *f).into_any(),
        Value::Str(s) => PyString::new(py, s).into_any(),
        Value::List(items) => {
            let out = PyList::empty(py);
            for i in items {
                out.append(value_py(py, archive, i, depth + 1, verify)?)?;
            }
            out.into_any()
        }
        Value::Record(r) => record(py, archive, r, depth + 1, verify)?,
        Value::F32(f) => PyFloat::new(py, f64::from(*f)).into_any(),
        Value::BigUint(u) => u.into_pyobject(py)?.into_any(),
        Value::Bytes(b) => PyBytes::new(py, b).into_any(),
        // msgpack's `ExtType(code, data)` is a named tuple of the same two.
        Value::Ext(t, d) => (*t, PyBytes::new(py, d)).into_pyobject(py)?.into_any(),
        Value::Map(pairs) => {
            let out = PyDict::new(py);
            for (k, v) in pairs {
                out.set_item(
                    value_py(py, archive, k, depth + 1, verify)?,
                    value_py(py, archive, v, depth + 1, verify)?,
                )?;
            }
            out.into_any()
        }
        Value::Ref(h) => {
            // The kind first: a reference to text or bytes stays a `Ref`, not decoded.
            let info = py.detach(|| archive.info(h)).map_err(to_py)?;
            if info.kind == Kind::Tensor {
                let mapped = py
                    .detach(|| {
                        if verify {
                            archive.map(h)
                        } else {
                            archive.map_unchecked(h)
                        }
                    })
                    .map_err(to_py)?;
                ndarray(py, mapped)?
            } else {
                Bound::new(py, Ref { hash: *h })?.into_any()
            }
        }
    })
}
