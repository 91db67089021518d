//! JSON with tensors in the form pydantic numpy fields serialize to:
//! `{"shape": [2, 3], "dtype": "float32", "data_b64": "<base64 of the C-order bytes>"}`,
//! nested anywhere in ordinary JSON objects and arrays.
//!
//! An object is a tensor when its keys are exactly `shape`, `dtype` and `data_b64`; any other
//! object is ordinary data. `dtype` is numpy's `dtype.name` (`float32`, `bool`, and the
//! `ml_dtypes` names `bfloat16`, `float8_e4m3fn`, `float8_e5m2`) or a `descr` (`<f4`, `>i8`:
//! big-endian bytes are converted); it is written as `dtype.name`. Base64 is the standard
//! alphabet (`base64.b64encode`); padding may be left off on the way in. An object that is
//! exactly `{"$ref": "<64 hex digits>"}` is a reference to an object in the archive, as in
//! records put from JSON. Integers beyond i64 are refused rather than rounded; non-finite
//! floats, which JSON cannot hold, go out as strings (`NaN`, `inf`), as records' JSON does.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value as J;

use super::npy::{numpy_name, parse_numpy_dtype, swap_to_little_endian};
use super::{Array, Document, MAX_DOCUMENT_DEPTH};
use crate::error::{Error, Result};
use crate::hash::ObjectHash;
use crate::object::record::Value;
use crate::object::tensor::Shape;

/// Standard base64, written padded, read with or without padding.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Read a JSON document's bytes. `input` names the file in errors.
pub fn read(input: &str, bytes: &[u8]) -> Result<Document<'static>> {
    let json: J = serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid(input, format!("not valid JSON: {e}")))?;
    from_json(input, &json)
}

/// Convert parsed JSON into a document.
pub fn from_json(input: &str, json: &J) -> Result<Document<'static>> {
    convert(input, json, "$", 0)
}

fn is_tensor(map: &serde_json::Map<String, J>) -> bool {
    map.len() == 3
        && map.contains_key("shape")
        && map.contains_key("dtype")
        && map.contains_key("data_b64")
}

fn convert(input: &str, json: &J, path: &str, depth: usize) -> Result<Document<'static>> {
    let at = |why: String| Error::invalid(input, format!("at {path}: {why}"));
    if depth > MAX_DOCUMENT_DEPTH {
        return Err(at(format!(
            "nested deeper than {MAX_DOCUMENT_DEPTH} levels"
        )));
    }
    Ok(match json {
        J::Null => Document::Scalar(Value::Null),
        J::Bool(b) => Document::Scalar(Value::Bool(*b)),
        J::Number(n) => Document::Scalar(if let Some(i) = n.as_i64() {
            Value::Int(i)
        } else if n.is_u64() {
            return Err(at(format!("integer {n} does not fit in i64")));
        } else {
            Value::Float(n.as_f64().unwrap_or(f64::NAN))
        }),
        J::String(s) => Document::Scalar(Value::Str(s.clone())),
        J::Array(items) => Document::List(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| convert(input, v, &format!("{path}[{i}]"), depth + 1))
                .collect::<Result<_>>()?,
        ),
        J::Object(map) if is_tensor(map) => Document::Tensor(tensor(input, map, path)?),
        J::Object(map) => {
            if map.len() == 1
                && let Some(J::String(h)) = map.get("$ref")
            {
                let hash: ObjectHash = h
                    .parse()
                    .map_err(|_| at(format!("`$ref` `{h}` is not an object hash")))?;
                return Ok(Document::Scalar(Value::Ref(hash)));
            }
            let mut fields = Vec::with_capacity(map.len());
            for (k, v) in map {
                fields.push((
                    k.clone(),
                    convert(input, v, &format!("{path}.{k}"), depth + 1)?,
                ));
            }
            Document::Map(fields)
        }
    })
}

fn tensor(input: &str, map: &serde_json::Map<String, J>, path: &str) -> Result<Array<'static>> {
    let here = format!("{input}: at {path}");
    let bad = |why: String| Error::invalid(&here, format!("not a valid base64 tensor: {why}"));
    let dims = match map.get("shape") {
        Some(J::Array(dims)) => dims
            .iter()
            .map(J::as_u64)
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(
                || bad("`shape` holds something other than non-negative integers".into()),
            )?,
        _ => return Err(bad("`shape` is not a list".into())),
    };
    let Some(J::String(dtype)) = map.get("dtype") else {
        return Err(bad("`dtype` is not a string".into()));
    };
    let (dtype, big_endian) = parse_numpy_dtype(&here, dtype)?;
    let shape = Shape::new(dims);
    let Some(J::String(b64)) = map.get("data_b64") else {
        return Err(bad("`data_b64` is not a string".into()));
    };
    // Bound the decoded size by the shape before decoding (base64 is 4 characters per 3 bytes).
    let expected = shape
        .byte_len(dtype)
        .ok_or_else(|| bad(format!("shape {shape} of {dtype} overflows 64 bits")))?;
    if expected > (b64.len() as u64 / 4 + 1) * 3 {
        return Err(bad(format!(
            "shape {shape} of {dtype} needs {expected} bytes, but `data_b64` holds at most {}",
            (b64.len() / 4 + 1) * 3
        )));
    }
    let mut data = B64
        .decode(b64)
        .map_err(|e| bad(format!("`data_b64` is not valid base64: {e}")))?;
    if big_endian {
        swap_to_little_endian(dtype, &mut data);
    }
    Array::new(&here, dtype, shape, Cow::Owned(data))
}

