//! Tensors: `Dtype` (named as safetensors and ONNX name them), `Shape`, the borrowed
//! `TensorView` that puts take, and the owned `Tensor` that gets return. Data is always
//! little-endian, C order.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Element types. Names follow safetensors and ONNX (`F32`, `BF16`, `F8_E4M3` …), not numpy's
/// `descr`, which cannot name bf16 or fp8.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dtype {
    /// Boolean, one byte (0 or 1).
    Bool,
    /// Unsigned 8-bit integer.
    U8,
    /// Unsigned 16-bit integer.
    U16,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer.
    U64,
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
    /// IEEE single precision.
    F32,
    /// IEEE double precision.
    F64,
    /// Complex of two F32.
    C64,
    /// Complex of two F64.
    C128,
    /// 8-bit float, 4 exponent bits, 3 mantissa bits (OCP FP8, finite-only).
    F8E4M3,
    /// 8-bit float, 5 exponent bits, 2 mantissa bits (OCP FP8).
    F8E5M2,
}

impl Dtype {
    /// Every dtype, in FORMAT.md's order.
    pub const ALL: [Dtype; 17] = [
        Dtype::Bool,
        Dtype::U8,
        Dtype::U16,
        Dtype::U32,
        Dtype::U64,
        Dtype::I8,
        Dtype::I16,
        Dtype::I32,
        Dtype::I64,
        Dtype::F16,
        Dtype::BF16,
        Dtype::F32,
        Dtype::F64,
        Dtype::C64,
        Dtype::C128,
        Dtype::F8E4M3,
        Dtype::F8E5M2,
    ];

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::Bool | Dtype::U8 | Dtype::I8 | Dtype::F8E4M3 | Dtype::F8E5M2 => 1,
            Dtype::U16 | Dtype::I16 | Dtype::F16 | Dtype::BF16 => 2,
            Dtype::U32 | Dtype::I32 | Dtype::F32 => 4,
            Dtype::U64 | Dtype::I64 | Dtype::F64 | Dtype::C64 => 8,
            Dtype::C128 => 16,
        }
    }

    /// The name written to disk and shown to people (`F32`, `F8_E4M3` …).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Bool => "BOOL",
            Dtype::U8 => "U8",
            Dtype::U16 => "U16",
            Dtype::U32 => "U32",
            Dtype::U64 => "U64",
            Dtype::I8 => "I8",
            Dtype::I16 => "I16",
            Dtype::I32 => "I32",
            Dtype::I64 => "I64",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::F32 => "F32",
            Dtype::F64 => "F64",
            Dtype::C64 => "C64",
            Dtype::C128 => "C128",
            Dtype::F8E4M3 => "F8_E4M3",
            Dtype::F8E5M2 => "F8_E5M2",
        }
    }

    /// True for the integer dtypes (signed or unsigned), the ones categorical codes may use.
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            Dtype::U8
                | Dtype::U16
                | Dtype::U32
                | Dtype::U64
                | Dtype::I8
                | Dtype::I16
                | Dtype::I32
                | Dtype::I64
        )
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dtype {
    type Err = Error;

    /// Accepts the canonical names case-insensitively, plus the common numpy spellings
    /// (`float32`, `int64`, `bool`, `bfloat16`, `float8_e4m3fn` …).
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.to_ascii_lowercase();
        let found = Dtype::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(s))
            .or(match lower.as_str() {
                "bool" => Some(Dtype::Bool),
                "uint8" => Some(Dtype::U8),
                "uint16" => Some(Dtype::U16),
                "uint32" => Some(Dtype::U32),
                "uint64" => Some(Dtype::U64),
                "int8" => Some(Dtype::I8),
                "int16" => Some(Dtype::I16),
                "int32" => Some(Dtype::I32),
                "int64" => Some(Dtype::I64),
                "float16" | "half" => Some(Dtype::F16),
                "bfloat16" => Some(Dtype::BF16),
                "float32" | "float" => Some(Dtype::F32),
                "float64" | "double" => Some(Dtype::F64),
                "complex64" => Some(Dtype::C64),
                "complex128" => Some(Dtype::C128),
                "float8_e4m3fn" | "f8e4m3" => Some(Dtype::F8E4M3),
                "float8_e5m2" | "f8e5m2" => Some(Dtype::F8E5M2),
                _ => None,
            });
        found.ok_or_else(|| {
            Error::invalid(
                s,
                "unknown dtype; expected one of BOOL, U8, U16, U32, U64, I8, I16, I32, I64, \
                 F16, BF16, F32, F64, C64, C128, F8_E4M3, F8_E5M2 (or a numpy name like float32)",
            )
        })
    }
}

/// A tensor shape: the length of each dimension, C order. Rank 0 is a scalar; a zero-length
/// dimension gives an empty tensor.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<u64>);

