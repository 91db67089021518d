//! Tensor columns: a row's tensor as fixed-size lists nested a level per dimension (what
//! pyarrow, polars' `Array` and pandas read as arrays), or as lists where shapes vary.

use std::sync::Arc;

use arrow_array::types::{
    ArrowPrimitiveType, Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, FixedSizeListArray, ListArray, PrimitiveArray,
    StringArray,
};
use arrow_buffer::{BooleanBuffer, Buffer, MutableBuffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field};

use super::Cell;
use crate::object::tensor::{Dtype, string_elements};

/// A tensor in a row: dtype, shape and little-endian bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorCell {
    /// The element type.
    pub dtype: Dtype,
    /// The shape.
    pub shape: Vec<u64>,
    /// The elements, row-major, little-endian.
    pub data: Vec<u8>,
}

/// The Arrow type of a dtype's elements, or why it has none.
pub(super) fn element_type(dtype: Dtype) -> Result<DataType, String> {
    Ok(match dtype {
        Dtype::Bool => DataType::Boolean,
        Dtype::U8 => DataType::UInt8,
        Dtype::U16 => DataType::UInt16,
        Dtype::U32 => DataType::UInt32,
        Dtype::U64 => DataType::UInt64,
        Dtype::I8 => DataType::Int8,
        Dtype::I16 => DataType::Int16,
        Dtype::I32 => DataType::Int32,
        Dtype::I64 => DataType::Int64,
        Dtype::F16 => DataType::Float16,
        Dtype::F32 => DataType::Float32,
        Dtype::F64 => DataType::Float64,
        Dtype::Str(_) => DataType::Utf8,
        Dtype::Bytes(_) => DataType::Binary,
        Dtype::BF16 | Dtype::C64 | Dtype::C128 | Dtype::F8E4M3 | Dtype::F8E5M2 => {
            return Err(format!(
                "{dtype} tensors have no Arrow type: export the field with --field to .npy, \
                 .npz or .safetensors instead"
            ));
        }
    })
}

fn item(dt: DataType) -> Arc<Field> {
    Arc::new(Field::new_list_field(dt, true))
}

/// The column type of tensors of `dtype` and `shape` (of that rank, when `ragged`).
pub(super) fn data_type(dtype: Dtype, shape: &[u64], ragged: bool) -> DataType {
    let mut dt = element_type(dtype).unwrap_or(DataType::Null);
    for d in shape.iter().rev() {
        dt = match ragged {
            true => DataType::List(item(dt)),
            false => DataType::FixedSizeList(item(dt), i32::try_from(*d).unwrap_or(i32::MAX)),
        };
    }
    dt
}

/// The column of `cells` (tensors of `dtype` and rank `shape.len()`, and nulls).
pub(super) fn build(
    dtype: Dtype,
    shape: &[u64],
    ragged: bool,
    cells: &[Cell],
) -> Result<ArrayRef, String> {
    let width = dtype.size();
    let row_elems = usize::try_from(shape.iter().product::<u64>())
        .map_err(|_| format!("shape {shape:?} is too big for a table"))?;
    let mut valid = Vec::with_capacity(cells.len());
    let mut total = 0usize;
    for c in cells {
        match c {
            Cell::Tensor(t) => {
                let n = t.data.len() / width.max(1);
                if t.data.len() != n * width || t.shape.len() != shape.len() {
                    return Err(format!(
                        "a tensor of shape {:?} with {} bytes",
                        t.shape,
                        t.data.len()
                    ));
                }
                valid.push(true);
                total += n;
            }
            _ => {
                valid.push(false);
                total += if ragged { 0 } else { row_elems };
            }
        }
    }
    let mut values = MutableBuffer::new(total * width);
    for c in cells {
        match c {
            Cell::Tensor(t) => values.extend_from_slice(&t.data),
            _ if !ragged => values.extend_zeros(row_elems * width),
            _ => {}
        }
    }
    let nulls = valid.iter().any(|v| !v).then(|| NullBuffer::from(valid));
    if shape.is_empty() {
        return values_array(dtype, values.into(), total, nulls);
    }
    let mut array = values_array(dtype, values.into(), total, None)?;
    if ragged {
        let offsets = level_offsets(shape.len(), cells)?;
        for (level, offs) in offsets.into_iter().enumerate().rev() {
            let n = if level == 0 { nulls.clone() } else { None };
            let dt = array.data_type().clone();
            array = Arc::new(
                ListArray::try_new(item(dt), OffsetBuffer::new(offs.into()), array, n)
                    .map_err(|e| e.to_string())?,
            );
        }
        return Ok(array);
    }
    for (level, d) in shape.iter().enumerate().rev() {
        let size = i32::try_from(*d).map_err(|_| format!("dimension {d} is too big"))?;
        let n = if level == 0 { nulls.clone() } else { None };
        let dt = array.data_type().clone();
        array = Arc::new(
            FixedSizeListArray::try_new(item(dt), size, array, n).map_err(|e| e.to_string())?,
        );
    }
    Ok(array)
}

