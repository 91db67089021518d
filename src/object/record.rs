//! Records: structured outputs. An ordered map of field name to scalar (null, bool, int, float,
//! string), list, nested record, or a reference to another object by hash.
//!
//! The msgpack encoding is the canonical form that gets hashed: maps keep their field order,
//! integers take msgpack's shortest form, floats are always float64, and a reference is a
//! 32-byte `bin` (records have no other binary values, so the two cannot be confused).

use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::hash::ObjectHash;

/// Deepest nesting of lists and records accepted, so that hostile input cannot overflow the
/// stack while decoding.
pub const MAX_DEPTH: usize = 64;

/// One value in a record.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// No value.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float (NaN payloads and signed zeros are kept bit for bit).
    Float(f64),
    /// A UTF-8 string.
    Str(String),
    /// A list of values.
    List(Vec<Value>),
    /// A nested record.
    Record(Record),
    /// A reference to another object in the archive.
    Ref(ObjectHash),
}

/// An ordered map of field name to value. Field names are unique.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Record {
    fields: Vec<(String, Value)>,
}

impl Record {
    /// An empty record.
    pub fn new() -> Self {
        Record::default()
    }

    /// Append a field; fails if the name is already present.
    pub fn insert(&mut self, name: impl Into<String>, value: Value) -> Result<()> {
        let name = name.into();
        if self.get(&name).is_some() {
            return Err(Error::invalid(name, "field appears twice in one record"));
        }
        self.fields.push((name, value));
        Ok(())
    }

    /// Builder form of `insert`, for literals in code and tests.
    pub fn with(mut self, name: impl Into<String>, value: Value) -> Result<Self> {
        self.insert(name, value)?;
        Ok(self)
    }

    /// A field by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The fields in order.
    pub fn fields(&self) -> &[(String, Value)] {
        &self.fields
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True if there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Every field's path, depth first: a field's name, and `outer.inner` for the fields of a
    /// nested record. What queries name.
    pub fn paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.visit_paths(&mut |p| out.push(p.to_owned()));
        out
    }

    /// Call `f` with each field's path (see [`Record::paths`]), without collecting them.
    pub fn visit_paths(&self, f: &mut dyn FnMut(&str)) {
        fn walk(r: &Record, prefix: &mut String, f: &mut dyn FnMut(&str)) {
            for (name, v) in &r.fields {
                let len = prefix.len();
                if len > 0 {
                    prefix.push('.');
                }
                prefix.push_str(name);
                f(prefix);
                if let Value::Record(inner) = v {
                    walk(inner, prefix, f);
                }
                prefix.truncate(len);
            }
        }
        walk(self, &mut String::new(), f);
    }

