//! Records: structured outputs. An ordered map of field name to scalar (null, bool, int, float,
//! string), list, nested record, or a reference to another object by hash.
//!
//! The msgpack encoding is the canonical form that gets hashed: maps keep their field order,
//! integers take msgpack's shortest form, a float is float64 unless it came in as float32, and a
//! reference is a 32-byte `bin`. Values that msgpack has and a plain record would lose (raw
//! bytes, extension types, maps with keys that are not strings) have canonical forms of their
//! own that no earlier record used (FORMAT.md, "Canonical encoding"), so old hashes hold.

use crate::error::{Error, Result};
use crate::hash::ObjectHash;

use super::record_scan::{Cursor, count};
pub use super::record_scan::{
    MAX_DEPTH, Scalar, Target, find_ref, find_target, scan_fields, scan_refs, scan_top_fields,
};

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
    /// A 32-bit float, kept at its width (msgpack's float32).
    F32(f32),
    /// Raw bytes: a msgpack `bin` outside an array.
    Bytes(Vec<u8>),
    /// A msgpack extension value: its type code and its data.
    Ext(i8, Vec<u8>),
    /// A map with a key that is not a string (msgpack allows any value as a key), its pairs in
    /// order. A map whose keys are all strings is a [`Record`]; this never holds one.
    Map(Vec<(Value, Value)>),
    /// An unsigned integer past `i64::MAX` (msgpack's uint64); smaller ones are `Int`.
    BigUint(u64),
}

/// Extension type codes of the canonical encoding: raw bytes are `ext 1` (a `bin` is always a
/// reference), and a msgpack extension value is `ext 2` holding its own type code, then its
/// data.
pub const EXT_BYTES: i8 = 1;
/// See [`EXT_BYTES`].
pub const EXT_EXT: i8 = 2;

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
        fn walk(r: &Record, prefix: &mut String, out: &mut Vec<(String, String)>) {
            for (name, v) in &r.fields {
                let len = prefix.len();
                if len > 0 {
                    prefix.push('.');
                }
                prefix.push_str(name);
                match v {
                    Value::Record(inner) => walk(inner, prefix, out),
                    // A number's text always reads as a number: never filed (and not
                    // formatted to find that out).
                    Value::Int(_) | Value::Float(_) | Value::F32(_) | Value::BigUint(_) => {}
                    v => {
                        if let Some(t) = v.query_text()
                            && t.parse::<f64>().is_err()
                        {
                            out.push((prefix.clone(), t.into_owned()));
                        }
                    }
                }
                prefix.truncate(len);
            }
        }
        let mut out = Vec::new();
        walk(self, &mut String::new(), &mut out);
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
                Value::Map(pairs) => pairs.iter().for_each(|(k, v)| {
                    walk(k, out);
                    walk(v, out);
                }),
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
        let mut c = Cursor { b: bytes, at: 0 };
        let rec = c
            .byte()
            .and_then(|m| c.value(m, 0))
            .map_err(|e| Error::invalid(input, format!("not a record: {e}")))?;
        if c.at != bytes.len() {
            return Err(Error::invalid(input, "trailing bytes after the record"));
        }
        match rec {
            Value::Record(r) => Ok(r),
            _ => Err(Error::invalid(
                input,
                "not a record: expected a map of field names",
            )),
        }
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
            // As the record scan reads it: widened to f64.
            Value::F32(f) => Some(Cow::Owned(f64::from(*f).to_string())),
            Value::BigUint(u) => Some(Cow::Owned(u.to_string())),
            Value::Ref(_)
            | Value::List(_)
            | Value::Record(_)
            | Value::Bytes(_)
            | Value::Ext(..)
            | Value::Map(_) => None,
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
        Value::BigUint(u) => J::from(*u),
        Value::F32(f) => serde_json::Number::from_f64(f64::from(*f))
            .map(J::Number)
            .unwrap_or_else(|| J::from(f.to_string())),
        // Readable when the bytes are text (truss's `b"__uuid__"` keys), exact either way.
        Value::Bytes(b) => match std::str::from_utf8(b) {
            Ok(t) => serde_json::json!({ "$bin": t }),
            Err(_) => serde_json::json!({ "$bin_b64": b64(b) }),
        },
        Value::Ext(t, d) => serde_json::json!({ "$ext": t, "$data": b64(d) }),
        Value::Map(pairs) => serde_json::json!({
            "$map": pairs
                .iter()
                .map(|(k, v)| J::Array(vec![value_to_json(k), value_to_json(v)]))
                .collect::<Vec<_>>()
        }),
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
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
        Value::F32(f) => rmp::encode::write_f32(out, *f).map_err(|_| ()),
        Value::BigUint(u) => rmp::encode::write_u64(out, *u).map_err(|_| ()),
        Value::Bytes(b) => {
            let _ = rmp::encode::write_ext_meta(out, b.len() as u32, EXT_BYTES);
            out.extend_from_slice(b);
            Ok(())
        }
        Value::Ext(t, d) => {
            let _ = rmp::encode::write_ext_meta(out, d.len() as u32 + 1, EXT_EXT);
            out.push(*t as u8);
            out.extend_from_slice(d);
            Ok(())
        }
        Value::Map(pairs) => {
            let _ = rmp::encode::write_map_len(out, pairs.len() as u32);
            for (k, v) in pairs {
                write_value(out, k);
                write_value(out, v);
            }
            Ok(())
        }
    };
}

