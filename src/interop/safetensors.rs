//! Hugging Face `.safetensors`, through the official `safetensors` crate, which checks the
//! header against the file (length, offsets that tile the data with no gap or overlap, shapes
//! that agree with their byte ranges, overflow).
//!
//! Read as a map: `__metadata__` first when the file has one (a map of strings, keys sorted),
//! then the tensors sorted by name. The header is a JSON object, whose order means nothing, so
//! sorting makes the record, and its hash, the same whoever wrote the file. Written with the
//! crate's `serialize`, as the Python library writes: a top-level `__metadata__` map of
//! strings becomes the header's metadata; nested maps and lists are flattened with `.`, as
//! PyTorch names a state dict's tensors; a lone tensor is named [`LONE_NAME`].

use std::borrow::Cow;
use std::collections::HashMap;

use safetensors::tensor::{Dtype as StDtype, SafeTensors, View};

use super::{Array, Document, flatten_tensors};
use crate::error::{Error, Result};
use crate::object::record::Value;
use crate::object::tensor::{Dtype, Shape};

/// The name of the header's string metadata, as a field of the record.
pub const METADATA: &str = "__metadata__";

/// What a lone tensor is called when written as `.safetensors`.
pub const LONE_NAME: &str = "tensor";

fn from_st(dtype: StDtype) -> Option<Dtype> {
    Some(match dtype {
        StDtype::BOOL => Dtype::Bool,
        StDtype::U8 => Dtype::U8,
        StDtype::I8 => Dtype::I8,
        StDtype::F8_E5M2 => Dtype::F8E5M2,
        StDtype::F8_E4M3 => Dtype::F8E4M3,
        StDtype::I16 => Dtype::I16,
        StDtype::U16 => Dtype::U16,
        StDtype::F16 => Dtype::F16,
        StDtype::BF16 => Dtype::BF16,
        StDtype::I32 => Dtype::I32,
        StDtype::U32 => Dtype::U32,
        StDtype::F32 => Dtype::F32,
        StDtype::C64 => Dtype::C64,
        StDtype::F64 => Dtype::F64,
        StDtype::I64 => Dtype::I64,
        StDtype::U64 => Dtype::U64,
        _ => return None,
    })
}

fn to_st(dtype: Dtype) -> Option<StDtype> {
    Some(match dtype {
        Dtype::Bool => StDtype::BOOL,
        Dtype::U8 => StDtype::U8,
        Dtype::I8 => StDtype::I8,
        Dtype::F8E5M2 => StDtype::F8_E5M2,
        Dtype::F8E4M3 => StDtype::F8_E4M3,
        Dtype::I16 => StDtype::I16,
        Dtype::U16 => StDtype::U16,
        Dtype::F16 => StDtype::F16,
        Dtype::BF16 => StDtype::BF16,
        Dtype::I32 => StDtype::I32,
        Dtype::U32 => StDtype::U32,
        Dtype::F32 => StDtype::F32,
        Dtype::C64 => StDtype::C64,
        Dtype::F64 => StDtype::F64,
        Dtype::I64 => StDtype::I64,
        Dtype::U64 => StDtype::U64,
        _ => return None,
    })
}

/// Read a `.safetensors` file's bytes. `input` names the file in errors.
pub fn read<'a>(input: &str, bytes: &'a [u8]) -> Result<Document<'a>> {
    let bad = |why: String| Error::invalid(input, format!("not a valid .safetensors file: {why}"));
    // The crate's own messages are terse about the header length; say what was found first.
    let n = crate::format::le_u64(bytes, 0)
        .ok_or_else(|| bad("truncated: shorter than the 8-byte header length".into()))?;
    if n.checked_add(8).is_none_or(|end| end > bytes.len() as u64) {
        return Err(bad(format!(
            "the header claims {n} bytes, more than the {} bytes after the length",
            bytes.len().saturating_sub(8)
        )));
    }
    let (header_len, meta) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
    let data = bytes
        .get(8usize.saturating_add(header_len)..)
        .unwrap_or_default();
    let mut fields = Vec::new();
    if let Some(m) = meta.metadata() {
        let mut entries: Vec<(&String, &String)> = m.iter().collect();
        entries.sort();
        let map = entries
            .into_iter()
            .map(|(k, v)| (k.clone(), Document::Scalar(Value::Str(v.clone()))))
            .collect();
        fields.push((METADATA.to_owned(), Document::Map(map)));
    }
    let mut names = meta.offset_keys();
    names.sort();
    for name in names {
        let tensor_input = format!("{input}: tensor `{name}`");
        let info = meta
            .info(&name)
            .ok_or_else(|| bad(format!("tensor `{name}` is listed but has no entry")))?;
        let dtype = from_st(info.dtype).ok_or_else(|| {
            Error::invalid(
                &tensor_input,
                format!(
                    "has dtype {}, which the archive does not store (it stores BOOL, U8..U64, \
                     I8..I64, F16, BF16, F32, F64, C64, C128, F8_E4M3, F8_E5M2)",
                    info.dtype
                ),
            )
        })?;
        let (start, end) = info.data_offsets;
        let slice = data
            .get(start..end)
            .ok_or_else(|| bad(format!("tensor `{name}`: offsets run past the data")))?;
        let shape = Shape::new(info.shape.iter().map(|&d| d as u64).collect::<Vec<_>>());
        let array = Array::new(&tensor_input, dtype, shape, Cow::Borrowed(slice))?;
        fields.push((name, Document::Tensor(array)));
    }
    Ok(Document::Map(fields))
}

