//! Reading and writing the formats model outputs live in today. Each reader works on bytes
//! and names its input in every error; each writer is bit-exact with what it read.
//!
//! Every format meets the archive through one neutral tree, [`Document`]: tensors, maps of
//! named values, lists and scalars. A reader turns bytes into a `Document` ([`read()`]); a
//! writer turns a `Document` into bytes ([`write()`]). This module never touches a store:
//! `crate::document` stores a document (a lone tensor as a tensor, anything else as a record
//! whose tensors are references to tensors stored beside it) and gives it back. How each
//! format maps onto the tree is written down in FORMAT.md, "Interop mappings".
//!
//! One file per format: [`npy`], [`npz`], [`safetensors`], [`msgpack_numpy`], [`json_b64`],
//! [`onnx`]; and, read only, [`pickle`].

pub mod compressed;
pub mod json_b64;
pub mod msgpack_numpy;
pub mod msgpack_record;
pub mod npy;
pub mod npz;
pub mod onnx;
pub mod pickle;
pub mod proto;
pub mod safetensors;

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::hash::ObjectHash;
use crate::object::record::{MAX_DEPTH, Record, Value};
use crate::object::tensor::{Dtype, Shape, Tensor, TensorView, check_len};

/// The field under which a record keeps a document whose root is not a map (a list, a
/// scalar), or a map whose only field is itself named `$root`. See FORMAT.md.
pub const ROOT_FIELD: &str = "$root";

/// Deepest nesting of maps and lists a reader accepts: one less than a record's
/// [`MAX_DEPTH`], because a root that is not a map is kept one level down, under
/// [`ROOT_FIELD`].
pub const MAX_DOCUMENT_DEPTH: usize = MAX_DEPTH - 1;

/// The formats a document can be read from and written to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// numpy `.npy`: one tensor.
    Npy,
    /// numpy `.npz`: a zip of `.npy` members, a record of named tensors.
    Npz,
    /// Hugging Face `.safetensors`: named tensors and string metadata.
    Safetensors,
    /// msgpack with msgpack-numpy's array encoding, arrays nested anywhere.
    MsgpackNumpy,
    /// JSON, with tensors as `{"shape": [..], "dtype": "float32", "data_b64": ".."}` objects.
    JsonB64,
    /// One ONNX `TensorProto`, protobuf-encoded (ONNX test data's `.pb` files).
    Onnx,
    /// A Python pickle of numpy arrays and plain values, read without running it (plain, or
    /// zlib- or gzip-compressed). Read only.
    Pickle,
}

impl Format {
    /// Every format that can be read and written.
    pub const ALL: [Format; 6] = [
        Format::Npy,
        Format::Npz,
        Format::Safetensors,
        Format::MsgpackNumpy,
        Format::JsonB64,
        Format::Onnx,
    ];

    /// Every format that can be read: `ALL` and pickles.
    pub const READABLE: [Format; 7] = [
        Format::Npy,
        Format::Npz,
        Format::Safetensors,
        Format::MsgpackNumpy,
        Format::JsonB64,
        Format::Onnx,
        Format::Pickle,
    ];

    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Npy => "npy",
            Format::Npz => "npz",
            Format::Safetensors => "safetensors",
            Format::MsgpackNumpy => "msgpack",
            Format::JsonB64 => "json",
            Format::Onnx => "onnx",
            Format::Pickle => "pickle",
        }
    }

    /// The file extensions that mean this format, lower case, the usual one first.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Format::Npy => &["npy"],
            Format::Npz => &["npz"],
            Format::Safetensors => &["safetensors"],
            Format::MsgpackNumpy => &["msgpack", "mpk", "msgpk"],
            Format::JsonB64 => &["json"],
            Format::Onnx => &["pb", "tensorproto"],
            Format::Pickle => &["pkl", "pickle"],
        }
    }

    /// The format a file extension means (case-insensitive), if any.
    pub fn from_extension(ext: &str) -> Option<Format> {
        let ext = ext.to_ascii_lowercase();
        Format::READABLE
            .into_iter()
            .find(|f| f.extensions().contains(&ext.as_str()))
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = Error;

    /// A format's name, one of its extensions, or `msgpack-numpy` / `tensorproto`.
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.to_ascii_lowercase();
        let alias = match lower.as_str() {
            "msgpack-numpy" | "msgpack_numpy" => Some(Format::MsgpackNumpy),
            "json-b64" | "json_b64" => Some(Format::JsonB64),
            _ => None,
        };
        alias
            .or_else(|| Format::READABLE.into_iter().find(|f| f.name() == lower))
            .or_else(|| Format::from_extension(&lower))
            .ok_or_else(|| {
                Error::invalid(
                    s,
                    "unknown format; expected npy, npz, safetensors, msgpack, json, onnx or pickle",
                )
            })
    }
}

