//! A table's cells, the column types they make, and Arrow arrays built of them.

use std::borrow::Cow;
use std::sync::Arc;

use arrow_array::types::Float64Type;
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Float64Array, Int64Array, StringArray,
    TimestampNanosecondArray, builder::StringBuilder, new_null_array,
};
use arrow_schema::{DataType, TimeUnit};

use super::tensor::{self, TensorCell};
use crate::object::tensor::Dtype;

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// No value.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A content address: in a column of strings, its 64 hex digits (written there without
    /// a string of its own for each row).
    Hash(crate::hash::ObjectHash),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A time, nanoseconds since the Unix epoch (UTC).
    Time(i64),
    /// A tensor.
    Tensor(TensorCell),
}

/// What a column holds.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ColKind {
    /// Nothing yet: every row so far is null.
    Null,
    Bool,
    Int,
    Float,
    Str,
    Bytes,
    Time,
    /// Tensors of one dtype and rank; `ragged` once their shapes differ (`shape` is then the
    /// first row's).
    Tensor {
        dtype: Dtype,
        shape: Vec<u64>,
        ragged: bool,
    },
}

impl ColKind {
    /// The Arrow type of the column.
    pub(super) fn data_type(&self) -> DataType {
        match self {
            ColKind::Null => DataType::Null,
            ColKind::Bool => DataType::Boolean,
            ColKind::Int => DataType::Int64,
            ColKind::Float => DataType::Float64,
            ColKind::Str => DataType::Utf8,
            ColKind::Bytes => DataType::Binary,
            ColKind::Time => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            ColKind::Tensor {
                dtype,
                shape,
                ragged,
            } => tensor::data_type(*dtype, shape, *ragged),
        }
    }

    /// An array of `rows` nulls of this column's type.
    pub(super) fn nulls(&self, rows: usize) -> ArrayRef {
        new_null_array(&self.data_type(), rows)
    }
}

impl Cell {
    fn kind(&self) -> Result<ColKind, String> {
        Ok(match self {
            Cell::Null => ColKind::Null,
            Cell::Bool(_) => ColKind::Bool,
            Cell::Int(_) => ColKind::Int,
            Cell::Float(_) => ColKind::Float,
            Cell::Str(_) | Cell::Hash(_) => ColKind::Str,
            Cell::Bytes(_) => ColKind::Bytes,
            Cell::Time(_) => ColKind::Time,
            Cell::Tensor(t) => {
                tensor::element_type(t.dtype)?;
                ColKind::Tensor {
                    dtype: t.dtype,
                    shape: t.shape.clone(),
                    ragged: false,
                }
            }
        })
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Cell::Null => "null".into(),
            Cell::Bool(_) => "a boolean".into(),
            Cell::Int(_) => "an integer".into(),
            Cell::Float(_) => "a float".into(),
            Cell::Str(_) | Cell::Hash(_) => "a string".into(),
            Cell::Bytes(_) => "bytes".into(),
            Cell::Time(_) => "a time".into(),
            Cell::Tensor(t) => format!("a {} tensor of shape {:?}", t.dtype, t.shape),
        }
    }

    /// The text a query compares for a scalar.
    fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Cell::Bool(b) => Some(Cow::Owned(b.to_string())),
            Cell::Int(i) => Some(Cow::Owned(i.to_string())),
            Cell::Float(f) => Some(Cow::Owned(f.to_string())),
            Cell::Str(s) => Some(Cow::Borrowed(s)),
            Cell::Hash(h) => Some(Cow::Owned(h.to_string())),
            _ => None,
        }
    }
}

/// The kind of a column of `kind` once it also holds `cell`, or why it cannot.
pub(super) fn widen(kind: &ColKind, cell: &Cell) -> Result<ColKind, String> {
    if fits(kind, cell) {
        return Ok(kind.clone());
    }
    widen_kinds(kind, &cell.kind()?, &|| cell.describe())
}

/// True if a column of `kind` takes `cell` as it is (the common case, checked without
/// allocating).
pub(super) fn fits(kind: &ColKind, cell: &Cell) -> bool {
    use ColKind as K;
    match (kind, cell) {
        (_, Cell::Null)
        | (K::Bool, Cell::Bool(_))
        | (K::Int, Cell::Int(_))
        | (K::Float, Cell::Float(_) | Cell::Int(_))
        | (K::Str, Cell::Str(_) | Cell::Hash(_))
        | (K::Bytes, Cell::Bytes(_))
        | (K::Time, Cell::Time(_)) => true,
        (
            K::Tensor {
                dtype,
                shape,
                ragged,
            },
            Cell::Tensor(t),
        ) => t.dtype == *dtype && (t.shape == *shape || (*ragged && t.shape.len() == shape.len())),
        _ => false,
    }
}