/// The list offsets of each level of ragged tensors: level `j` has a list per index of the
/// first `j` dimensions of every row, each as long as dimension `j`.
fn level_offsets(rank: usize, cells: &[Cell]) -> Result<Vec<Vec<i32>>, String> {
    let mut out = vec![vec![0i32]; rank];
    for c in cells {
        let shape: &[u64] = match c {
            Cell::Tensor(t) => &t.shape,
            _ => &[],
        };
        // A row is one list at level 0 (of no items when null).
        let mut lists = 1u64;
        for (level, offs) in out.iter_mut().enumerate() {
            let len = shape.get(level).copied().unwrap_or(0);
            if lists > i32::MAX as u64 {
                return Err("over 2^31 lists of ragged tensors in one batch".into());
            }
            for _ in 0..lists {
                let last = offs.last().copied().unwrap_or(0);
                let next = i64::from(last) + i64::try_from(len).unwrap_or(i64::MAX);
                offs.push(i32::try_from(next).map_err(|_| {
                    "over 2^31 elements of ragged tensors in one batch".to_string()
                })?);
            }
            lists = lists.saturating_mul(len);
        }
    }
    Ok(out)
}

fn values_array(
    dtype: Dtype,
    bytes: Buffer,
    len: usize,
    nulls: Option<NullBuffer>,
) -> Result<ArrayRef, String> {
    fn prim<T: ArrowPrimitiveType>(b: Buffer, len: usize, n: Option<NullBuffer>) -> ArrayRef {
        Arc::new(PrimitiveArray::<T>::new(ScalarBuffer::new(b, 0, len), n))
    }
    Ok(match dtype {
        Dtype::Bool => {
            let bits: BooleanBuffer = bytes.iter().map(|b| *b != 0).collect();
            Arc::new(BooleanArray::new(bits, nulls))
        }
        Dtype::U8 => prim::<UInt8Type>(bytes, len, nulls),
        Dtype::U16 => prim::<UInt16Type>(bytes, len, nulls),
        Dtype::U32 => prim::<UInt32Type>(bytes, len, nulls),
        Dtype::U64 => prim::<UInt64Type>(bytes, len, nulls),
        Dtype::I8 => prim::<Int8Type>(bytes, len, nulls),
        Dtype::I16 => prim::<Int16Type>(bytes, len, nulls),
        Dtype::I32 => prim::<Int32Type>(bytes, len, nulls),
        Dtype::I64 => prim::<Int64Type>(bytes, len, nulls),
        Dtype::F16 => prim::<Float16Type>(bytes, len, nulls),
        Dtype::F32 => prim::<Float32Type>(bytes, len, nulls),
        Dtype::F64 => prim::<Float64Type>(bytes, len, nulls),
        // Strings as numpy gives them, the padding removed.
        Dtype::Str(_) => {
            let elems = string_elements(dtype, &bytes);
            let all = StringArray::from_iter_values(
                elems
                    .iter()
                    .map(|e| std::str::from_utf8(e).unwrap_or_default()),
            );
            Arc::new(StringArray::new(
                all.offsets().clone(),
                all.values().clone(),
                nulls,
            ))
        }
        Dtype::Bytes(_) => {
            let elems = string_elements(dtype, &bytes);
            let all = BinaryArray::from_iter_values(elems.iter().map(|e| e.as_ref()));
            Arc::new(BinaryArray::new(
                all.offsets().clone(),
                all.values().clone(),
                nulls,
            ))
        }
        other => return Err(element_type(other).err().unwrap_or_default()),
    })
}

/// A column of fixed-size lists as lists, at every level.
pub(super) fn to_ragged(array: &ArrayRef) -> Result<ArrayRef, String> {
    let Some(f) = array.as_any().downcast_ref::<FixedSizeListArray>() else {
        return Ok(Arc::clone(array));
    };
    let size = usize::try_from(f.value_length()).map_err(|e| e.to_string())?;
    let offsets = OffsetBuffer::<i32>::from_lengths(std::iter::repeat_n(size, f.len()));
    let values = to_ragged(f.values())?;
    let dt = values.data_type().clone();
    let list = ListArray::try_new(item(dt), offsets, values, f.nulls().cloned());
    Ok(Arc::new(list.map_err(|e| e.to_string())?))
}
