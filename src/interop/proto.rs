//! Protobuf messages of the user's own schema (`message MyArray { repeated float data = 1; }`
//! written with `SerializeToString()`), read and written through their descriptors: a `.proto`
//! file compiled here in Rust (protox; no `protoc` at run time), or a descriptor set as `protoc
//! --descriptor_set_out` writes it.
//!
//! A message is a record: each field present by its name; a repeated numeric or enum field is a
//! 1-D tensor of its type (int32, sint32 and sfixed32 as int32, and so on; bool as bool); a
//! `bytes` field a uint8 tensor; a string a string; other integers, floats and enum numbers are
//! numbers; a message field a nested record, and repeated strings, bytes and messages lists.
//! Written back with the same schema, a message comes out byte for byte as protobuf's own
//! runtimes write it (fields in number order, packed repeated scalars). Map fields, unknown
//! fields and extensions are refused.

use std::borrow::Cow;
use std::path::Path;

use prost::Message;
use prost::bytes::Bytes;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage,
    Value as PValue,
};

use super::{Array, Document};
use crate::error::{Error, Result};
use crate::object::record::Value;
use crate::object::tensor::{Dtype, Shape};

/// The most levels of nested messages read or written.
const MAX_DEPTH: usize = 64;

/// A message type of a schema.
#[derive(Clone, Debug)]
pub struct ProtoSchema {
    message: MessageDescriptor,
}

impl ProtoSchema {
    /// The message `message` (a full name, `pkg.MyArray`, or a name that is unique in the
    /// schema) of the schema in `path`: a `.proto` file (imports are looked for beside it),
    /// or a descriptor set.
    pub fn load(path: &Path, message: &str) -> Result<Self> {
        let name = path.display().to_string();
        let is_proto = path.extension().is_some_and(|e| e == "proto");
        let pool = if is_proto {
            let file =
                std::fs::canonicalize(path).map_err(|e| Error::invalid(&name, e.to_string()))?;
            let dir = file.parent().unwrap_or(Path::new("."));
            let mut c = protox::Compiler::new([dir])
                .map_err(|e| Error::invalid(&name, format!("cannot compile: {e}")))?;
            c.open_file(&file)
                .map_err(|e| Error::invalid(&name, format!("cannot compile: {e}")))?;
            c.descriptor_pool()
        } else {
            let bytes = std::fs::read(path).map_err(|e| Error::invalid(&name, e.to_string()))?;
            DescriptorPool::decode(bytes.as_slice()).map_err(|e| {
                Error::invalid(
                    &name,
                    format!("neither a .proto file nor a descriptor set: {e}"),
                )
            })?
        };
        let found = match pool.get_message_by_name(message) {
            Some(m) => Some(m),
            None => {
                let mut same = pool.all_messages().filter(|m| m.name() == message);
                match (same.next(), same.next()) {
                    (Some(m), None) => Some(m),
                    (Some(a), Some(b)) => {
                        return Err(Error::invalid(
                            &name,
                            format!(
                                "message `{message}` is ambiguous: {} and {} (give the full name)",
                                a.full_name(),
                                b.full_name()
                            ),
                        ));
                    }
                    _ => None,
                }
            }
        };
        let Some(message_desc) = found else {
            let known: Vec<String> = pool
                .all_messages()
                .map(|m| m.full_name().to_string())
                .collect();
            return Err(Error::invalid(
                &name,
                format!("has no message `{message}`; it has: {}", known.join(", ")),
            ));
        };
        Ok(ProtoSchema {
            message: message_desc,
        })
    }

    /// The message's full name.
    pub fn name(&self) -> &str {
        self.message.full_name()
    }
}

/// Read one message of `schema` from `bytes`; errors name `input`.
pub fn read(schema: &ProtoSchema, input: &str, bytes: &[u8]) -> Result<Document<'static>> {
    let msg = DynamicMessage::decode(schema.message.clone(), bytes)
        .map_err(|e| Error::invalid(input, format!("not a {} message: {e}", schema.name())))?;
    message_doc(input, &msg, 0)
}

