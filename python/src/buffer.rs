//! The only unsafe code of the bindings: reading the memory of a Python buffer without a copy,
//! and exporting an object's bytes (a view into the segment's memory map, or a decoded buffer)
//! to numpy through the buffer protocol, read-only.

// The crate denies `unsafe_code` (python/Cargo.toml); this module is where the bindings touch
// raw buffer memory, and each `unsafe` block below states why it is sound.
#![allow(
    unsafe_code,
    reason = "raw Python buffer memory is read and exported here, and only here"
)]

use std::ffi::{c_int, c_void};
use std::fmt;
use std::ptr;

use archive::MappedObject;
use pyo3::buffer::PyUntypedBuffer;
use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;

/// The most dimensions a buffer may have: CPython's `PyBUF_MAX_NDIM`, numpy's `NPY_MAXDIMS`.
const MAX_NDIM: usize = 64;

/// Why a held buffer's memory cannot be read as one slice of bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// The items are not laid out one after the other in C order: a strided view, a transposed
    /// or Fortran-ordered array, negative or zero strides.
    NotCContiguous,
    /// The exporter describes its memory inconsistently (the reason says how).
    Malformed(String),
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unreadable::NotCContiguous => f.write_str(
                "the buffer is not C-contiguous (a strided view, or a transposed or \
                 Fortran-ordered array); pass np.ascontiguousarray(x)",
            ),
            Unreadable::Malformed(reason) => {
                write!(
                    f,
                    "the buffer's exporter describes its memory inconsistently: {reason}"
                )
            }
        }
    }
}

impl From<Unreadable> for PyErr {
    fn from(e: Unreadable) -> PyErr {
        PyBufferError::new_err(e.to_string())
    }
}

/// The bytes of a buffer, borrowed for as long as the buffer is held, if they are one
/// C-contiguous block that its `len`, shape and item size agree on. Needs no GIL: it reads
/// only the buffer's description (no Python API call), which does not change while the
/// buffer is held.
pub fn bytes_of(buf: &PyUntypedBuffer) -> Result<&[u8], Unreadable> {
    let malformed = |reason: String| Err(Unreadable::Malformed(reason));
    // `shape()` reads `ndim` entries; `PyUntypedBuffer::get` made sure `shape` and `strides`
    // are there (it asks for `PyBUF_FULL_RO` and refuses null ones).
    let ndim = buf.dimensions();
    if ndim > MAX_NDIM {
        return malformed(format!("{ndim} dimensions, more than {MAX_NDIM}"));
    }
    let len = buf.len_bytes();
    // `PyBuffer_IsContiguous` takes `len == product(shape) * itemsize` for granted.
    let expected = buf
        .shape()
        .iter()
        .try_fold(buf.item_size(), |n, &d| n.checked_mul(d));
    if expected != Some(len) {
        return malformed(match expected {
            Some(expected) => format!(
                "len is {len} bytes, but its shape {:?} of {}-byte items makes {expected}",
                buf.shape(),
                buf.item_size()
            ),
            None => format!("its shape {:?} overflows", buf.shape()),
        });
    }
    if len == 0 {
        return Ok(&[]);
    }
    let ptr = buf.buf_ptr().cast::<u8>().cast_const();
    if ptr.is_null() {
        return malformed(format!("a null pointer to {len} bytes"));
    }
    if isize::try_from(len).is_err() || (ptr as usize).checked_add(len).is_none() {
        return malformed(format!("{len} bytes do not fit in the address space"));
    }
    if !c_contiguous(buf) {
        return Err(Unreadable::NotCContiguous);
    }
    // SAFETY: `ptr` is non-null and, as checked above, the buffer is C-contiguous with `len`
    // equal to its shape times its item size: its memory is the `len` bytes from `ptr`, which
    // is `buf`'s exporter's memory (any alignment does for `u8`), no more than `isize::MAX`
    // bytes and not wrapping around the address space. A held buffer keeps that memory alive
    // and unresized (numpy refuses to resize an array with exported buffers, and `bytearray`
    // one with exports) until it is released, which needs `buf`, so the slice, borrowed from
    // `buf`, cannot outlive it. As with every extension that releases the GIL over a buffer,
    // another Python thread writing to the same array meanwhile is the caller's data race:
    // the archive then stores whatever bytes it read (the hash is computed over the same
    // bytes that are stored).
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Whether a non-empty buffer whose `len` is its shape times its item size is C-contiguous:
/// `PyBuffer_IsContiguous(buf, 'C')`, in Rust so that it runs without the GIL. Each
/// dimension of more than one item steps over exactly the items of the dimensions after it;
/// suboffsets (indirect arrays) are never contiguous.
fn c_contiguous(buf: &PyUntypedBuffer) -> bool {
    if buf.suboffsets().is_some() {
        return false;
    }
    let mut step = buf.item_size();
    for (&dim, &stride) in buf.shape().iter().zip(buf.strides()).rev() {
        if dim > 1 && usize::try_from(stride) != Ok(step) {
            return false;
        }
        step = step.saturating_mul(dim);
    }
    true
}

/// An object's bytes, exported read-only through the buffer protocol. A numpy array made from
/// it keeps it (and so the memory map) alive through its `base`, even after the archive is
/// closed.
#[pyclass(frozen, module = "model_archive")]
pub struct Mapped {
    object: MappedObject,
}

impl Mapped {
    pub fn new(object: MappedObject) -> Self {
        Mapped { object }
    }
}

#[pymethods]
impl Mapped {
    /// True when the bytes are the memory map itself (a raw object in a frame of its own, so
    /// over 4 KiB or put with a codec): no copy was made. Packed and compressed objects are
    /// copied or decoded.
    #[getter]
    fn zero_copy(&self) -> bool {
        self.object.is_zero_copy()
    }

    /// The object's hash.
    #[getter]
    fn hash(&self) -> String {
        self.object.info().hash.to_string()
    }

    fn __len__(&self) -> usize {
        self.object.bytes().len()
    }

    fn __repr__(&self) -> String {
        format!(
            "<model_archive.Mapped {} bytes of {}{}>",
            self.object.bytes().len(),
            self.object.info().hash,
            if self.object.is_zero_copy() {
                ", zero-copy"
            } else {
                ""
            }
        )
    }

    /// # Safety
    /// Called by Python with a valid `view` to fill.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if (flags & ffi::PyBUF_WRITABLE) == ffi::PyBUF_WRITABLE {
            return Err(PyBufferError::new_err(
                "archived objects are read-only; copy the array to change it",
            ));
        }
        let data = slf.get().object.bytes();
        let (buf, len) = (data.as_ptr().cast_mut(), data.len());
        // SAFETY: `view` is Python's to fill. `buf` points into `slf`'s
        // `MappedObject` (an `Arc` of the map, or an owned vector), which never changes and
        // lives at least as long as `slf`, and is exported read-only.
        unsafe { fill_view(view, slf.into_any(), buf, len, true, flags) }
    }

    /// # Safety
    /// Called by Python with a view this object filled; nothing was allocated for it.
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}
}

