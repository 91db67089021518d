//! One ONNX `TensorProto`, protobuf-encoded: the `.pb` files of ONNX test data
//! (`onnx.numpy_helper.from_array(a).SerializeToString()`).
//!
//! The message is declared by hand for `prost` (no `protoc`), with the fields of onnx.proto
//! that say where the data is. Data comes from `raw_data` (little-endian, C order) or from the
//! typed field the element type uses: `float_data` (FLOAT, COMPLEX64 as pairs), `double_data`
//! (DOUBLE, COMPLEX128), `int64_data` (INT64), `uint64_data` (UINT32, UINT64), `int32_data`
//! (the 8- and 16-bit integers, INT32, BOOL, and the bit patterns of FLOAT16, BFLOAT16 and
//! the float8 types). Typed values outside their type's range are refused, not wrapped.
//! `STRING` tensors (`string_data`, bytes per element) are `BYTES<n>` tensors, `n` the longest
//! element, zero-padded as numpy's `S` dtype pads. Sub-byte types and data kept in external
//! files have no tensor form here and are refused. Written with `raw_data`, as `from_array`
//! writes; string tensors with `string_data` (text as UTF-8). A `SequenceProto` of tensors (or an
//! `OptionalProto` of one) is read as its tensors and written back as one.

use std::borrow::Cow;

use prost::Message;

use super::Array;
use crate::error::{Error, Result};
use crate::object::tensor::{Dtype, Shape};

/// The fields of onnx.proto's `TensorProto` this module reads and writes. Unknown fields
/// (`doc_string`, `metadata_props`) are skipped on the way in.
#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    /// Dimensions (`repeated int64 dims = 1`, unpacked in proto2).
    #[prost(int64, repeated, packed = "false", tag = "1")]
    pub dims: Vec<i64>,
    /// Element type, a `TensorProto.DataType` value.
    #[prost(int32, optional, tag = "2")]
    pub data_type: Option<i32>,
    /// Set when the tensor is one piece of a larger one; refused.
    #[prost(message, optional, tag = "3")]
    pub segment: Option<Segment>,
    /// FLOAT and COMPLEX64 values.
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    /// 8-, 16- and 32-bit integers, BOOL, and the bits of FLOAT16, BFLOAT16, FLOAT8*.
    #[prost(int32, repeated, tag = "5")]
    pub int32_data: Vec<i32>,
    /// STRING values, one per element.
    #[prost(bytes = "vec", repeated, tag = "6")]
    pub string_data: Vec<Vec<u8>>,
    /// INT64 values.
    #[prost(int64, repeated, tag = "7")]
    pub int64_data: Vec<i64>,
    /// The tensor's name.
    #[prost(string, optional, tag = "8")]
    pub name: Option<String>,
    /// The elements as little-endian bytes, C order.
    #[prost(bytes = "vec", optional, tag = "9")]
    pub raw_data: Option<Vec<u8>>,
    /// DOUBLE and COMPLEX128 values.
    #[prost(double, repeated, tag = "10")]
    pub double_data: Vec<f64>,
    /// UINT32 and UINT64 values.
    #[prost(uint64, repeated, tag = "11")]
    pub uint64_data: Vec<u64>,
    /// Where the data lives when stored outside the message; refused.
    #[prost(message, repeated, tag = "13")]
    pub external_data: Vec<StringStringEntry>,
    /// `DEFAULT` (0) or `EXTERNAL` (1); external is refused.
    #[prost(int32, optional, tag = "14")]
    pub data_location: Option<i32>,
}

/// `TensorProto.Segment`.
#[derive(Clone, PartialEq, Message)]
pub struct Segment {
    /// First element of the segment.
    #[prost(int64, optional, tag = "1")]
    pub begin: Option<i64>,
    /// One past its last element.
    #[prost(int64, optional, tag = "2")]
    pub end: Option<i64>,
}