/// The kind of a column of `kind` once it also holds values of kind `new` (`describe`d as
/// errors name them), or why it cannot.
pub(super) fn widen_kinds(
    kind: &ColKind,
    new: &ColKind,
    describe: &dyn Fn() -> String,
) -> Result<ColKind, String> {
    use ColKind as K;
    Ok(match (kind, new) {
        (_, K::Null) => kind.clone(),
        (K::Null, _) => new.clone(),
        (
            K::Tensor {
                dtype,
                shape,
                ragged,
            },
            K::Tensor {
                dtype: d,
                shape: s,
                ragged: r,
            },
        ) => {
            if d != dtype || s.len() != shape.len() {
                return Err(format!(
                    "is {}, but earlier rows hold {dtype} tensors of rank {}: a column's \
                     tensors need one dtype and rank",
                    describe(),
                    shape.len()
                ));
            }
            K::Tensor {
                dtype: *dtype,
                shape: shape.clone(),
                ragged: *ragged || *r || s != shape,
            }
        }
        (K::Tensor { dtype, .. }, _) | (_, K::Tensor { dtype, .. }) => {
            let earlier = match kind {
                K::Tensor { .. } => format!("{dtype} tensors"),
                _ => "no tensors".into(),
            };
            return Err(format!(
                "is {}, but earlier rows hold {earlier}: a tensor column holds only tensors",
                describe()
            ));
        }
        (a, b) if a == b => new.clone(),
        (K::Bytes, _) | (_, K::Bytes) | (K::Time, _) | (_, K::Time) => {
            return Err(format!(
                "is {}, which cannot share a column with the earlier rows' values",
                describe()
            ));
        }
        (K::Int, K::Float) | (K::Float, K::Int) => K::Float,
        _ => K::Str,
    })
}

/// `array`, built as a column of `from`, as a column of `to` (a kind `widen` gave).
pub(super) fn convert(array: &ArrayRef, from: &ColKind, to: &ColKind) -> Result<ArrayRef, String> {
    let any = array.as_any();
    Ok(match (from, to) {
        (ColKind::Int, ColKind::Float) => match any.downcast_ref::<Int64Array>() {
            Some(a) => Arc::new(a.unary::<_, Float64Type>(|v| v as f64)),
            None => return Err("an integer column is not Int64".into()),
        },
        (_, ColKind::Str) => {
            let text: StringArray = if let Some(a) = any.downcast_ref::<Int64Array>() {
                a.iter().map(|v| v.map(|v| v.to_string())).collect()
            } else if let Some(a) = any.downcast_ref::<Float64Array>() {
                a.iter().map(|v| v.map(|v| v.to_string())).collect()
            } else if let Some(a) = any.downcast_ref::<BooleanArray>() {
                a.iter().map(|v| v.map(|v| v.to_string())).collect()
            } else {
                return Err(format!("cannot turn {} into text", array.data_type()));
            };
            Arc::new(text)
        }
        (ColKind::Tensor { .. }, ColKind::Tensor { .. }) => tensor::to_ragged(array)?,
        _ => return Err(format!("cannot turn {from:?} into {to:?}")),
    })
}

/// The most bytes of strings or binary in one batch (Arrow's 32-bit offsets).
const MAX_BATCH_BYTES: usize = i32::MAX as usize;

/// The column of `kind` holding `cells` (`rows` of them).
pub(super) fn build(kind: &ColKind, cells: Vec<Cell>, rows: usize) -> Result<ArrayRef, String> {
    if cells.len() != rows {
        return Err(format!("{} cells in a batch of {rows} rows", cells.len()));
    }
    Ok(match kind {
        ColKind::Null => new_null_array(&DataType::Null, rows),
        ColKind::Bool => Arc::new(
            cells
                .iter()
                .map(|c| match c {
                    Cell::Bool(b) => Some(*b),
                    _ => None,
                })
                .collect::<BooleanArray>(),
        ),
        ColKind::Int => Arc::new(
            cells
                .iter()
                .map(|c| match c {
                    Cell::Int(i) => Some(*i),
                    _ => None,
                })
                .collect::<Int64Array>(),
        ),
        ColKind::Float => Arc::new(
            cells
                .iter()
                .map(|c| match c {
                    Cell::Float(f) => Some(*f),
                    Cell::Int(i) => Some(*i as f64),
                    _ => None,
                })
                .collect::<Float64Array>(),
        ),
        ColKind::Str => text_column(&cells)?,
        ColKind::Bytes => bytes_column(&cells)?,
        ColKind::Time => Arc::new(
            cells
                .iter()
                .map(|c| match c {
                    Cell::Time(t) => Some(*t),
                    _ => None,
                })
                .collect::<TimestampNanosecondArray>()
                .with_timezone("UTC"),
        ),
        ColKind::Tensor {
            dtype,
            shape,
            ragged,
        } => tensor::build(*dtype, shape, *ragged, &cells)?,
    })
}

/// Why `n` bytes of strings or binary do not fit one batch's column, if they do not.
fn bytes_over(n: usize) -> Result<(), String> {
    match n > MAX_BATCH_BYTES {
        true => Err(format!(
            "{n} bytes in one batch of rows: over the 2 GiB an Arrow column of strings or bytes \
             holds per batch"
        )),
        false => Ok(()),
    }
}

fn text_column(cells: &[Cell]) -> Result<ArrayRef, String> {
    let len = |c: &Cell| match c {
        Cell::Hash(_) => 64,
        c => c.text().map_or(0, |t| t.len()),
    };
    let total = cells.iter().map(len).sum();
    bytes_over(total)?;
    let mut b = StringBuilder::with_capacity(cells.len(), total);
    for c in cells {
        match c {
            Cell::Str(s) => b.append_value(s),
            Cell::Hash(h) => b.append_value(blake3::Hash::from_bytes(h.0).to_hex().as_str()),
            c => b.append_option(c.text()),
        }
    }
    Ok(Arc::new(b.finish()))
}

fn bytes_column(cells: &[Cell]) -> Result<ArrayRef, String> {
    fn bytes(c: &Cell) -> Option<&[u8]> {
        match c {
            Cell::Bytes(b) => Some(b),
            _ => None,
        }
    }
    bytes_over(cells.iter().filter_map(bytes).map(<[u8]>::len).sum())?;
    Ok(Arc::new(cells.iter().map(bytes).collect::<BinaryArray>()))
}