    /// The (path, value) pairs an index files this record's entries under: every field with
    /// a value as queries compare it ([`Value::query_text`]) that is not a number, since
    /// numbers are compared as numbers and never looked up as text.
    pub fn query_attrs(&self) -> Vec<(String, String)> {
        fn walk(r: &Record, prefix: &str, out: &mut Vec<(String, String)>) {
            for (name, v) in &r.fields {
                let path = match prefix {
                    "" => name.clone(),
                    p => format!("{p}.{name}"),
                };
                match v {
                    Value::Record(inner) => walk(inner, &path, out),
                    v => {
                        if let Some(t) = v.query_text()
                            && t.parse::<f64>().is_err()
                        {
                            out.push((path, t.into_owned()));
                        }
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(self, "", &mut out);
        out
    }

    /// The value at `path`: a field by its name, or `outer.inner` inside a nested record. A
    /// name that itself holds a dot is found too (the whole name is tried first).
    pub fn at_path(&self, path: &str) -> Option<&Value> {
        if let Some(v) = self.get(path) {
            return Some(v);
        }
        let mut at = 0;
        while let Some(dot) = path.get(at..).and_then(|rest| rest.find('.')) {
            let split = at + dot;
            if let (Some(head), Some(tail)) = (path.get(..split), path.get(split + 1..))
                && let Some(Value::Record(inner)) = self.get(head)
                && let Some(v) = inner.at_path(tail)
            {
                return Some(v);
            }
            at = split + 1;
        }
        None
    }

    /// Every object this record refers to, depth first.
    pub fn refs(&self) -> Vec<ObjectHash> {
        fn walk(v: &Value, out: &mut Vec<ObjectHash>) {
            match v {
                Value::Ref(h) => out.push(*h),
                Value::List(items) => items.iter().for_each(|i| walk(i, out)),
                Value::Record(r) => r.fields.iter().for_each(|(_, v)| walk(v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        self.fields.iter().for_each(|(_, v)| walk(v, &mut out));
        out
    }

    /// The canonical msgpack bytes (what is hashed and stored).
    pub fn to_msgpack(&self) -> Vec<u8> {
        // Written with rmp directly, byte for byte what rmp-serde writes for these types (a
        // test checks): records are encoded on every small put, and serde's generic path cost
        // 8 % of a logged record. Writing into a Vec cannot fail.
        let mut out = Vec::with_capacity(64);
        write_record(&mut out, self);
        out
    }

    /// Decode canonical msgpack; `input` names the source in errors.
    pub fn from_msgpack(input: &str, bytes: &[u8]) -> Result<Self> {
        let mut de = rmp_serde::Deserializer::new(bytes);
        let rec = Record::deserialize(&mut de)
            .map_err(|e| Error::invalid(input, format!("not a record: {e}")))?;
        if !de.get_ref().is_empty() {
            // rmp's reader over a slice advances it; leftover bytes mean trailing garbage.
            return Err(Error::invalid(input, "trailing bytes after the record"));
        }
        Ok(rec)
    }

    /// Convert from a JSON object. `{"$ref": "<64 hex digits>"}` is a reference; integers
    /// beyond i64 are refused rather than rounded.
    pub fn from_json(input: &str, json: &serde_json::Value) -> Result<Self> {
        match json_to_value(input, json, 0)? {
            Value::Record(r) => Ok(r),
            _ => Err(Error::invalid(input, "a record must be a JSON object")),
        }
    }

    /// Convert to JSON; references become `{"$ref": "<hex>"}`, non-finite floats strings.
    pub fn to_json(&self) -> serde_json::Value {
        value_to_json(&Value::Record(self.clone()))
    }
}

fn json_to_value(input: &str, json: &serde_json::Value, depth: usize) -> Result<Value> {
    use serde_json::Value as J;
    if depth > MAX_DEPTH {
        return Err(Error::invalid(
            input,
            format!("nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    Ok(match json {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if n.is_u64() {
                return Err(Error::invalid(
                    input,
                    format!("integer {n} does not fit in i64"),
                ));
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        J::String(s) => Value::Str(s.clone()),
        J::Array(items) => Value::List(
            items
                .iter()
                .map(|i| json_to_value(input, i, depth + 1))
                .collect::<Result<_>>()?,
        ),
        J::Object(map) => {
            if map.len() == 1
                && let Some(J::String(h)) = map.get("$ref")
            {
                return Ok(Value::Ref(h.parse()?));
            }
            let mut rec = Record::new();
            for (k, v) in map {
                rec.insert(k.clone(), json_to_value(input, v, depth + 1)?)?;
            }
            Value::Record(rec)
        }
    })
}

/// A scalar field met by [`scan_fields`], borrowed from the record's bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar<'r> {
    /// null
    Null,
    /// A boolean.
    Bool(bool),
    /// A negative or small integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A float.
    Float(f64),
    /// A string.
    Str(&'r str),
    /// A reference to another object.
    Ref(ObjectHash),
}

impl<'r> Scalar<'r> {
    /// The text queries compare, as [`Value::query_text`] gives it (a reference has none).
    pub fn query_text(self) -> Option<std::borrow::Cow<'r, str>> {
        use std::borrow::Cow;
        Some(match self {
            Scalar::Null => Cow::Borrowed("null"),
            Scalar::Bool(b) => Cow::Borrowed(if b { "true" } else { "false" }),
            Scalar::Int(i) => Cow::Owned(i.to_string()),
            Scalar::UInt(u) => Cow::Owned(u.to_string()),
            Scalar::Float(f) => Cow::Owned(f.to_string()),
            Scalar::Str(s) => Cow::Borrowed(s),
            Scalar::Ref(_) => return None,
        })
    }

    /// The text an index files the value under: strings, booleans and null. Numbers are
    /// compared as numbers, never looked up as text.
    pub fn index_text(self) -> Option<&'r str> {
        match self {
            Scalar::Null => Some("null"),
            Scalar::Bool(b) => Some(if b { "true" } else { "false" }),
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Walk a record's canonical msgpack bytes without decoding it: `f` gets every field's path
/// (as [`Record::paths`] gives them) and, for a scalar or a reference, its value (strings
/// borrowed from `bytes`); lists and records give none. What the index reads from every logged
/// record and queries read from every record they look at, so it allocates nothing per field.
/// An error says why the bytes are not a record.
pub fn scan_fields<'r>(
    bytes: &'r [u8],
    f: &mut dyn FnMut(&str, Option<Scalar<'r>>),
) -> std::result::Result<(), String> {
    let mut c = Cursor { b: bytes, at: 0 };
    let mut path = String::new();
    let n = c.map_len()?;
    c.fields(n, &mut path, f, 0)?;
    if c.at != bytes.len() {
        return Err("trailing bytes after the record".into());
    }
    Ok(())
}

/// Every reference in a record's canonical bytes, lists and nested records included, found
/// without decoding it (what [`Record::refs`] gives, in the same order). An error says why the
/// bytes are not a record.
pub fn scan_refs(bytes: &[u8], f: &mut dyn FnMut(ObjectHash)) -> std::result::Result<(), String> {
    let mut c = Cursor { b: bytes, at: 0 };
    let m = c.byte()?;
    let mut bad = false;
    c.walk_after(m, 0, &mut |b| match ObjectHash::from_slice(b) {
        Some(h) => f(h),
        None => bad = true,
    })?;
    if bad {
        return Err("a reference that is not 32 bytes".into());
    }
    if c.at != bytes.len() {
        return Err("trailing bytes after the record".into());
    }
    Ok(())
}

/// The reference at `path` of a record's canonical bytes (`None`: no such field, or not a
/// reference), found without decoding the record: the walk stops at the field, and what it
/// skips is not checked. An error says why the bytes are not a record.
pub fn find_ref(bytes: &[u8], path: &str) -> std::result::Result<Option<ObjectHash>, String> {
    let mut c = Cursor { b: bytes, at: 0 };
    let n = c.map_len()?;
    c.find_ref(n, path, 0)
}

struct Cursor<'r> {
    b: &'r [u8],
    at: usize,
}

impl<'r> Cursor<'r> {
    fn take(&mut self, n: usize) -> std::result::Result<&'r [u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.b.len());
        let out = end
            .and_then(|e| self.b.get(self.at..e))
            .ok_or("truncated record")?;
        self.at += n;
        Ok(out)
    }

    fn byte(&mut self) -> std::result::Result<u8, String> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }

    fn be(&mut self, n: usize) -> std::result::Result<usize, String> {
        let v = self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        usize::try_from(v).map_err(|_| "length out of range".to_owned())
    }

    fn map_len(&mut self) -> std::result::Result<usize, String> {
        match self.byte()? {
            m @ 0x80..=0x8f => Ok(usize::from(m & 0x0f)),
            0xde => self.be(2),
            0xdf => self.be(4),
            m => Err(format!("expected a map, found marker 0x{m:02x}")),
        }
    }

    fn str_of(&mut self, len: usize) -> std::result::Result<&'r str, String> {
        std::str::from_utf8(self.take(len)?).map_err(|_| "a string is not UTF-8".to_owned())
    }

    /// A field name's bytes, not checked as UTF-8.
    fn key_bytes(&mut self) -> std::result::Result<&'r [u8], String> {
        let len = match self.byte()? {
            m @ 0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => self.be(1)?,
            0xda => self.be(2)?,
            0xdb => self.be(4)?,
            m => return Err(format!("expected a field name, found marker 0x{m:02x}")),
        };
        self.take(len)
    }

    fn key(&mut self) -> std::result::Result<&'r str, String> {
        std::str::from_utf8(self.key_bytes()?).map_err(|_| "a string is not UTF-8".to_owned())
    }

    fn fields(
        &mut self,
        n: usize,
        path: &mut String,
        f: &mut dyn FnMut(&str, Option<Scalar<'r>>),
        depth: usize,
    ) -> std::result::Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("nested too deep".into());
        }
        for _ in 0..n {
            let name = self.key()?;
            let len = path.len();
            if len > 0 {
                path.push('.');
            }
            path.push_str(name);
            let marker = self.byte()?;
            let text = match marker {
                0xc0 => Some(Scalar::Null),
                0xc2 => Some(Scalar::Bool(false)),
                0xc3 => Some(Scalar::Bool(true)),
                m @ 0xa0..=0xbf => Some(Scalar::Str(self.str_of(usize::from(m & 0x1f))?)),
                0xd9..=0xdb => {
                    let n = self.be(1 << (marker - 0xd9))?;
                    Some(Scalar::Str(self.str_of(n)?))
                }
                m @ 0x00..=0x7f => Some(Scalar::UInt(u64::from(m))),
                m @ 0xe0..=0xff => Some(Scalar::Int(i64::from(m as i8))),
                0xcc..=0xcf => {
                    let bytes = self.take(1 << (marker - 0xcc))?;
                    Some(Scalar::UInt(
                        bytes.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b)),
                    ))
                }
                0xd0..=0xd3 => {
                    let len = 1usize << (marker - 0xd0);
                    let bytes = self.take(len)?;
                    let raw = bytes.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
                    // Sign-extend from the value's width.
                    let shift = 64 - 8 * len as u32;
                    Some(Scalar::Int(((raw << shift) as i64) >> shift))
                }
                0xca => {
                    let b = self.take(4)?;
                    let bits = b.iter().fold(0u32, |a, x| (a << 8) | u32::from(*x));
                    Some(Scalar::Float(f64::from(f32::from_bits(bits))))
                }
                0xcb => {
                    let b = self.take(8)?;
                    let bits = b.iter().fold(0u64, |a, x| (a << 8) | u64::from(*x));
                    Some(Scalar::Float(f64::from_bits(bits)))
                }
                0xc4..=0xc6 => {
                    let n = self.be(1 << (marker - 0xc4))?;
                    ObjectHash::from_slice(self.take(n)?).map(Scalar::Ref)
                }
                m @ (0x80..=0x8f | 0xde | 0xdf) => {
                    f(path, None);
                    let n = match m {
                        0xde => self.be(2)?,
                        0xdf => self.be(4)?,
                        m => usize::from(m & 0x0f),
                    };
                    self.fields(n, path, f, depth + 1)?;
                    path.truncate(len);
                    continue;
                }
                m => {
                    self.skip_after(m, depth + 1)?;
                    None
                }
            };
            f(path, text);
            path.truncate(len);
        }
        Ok(())
    }

    /// Look for the reference at `path` among `n` fields (see `find_ref`).
    fn find_ref(
        &mut self,
        n: usize,
        path: &str,
        depth: usize,
    ) -> std::result::Result<Option<ObjectHash>, String> {
        if depth > MAX_DEPTH {
            return Err("nested too deep".into());
        }
        for _ in 0..n {
            let name = self.key_bytes()?;
            let marker = self.byte()?;
            if name == path.as_bytes() {
                return Ok(match marker {
                    0xc4..=0xc6 => {
                        let n = self.be(1 << (marker - 0xc4))?;
                        ObjectHash::from_slice(self.take(n)?)
                    }
                    _ => None,
                });
            }
            let inner = path
                .as_bytes()
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(b"."));
            match (inner, marker) {
                (Some(rest), m @ (0x80..=0x8f | 0xde | 0xdf)) => {
                    let n = match m {
                        0xde => self.be(2)?,
                        0xdf => self.be(4)?,
                        m => usize::from(m & 0x0f),
                    };
                    let rest = std::str::from_utf8(rest).map_err(|e| e.to_string())?;
                    if let Some(h) = self.find_ref(n, rest, depth + 1)? {
                        return Ok(Some(h));
                    }
                }
                (_, m) => self.skip_after(m, depth + 1)?,
            }
        }
        Ok(None)
    }

    /// Skip a value whose marker was read: numbers, lists, references.
    fn skip_after(&mut self, marker: u8, depth: usize) -> std::result::Result<(), String> {
        self.walk_after(marker, depth, &mut |_| {})
    }

    /// Skip the value whose marker was just read, handing `on_bin` every binary in it (in a
    /// record, binaries are references and nothing else).
    fn walk_after(
        &mut self,
        marker: u8,
        depth: usize,
        on_bin: &mut dyn FnMut(&'r [u8]),
    ) -> std::result::Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("nested too deep".into());
        }
        let mut items = |c: &mut Self, n: usize, per: usize| -> std::result::Result<(), String> {
            for _ in 0..n.saturating_mul(per) {
                let m = c.byte()?;
                c.walk_after(m, depth + 1, on_bin)?;
            }
            Ok(())
        };
        match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => Ok(()),
            0xcc | 0xd0 => self.take(1).map(|_| ()),
            0xcd | 0xd1 => self.take(2).map(|_| ()),
            0xce | 0xd2 | 0xca => self.take(4).map(|_| ()),
            0xcf | 0xd3 | 0xcb => self.take(8).map(|_| ()),
            m @ 0xa0..=0xbf => self.take(usize::from(m & 0x1f)).map(|_| ()),
            // str8/16/32 and bin8/16/32: a 1-, 2- or 4-byte length, then the bytes.
            m @ (0xd9..=0xdb | 0xc4..=0xc6) => {
                let width = 1 << (m - if m >= 0xd9 { 0xd9 } else { 0xc4 });
                let n = self.be(width)?;
                let bytes = self.take(n)?;
                if m <= 0xc6 {
                    on_bin(bytes);
                }
                Ok(())
            }
            m @ 0x90..=0x9f => items(self, usize::from(m & 0x0f), 1),
            m @ 0x80..=0x8f => items(self, usize::from(m & 0x0f), 2),
            // array16/32 and map16/32: a 2- or 4-byte count of values (pairs for a map).
            m @ 0xdc..=0xdf => {
                let n = self.be(if m & 1 == 0 { 2 } else { 4 })?;
                items(self, n, if m >= 0xde { 2 } else { 1 })
            }
            m => Err(format!("unexpected marker 0x{m:02x} in a record")),
        }
    }
}