/// Convert a document to JSON.
pub fn to_json(doc: &Document<'_>) -> J {
    match doc {
        Document::Tensor(a) => {
            let mut m = serde_json::Map::with_capacity(3);
            m.insert(
                "shape".into(),
                J::Array(a.shape().dims().iter().map(|&d| J::from(d)).collect()),
            );
            m.insert("dtype".into(), J::from(numpy_name(a.dtype())));
            m.insert("data_b64".into(), J::from(B64.encode(a.data())));
            J::Object(m)
        }
        Document::Map(fields) => J::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
        Document::List(items) => J::Array(items.iter().map(to_json).collect()),
        Document::Scalar(v) => v.to_json(),
    }
}

/// Write a document as pretty-printed JSON, ending in a newline.
pub fn write(output: &str, doc: &Document<'_>) -> Result<Vec<u8>> {
    let mut out = serde_json::to_vec_pretty(&to_json(doc))
        .map_err(|e| Error::invalid(output, format!("cannot write JSON: {e}")))?;
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::record::Record;
    use crate::object::tensor::Dtype;

    fn msg(text: &str) -> String {
        read("x.json", text.as_bytes())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn tensors_nest_in_ordinary_json_and_round_trip() {
        let text = r#"{"id": 7, "score": 0.1, "out": {"logits": {"shape": [2], "dtype": "float32",
            "data_b64": "AACAPwAAAMA="}, "tags": ["a", null, true]}, "big": {"shape": [1],
            "dtype": ">i2", "data_b64": "AAE"}, "bf": {"dtype": "bfloat16", "shape": [],
            "data_b64": "gD8="}}"#;
        let doc = read("t", text.as_bytes()).expect("read");
        let Document::Map(fields) = &doc else {
            panic!("map")
        };
        let Document::Map(out) = &fields[2].1 else {
            panic!("map")
        };
        let Document::Tensor(a) = &out[0].1 else {
            panic!("tensor")
        };
        assert_eq!(a.data(), &[0, 0, 128, 63, 0, 0, 0, 192]);
        let Document::Tensor(big) = &fields[3].1 else {
            panic!("tensor")
        };
        assert_eq!((big.dtype(), big.data()), (Dtype::I16, &[1, 0][..]));
        let Document::Tensor(bf) = &fields[4].1 else {
            panic!("tensor")
        };
        assert_eq!(bf.dtype(), Dtype::BF16);
        let again = write("o", &doc).expect("write");
        assert_eq!(read("o", &again).expect("read"), doc);
        assert!(
            String::from_utf8(again)
                .expect("utf8")
                .contains("\"bfloat16\"")
        );
    }

    #[test]
    fn plain_json_reads_as_records_read_it() {
        let text = r#"{"a": [1, 2.5, "x", {"b": null}], "r": {"$ref": "0000000000000000000000000000000000000000000000000000000000000000"}}"#;
        let json: J = serde_json::from_str(text).expect("json");
        let rec = Record::from_json("t", &json).expect("record");
        let doc = read("t", text.as_bytes()).expect("doc");
        let back: serde_json::Value = to_json(&doc);
        assert_eq!(back, rec.to_json());
    }

    #[test]
    fn bad_input_is_refused_with_reasons() {
        let t = |shape: &str, dtype: &str, b64: &str| {
            format!(r#"{{"x": {{"shape": {shape}, "dtype": "{dtype}", "data_b64": "{b64}"}}}}"#)
        };
        assert!(msg(&t("[2]", "float32", "AACAPwAAAMA=")).is_empty());
        assert!(msg(&t("[2]", "float32", "AACA*wAAAMA=")).contains("not valid base64"));
        assert!(msg(&t("[3]", "float32", "AACAPwAAAMA=")).contains("needs 12 bytes"));
        assert!(msg(&t("[4294967296, 4294967296, 4]", "float32", "AA==")).contains("overflows"));
        assert!(msg(&t("[1000000]", "float32", "AA==")).contains("at most"));
        assert!(msg(&t("[1]", "object", "AA==")).contains("unsupported"));
        assert!(msg(&t("[1]", "|O", "AA==")).contains("pickle"));
        assert!(msg(&t("[-1]", "uint8", "AA==")).contains("shape"));
        assert!(msg(r#"{"a": 18446744073709551615}"#).contains("does not fit"));
        assert!(msg(r#"{"a": [1, 2"#).contains("x.json: not valid JSON"));
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(msg(&deep).contains("deeper"));
    }
}