/// A tensor in a document: dtype, shape and little-endian C-order bytes, checked to agree,
/// borrowing the input where the format allows.
#[derive(Clone, Debug, PartialEq)]
pub struct Array<'a> {
    dtype: Dtype,
    shape: Shape,
    data: Cow<'a, [u8]>,
}

impl<'a> Array<'a> {
    /// An array; fails, naming `input`, if the shape's byte length is not `data.len()`.
    pub fn new(input: &str, dtype: Dtype, shape: Shape, data: Cow<'a, [u8]>) -> Result<Self> {
        check_len(input, dtype, &shape, data.len())?;
        Ok(Array { dtype, shape, data })
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The elements, little-endian, C order.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Borrow as the view the archive's puts take. (The length was checked when the array
    /// was made, so this does not fail in practice.)
    pub fn view(&self) -> Result<TensorView<'_>> {
        TensorView::new(self.dtype, &self.shape, &self.data)
    }

    /// An owned copy, free of the input's lifetime.
    pub fn into_owned(self) -> Array<'static> {
        Array {
            dtype: self.dtype,
            shape: self.shape,
            data: Cow::Owned(self.data.into_owned()),
        }
    }

    /// The owned tensor the archive's gets return.
    pub fn into_tensor(self) -> Tensor {
        Tensor {
            dtype: self.dtype,
            shape: self.shape,
            data: self.data.into_owned(),
        }
    }
}

impl From<Tensor> for Array<'static> {
    fn from(t: Tensor) -> Self {
        Array {
            dtype: t.dtype,
            shape: t.shape,
            data: Cow::Owned(t.data),
        }
    }
}

/// The neutral tree every format reads into and writes from.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Document<'a> {
    /// A tensor.
    Tensor(Array<'a>),
    /// Named values in order. Names are unique.
    Map(Vec<(String, Document<'a>)>),
    /// Values in order.
    List(Vec<Document<'a>>),
    /// A scalar: null, bool, int, float, string, or a reference to an object in the archive
    /// (never a `Value::List` or `Value::Record`: those are `List` and `Map`).
    Scalar(Value),
}

impl Document<'_> {
    /// A copy whose tensors borrow this one's bytes.
    fn borrowed(&self) -> Document<'_> {
        match self {
            Document::Tensor(a) => Document::Tensor(Array {
                dtype: a.dtype,
                shape: a.shape.clone(),
                data: Cow::Borrowed(&a.data),
            }),
            Document::Map(fields) => Document::Map(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.borrowed()))
                    .collect(),
            ),
            Document::List(items) => Document::List(items.iter().map(Document::borrowed).collect()),
            Document::Scalar(v) => Document::Scalar(v.clone()),
        }
    }

    /// An owned copy, free of the input's lifetime.
    pub fn into_owned(self) -> Document<'static> {
        match self {
            Document::Tensor(a) => Document::Tensor(a.into_owned()),
            Document::Map(fields) => Document::Map(
                fields
                    .into_iter()
                    .map(|(k, v)| (k, v.into_owned()))
                    .collect(),
            ),
            Document::List(items) => {
                Document::List(items.into_iter().map(Document::into_owned).collect())
            }
            Document::Scalar(v) => Document::Scalar(v),
        }
    }

    /// Every reference to another object in the tree, depth first. They must be in the
    /// archive for `document::put_document` to store the tree.
    pub fn refs(&self) -> Vec<ObjectHash> {
        fn walk(doc: &Document<'_>, out: &mut Vec<ObjectHash>) {
            match doc {
                Document::Scalar(Value::Ref(h)) => out.push(*h),
                Document::Map(fields) => fields.iter().for_each(|(_, v)| walk(v, out)),
                Document::List(items) => items.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }

    /// A word for what this node is, for error messages.
    pub(crate) fn what(&self) -> &'static str {
        match self {
            Document::Tensor(_) => "a tensor",
            Document::Map(_) => "a map",
            Document::List(_) => "a list",
            Document::Scalar(Value::Null) => "null",
            Document::Scalar(Value::Bool(_)) => "a boolean",
            Document::Scalar(Value::Int(_)) => "an integer",
            Document::Scalar(Value::Float(_)) => "a float",
            Document::Scalar(Value::Str(_)) => "a string",
            Document::Scalar(Value::Ref(_)) => "a reference",
            Document::Scalar(_) => "a nested value",
        }
    }
}

