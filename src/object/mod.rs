//! What the archive stores: the object kinds, their owned forms, and the canonical encoding
//! whose blake3 hash is an object's address.

pub mod canonical;
pub mod record;
pub(crate) mod record_scan;
pub mod tensor;

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::hash::ObjectHash;
use record::{Record, Value};
use tensor::{Dtype, Tensor, TensorView};

/// The kinds of object. The number is the kind's byte in the canonical encoding (FORMAT.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// Dtype + shape + little-endian C-order bytes.
    Tensor = 1,
    /// UTF-8 text.
    Text = 2,
    /// Opaque bytes with an optional media type.
    Bytes = 3,
    /// A structured record; categorical outputs are records of a known shape.
    Record = 4,
}

impl Kind {
    /// The kind's name (`tensor`, `text`, `bytes`, `record`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Tensor => "tensor",
            Kind::Text => "text",
            Kind::Bytes => "bytes",
            Kind::Record => "record",
        }
    }

    /// The kind from its canonical byte.
    pub fn from_code(code: u8) -> Option<Kind> {
        match code {
            1 => Some(Kind::Tensor),
            2 => Some(Kind::Text),
            3 => Some(Kind::Bytes),
            4 => Some(Kind::Record),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "tensor" => Ok(Kind::Tensor),
            "text" => Ok(Kind::Text),
            "bytes" => Ok(Kind::Bytes),
            "record" => Ok(Kind::Record),
            _ => Err(Error::invalid(
                s,
                "unknown kind; expected tensor, text, bytes or record",
            )),
        }
    }
}

/// The record schema name that marks a categorical record.
pub const CATEGORICAL: &str = "categorical";

/// Categorical outputs: integer codes (a tensor stored as its own object) and the label of
/// each code. Stored as a record `{codes: <ref>, labels: [..]}` whose schema is `categorical`.
#[derive(Clone, Debug, PartialEq)]
pub struct Categorical {
    /// The integer tensor of codes.
    pub codes: ObjectHash,
    /// Label of code `i` at index `i`.
    pub labels: Vec<String>,
}

impl Categorical {
    pub(crate) fn to_record(&self) -> Record {
        let labels = self.labels.iter().map(|l| Value::Str(l.clone())).collect();
        Record::new()
            .with("codes", Value::Ref(self.codes))
            .and_then(|r| r.with("labels", Value::List(labels)))
            .unwrap_or_default()
    }

    /// The value of each code of an integer codes tensor (`dtype`, little-endian `data`), in
    /// order; `None` for a negative one. Codes index `labels`.
    pub fn code_values(dtype: Dtype, data: &[u8]) -> impl Iterator<Item = Option<u64>> + '_ {
        let size = dtype.size().clamp(1, 8);
        let signed = matches!(dtype, Dtype::I8 | Dtype::I16 | Dtype::I32 | Dtype::I64);
        data.chunks_exact(size).map(move |c| {
            let mut le = [0u8; 8];
            for (d, s) in le.iter_mut().zip(c) {
                *d = *s;
            }
            let negative = signed && c.last().is_some_and(|b| b & 0x80 != 0);
            (!negative).then(|| u64::from_le_bytes(le))
        })
    }

    /// Check integer `codes` against `labels` labels: an error names the first code that is
    /// negative or has no label.
    pub fn check_codes(codes: &TensorView<'_>, labels: usize) -> Result<()> {
        let dtype = codes.dtype();
        if !dtype.is_integer() {
            return Err(Error::invalid(
                "codes",
                format!("categorical codes must be integers, not {dtype}"),
            ));
        }
        for (i, code) in Self::code_values(dtype, codes.data()).enumerate() {
            if code.is_none_or(|c| c >= labels as u64) {
                return Err(Error::invalid(
                    "codes",
                    format!("code at index {i} is outside the {labels} labels"),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn from_record(input: &str, r: &Record) -> Result<Self> {
        let bad = |why: &str| Error::invalid(input, format!("not a categorical record: {why}"));
        let Some(Value::Ref(codes)) = r.get("codes") else {
            return Err(bad("`codes` is not a reference"));
        };
        let Some(Value::List(items)) = r.get("labels") else {
            return Err(bad("`labels` is not a list"));
        };
        let labels = items
            .iter()
            .map(|v| match v {
                Value::Str(s) => Ok(s.clone()),
                _ => Err(bad("a label is not a string")),
            })
            .collect::<Result<_>>()?;
        Ok(Categorical {
            codes: *codes,
            labels,
        })
    }
}

/// A decoded object, as `Archive::get` returns it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Object {
    /// A tensor.
    Tensor(Tensor),
    /// UTF-8 text.
    Text(String),
    /// Opaque bytes.
    Bytes {
        /// The media type, if one was given (`image/png` …).
        media_type: Option<String>,
        /// The bytes.
        data: Vec<u8>,
    },
    /// A record.
    Record(Record),
    /// A categorical record.
    Categorical(Categorical),
}

impl Object {
    /// The object's address: blake3 of its canonical encoding, what a put of it returns.
    /// Computed from the decoded object, so it checks what a store handed back.
    pub fn address(&self) -> ObjectHash {
        let hash = |kind, desc: &str, shape: &[u64], bytes: &[u8]| {
            canonical::Descriptor { kind, desc, shape }.hash(bytes)
        };
        match self {
            Object::Tensor(t) => hash(Kind::Tensor, &t.dtype.name(), t.shape.dims(), &t.data),
            Object::Text(s) => hash(Kind::Text, "", &[], s.as_bytes()),
            Object::Bytes { media_type, data } => {
                hash(Kind::Bytes, media_type.as_deref().unwrap_or(""), &[], data)
            }
            Object::Record(r) => hash(Kind::Record, "", &[], &r.to_msgpack()),
            Object::Categorical(c) => {
                hash(Kind::Record, CATEGORICAL, &[], &c.to_record().to_msgpack())
            }
        }
    }

    /// The object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Object::Tensor(_) => Kind::Tensor,
            Object::Text(_) => Kind::Text,
            Object::Bytes { .. } => Kind::Bytes,
            Object::Record(_) | Object::Categorical(_) => Kind::Record,
        }
    }
}