impl Shape {
    /// A shape from its dimensions.
    pub fn new(dims: impl Into<Vec<u64>>) -> Self {
        Shape(dims.into())
    }

    /// The dimensions.
    pub fn dims(&self) -> &[u64] {
        &self.0
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Number of elements, or `None` if the product overflows `u64`.
    pub fn elements(&self) -> Option<u64> {
        self.0.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
    }

    /// Number of bytes for `dtype`, or `None` on overflow.
    pub fn byte_len(&self, dtype: Dtype) -> Option<u64> {
        self.elements()?.checked_mul(dtype.size() as u64)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

impl FromStr for Shape {
    type Err = Error;

    /// `128,1000` or `[128, 1000]`; an empty string or `[]` is a scalar.
    fn from_str(s: &str) -> Result<Self> {
        let inner = s
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim();
        if inner.is_empty() {
            return Ok(Shape(Vec::new()));
        }
        inner
            .split([',', 'x'])
            .map(|part| {
                part.trim().parse::<u64>().map_err(|_| {
                    Error::invalid(
                        s,
                        format!("bad shape: `{}` is not a dimension", part.trim()),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(Shape)
    }
}

impl From<&[u64]> for Shape {
    fn from(d: &[u64]) -> Self {
        Shape(d.to_vec())
    }
}

impl From<Vec<u64>> for Shape {
    fn from(d: Vec<u64>) -> Self {
        Shape(d)
    }
}

/// A borrowed tensor: dtype, shape and little-endian C-order bytes, checked to agree.
#[derive(Clone, Copy, Debug)]
pub struct TensorView<'a> {
    dtype: Dtype,
    shape: &'a Shape,
    data: &'a [u8],
}

/// Check that `shape` of `dtype` needs exactly `len` bytes; the error names `input`.
pub(crate) fn check_len(input: &str, dtype: Dtype, shape: &Shape, len: usize) -> Result<()> {
    let expected = shape.byte_len(dtype).ok_or_else(|| {
        Error::invalid(input, format!("shape {shape} of {dtype} overflows 64 bits"))
    })?;
    if expected != len as u64 {
        return Err(Error::invalid(
            input,
            format!("shape {shape} of {dtype} needs {expected} bytes, but {len} were given"),
        ));
    }
    Ok(())
}

impl<'a> TensorView<'a> {
    /// A view over `data`; fails if the shape's byte length is not `data.len()`.
    pub fn new(dtype: Dtype, shape: &'a Shape, data: &'a [u8]) -> Result<Self> {
        check_len("tensor", dtype, shape, data.len())?;
        Ok(TensorView { dtype, shape, data })
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// The shape.
    pub fn shape(&self) -> &'a Shape {
        self.shape
    }

    /// The bytes, little-endian, C order.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }
}

/// An owned tensor, as `Archive::get` returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// The element type.
    pub dtype: Dtype,
    /// The shape.
    pub shape: Shape,
    /// The bytes, little-endian, C order.
    pub data: Vec<u8>,
}

impl Tensor {
    /// An owned tensor; fails if the shape's byte length is not `data.len()`.
    pub fn new(dtype: Dtype, shape: Shape, data: Vec<u8>) -> Result<Self> {
        check_len("tensor", dtype, &shape, data.len())?;
        Ok(Tensor { dtype, shape, data })
    }

    /// Borrow as a view.
    pub fn view(&self) -> TensorView<'_> {
        TensorView {
            dtype: self.dtype,
            shape: &self.shape,
            data: &self.data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_names_round_trip() {
        for d in Dtype::ALL {
            assert_eq!(d.name().parse::<Dtype>().ok(), Some(d));
        }
        assert_eq!("float32".parse::<Dtype>().ok(), Some(Dtype::F32));
        assert!("object".parse::<Dtype>().is_err());
    }

    #[test]
    fn shape_parses_and_checks_length() {
        let s: Shape = "128,1000".parse().expect("shape");
        assert_eq!(s.dims(), &[128, 1000]);
        assert_eq!("[]".parse::<Shape>().ok(), Some(Shape::new(vec![])));
        assert!("3,a".parse::<Shape>().is_err());
        let data = vec![0u8; 8];
        let two = Shape::new(vec![2]);
        assert!(TensorView::new(Dtype::F32, &two, &data).is_ok());
        assert!(TensorView::new(Dtype::F64, &two, &data).is_err());
    }

    #[test]
    fn overflowing_shape_is_rejected() {
        let s = Shape::new(vec![u64::MAX, 2]);
        let err = TensorView::new(Dtype::U8, &s, &[])
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|m| m.contains("overflows")));
    }

    #[test]
    fn scalar_and_empty_shapes() {
        let scalar = Shape::new(vec![]);
        assert_eq!(scalar.elements(), Some(1));
        let empty = Shape::new(vec![3, 0]);
        assert_eq!(empty.byte_len(Dtype::F64), Some(0));
    }
}