fn message_doc(input: &str, msg: &DynamicMessage, depth: usize) -> Result<Document<'static>> {
    let name = msg.descriptor().full_name().to_string();
    if depth > MAX_DEPTH {
        return Err(Error::invalid(input, "messages nested too deep"));
    }
    if let Some(u) = msg.unknown_fields().next() {
        return Err(Error::invalid(
            input,
            format!(
                "field number {} is not in {name}'s schema (is this the right message?)",
                u.number()
            ),
        ));
    }
    if msg.extensions().next().is_some() {
        return Err(Error::invalid(
            input,
            format!("{name}: extensions are not supported"),
        ));
    }
    let mut fields = Vec::new();
    for (f, v) in msg.fields() {
        let at = || format!("{input}: field `{}`", f.name());
        let doc = match v {
            PValue::Map(_) => {
                return Err(Error::invalid(at(), "map fields are not supported"));
            }
            PValue::List(items) => list_doc(&at(), &f, items, depth)?,
            one => scalar_doc(&at(), one, depth)?,
        };
        fields.push((f.name().to_string(), doc));
    }
    Ok(Document::Map(fields))
}

/// The dtype a repeated field of `kind` is a tensor of, if it is numeric.
fn tensor_dtype(kind: &Kind) -> Option<Dtype> {
    Some(match kind {
        Kind::Double => Dtype::F64,
        Kind::Float => Dtype::F32,
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Enum(_) => Dtype::I32,
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Dtype::I64,
        Kind::Uint32 | Kind::Fixed32 => Dtype::U32,
        Kind::Uint64 | Kind::Fixed64 => Dtype::U64,
        Kind::Bool => Dtype::Bool,
        Kind::String | Kind::Bytes | Kind::Message(_) => return None,
    })
}

fn list_doc(
    at: &str,
    f: &FieldDescriptor,
    items: &[PValue],
    depth: usize,
) -> Result<Document<'static>> {
    let Some(dtype) = tensor_dtype(&f.kind()) else {
        let docs = items
            .iter()
            .map(|v| scalar_doc(at, v, depth))
            .collect::<Result<Vec<_>>>()?;
        return Ok(Document::List(docs));
    };
    let mut data = Vec::with_capacity(items.len() * dtype.size());
    for v in items {
        match v {
            PValue::F64(x) => data.extend_from_slice(&x.to_le_bytes()),
            PValue::F32(x) => data.extend_from_slice(&x.to_le_bytes()),
            PValue::I32(x) | PValue::EnumNumber(x) => data.extend_from_slice(&x.to_le_bytes()),
            PValue::I64(x) => data.extend_from_slice(&x.to_le_bytes()),
            PValue::U32(x) => data.extend_from_slice(&x.to_le_bytes()),
            PValue::U64(x) => data.extend_from_slice(&x.to_le_bytes()),
            PValue::Bool(x) => data.push(u8::from(*x)),
            _ => return Err(Error::invalid(at, "a repeated number that is not a number")),
        }
    }
    let shape = Shape::new(vec![items.len() as u64]);
    Ok(Document::Tensor(Array::new(
        at,
        dtype,
        shape,
        Cow::Owned(data),
    )?))
}

