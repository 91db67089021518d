//! Tensors: `Dtype` (named as safetensors and ONNX name them), `Shape`, the borrowed
//! `TensorView` that puts take, and the owned `Tensor` that gets return. Data is always
//! little-endian, C order.

use std::borrow::Cow;
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
    /// Fixed-width text, numpy's `<U<n>`: `n` code points per element, each a UTF-32LE
    /// scalar value, zero-padded. Named `STR<n>`.
    Str(u32),
    /// Fixed-width bytes, numpy's `|S<n>`: `n` bytes per element, zero-padded. Named
    /// `BYTES<n>`.
    Bytes(u32),
}

/// Widest string element accepted (code points or bytes), so that element sizes stay small
/// numbers whatever a file says.
pub const MAX_STRING_WIDTH: u32 = 1 << 24;

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
            Dtype::Str(n) => 4 * n as usize,
            Dtype::Bytes(n) => n as usize,
        }
    }

    /// The size of the units an element is made of, which byte order and byte shuffling work
    /// on: a complex number's component, a code point of text, a byte of bytes.
    pub fn unit(self) -> usize {
        match self {
            Dtype::C64 | Dtype::C128 => self.size() / 2,
            Dtype::Str(_) => 4,
            Dtype::Bytes(_) => 1,
            d => d.size(),
        }
    }

    /// The element width byte shuffling groups by: the element's size, except a code point
    /// of text (4) and a byte of bytes (1). Stored payloads depend on it: never change a
    /// dtype's.
    pub fn shuffle_width(self) -> usize {
        match self {
            Dtype::Str(_) => 4,
            Dtype::Bytes(_) => 1,
            d => d.size(),
        }
    }

    /// True for the string dtypes (`STR<n>`, `BYTES<n>`), which hold no numbers.
    pub fn is_string(self) -> bool {
        matches!(self, Dtype::Str(_) | Dtype::Bytes(_))
    }

    /// The name written to disk and shown to people (`F32`, `F8_E4M3`, `STR7` …).
    pub fn name(self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Dtype::Str(n) => return Cow::Owned(format!("STR{n}")),
            Dtype::Bytes(n) => return Cow::Owned(format!("BYTES{n}")),
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
        })
    }

    /// A string dtype from its name: `STR7`, `BYTES7` (any case), or numpy's `<U7`, `|S7`,
    /// `S7`. A width of 0 or past [`MAX_STRING_WIDTH`] is refused.
    fn parse_string(s: &str) -> Option<Result<Dtype>> {
        let prefix = |p: &str| {
            s.get(..p.len())
                .filter(|head| head.eq_ignore_ascii_case(p))
                .and_then(|_| s.get(p.len()..))
        };
        let (make, digits): (fn(u32) -> Dtype, &str) = if let Some(d) = prefix("STR") {
            (Dtype::Str, d)
        } else if let Some(d) = prefix("BYTES") {
            (Dtype::Bytes, d)
        } else if let Some(d) = s.strip_prefix("<U") {
            (Dtype::Str, d)
        } else if let Some(d) = s.strip_prefix("|S").or_else(|| s.strip_prefix('S')) {
            (Dtype::Bytes, d)
        } else {
            return None;
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(match digits.parse::<u32>() {
            Ok(n) if (1..=MAX_STRING_WIDTH).contains(&n) => Ok(make(n)),
            _ => Err(Error::invalid(
                s,
                format!("string width {digits} is not between 1 and {MAX_STRING_WIDTH}"),
            )),
        })
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
        f.write_str(&self.name())
    }
}

impl FromStr for Dtype {
    type Err = Error;