/// Fill `view` with the `len` bytes at `buf`, exported by `owner` as bytes (format `B`, one
/// dimension), read-only or not. A null `view` is refused.
///
/// # Safety
/// `view` must be Python's to fill; `buf` must point to `len` bytes that live at
/// least as long as `owner` and, unless `readonly`, that nothing but the views writes or
/// reads through a Rust reference. The view takes a strong reference to `owner` in `obj`
/// until it is released. `shape` and `strides` point into the view itself, as CPython's own
/// `PyBuffer_FillInfo` arranges; `format` is a static C string.
unsafe fn fill_view(
    view: *mut ffi::Py_buffer,
    owner: Bound<'_, PyAny>,
    buf: *mut u8,
    len: usize,
    readonly: bool,
    flags: c_int,
) -> PyResult<()> {
    if view.is_null() {
        return Err(PyBufferError::new_err("the buffer view is null"));
    }
    // SAFETY: as the caller promises (above), and `view` is not null.
    unsafe {
        (*view).obj = owner.into_ptr();
        (*view).buf = buf.cast::<c_void>();
        (*view).len = len as isize;
        (*view).readonly = c_int::from(readonly);
        (*view).itemsize = 1;
        (*view).format = if (flags & ffi::PyBUF_FORMAT) == ffi::PyBUF_FORMAT {
            c"B".as_ptr().cast_mut()
        } else {
            ptr::null_mut()
        };
        (*view).ndim = 1;
        (*view).shape = if (flags & ffi::PyBUF_ND) == ffi::PyBUF_ND {
            &raw mut (*view).len
        } else {
            ptr::null_mut()
        };
        (*view).strides = if (flags & ffi::PyBUF_STRIDES) == ffi::PyBUF_STRIDES {
            &raw mut (*view).itemsize
        } else {
            ptr::null_mut()
        };
        (*view).suboffsets = ptr::null_mut();
        (*view).internal = ptr::null_mut();
    }
    Ok(())
}

/// Bytes made for Python (a stacked array), owned here and exported *writable* through the
/// buffer protocol: the numpy array made from them is a view that keeps this object alive
/// through its `base`, so a large result is handed over without a copy. Rust never reads or
/// writes the bytes once the object is made; only the views do.
#[pyclass(frozen, module = "model_archive")]
pub struct OwnedBytes {
    ptr: ptr::NonNull<u8>,
    len: usize,
    cap: usize,
}

// SAFETY: the object owns its allocation alone (taken whole from a `Vec`, freed in `drop`), and
// no Rust code touches the bytes after `new`: moving it to, or sharing it with, another thread
// shares only the pointer, as a `bytearray` does. Writes through exported views are Python's,
// into raw memory no Rust reference covers.
unsafe impl Send for OwnedBytes {}
// SAFETY: as above: `&OwnedBytes` gives access to the pointer and lengths only.
unsafe impl Sync for OwnedBytes {}

impl OwnedBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        let mut bytes = std::mem::ManuallyDrop::new(bytes);
        OwnedBytes {
            ptr: ptr::NonNull::from(bytes.as_mut_slice()).cast::<u8>(),
            len: bytes.len(),
            cap: bytes.capacity(),
        }
    }
}

impl Drop for OwnedBytes {
    fn drop(&mut self) {
        // SAFETY: `ptr`, `len` and `cap` are those of the `Vec` taken apart in `new`, which was
        // never dropped; Python drops this object only once no view of it is held (each view
        // holds a strong reference).
        unsafe { drop(Vec::from_raw_parts(self.ptr.as_ptr(), self.len, self.cap)) }
    }
}

#[pymethods]
impl OwnedBytes {
    fn __len__(&self) -> usize {
        self.len
    }

    fn __repr__(&self) -> String {
        format!("<model_archive.OwnedBytes {} bytes>", self.len)
    }

    /// # Safety
    /// Called by Python with a valid `view` to fill.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let (buf, len) = (slf.get().ptr.as_ptr(), slf.get().len);
        // SAFETY: `view` is Python's to fill. `buf` is this object's allocation
        // of `len` bytes, which lives at least as long as the object.
        unsafe { fill_view(view, slf.into_any(), buf, len, false, flags) }
    }

    /// # Safety
    /// Called by Python with a view this object filled; nothing was allocated for it.
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}
}