fn scalar_doc(at: &str, v: &PValue, depth: usize) -> Result<Document<'static>> {
    Ok(match v {
        PValue::Bool(x) => Document::Scalar(Value::Bool(*x)),
        PValue::I32(x) | PValue::EnumNumber(x) => Document::Scalar(Value::Int(i64::from(*x))),
        PValue::I64(x) => Document::Scalar(Value::Int(*x)),
        PValue::U32(x) => Document::Scalar(Value::Int(i64::from(*x))),
        PValue::U64(x) => match i64::try_from(*x) {
            Ok(i) => Document::Scalar(Value::Int(i)),
            Err(_) => {
                return Err(Error::invalid(
                    at,
                    format!("{x} is over 2^63, which a record's integer cannot hold"),
                ));
            }
        },
        PValue::F32(x) => Document::Scalar(Value::Float(f64::from(*x))),
        PValue::F64(x) => Document::Scalar(Value::Float(*x)),
        PValue::String(s) => Document::Scalar(Value::Str(s.clone())),
        PValue::Bytes(b) => {
            let shape = Shape::new(vec![b.len() as u64]);
            Document::Tensor(Array::new(at, Dtype::U8, shape, Cow::Owned(b.to_vec()))?)
        }
        PValue::Message(m) => message_doc(at, m, depth + 1)?,
        PValue::List(_) | PValue::Map(_) => {
            return Err(Error::invalid(at, "a list or map inside a list"));
        }
    })
}

/// Write `doc` (a record read by [`read`], or a tensor for a message with one repeated
/// numeric field) as a message of `schema`; errors name `output`.
pub fn write(schema: &ProtoSchema, output: &str, doc: &Document<'_>) -> Result<Vec<u8>> {
    let msg = match doc {
        Document::Map(_) => message_of(output, &schema.message, doc, 0)?,
        Document::Tensor(_) => {
            let mut numeric = schema
                .message
                .fields()
                .filter(|f| f.is_list() && tensor_dtype(&f.kind()).is_some());
            match (numeric.next(), numeric.next()) {
                (Some(f), None) => {
                    let map = Document::Map(vec![(f.name().to_string(), doc.clone())]);
                    message_of(output, &schema.message, &map, 0)?
                }
                _ => {
                    return Err(Error::invalid(
                        output,
                        format!(
                            "a tensor fits a message with one repeated numeric field, and {} \
                             has not exactly one",
                            schema.name()
                        ),
                    ));
                }
            }
        }
        other => {
            return Err(Error::invalid(
                output,
                format!(
                    "{} is not a record: no {} message",
                    other.what(),
                    schema.name()
                ),
            ));
        }
    };
    Ok(msg.encode_to_vec())
}

fn message_of(
    output: &str,
    desc: &MessageDescriptor,
    doc: &Document<'_>,
    depth: usize,
) -> Result<DynamicMessage> {
    if depth > MAX_DEPTH {
        return Err(Error::invalid(output, "records nested too deep"));
    }
    let Document::Map(fields) = doc else {
        return Err(Error::invalid(
            output,
            format!(
                "{} where a {} message belongs",
                doc.what(),
                desc.full_name()
            ),
        ));
    };
    let mut msg = DynamicMessage::new(desc.clone());
    for (name, v) in fields {
        let at = format!("{output}: field `{name}`");
        let Some(f) = desc.get_field_by_name(name) else {
            return Err(Error::invalid(
                at,
                format!("is not a field of {}", desc.full_name()),
            ));
        };
        let value = if f.is_map() {
            return Err(Error::invalid(at, "map fields are not supported"));
        } else if f.is_list() {
            list_value(&at, &f, v, depth)?
        } else {
            one_value(&at, &f.kind(), v, depth)?
        };
        msg.try_set_field(&f, value)
            .map_err(|e| Error::invalid(&at, e.to_string()))?;
    }
    Ok(msg)
}

fn list_value(at: &str, f: &FieldDescriptor, v: &Document<'_>, depth: usize) -> Result<PValue> {
    let kind = f.kind();
    if let Some(dtype) = tensor_dtype(&kind) {
        let Document::Tensor(a) = v else {
            return Err(Error::invalid(at, format!("is {}, not a tensor", v.what())));
        };
        if a.dtype() != dtype || a.shape().dims().len() != 1 {
            return Err(Error::invalid(
                at,
                format!(
                    "is {} {}; the field holds a 1-D {dtype} tensor",
                    a.dtype(),
                    a.shape()
                ),
            ));
        }
        let d = a.data();
        let w = dtype.size().max(1);
        let items = d
            .chunks_exact(w)
            .map(|c| element(&kind, c))
            .collect::<Option<Vec<_>>>();
        return items
            .map(PValue::List)
            .ok_or_else(|| Error::invalid(at, "a tensor of the wrong width"));
    }
    let Document::List(items) = v else {
        return Err(Error::invalid(at, format!("is {}, not a list", v.what())));
    };
    let values = items
        .iter()
        .map(|i| one_value(at, &kind, i, depth))
        .collect::<Result<Vec<_>>>()?;
    Ok(PValue::List(values))
}