/// `StringStringEntryProto`.
#[derive(Clone, PartialEq, Message)]
pub struct StringStringEntry {
    /// Key.
    #[prost(string, optional, tag = "1")]
    pub key: Option<String>,
    /// Value.
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

/// A tensor read from a `TensorProto`, with its name (empty if it had none).
#[derive(Debug)]
pub struct OnnxTensor {
    /// The `name` field.
    pub name: String,
    /// The elements.
    pub array: Array<'static>,
}

/// The `TensorProto.DataType` of a dtype.
pub fn data_type(dtype: Dtype) -> i32 {
    match dtype {
        Dtype::F32 => 1,
        Dtype::U8 => 2,
        Dtype::I8 => 3,
        Dtype::U16 => 4,
        Dtype::I16 => 5,
        Dtype::I32 => 6,
        Dtype::I64 => 7,
        Dtype::Bool => 9,
        Dtype::F16 => 10,
        Dtype::F64 => 11,
        Dtype::U32 => 12,
        Dtype::U64 => 13,
        Dtype::C64 => 14,
        Dtype::C128 => 15,
        Dtype::BF16 => 16,
        Dtype::F8E4M3 => 17,
        Dtype::F8E5M2 => 19,
        Dtype::Str(_) | Dtype::Bytes(_) => 8,
    }
}

/// The dtype of a `TensorProto.DataType`, or why there is none.
fn dtype_of(code: i32) -> std::result::Result<Dtype, String> {
    if let Some(d) = Dtype::ALL.into_iter().find(|d| data_type(*d) == code) {
        return Ok(d);
    }
    let name = match code {
        0 => "UNDEFINED (the data_type field is missing)",
        8 => "STRING",
        18 => "FLOAT8E4M3FNUZ",
        20 => "FLOAT8E5M2FNUZ",
        21 => "UINT4",
        22 => "INT4",
        23 => "FLOAT4E2M1",
        24 => "FLOAT8E8M0",
        25 => "UINT2",
        26 => "INT2",
        _ => "",
    };
    Err(if name.is_empty() {
        format!("data_type {code} is not an ONNX element type")
    } else {
        format!("data_type {code} ({name}) has no archive dtype")
    })
}

/// onnx.proto's `SequenceProto` and `OptionalProto` as far as they share a layout: a name
/// (1), an element type (2) and tensors (3; one for an optional, whose bytes are those of a
/// one-tensor sequence). Their fields 1 and 3 would otherwise pass for a TensorProto's `dims`
/// and `segment`.
#[derive(Clone, PartialEq, Message)]
struct TensorContainer {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(int32, optional, tag = "2")]
    elem_type: Option<i32>,
    #[prost(message, repeated, tag = "3")]
    tensors: Vec<TensorProto>,
}

/// True if `bytes` are a SequenceProto or OptionalProto of tensors, not a TensorProto.
fn is_container(bytes: &[u8]) -> bool {
    TensorContainer::decode(bytes).is_ok_and(|c| {
        c.elem_type == Some(1)
            && !c.tensors.is_empty()
            && c.tensors.iter().all(|t| t.data_type.is_some())
    })
}

/// What an ONNX `.pb` file holds.
#[derive(Debug)]
pub enum OnnxValue {
    /// A `TensorProto`.
    Tensor(OnnxTensor),
    /// A `SequenceProto` of tensors (or an `OptionalProto` holding one, which has the bytes of
    /// a one-tensor sequence): its name and its tensors, whose own names are not kept.
    Sequence {
        /// The sequence's name ("" if none).
        name: String,
        /// Its tensors, in order.
        tensors: Vec<Array<'static>>,
    },
}

/// Read a `TensorProto`, or a `SequenceProto` or `OptionalProto` of tensors. `input` names the
/// file in errors.
pub fn read_value(input: &str, bytes: &[u8]) -> Result<OnnxValue> {
    let decoded = TensorProto::decode(bytes);
    if decoded.as_ref().map_or(true, |t| t.segment.is_some()) && is_container(bytes) {
        let c = TensorContainer::decode(bytes)
            .map_err(|e| Error::invalid(input, format!("not a valid ONNX SequenceProto: {e}")))?;
        let tensors = c
            .tensors
            .into_iter()
            .enumerate()
            .map(|(i, t)| Ok(tensor_of(&format!("{input}[{i}]"), t)?.array))
            .collect::<Result<Vec<_>>>()?;
        let name = c.name.unwrap_or_default();
        return Ok(OnnxValue::Sequence { name, tensors });
    }
    let bad = |why: String| Error::invalid(input, format!("not a valid ONNX TensorProto: {why}"));
    let t = decoded.map_err(|e| bad(e.to_string()))?;
    Ok(OnnxValue::Tensor(tensor_of(input, t)?))
}