/// The canonical form's decoder, over the scanner's reader.
impl Cursor<'_> {
    /// Decode the value whose marker was just read.
    fn value(&mut self, marker: u8, depth: usize) -> std::result::Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        Ok(match marker {
            0xc0 => Value::Null,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            m @ 0x00..=0x7f => Value::Int(i64::from(m)),
            m @ 0xe0..=0xff => Value::Int(i64::from(m as i8)),
            0xcc..=0xcf => {
                let u = self.uint(1 << (marker - 0xcc))?;
                i64::try_from(u).map_or(Value::BigUint(u), Value::Int)
            }
            0xd0..=0xd3 => {
                let len = 1usize << (marker - 0xd0);
                let shift = 64 - 8 * len as u32;
                Value::Int(((self.uint(len)? << shift) as i64) >> shift)
            }
            0xca => Value::F32(f32::from_bits(self.uint(4)? as u32)),
            0xcb => Value::Float(f64::from_bits(self.uint(8)?)),
            m @ 0xa0..=0xbf => Value::Str(self.str_of(usize::from(m & 0x1f))?.to_owned()),
            0xd9..=0xdb => {
                let n = self.be(1 << (marker - 0xd9))?;
                Value::Str(self.str_of(n)?.to_owned())
            }
            0xc4..=0xc6 => {
                let n = self.be(1 << (marker - 0xc4))?;
                Value::Ref(
                    ObjectHash::from_slice(self.take(n)?)
                        .ok_or("binary value is not a 32-byte object reference")?,
                )
            }
            0xd4..=0xd8 | 0xc7..=0xc9 => match self.ext(marker)? {
                (EXT_BYTES, data) => Value::Bytes(data.to_vec()),
                (EXT_EXT, [t, data @ ..]) => Value::Ext(*t as i8, data.to_vec()),
                (t, _) => return Err(format!("extension type {t} has no record value")),
            },
            m @ (0x90..=0x9f | 0xdc | 0xdd) => {
                let n = count(self, m)?;
                // Each item takes a byte at least: a count past the bytes left is refused
                // before anything is allocated for it.
                let mut items = Vec::with_capacity(n.min(self.b.len().saturating_sub(self.at)));
                for _ in 0..n {
                    let m = self.byte()?;
                    items.push(self.value(m, depth + 1)?);
                }
                Value::List(items)
            }
            m @ (0x80..=0x8f | 0xde | 0xdf) => self.map(m, depth)?,
            m => return Err(format!("unexpected marker 0x{m:02x} in a record")),
        })
    }

    /// A map whose marker was read: a record if its keys are all strings, else a `Map`.
    fn map(&mut self, marker: u8, depth: usize) -> std::result::Result<Value, String> {
        let n = count(self, marker)?;
        let mut pairs = Vec::with_capacity(n.min(self.b.len().saturating_sub(self.at) / 2));
        for _ in 0..n {
            let k = self.byte().and_then(|m| self.value(m, depth + 1))?;
            let v = self.byte().and_then(|m| self.value(m, depth + 1))?;
            pairs.push((k, v));
        }
        Value::from_pairs(pairs).map_err(|e| e.to_string())
    }
}