/// One element of a tensor (`c`, its little-endian bytes) as a value of `kind`.
fn element(kind: &Kind, c: &[u8]) -> Option<PValue> {
    let b4 = || <[u8; 4]>::try_from(c).ok();
    let b8 = || <[u8; 8]>::try_from(c).ok();
    Some(match kind {
        Kind::Double => PValue::F64(f64::from_le_bytes(b8()?)),
        Kind::Float => PValue::F32(f32::from_le_bytes(b4()?)),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => PValue::I32(i32::from_le_bytes(b4()?)),
        Kind::Enum(_) => PValue::EnumNumber(i32::from_le_bytes(b4()?)),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => PValue::I64(i64::from_le_bytes(b8()?)),
        Kind::Uint32 | Kind::Fixed32 => PValue::U32(u32::from_le_bytes(b4()?)),
        Kind::Uint64 | Kind::Fixed64 => PValue::U64(u64::from_le_bytes(b8()?)),
        Kind::Bool => PValue::Bool(*c.first()? != 0),
        Kind::String | Kind::Bytes | Kind::Message(_) => return None,
    })
}

fn one_value(at: &str, kind: &Kind, v: &Document<'_>, depth: usize) -> Result<PValue> {
    let wrong = || {
        Error::invalid(
            at,
            format!("is {}, which a {kind:?} field cannot hold", v.what()),
        )
    };
    let int = |v: &Document<'_>| match v {
        Document::Scalar(Value::Int(i)) => Some(*i),
        _ => None,
    };
    let range = |_| Error::invalid(at, format!("is out of range for a {kind:?} field"));
    Ok(match kind {
        Kind::Message(m) => PValue::Message(message_of(at, m, v, depth + 1)?),
        Kind::Bytes => match v {
            Document::Tensor(a) if a.dtype() == Dtype::U8 && a.shape().dims().len() == 1 => {
                PValue::Bytes(Bytes::copy_from_slice(a.data()))
            }
            _ => return Err(wrong()),
        },
        Kind::String => match v {
            Document::Scalar(Value::Str(s)) => PValue::String(s.clone()),
            _ => return Err(wrong()),
        },
        Kind::Bool => match v {
            Document::Scalar(Value::Bool(b)) => PValue::Bool(*b),
            _ => return Err(wrong()),
        },
        Kind::Double | Kind::Float => {
            let x = match v {
                Document::Scalar(Value::Float(f)) => *f,
                Document::Scalar(Value::Int(i)) => *i as f64,
                _ => return Err(wrong()),
            };
            match kind {
                Kind::Float => PValue::F32(x as f32),
                _ => PValue::F64(x),
            }
        }
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            PValue::I32(i32::try_from(int(v).ok_or_else(wrong)?).map_err(range)?)
        }
        Kind::Enum(_) => {
            PValue::EnumNumber(i32::try_from(int(v).ok_or_else(wrong)?).map_err(range)?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => PValue::I64(int(v).ok_or_else(wrong)?),
        Kind::Uint32 | Kind::Fixed32 => {
            PValue::U32(u32::try_from(int(v).ok_or_else(wrong)?).map_err(range)?)
        }
        Kind::Uint64 | Kind::Fixed64 => {
            PValue::U64(u64::try_from(int(v).ok_or_else(wrong)?).map_err(range)?)
        }
    })
}