/// Read a `TensorProto`'s bytes; a sequence is refused. `input` names the file in errors.
pub fn read(input: &str, bytes: &[u8]) -> Result<OnnxTensor> {
    match read_value(input, bytes)? {
        OnnxValue::Tensor(t) => Ok(t),
        OnnxValue::Sequence { .. } => Err(Error::invalid(
            input,
            "is an ONNX SequenceProto or OptionalProto (tensors in a container), not a \
             TensorProto",
        )),
    }
}

fn tensor_of(input: &str, mut t: TensorProto) -> Result<OnnxTensor> {
    let bad = |why: String| Error::invalid(input, format!("not a valid ONNX TensorProto: {why}"));
    if t.segment.is_some() {
        return Err(bad("is a segment of a larger tensor".into()));
    }
    if t.data_location == Some(1) || !t.external_data.is_empty() {
        return Err(bad(
            "keeps its data in an external file; load it with onnx and save it with \
             `onnx.numpy_helper.from_array`"
                .into(),
        ));
    }
    if t.data_type == Some(8) {
        return strings_of(input, t);
    }
    let dtype = dtype_of(t.data_type.unwrap_or(0)).map_err(bad)?;
    let shape = shape_of(&t).map_err(bad)?;
    let elements = shape
        .elements()
        .ok_or_else(|| bad(format!("shape {shape} of {dtype} overflows 64 bits")))?;
    let typed = typed_count(&t);
    let data = match (t.raw_data.take(), typed) {
        (Some(_), n) if n > 0 => {
            return Err(bad("holds both raw_data and typed *_data values".into()));
        }
        (Some(raw), _) => raw,
        (None, 0) if elements == 0 => Vec::new(),
        (None, 0) => return Err(bad(format!("shape {shape} of {dtype} but no data"))),
        (None, _) => {
            let per = match dtype {
                Dtype::C64 | Dtype::C128 => 2,
                _ => 1,
            };
            let want = elements.saturating_mul(per);
            if typed as u64 != want {
                return Err(bad(format!(
                    "shape {shape} of {dtype} needs {want} typed values, but {typed} were given"
                )));
            }
            typed_bytes(&t, dtype).map_err(bad)?
        }
    };
    let name = t.name.take().unwrap_or_default();
    let array = Array::new(input, dtype, shape, Cow::Owned(data))?;
    Ok(OnnxTensor { name, array })
}

/// A tensor's `dims` as a shape; a negative dimension is refused.
fn shape_of(t: &TensorProto) -> std::result::Result<Shape, String> {
    t.dims
        .iter()
        .map(|&d| u64::try_from(d))
        .collect::<std::result::Result<Vec<u64>, _>>()
        .map(Shape::new)
        .map_err(|_| format!("dims {:?} holds a negative dimension", t.dims))
}

/// A `STRING` tensor: its `string_data` as a `BYTES<n>` tensor.
fn strings_of(input: &str, mut t: TensorProto) -> Result<OnnxTensor> {
    let bad = |why: String| Error::invalid(input, format!("not a valid ONNX TensorProto: {why}"));
    let shape = shape_of(&t).map_err(bad)?;
    if t.raw_data.is_some() || typed_count(&t) != t.string_data.len() {
        return Err(bad(
            "a STRING tensor keeps its elements in string_data only".into(),
        ));
    }
    if shape.elements() != Some(t.string_data.len() as u64) {
        return Err(bad(format!(
            "shape {shape} of STRING needs {} elements, but {} were given",
            shape
                .elements()
                .map_or("too many".into(), |n| n.to_string()),
            t.string_data.len()
        )));
    }
    let elems: Vec<&[u8]> = t.string_data.iter().map(Vec::as_slice).collect();
    let (dtype, data) = crate::object::tensor::pack_bytes(input, &elems)?;
    let name = t.name.take().unwrap_or_default();
    let array = Array::new(input, dtype, shape, Cow::Owned(data))?;
    Ok(OnnxTensor { name, array })
}

fn typed_count(t: &TensorProto) -> usize {
    t.float_data.len()
        + t.int32_data.len()
        + t.string_data.len()
        + t.int64_data.len()
        + t.double_data.len()
        + t.uint64_data.len()
}