    /// Accepts the canonical names case-insensitively, plus the common numpy spellings
    /// (`float32`, `int64`, `bool`, `bfloat16`, `float8_e4m3fn` …).
    fn from_str(s: &str) -> Result<Self> {
        // Canonical names first, exactly, then in any case, without allocating: every packed
        // tensor read parses one.
        let exact = match s {
            "F32" => Some(Dtype::F32),
            "F64" => Some(Dtype::F64),
            "F16" => Some(Dtype::F16),
            "I64" => Some(Dtype::I64),
            "I32" => Some(Dtype::I32),
            "U8" => Some(Dtype::U8),
            _ => None,
        };
        if let Some(d) = exact.or_else(|| {
            Dtype::ALL
                .into_iter()
                .find(|d| d.name().eq_ignore_ascii_case(s))
        }) {
            return Ok(d);
        }
        if let Some(d) = Dtype::parse_string(s) {
            return d;
        }
        let lower = s.to_ascii_lowercase();
        let found = match lower.as_str() {
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
        };
        found.ok_or_else(|| {
            Error::invalid(
                s,
                "unknown dtype; expected one of BOOL, U8, U16, U32, U64, I8, I16, I32, I64, \
                 F16, BF16, F32, F64, C64, C128, F8_E4M3, F8_E5M2, STR<n>, BYTES<n> (or a numpy \
                 name like float32 or <U7)",
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

/// A UTF-32LE code unit (4 bytes; anything else is no code point).
fn code_unit(c: &[u8]) -> u32 {
    <[u8; 4]>::try_from(c).map_or(u32::MAX, u32::from_le_bytes)
}

/// Check that text elements hold Unicode scalar values (UTF-32LE code points, no
/// surrogates), as bytes of text must be UTF-8: a `STR<n>` tensor always reads back as text.
pub(crate) fn check_text(input: &str, dtype: Dtype, data: &[u8]) -> Result<()> {
    let Dtype::Str(width) = dtype else {
        return Ok(());
    };
    let bad = data
        .chunks_exact(4)
        .position(|c| char::from_u32(code_unit(c)).is_none());
    match bad {
        None => Ok(()),
        Some(i) => Err(Error::invalid(
            input,
            format!(
                "element {} of {dtype} holds 0x{:x}, which is not a Unicode code point",
                i / width as usize,
                data.get(i * 4..i * 4 + 4).map_or(0, code_unit)
            ),
        )),
    }
}

/// The elements of a string tensor as numpy gives them, trailing zero padding removed: text
/// as UTF-8, bytes as they are. Empty for other dtypes.
pub fn string_elements(dtype: Dtype, data: &[u8]) -> Vec<Cow<'_, [u8]>> {
    match dtype {
        Dtype::Str(n) => data
            .chunks_exact(4 * n as usize)
            .map(|e| {
                let text: String = e
                    .chunks_exact(4)
                    .map(|c| char::from_u32(code_unit(c)).unwrap_or(char::REPLACEMENT_CHARACTER))
                    .collect();
                Cow::Owned(text.trim_end_matches('\0').as_bytes().to_vec())
            })
            .collect(),
        Dtype::Bytes(n) => data
            .chunks_exact(n as usize)
            .map(|e| {
                let end = e.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
                Cow::Borrowed(e.get(..end).unwrap_or_default())
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Byte strings as a `BYTES<n>` tensor's elements, `n` the longest (at least 1), zero-padded
/// as numpy pads them. An element ending in a zero byte is refused: the padding would take
/// it. `input` names the source in errors.
pub fn pack_bytes(input: &str, elems: &[&[u8]]) -> Result<(Dtype, Vec<u8>)> {
    if let Some(i) = elems.iter().position(|e| e.last() == Some(&0)) {
        return Err(Error::invalid(
            input,
            format!(
                "string element {i} ends in a zero byte, which a fixed-width string tensor \
                 (numpy's `S` dtype) cannot keep"
            ),
        ));
    }
    let longest = elems.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
    let width = u32::try_from(longest)
        .ok()
        .filter(|w| *w <= MAX_STRING_WIDTH)
        .ok_or_else(|| {
            Error::invalid(
                input,
                format!("a string element of {longest} bytes is too long"),
            )
        })?;
    let mut out = Vec::with_capacity(elems.len() * longest);
    for e in elems {
        out.extend_from_slice(e);
        out.resize(out.len() + longest - e.len(), 0);
    }
    Ok((Dtype::Bytes(width), out))
}

impl<'a> TensorView<'a> {
    /// A view over `data`; fails if the shape's byte length is not `data.len()`, or if a text
    /// element is not text.
    pub fn new(dtype: Dtype, shape: &'a Shape, data: &'a [u8]) -> Result<Self> {
        check_len("tensor", dtype, shape, data.len())?;
        check_text("tensor", dtype, data)?;
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
        for (s, d) in [
            ("STR7", Dtype::Str(7)),
            ("str7", Dtype::Str(7)),
            ("<U7", Dtype::Str(7)),
            ("BYTES3", Dtype::Bytes(3)),
            ("|S3", Dtype::Bytes(3)),
            ("S3", Dtype::Bytes(3)),
        ] {
            assert_eq!(s.parse::<Dtype>().ok(), Some(d), "{s}");
            assert_eq!(d.name().parse::<Dtype>().ok(), Some(d));
        }
        assert_eq!(Dtype::Str(7).size(), 28);
        for bad in ["STR0", "STR", "BYTES-1", "STR99999999999", "<U", "STRx"] {
            assert!(bad.parse::<Dtype>().is_err(), "{bad}");
        }
        // U8 stays uint8.
        assert_eq!("U8".parse::<Dtype>().ok(), Some(Dtype::U8));
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