impl Value {
    /// The value as queries compare it: scalars as text (integers and floats in their shortest
    /// exact decimal form, booleans as `true`/`false`, null as `null`); references, lists and
    /// records have none (`has` finds them).
    pub fn query_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        match self {
            Value::Null => Some(Cow::Borrowed("null")),
            Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            Value::Int(i) => Some(Cow::Owned(i.to_string())),
            Value::Float(f) => Some(Cow::Owned(f.to_string())),
            Value::Str(s) => Some(Cow::Borrowed(s)),
            Value::Ref(_) | Value::List(_) | Value::Record(_) => None,
        }
    }

    /// Convert to JSON as `Record::to_json` does.
    pub fn to_json(&self) -> serde_json::Value {
        value_to_json(self)
    }
}

fn value_to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .unwrap_or_else(|| J::from(f.to_string())),
        Value::Str(s) => J::String(s.clone()),
        Value::List(items) => J::Array(items.iter().map(value_to_json).collect()),
        Value::Record(r) => J::Object(
            r.fields
                .iter()
                .map(|(k, v)| (k.clone(), value_to_json(v)))
                .collect(),
        ),
        Value::Ref(h) => serde_json::json!({ "$ref": h.to_string() }),
    }
}

fn write_record(out: &mut Vec<u8>, r: &Record) {
    let _ = rmp::encode::write_map_len(out, r.fields.len() as u32);
    for (k, v) in &r.fields {
        let _ = rmp::encode::write_str(out, k);
        write_value(out, v);
    }
}