/// Read one document, of the inflated input when it is compressed (`compressed`). A msgpack
/// stream of several values is refused here; [`read_all`] takes it.
pub fn read<'a>(format: Format, input: &str, bytes: &'a [u8]) -> Result<Document<'a>> {
    // Compressed input (gzip, zstd, zlib) of any format is read from its inflated bytes.
    if let Some(plain) = compressed::decompress(input, bytes)? {
        return read_plain(format, input, &plain).map(Document::into_owned);
    }
    read_plain(format, input, bytes)
}

fn read_plain<'a>(format: Format, input: &str, bytes: &'a [u8]) -> Result<Document<'a>> {
    Ok(match format {
        Format::Npy => {
            let arr = npy::read(input, bytes)?;
            Document::Tensor(Array::new(input, arr.dtype, arr.shape, arr.data)?)
        }
        Format::Npz => npz::read(input, bytes)?,
        Format::Safetensors => safetensors::read(input, bytes)?,
        Format::MsgpackNumpy => msgpack_numpy::read(input, bytes)?,
        Format::JsonB64 => json_b64::read(input, bytes)?,
        Format::Onnx => match onnx::read_value(input, bytes)? {
            onnx::OnnxValue::Tensor(t) => Document::Tensor(t.array),
            onnx::OnnxValue::Sequence { tensors, .. } => {
                Document::List(tensors.into_iter().map(Document::Tensor).collect())
            }
        },
        Format::Pickle => pickle::read(input, bytes)?,
    })
}

/// Read every document in the input: each value of a msgpack stream (values written one
/// after another, as `msgpack.Packer` does), or the one document of any other format; of
/// the inflated input when it is compressed (`compressed`).
pub fn read_all<'a>(format: Format, input: &str, bytes: &'a [u8]) -> Result<Vec<Document<'a>>> {
    // Compressed input (gzip, zstd, zlib) of any format is read from its inflated bytes.
    if let Some(plain) = compressed::decompress(input, bytes)? {
        let docs = read_all_plain(format, input, &plain)?;
        return Ok(docs.into_iter().map(Document::into_owned).collect());
    }
    read_all_plain(format, input, bytes)
}

fn read_all_plain<'a>(format: Format, input: &str, bytes: &'a [u8]) -> Result<Vec<Document<'a>>> {
    match format {
        Format::MsgpackNumpy => msgpack_numpy::read_stream(input, bytes),
        _ => Ok(vec![read_plain(format, input, bytes)?]),
    }
}

/// Write a tensor as an ONNX `TensorProto`, or a list of tensors as a `SequenceProto`, named
/// `name`. `output` names the destination in errors.
pub fn onnx_write(output: &str, name: &str, doc: &Document<'_>) -> Result<Vec<u8>> {
    let tensors: Option<Vec<&Array<'_>>> = match doc {
        Document::Tensor(a) => return onnx::write(output, name, a),
        Document::List(items) => items
            .iter()
            .map(|d| match d {
                Document::Tensor(a) => Some(a),
                _ => None,
            })
            .collect(),
        _ => None,
    };
    match tensors {
        Some(t) => onnx::write_sequence(output, name, &t),
        None => Err(Error::invalid(
            output,
            format!(
                "ONNX holds one tensor (a TensorProto) or a list of tensors (a SequenceProto), \
                 and this is {}; write it as .npz, .safetensors, .json or .msgpack",
                match doc {
                    Document::Map(_) => "a record",
                    other => other.what(),
                }
            ),
        )),
    }
}

