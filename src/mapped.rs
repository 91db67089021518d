//! `MappedObject`: an object's bytes as `map` returns them, a view into the segment's memory
//! map when stored raw in a frame of its own (zero-copy), a decoded buffer otherwise.

use std::sync::Arc;

use memmap2::Mmap;

use crate::error::{Error, Result};
use crate::info::ObjectInfo;
use crate::object::tensor::{Dtype, Shape};

/// The bytes of an object from `map`: a view into the segment's memory map when stored raw,
/// a decoded buffer otherwise.
#[derive(Debug)]
pub struct MappedObject {
    pub(crate) info: ObjectInfo,
    pub(crate) data: Data,
}

/// Where the bytes are.
#[derive(Debug)]
pub(crate) enum Data {
    Mapped {
        map: Arc<Mmap>,
        start: usize,
        len: usize,
    },
    Owned(Vec<u8>),
}

impl MappedObject {
    /// What the object is.
    pub fn info(&self) -> &ObjectInfo {
        &self.info
    }

    /// The decoded bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.data {
            // The reader checked that the payload lies inside the map.
            Data::Mapped { map, start, len } => map.get(*start..start + len).unwrap_or(&[]),
            Data::Owned(v) => v,
        }
    }

    /// True when `bytes` points into the memory map (no copy was made).
    pub fn is_zero_copy(&self) -> bool {
        matches!(self.data, Data::Mapped { .. })
    }

    /// The whole mapped segment, when zero-copy (to check where `bytes` lies).
    pub fn mapping(&self) -> Option<&[u8]> {
        match &self.data {
            Data::Mapped { map, .. } => Some(&map[..]),
            Data::Owned(_) => None,
        }
    }

    /// The object as a tensor view, if it is a tensor.
    pub fn tensor(&self) -> Option<(Dtype, &Shape, &[u8])> {
        Some((self.info.dtype?, self.info.shape.as_ref()?, self.bytes()))
    }

    /// The elements as a typed slice (`f32`, `i64` …). Fails if the element size differs from
    /// the dtype's, or if the bytes are not aligned for `T` (mapped payloads are 64-byte
    /// aligned, so this does not happen for them). Little-endian hosts only.
    pub fn as_slice<T: bytemuck::Pod>(&self) -> Result<&[T]> {
        let input = self.info.hash.to_string();
        if cfg!(target_endian = "big") {
            return Err(Error::invalid(
                input,
                "typed views need a little-endian host",
            ));
        }
        let size = self.info.dtype.map(|d| d.size()).unwrap_or(1);
        if size != std::mem::size_of::<T>() {
            return Err(Error::invalid(
                input,
                format!(
                    "elements are {size} bytes, the type asked for is {}",
                    size_of::<T>()
                ),
            ));
        }
        bytemuck::try_cast_slice(self.bytes())
            .map_err(|e| Error::invalid(input, format!("cannot view as a typed slice: {e}")))
    }
}