/// A tensor as the crate's serializer sees it.
struct StView<'d> {
    dtype: StDtype,
    shape: Vec<usize>,
    data: &'d [u8],
}

impl View for &StView<'_> {
    fn dtype(&self) -> StDtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// Write a document as `.safetensors`.
pub fn write(output: &str, doc: &Document<'_>) -> Result<Vec<u8>> {
    let mut metadata = None;
    if let Document::Map(fields) = doc
        && let Some((_, v)) = fields.iter().find(|(k, _)| k == METADATA)
    {
        let Document::Map(entries) = v else {
            return Err(Error::invalid(
                output,
                format!("`{METADATA}` must be a map of strings, not {}", v.what()),
            ));
        };
        let mut m = HashMap::with_capacity(entries.len());
        for (k, v) in entries {
            let Document::Scalar(Value::Str(s)) = v else {
                return Err(Error::invalid(
                    output,
                    format!(
                        "`{METADATA}.{k}` is {}; safetensors metadata holds only strings",
                        v.what()
                    ),
                ));
            };
            m.insert(k.clone(), s.clone());
        }
        metadata = Some(m);
    }
    let tensors = flatten_tensors(output, ".safetensors", doc, '.', LONE_NAME, Some(METADATA))?;
    let mut views = Vec::with_capacity(tensors.len());
    for (name, a) in tensors {
        let dtype = to_st(a.dtype()).ok_or_else(|| {
            Error::invalid(
                output,
                format!(
                    "`{name}` is {}, which safetensors cannot hold; write it as .npy, .npz, \
                     .msgpack or .json",
                    a.dtype()
                ),
            )
        })?;
        let shape = a
            .shape()
            .dims()
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| Error::invalid(output, format!("`{name}` is too large")))?;
        views.push((
            name,
            StView {
                dtype,
                shape,
                data: a.data(),
            },
        ));
    }
    safetensors::tensor::serialize(views.iter().map(|(n, v)| (n.as_str(), v)), metadata)
        .map_err(|e| Error::invalid(output, format!("cannot write .safetensors: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(json: &str, data_len: usize) -> Vec<u8> {
        let mut out = (json.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(json.as_bytes());
        out.extend(std::iter::repeat_n(0u8, data_len));
        out
    }

    fn msg(bytes: &[u8]) -> String {
        read("w.safetensors", bytes)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn write_then_read_round_trips_sorted_with_metadata() {
        let t = |dtype, dims: &[u64], data: Vec<u8>| {
            Document::Tensor(
                Array::new("t", dtype, Shape::new(dims.to_vec()), data.into()).expect("a"),
            )
        };
        let doc = Document::Map(vec![
            (
                METADATA.into(),
                Document::Map(vec![
                    ("a".into(), Document::Scalar(Value::Str("1".into()))),
                    ("format".into(), Document::Scalar(Value::Str("pt".into()))),
                ]),
            ),
            ("bf".into(), t(Dtype::BF16, &[2], vec![1, 2, 3, 4])),
            ("e4".into(), t(Dtype::F8E4M3, &[], vec![7])),
            ("z".into(), t(Dtype::F64, &[0], vec![])),
        ]);
        let bytes = write("o", &doc).expect("write");
        assert_eq!(read("o", &bytes).expect("read"), doc);
        let c128 = t(Dtype::C128, &[1], vec![0; 16]);
        let err = write("o", &c128).err().map(|e| e.to_string());
        assert!(err.is_some_and(|m| m.contains("C128")));
    }

    #[test]
    fn lying_headers_are_refused_with_reasons() {
        let good = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        assert!(read("t", &header(good, 8)).is_ok());
        assert!(msg(&header(good, 4)).contains("w.safetensors"));
        let overlap = r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#;
        assert!(msg(&header(overlap, 6)).contains("offset"));
        let lying_shape = r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#;
        assert!(!msg(&header(lying_shape, 8)).is_empty());
        let overflow =
            r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}}"#;
        assert!(msg(&header(overflow, 8)).contains("overflow"));
        let mut big = header(good, 8);
        big[..8].copy_from_slice(&1_000_000u64.to_le_bytes());
        assert!(msg(&big).contains("claims 1000000 bytes"));
        assert!(msg(&[1, 2, 3]).contains("truncated"));
        let f4 = r#"{"a":{"dtype":"F8_E8M0","shape":[2],"data_offsets":[0,2]}}"#;
        assert!(msg(&header(f4, 2)).contains("does not store"));
    }
}