/// Write a document. `output` names the destination in errors (a file, a hash).
pub fn write(format: Format, output: &str, doc: &Document<'_>) -> Result<Vec<u8>> {
    match format {
        Format::Npy => match doc {
            Document::Tensor(a) => npy::write(output, a.dtype, &a.shape, &a.data),
            other => Err(Error::invalid(
                output,
                format!(
                    ".npy holds one tensor, and this is {}; write it as .npz, .safetensors, \
                     .json or .msgpack",
                    other.what()
                ),
            )),
        },
        Format::Npz => npz::write(output, doc),
        Format::Safetensors => safetensors::write(output, doc),
        Format::MsgpackNumpy => msgpack_numpy::write(output, doc),
        Format::JsonB64 => json_b64::write(output, doc),
        Format::Pickle => Err(Error::invalid(
            output,
            "pickles are read, never written (loading one can run code); write .npy, .npz, \
             .safetensors, .json or .msgpack",
        )),
        Format::Onnx => onnx_write(output, "", doc),
    }
}

/// A document made ready to store: its record built and checked and its tensors' addresses
/// computed, nothing stored yet. Made on one thread (`prepare_document`), stored on another
/// (`document::put_prepared_document`), so a logger parses and prepares on one core while it writes on
/// another.
#[derive(Clone, Debug)]
pub struct PreparedDocument<'a> {
    pub(crate) what: Prepared<'a>,
}