impl Value {
    /// A msgpack map's pairs as a value: a record when every key is a string (each once),
    /// else a `Map` kept as it is.
    pub fn from_pairs(pairs: Vec<(Value, Value)>) -> Result<Value> {
        if !pairs.iter().all(|(k, _)| matches!(k, Value::Str(_))) {
            return Ok(Value::Map(pairs));
        }
        let mut rec = Record::new();
        for (k, v) in pairs {
            if let Value::Str(k) = k {
                rec.insert(k, v)?;
            }
        }
        Ok(Value::Record(rec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::ser::{SerializeMap, SerializeSeq};
    use serde::{Serialize, Serializer};

    // What records were written with before the hand-written encoder: the encoder must
    // give the same bytes for every value rmp-serde wrote.
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
                _ => Err(serde::ser::Error::custom("not written by rmp-serde")),
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
        // The top-level names alone give what the whole scan gives for them.
        let names = [
            "num", "label", "id", "score", "ok", "none", "probs", "list", "meta", "missing",
        ];
        let mut top = vec![None; names.len()];
        scan_top_fields(&bytes, &names, &mut |i, t| {
            top[i] = Some(t.and_then(|t| t.query_text()).map(|t| t.into_owned()));
        })
        .expect("top fields");
        for (name, got) in names.iter().zip(&top) {
            let want = all.iter().find(|(p, _)| p == name).map(|(_, t)| t.clone());
            assert_eq!(got, &want, "{name}");
        }
        assert_eq!(
            (top[1].clone(), top[9].clone()),
            (Some(Some("3".into())), None)
        );
        for cut in 0..bytes.len() {
            let mut none = |_, _| {};
            assert!(
                scan_top_fields(&bytes[..cut], &names, &mut none).is_err(),
                "cut at {cut}"
            );
        }
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

    /// msgpack's values beyond plain records, each with a canonical form of its own.
    fn kept() -> Record {
        let map = Value::Map(vec![
            (Value::Bytes(b"__uuid__".to_vec()), Value::Bool(true)),
            (Value::Int(7), Value::Str("seven".into())),
            (
                Value::Bytes(vec![9; 32]),
                Value::Ref(crate::hash::ObjectHash([4; 32])),
            ),
        ]);
        Record::new()
            .with("m", map)
            .and_then(|r| r.with("b32", Value::Bytes(vec![1; 32])))
            .and_then(|r| r.with("e", Value::Ext(-1, vec![0, 1, 2, 3])))
            .and_then(|r| r.with("e1", Value::Ext(1, Vec::new())))
            .and_then(|r| r.with("f", Value::F32(0.1)))
            .and_then(|r| r.with("big", Value::BigUint(u64::MAX)))
            .and_then(|r| r.with("after", Value::Str("x".into())))
            .expect("record")
    }

    #[test]
    fn kept_values_round_trip_and_never_read_as_references() {
        let r = kept();
        let bytes = r.to_msgpack();
        assert_eq!(Record::from_msgpack("t", &bytes).expect("decode"), r);
        // 32 raw bytes are not a reference; the map's reference is found.
        assert_eq!(r.refs(), vec![crate::hash::ObjectHash([4; 32])]);
        let mut scanned = Vec::new();
        scan_refs(&bytes, &mut |h| scanned.push(h)).expect("scan");
        assert_eq!(scanned, r.refs());
        // A map with keys that are not strings has no fields: the scan names it and goes on.
        let mut paths = Vec::new();
        scan_fields(&bytes, &mut |p, v| paths.push((p.to_owned(), v.is_some()))).expect("scan");
        let names: Vec<_> = paths.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["m", "b32", "e", "e1", "f", "big", "after"]);
        assert_eq!(r.paths(), names);
        assert_eq!(find_ref(&bytes, "m.x"), Ok(None));
        assert_eq!(
            Value::F32(0.1).query_text().as_deref(),
            Some("0.10000000149011612")
        );
        // Every cut is refused, never read as something else.
        for cut in 0..bytes.len() {
            assert!(
                Record::from_msgpack("t", &bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        // Only the two extension codes of the canonical form are values.
        let mut odd = Record::new()
            .with("x", Value::Null)
            .expect("r")
            .to_msgpack();
        odd.truncate(odd.len() - 1);
        odd.extend([0xd4, 3, 0]);
        assert!(Record::from_msgpack("t", &odd).is_err());
    }
}