/// The typed field's values as little-endian bytes, range-checked for the dtype.
fn typed_bytes(t: &TensorProto, dtype: Dtype) -> std::result::Result<Vec<u8>, String> {
    let wrong =
        |field: &str| format!("{dtype} values must be in the field its type uses, not {field}");
    let only = |field: &str, n: usize| {
        if n == typed_count(t) {
            Ok(())
        } else {
            Err(format!(
                "{dtype} values are split across {field} and other typed fields"
            ))
        }
    };
    let range = |i: usize, v: i64| format!("int32_data[{i}] = {v} is out of range for {dtype}");
    Ok(match dtype {
        Dtype::F32 | Dtype::C64 => {
            only("float_data", t.float_data.len()).map_err(|_| wrong("another field"))?;
            t.float_data.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
        Dtype::F64 | Dtype::C128 => {
            only("double_data", t.double_data.len()).map_err(|_| wrong("another field"))?;
            t.double_data.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
        Dtype::I64 => {
            only("int64_data", t.int64_data.len()).map_err(|_| wrong("another field"))?;
            t.int64_data.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
        Dtype::U64 => {
            only("uint64_data", t.uint64_data.len()).map_err(|_| wrong("another field"))?;
            t.uint64_data.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
        Dtype::U32 => {
            only("uint64_data", t.uint64_data.len()).map_err(|_| wrong("another field"))?;
            let mut out = Vec::with_capacity(t.uint64_data.len() * 4);
            for (i, &v) in t.uint64_data.iter().enumerate() {
                let v = u32::try_from(v)
                    .map_err(|_| format!("uint64_data[{i}] = {v} is out of range for U32"))?;
                out.extend_from_slice(&v.to_le_bytes());
            }
            out
        }
        _ => {
            only("int32_data", t.int32_data.len()).map_err(|_| wrong("another field"))?;
            // (lowest, highest) accepted, and bytes per element. Bit-pattern types (floats of
            // 16 bits or fewer) accept the signed and the unsigned reading of their width.
            let (lo, hi): (i64, i64) = match dtype {
                Dtype::Bool => (0, 1),
                Dtype::U8 => (0, 255),
                Dtype::I8 => (-128, 127),
                Dtype::U16 => (0, 65535),
                Dtype::I16 => (-32768, 32767),
                Dtype::I32 => (i64::from(i32::MIN), i64::from(i32::MAX)),
                Dtype::F16 | Dtype::BF16 => (-32768, 65535),
                _ => (-128, 255),
            };
            let size = dtype.size();
            let mut out = Vec::with_capacity(t.int32_data.len() * size);
            for (i, &v) in t.int32_data.iter().enumerate() {
                let wide = i64::from(v);
                if wide < lo || wide > hi {
                    return Err(range(i, wide));
                }
                out.extend(v.to_le_bytes().into_iter().take(size));
            }
            out
        }
    })
}

/// Write a tensor as a `TensorProto` with `raw_data`. `output` names the destination in errors.
pub fn write(output: &str, name: &str, array: &Array<'_>) -> Result<Vec<u8>> {
    Ok(tensor_proto(output, name, array)?.encode_to_vec())
}

/// Write tensors as a `SequenceProto` of tensors (`TensorProto`s with `raw_data`, unnamed).
pub fn write_sequence(output: &str, name: &str, tensors: &[&Array<'_>]) -> Result<Vec<u8>> {
    let c = TensorContainer {
        name: Some(name.to_owned()).filter(|n| !n.is_empty()),
        elem_type: Some(1),
        tensors: tensors
            .iter()
            .map(|a| tensor_proto(output, "", a))
            .collect::<Result<Vec<_>>>()?,
    };
    Ok(c.encode_to_vec())
}

fn tensor_proto(output: &str, name: &str, array: &Array<'_>) -> Result<TensorProto> {
    let dims = array
        .shape()
        .dims()
        .iter()
        .map(|&d| i64::try_from(d))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| Error::invalid(output, "a dimension does not fit ONNX's int64 dims"))?;
    let strings = crate::object::tensor::string_elements(array.dtype(), array.data());
    let t = TensorProto {
        dims,
        data_type: Some(data_type(array.dtype())),
        name: Some(name.to_owned()).filter(|n| !n.is_empty()),
        raw_data: (!array.dtype().is_string()).then(|| array.data().to_vec()),
        string_data: strings.into_iter().map(|e| e.into_owned()).collect(),
        ..TensorProto::default()
    };
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(bytes: &[u8]) -> String {
        read("t.pb", bytes)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn string_tensors_are_fixed_width_bytes_and_come_back_byte_for_byte() {
        let proto = TensorProto {
            dims: vec![3],
            data_type: Some(8),
            string_data: vec![b"cat".to_vec(), Vec::new(), b"dog food".to_vec()],
            name: Some("labels".into()),
            ..TensorProto::default()
        };
        let bytes = proto.encode_to_vec();
        let t = read("t", &bytes).expect("read");
        assert_eq!(t.array.dtype(), Dtype::Bytes(8));
        assert_eq!(&t.array.data()[..8], b"cat\0\0\0\0\0");
        assert_eq!(write("o", "labels", &t.array).expect("write"), bytes);
        // Text goes out as UTF-8.
        let text: Vec<u8> = "é\0"
            .chars()
            .flat_map(|c| u32::from(c).to_le_bytes())
            .collect();
        let a = Array::new("t", Dtype::Str(2), Shape::new(vec![1]), text.into()).expect("a");
        let back = read("t", &write("o", "", &a).expect("write")).expect("read");
        assert_eq!(back.array.data(), "é".as_bytes());
    }

    #[test]
    fn raw_and_typed_data_read_alike() {
        let data: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let a =
            Array::new("t", Dtype::F32, Shape::new(vec![2, 1]), data.clone().into()).expect("a");
        let bytes = write("o", "x", &a).expect("write");
        let back = read("t", &bytes).expect("read");
        assert_eq!((back.name.as_str(), &back.array), ("x", &a));
        let typed = TensorProto {
            dims: vec![2, 1],
            data_type: Some(1),
            float_data: vec![1.5, -2.0],
            ..TensorProto::default()
        };
        assert_eq!(read("t", &typed.encode_to_vec()).expect("read").array, a);
        let bf = TensorProto {
            dims: vec![2],
            data_type: Some(16),
            int32_data: vec![0x3fc0, 0xc000],
            ..TensorProto::default()
        };
        let back = read("t", &bf.encode_to_vec()).expect("read").array;
        assert_eq!(
            (back.dtype(), back.data()),
            (Dtype::BF16, &[0xc0, 0x3f, 0, 0xc0][..])
        );
        let bools = TensorProto {
            dims: vec![3],
            data_type: Some(9),
            int32_data: vec![1, 0, 2],
            ..TensorProto::default()
        };
        assert!(msg(&bools.encode_to_vec()).contains("int32_data[2] = 2 is out of range"));
    }

    #[test]
    fn bad_messages_are_refused_with_reasons() {
        let a = Array::new("t", Dtype::I64, Shape::new(vec![3]), vec![0; 24].into()).expect("a");
        let good = write("o", "", &a).expect("write");
        // Cut anywhere: protobuf errors, or a message whose data disagrees with its dims.
        for cut in 1..good.len() {
            assert!(read("t", &good[..cut]).is_err(), "cut at {cut}");
        }
        // Field 1 (dims) with wire type 5 (32-bit), which int64 never uses.
        assert!(
            msg(&[0x0d, 1, 0, 0, 0]).contains("wire type"),
            "{}",
            msg(&[0x0d, 1, 0, 0, 0])
        );
        let lying = TensorProto {
            dims: vec![4],
            data_type: Some(7),
            raw_data: Some(vec![0; 24]),
            ..TensorProto::default()
        };
        assert!(msg(&lying.encode_to_vec()).contains("needs 32 bytes"));
        let overflow = TensorProto {
            dims: vec![i64::MAX, i64::MAX],
            data_type: Some(1),
            raw_data: Some(vec![]),
            ..TensorProto::default()
        };
        assert!(msg(&overflow.encode_to_vec()).contains("overflows"));
        let strings = TensorProto {
            dims: vec![2],
            data_type: Some(8),
            string_data: vec![b"a".to_vec()],
            ..TensorProto::default()
        };
        assert!(msg(&strings.encode_to_vec()).contains("needs 2 elements"));
        let nul = TensorProto {
            dims: vec![1],
            data_type: Some(8),
            string_data: vec![b"a\0".to_vec()],
            ..TensorProto::default()
        };
        assert!(msg(&nul.encode_to_vec()).contains("ends in a zero byte"));
        let negative = TensorProto {
            dims: vec![-1],
            data_type: Some(1),
            ..TensorProto::default()
        };
        assert!(msg(&negative.encode_to_vec()).contains("negative"));
        assert!(msg(&[]).contains("UNDEFINED"));
    }
}