/// What a prepared document stores.
#[derive(Clone, Debug)]
pub(crate) enum Prepared<'a> {
    Tensor(Array<'a>),
    Record {
        parts: Vec<(Array<'a>, ObjectHash)>,
        record: EncodedRecord,
    },
}

/// A record with what storing it takes, computed where it was prepared (the reading thread of
/// a logger): its canonical encoding, its address and the objects it refers to.
#[derive(Clone, Debug)]
pub(crate) struct EncodedRecord {
    /// The record, if it was built (a record read by `msgpack_record` is only bytes).
    pub record: Option<Record>,
    pub payload: Vec<u8>,
    pub hash: ObjectHash,
    pub refs: Vec<ObjectHash>,
}

fn prepare<'d, 'a>(
    doc: Document<'d>,
    part: impl Fn(Array<'d>) -> Array<'a>,
) -> Result<PreparedDocument<'a>> {
    if let Document::Tensor(a) = doc {
        a.view()?;
        return Ok(PreparedDocument {
            what: Prepared::Tensor(part(a)),
        });
    }
    let mut parts = Vec::new();
    let record = to_record(doc, &mut |a| {
        let h = tensor_address(&a)?;
        parts.push((part(a), h));
        Ok(h)
    })?;
    let payload = record.to_msgpack();
    let hash = crate::object::canonical::Descriptor {
        kind: crate::object::Kind::Record,
        desc: "",
        shape: &[],
    }
    .hash(&payload);
    Ok(PreparedDocument {
        what: Prepared::Record {
            parts,
            record: EncodedRecord {
                refs: record.refs(),
                record: Some(record),
                payload,
                hash,
            },
        },
    })
}

/// The address of an array stored as a tensor (what a put of it computes).
fn tensor_address(a: &Array<'_>) -> Result<ObjectHash> {
    let v = a.view()?;
    Ok(crate::object::canonical::Descriptor {
        kind: crate::object::Kind::Tensor,
        desc: &v.dtype().name(),
        shape: v.shape().dims(),
    }
    .hash(v.data()))
}

/// The text of a tag a logger makes of a record's field (`archive log --tag-field`): a string
/// as it is, an integer, a float or a boolean as Rust writes it; any other value makes no tag.
pub fn tag_text(value: Value) -> Option<String> {
    match value {
        Value::Str(s) => Some(s),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Prepare a document to be stored, borrowing its tensors' bytes.
pub(crate) fn prepare_borrowed<'d>(doc: &'d Document<'_>) -> Result<PreparedDocument<'d>> {
    prepare(doc.borrowed(), |a| a)
}

/// Prepare a document to be stored (see [`PreparedDocument`]), taking its names and values
/// rather than copying them, and copying its tensors' bytes.
pub fn prepare_document(doc: Document<'_>) -> Result<PreparedDocument<'static>> {
    prepare(doc, Array::into_owned)
}

/// The record a non-tensor document is stored as; `put` stores each tensor and returns its
/// address.
fn to_record<'d>(
    doc: Document<'d>,
    put: &mut dyn FnMut(Array<'d>) -> Result<ObjectHash>,
) -> Result<Record> {
    let root_is_plain_map = match &doc {
        Document::Map(fields) => !matches!(fields.as_slice(), [(name, _)] if name == ROOT_FIELD),
        _ => false,
    };
    let value = to_value(doc, put, 0)?;
    match value {
        Value::Record(r) if root_is_plain_map => Ok(r),
        other => {
            let mut r = Record::new();
            r.insert(ROOT_FIELD, other)?;
            Ok(r)
        }
    }
}

fn to_value<'d>(
    doc: Document<'d>,
    put: &mut dyn FnMut(Array<'d>) -> Result<ObjectHash>,
    depth: usize,
) -> Result<Value> {
    if depth > MAX_DOCUMENT_DEPTH {
        return Err(Error::invalid(
            "document",
            format!("nested deeper than {MAX_DOCUMENT_DEPTH} levels"),
        ));
    }
    Ok(match doc {
        Document::Tensor(a) => Value::Ref(put(a)?),
        Document::Map(fields) => {
            let mut r = Record::new();
            for (k, v) in fields {
                r.insert(k, to_value(v, put, depth + 1)?)?;
            }
            Value::Record(r)
        }
        Document::List(items) => Value::List(
            items
                .into_iter()
                .map(|i| to_value(i, put, depth + 1))
                .collect::<Result<_>>()?,
        ),
        Document::Scalar(Value::List(_) | Value::Record(_)) => {
            return Err(Error::invalid(
                "document",
                "a scalar holds a list or record; use Document::List or Document::Map",
            ));
        }
        Document::Scalar(v) => v,
    })
}

/// Join a path for error messages and flattened names: `a` + `b` = `a<sep>b`, `` + `b` = `b`.
pub(crate) fn join_path(prefix: &str, sep: char, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}{sep}{name}")
    }
}

/// Flatten a document into named tensors, joining nested names with `sep` (as PyTorch state
/// dicts do with `.`): for the formats that hold only named tensors. `lone` names a document
/// that is a single tensor; `skip` names a top-level field the caller handles itself. Anything
/// but tensors, maps and lists is refused, naming `output` and the field.
pub(crate) fn flatten_tensors<'d, 'a>(
    output: &str,
    format: &str,
    doc: &'d Document<'a>,
    sep: char,
    lone: &str,
    skip: Option<&str>,
) -> Result<Vec<(String, &'d Array<'a>)>> {
    fn walk<'d, 'a>(
        output: &str,
        format: &str,
        doc: &'d Document<'a>,
        sep: char,
        path: String,
        out: &mut Vec<(String, &'d Array<'a>)>,
    ) -> Result<()> {
        match doc {
            Document::Tensor(a) => out.push((path, a)),
            Document::Map(fields) => {
                for (k, v) in fields {
                    walk(output, format, v, sep, join_path(&path, sep, k), out)?;
                }
            }
            Document::List(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(
                        output,
                        format,
                        v,
                        sep,
                        join_path(&path, sep, &i.to_string()),
                        out,
                    )?;
                }
            }
            Document::Scalar(_) => {
                return Err(Error::invalid(
                    output,
                    format!(
                        "{format} holds only named tensors, and `{path}` is {}; write this \
                         record as .json or .msgpack",
                        doc.what()
                    ),
                ));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    match doc {
        Document::Tensor(_) => walk(output, format, doc, sep, lone.to_owned(), &mut out)?,
        Document::Map(fields) => {
            for (k, v) in fields {
                if skip != Some(k.as_str()) {
                    walk(output, format, v, sep, k.clone(), &mut out)?;
                }
            }
        }
        _ => walk(output, format, doc, sep, String::new(), &mut out)?,
    }
    let mut seen = std::collections::HashSet::with_capacity(out.len());
    for (name, _) in &out {
        if !seen.insert(name.as_str()) {
            return Err(Error::invalid(
                output,
                format!("two tensors would both be named `{name}` in {format}"),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A float32 array of `vals`, for tests here and in `document`.
    pub(crate) fn f32s(vals: &[f32]) -> Array<'static> {
        let data: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        Array::new(
            "t",
            Dtype::F32,
            Shape::new(vec![vals.len() as u64]),
            data.into(),
        )
        .expect("array")
    }

    #[test]
    fn formats_parse_by_name_extension_and_alias() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>().ok(), Some(f));
            for e in f.extensions() {
                assert_eq!(Format::from_extension(e), Some(f));
            }
        }
        assert_eq!(
            "msgpack-numpy".parse::<Format>().ok(),
            Some(Format::MsgpackNumpy)
        );
        assert_eq!(Format::from_extension("PB"), Some(Format::Onnx));
        assert_eq!("pickle".parse::<Format>().ok(), Some(Format::Pickle));
    }

    #[test]
    fn flattening_names_nested_tensors_and_refuses_scalars() {
        let doc = Document::Map(vec![
            (
                "layer".into(),
                Document::Map(vec![("w".into(), Document::Tensor(f32s(&[1.0])))]),
            ),
            (
                "xs".into(),
                Document::List(vec![Document::Tensor(f32s(&[2.0]))]),
            ),
        ]);
        let flat = flatten_tensors("o", "safetensors", &doc, '.', "tensor", None).expect("flatten");
        let names: Vec<&str> = flat.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["layer.w", "xs.0"]);
        let clash = Document::Map(vec![
            ("a.b".into(), Document::Tensor(f32s(&[1.0]))),
            (
                "a".into(),
                Document::Map(vec![("b".into(), Document::Tensor(f32s(&[1.0])))]),
            ),
        ]);
        assert!(flatten_tensors("o", "safetensors", &clash, '.', "t", None).is_err());
        let scalar = Document::Map(vec![("n".into(), Document::Scalar(Value::Int(1)))]);
        let err = flatten_tensors("o", "npz", &scalar, '/', "t", None)
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|m| m.contains("`n` is an integer")));
    }

    /// A small valid file of each format.
    fn sample_file(format: Format) -> Vec<u8> {
        let doc = match format {
            Format::Npy | Format::Onnx => Document::Tensor(f32s(&[1.0, -2.0, 3.5])),
            _ => Document::Map(vec![
                ("a".into(), Document::Tensor(f32s(&[1.0, 2.0]))),
                (
                    "b".into(),
                    Document::Map(vec![("c".into(), Document::Tensor(f32s(&[3.0])))]),
                ),
            ]),
        };
        write(format, "sample", &doc).expect("write")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Decoding arbitrary bytes, or a valid file cut short or with bytes flipped, returns
        /// a document or an error: never a panic.
        #[test]
        fn readers_never_panic(
            which in 0usize..Format::ALL.len(),
            noise in proptest::collection::vec(any::<u8>(), 0..256),
            flips in proptest::collection::vec((any::<usize>(), 1u8..), 0..6),
            cut in any::<usize>(),
        ) {
            let format = Format::ALL[which];
            let _ = read_all(format, "noise", &noise);
            let mut file = sample_file(format);
            let _ = read_all(format, "cut", &file[..cut % (file.len() + 1)]);
            let n = file.len();
            for (at, x) in flips {
                file[at % n] ^= x;
            }
            let _ = read_all(format, "flipped", &file);
        }
    }

    #[test]
    fn every_format_reads_back_what_it_wrote() {
        for format in Format::ALL {
            let file = sample_file(format);
            let doc = read(format, "s", &file).expect("read");
            assert_eq!(write(format, "s", &doc).expect("write"), file, "{format}");
        }
    }
}