fn write_value(out: &mut Vec<u8>, v: &Value) {
    let _ = match v {
        Value::Null => rmp::encode::write_nil(out).map_err(|_| ()),
        Value::Bool(b) => rmp::encode::write_bool(out, *b).map_err(|_| ()),
        Value::Int(i) => rmp::encode::write_sint(out, *i).map(|_| ()).map_err(|_| ()),
        Value::Float(f) => rmp::encode::write_f64(out, *f).map_err(|_| ()),
        Value::Str(t) => rmp::encode::write_str(out, t).map_err(|_| ()),
        Value::List(items) => {
            let _ = rmp::encode::write_array_len(out, items.len() as u32);
            for i in items {
                write_value(out, i);
            }
            Ok(())
        }
        Value::Record(r) => {
            write_record(out, r);
            Ok(())
        }
        Value::Ref(h) => rmp::encode::write_bin(out, h.as_bytes()).map_err(|_| ()),
    };
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) => s.serialize_f64(*f),
            Value::Str(t) => s.serialize_str(t),
            Value::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Value::Record(r) => r.serialize(s),
            Value::Ref(h) => s.serialize_bytes(h.as_bytes()),
        }
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.fields.len()))?;
        for (k, v) in &self.fields {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Decodes values while counting depth, so hostile nesting is an error, not a stack overflow.
struct ValueVisitor {
    depth: usize,
}

impl<'de> de::DeserializeSeed<'de> for ValueVisitor {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.depth > MAX_DEPTH {
            return Err(de::Error::custom(format!(
                "nested deeper than {MAX_DEPTH} levels"
            )));
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        i64::try_from(u)
            .map(Value::Int)
            .map_err(|_| E::custom(format!("integer {u} does not fit in i64")))
    }
    fn visit_f32<E>(self, f: f32) -> Result<Value, E> {
        Ok(Value::Float(f64::from(f)))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Str(s.to_owned()))
    }
    fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Value, E> {
        ObjectHash::from_slice(b)
            .map(Value::Ref)
            .ok_or_else(|| E::custom("binary value is not a 32-byte object reference"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element_seed(ValueVisitor {
            depth: self.depth + 1,
        })? {
            items.push(v);
        }
        Ok(Value::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut rec = Record::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(ValueVisitor {
                depth: self.depth + 1,
            })?;
            rec.insert(k, v).map_err(de::Error::custom)?;
        }
        Ok(Value::Record(rec))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        de::DeserializeSeed::deserialize(ValueVisitor { depth: 0 }, d)
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Record, D::Error> {
        match Value::deserialize(d)? {
            Value::Record(r) => Ok(r),
            _ => Err(de::Error::custom("expected a map")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_written_encoding_is_rmp_serdes() {
        let mut inner = Record::new();
        inner.insert("x", Value::Float(-0.5)).expect("field");
        inner
            .insert("deep", Value::List(vec![Value::Null, Value::Bool(true)]))
            .expect("field");
        let mut r = Record::new();
        let ints = [
            0,
            1,
            127,
            128,
            255,
            256,
            65535,
            65536,
            -1,
            -32,
            -33,
            -128,
            -129,
            -32768,
            -32769,
            i64::from(i32::MIN) - 1,
            i64::MIN,
            i64::MAX,
            u32::MAX as i64 + 1,
        ];
        for (n, i) in ints.iter().enumerate() {
            r.insert(format!("i{n}"), Value::Int(*i)).expect("field");
        }
        r.insert("s", Value::Str("é".repeat(40))).expect("field");
        r.insert("long", Value::Str("x".repeat(70_000)))
            .expect("field");
        r.insert("f", Value::Float(f64::NAN)).expect("field");
        r.insert("r", Value::Record(inner)).expect("field");
        r.insert("h", Value::Ref(crate::hash::ObjectHash([3; 32])))
            .expect("field");
        r.insert("l", Value::List((0..20).map(Value::Int).collect()))
            .expect("field");
        assert_eq!(r.to_msgpack(), rmp_serde::to_vec(&r).expect("serde"));
        assert_eq!(
            Record::new().to_msgpack(),
            rmp_serde::to_vec(&Record::new()).expect("serde")
        );
    }

    fn sample() -> Record {
        let inner = Record::new().with("x", Value::Float(-0.0)).expect("field");
        Record::new()
            .with("label", Value::Int(3))
            .and_then(|r| r.with("text", Value::Str("cat".into())))
            .and_then(|r| r.with("probs", Value::List(vec![Value::Float(0.25), Value::Null])))
            .and_then(|r| r.with("nested", Value::Record(inner)))
            .and_then(|r| r.with("ref", Value::Ref(ObjectHash([7; 32]))))
            .expect("fields")
    }

    #[test]
    fn msgpack_round_trips_in_order() {
        let r = sample();
        let bytes = r.to_msgpack();
        let back = Record::from_msgpack("test", &bytes).expect("decode");
        assert_eq!(back, r);
        assert_eq!(back.fields()[0].0, "label");
        assert_eq!(r.refs(), vec![ObjectHash([7; 32])]);
    }

    #[test]
    fn scan_refs_finds_what_refs_does_in_lists_and_nested_records() {
        let inner = Record::new()
            .with("deep", Value::Ref(ObjectHash([2; 32])))
            .expect("inner");
        let r = Record::new()
            .with("a", Value::Ref(ObjectHash([1; 32])))
            .and_then(|r| r.with("s", Value::Str("x".into())))
            .and_then(|r| {
                let list = vec![Value::Int(3), Value::Ref(ObjectHash([3; 32]))];
                r.with("list", Value::List(list))
            })
            .and_then(|r| r.with("n", Value::Record(inner)))
            .expect("record");
        let mut found = Vec::new();
        scan_refs(&r.to_msgpack(), &mut |h| found.push(h)).expect("scan");
        assert_eq!(found, r.refs());
        assert_eq!(found.len(), 3);
        assert!(scan_refs(&[0x81, 0xa1, b'a', 0xc4, 0x01, 0x00], &mut |_| {}).is_err());
    }

    #[test]
    fn json_round_trips() {
        let r = sample();
        let back = Record::from_json("test", &r.to_json()).expect("decode");
        assert_eq!(back, r);
    }

    #[test]
    fn duplicate_fields_and_deep_nesting_are_rejected() {
        let json: serde_json::Value = serde_json::from_str(r#"{"a":1}"#).expect("json");
        assert!(Record::from_json("t", &json).is_ok());
        // msgpack map with the key "a" twice: 0x82 (map of 2) "a" 1 "a" 2
        let dup = [0x82, 0xa1, b'a', 0x01, 0xa1, b'a', 0x02];
        assert!(Record::from_msgpack("t", &dup).is_err());
        // 100 nested single-element arrays inside a map
        let mut deep = vec![0x81, 0xa1, b'a'];
        deep.extend(std::iter::repeat_n(0x91, 100));
        deep.push(0xc0);
        let err = Record::from_msgpack("t", &deep)
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|m| m.contains("deeper")));
    }

    #[test]
    fn scanning_the_bytes_finds_what_the_decoded_record_says() {
        let inner = Record::new()
            .with("source", Value::Str("cam2".into()))
            .and_then(|r| r.with("n", Value::Int(-70000)))
            .expect("inner");
        let r = Record::new()
            .with("label", Value::Int(3))
            .and_then(|r| r.with("id", Value::Str("img-7".into())))
            .and_then(|r| r.with("score", Value::Float(0.25)))
            .and_then(|r| r.with("ok", Value::Bool(true)))
            .and_then(|r| r.with("none", Value::Null))
            .and_then(|r| r.with("probs", Value::Ref(ObjectHash([9; 32]))))
            .and_then(|r| {
                r.with(
                    "list",
                    Value::List(vec![Value::Str("a".repeat(300)), Value::Int(1 << 40)]),
                )
            })
            .and_then(|r| r.with("meta", Value::Record(inner)))
            .and_then(|r| r.with("num", Value::Str("3.5".into())))
            .expect("record");
        let bytes = r.to_msgpack();
        let mut paths = Vec::new();
        let mut texts = Vec::new();
        let mut all = Vec::new();
        let mut refs = Vec::new();
        scan_fields(&bytes, &mut |p, t| {
            if let Some(Scalar::Ref(h)) = t {
                refs.push((p.to_owned(), h));
            }
            paths.push(p.to_owned());
            if let Some(t) = t
                .and_then(|t| t.index_text())
                .filter(|t| t.parse::<f64>().is_err())
            {
                texts.push((p.to_owned(), t.to_owned()));
            }
            all.push((
                p.to_owned(),
                t.and_then(|t| t.query_text()).map(|t| t.into_owned()),
            ));
        })
        .expect("scan");
        // Every field's text is what the decoded record's value gives.
        for (p, t) in &all {
            let v = r.at_path(p).expect("path");
            assert_eq!(t.as_deref(), v.query_text().as_deref(), "{p}");
        }
        assert_eq!(paths, r.paths());
        assert_eq!(refs, vec![("probs".to_owned(), ObjectHash([9; 32]))]);
        assert_eq!(find_ref(&bytes, "probs"), Ok(Some(ObjectHash([9; 32]))));
        assert_eq!(find_ref(&bytes, "id"), Ok(None));
        assert_eq!(find_ref(&bytes, "nothing"), Ok(None));
        let nested = Record::new()
            .with("out", Value::Record(r.clone()))
            .expect("nested")
            .to_msgpack();
        assert_eq!(
            find_ref(&nested, "out.probs"),
            Ok(Some(ObjectHash([9; 32])))
        );
        assert_eq!(texts, r.query_attrs());
        assert!(texts.contains(&("meta.source".into(), "cam2".into())));
        assert_eq!(r.at_path("meta.n"), Some(&Value::Int(-70000)));
        // Truncated or trailing bytes are errors, never a panic.
        for cut in 0..bytes.len() {
            assert!(
                scan_fields(&bytes[..cut], &mut |_, _| {}).is_err(),
                "cut at {cut}"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(scan_fields(&long, &mut |_, _| {}).is_err());
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = sample().to_msgpack();
        bytes.push(0xc0);
        assert!(Record::from_msgpack("t", &bytes).is_err());
    }
}
