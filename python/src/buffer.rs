//! The only unsafe code of the bindings: reading the memory of a Python buffer without a copy,
//! and exporting an object's bytes (a view into the segment's memory map, or a decoded buffer)
//! to numpy through the buffer protocol, read-only.

use std::ffi::{c_int, c_void};
use std::ptr;

use archive::MappedObject;
use pyo3::buffer::PyUntypedBuffer;
use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;

/// The bytes of a C-contiguous buffer, borrowed for as long as the buffer is held.
///
/// The caller must have checked `buf.is_c_contiguous()`.
pub fn bytes_of(buf: &PyUntypedBuffer) -> &[u8] {
    let len = buf.len_bytes();
    if len == 0 {
        return &[];
    }
    // SAFETY: a held buffer keeps its exporter's memory alive and unresized (numpy refuses to
    // resize an array with exported buffers) until it is released, which needs `buf`, so the
    // slice cannot outlive it. The memory is C-contiguous, `len` bytes from `buf_ptr`. As with
    // every extension that releases the GIL over a buffer, another Python thread writing to
    // the same array meanwhile is the caller's data race: the archive then stores whatever
    // bytes it read (the hash is computed over the same bytes that are stored).
    unsafe { std::slice::from_raw_parts(buf.buf_ptr().cast::<u8>().cast_const(), len) }
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
        if view.is_null() {
            return Err(PyBufferError::new_err("the buffer view is null"));
        }
        if (flags & ffi::PyBUF_WRITABLE) == ffi::PyBUF_WRITABLE {
            return Err(PyBufferError::new_err(
                "archived objects are read-only; copy the array to change it",
            ));
        }
        let data = slf.get().object.bytes();
        let (buf, len) = (data.as_ptr(), data.len());
        // SAFETY: `view` is non-null and Python's to fill. `buf` points into `slf`'s
        // `MappedObject` (an `Arc` of the map, or an owned vector), which never changes and
        // lives at least as long as `slf`; the view holds a strong reference to `slf` in
        // `obj` until it is released. `shape` and `strides` point into the view itself, as
        // CPython's own `PyBuffer_FillInfo` arranges; `format` is a static C string.
        unsafe {
            (*view).obj = slf.into_any().into_ptr();
            (*view).buf = buf.cast_mut().cast::<c_void>();
            (*view).len = len as isize;
            (*view).readonly = 1;
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

    /// # Safety
    /// Called by Python with a view this object filled; nothing was allocated for it.
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}
}
