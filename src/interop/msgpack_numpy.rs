//! msgpack with msgpack-numpy's array encoding: an array is a map with the binary keys `nd`
//! (true), `type` (the dtype's `descr`, e.g. `<f4`), `kind` (empty), `shape` and `data` (the
//! bytes, C order); a numpy scalar is the same with `nd` false and no shape; a Python complex
//! is `{complex: true, data: "(1+2j)"}`. Arrays may sit anywhere in ordinary maps and lists.
//!
//! msgpack-numpy marks its maps with *binary* keys (`b'nd'`), so a map with a string key
//! `"nd"` is ordinary data, exactly as `msgpack_numpy.decode` sees it. bfloat16 and fp8 go
//! out with their `ml_dtypes` names as `type` (`bfloat16`), which `decode` turns into the
//! right dtype wherever `ml_dtypes` is imported; msgpack-numpy itself writes such arrays as
//! void (`kind` `V`), which loses the type and is refused, as is `kind` `O` (a pickle).
//!
//! The parser is hand-written over `&[u8]` so that array data is borrowed, not copied, and so
//! that every length is checked against the bytes that remain before anything is allocated.

use std::borrow::Cow;

use rmp::Marker;

use super::npy::{descr, parse_numpy_dtype, pickle_refusal, swap_to_little_endian};
use super::{Array, Document, MAX_DOCUMENT_DEPTH, join_path};
use crate::error::{Error, Result};
use crate::hash::ObjectHash;
use crate::object::record::Value;
use crate::object::tensor::{Dtype, Shape};

/// One decoded msgpack value, before arrays are recognised.
#[derive(Debug)]
enum Node<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    /// An unsigned integer past `i64::MAX`.
    BigUint(u64),
    Float(f64),
    F32(f32),
    Str(&'a [u8]),
    Bin(&'a [u8]),
    Array(Vec<Node<'a>>),
    Map(Vec<(Node<'a>, Node<'a>)>),
    Ext(i8, &'a [u8]),
}

struct Parser<'a, 'i> {
    input: &'i str,
    bytes: &'a [u8],
    pos: usize,
    /// Set when a read ran past the end of `bytes`: the value is cut short.
    ran_out: bool,
}

impl<'a> Parser<'a, '_> {
    fn bad(&self, why: impl std::fmt::Display) -> Error {
        Error::invalid(
            self.input,
            format!("not valid msgpack at byte {}: {why}", self.pos),
        )
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let Some(end) = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()) else {
            self.ran_out = true;
            return Err(self.bad(format!("truncated: {n} more bytes needed")));
        };
        let out = self.bytes.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(out)
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    fn len_u8(&mut self) -> Result<usize> {
        Ok(usize::from(self.be::<1>()?[0]))
    }
    fn len_u16(&mut self) -> Result<usize> {
        Ok(usize::from(u16::from_be_bytes(self.be()?)))
    }
    fn len_u32(&mut self) -> Result<usize> {
        Ok(u32::from_be_bytes(self.be()?) as usize)
    }

    /// A container of `n` items of at least `min` bytes each must fit in what remains.
    fn check_count(&mut self, n: usize, min: usize) -> Result<()> {
        let remaining = self.bytes.len().saturating_sub(self.pos);
        if n.saturating_mul(min) > remaining {
            self.ran_out = true;
            return Err(self.bad(format!(
                "claims {n} items but only {remaining} bytes remain"
            )));
        }
        Ok(())
    }

    /// The next value. Kept as one exhaustive match over the marker, so the compiler checks
    /// that every marker is handled and each value costs a single dispatch. Every length is
    /// checked against the bytes that remain (`take`, `check_count`) before it is used.
    fn node(&mut self, depth: usize) -> Result<Node<'a>> {
        // Arrays sit two levels below their place in the document (their map, its `shape`).
        if depth > MAX_DOCUMENT_DEPTH + 2 {
            return Err(self.bad(format!("nested deeper than {MAX_DOCUMENT_DEPTH} levels")));
        }
        let byte = self.be::<1>()?[0];
        Ok(match Marker::from_u8(byte) {
            Marker::FixPos(v) => Node::Int(i64::from(v)),
            Marker::FixNeg(v) => Node::Int(i64::from(v)),
            Marker::Null => Node::Nil,
            Marker::True => Node::Bool(true),
            Marker::False => Node::Bool(false),
            Marker::U8 => Node::Int(i64::from(self.be::<1>()?[0])),
            Marker::U16 => Node::Int(i64::from(u16::from_be_bytes(self.be()?))),
            Marker::U32 => Node::Int(i64::from(u32::from_be_bytes(self.be()?))),
            Marker::U64 => {
                let v = u64::from_be_bytes(self.be()?);
                i64::try_from(v).map_or(Node::BigUint(v), Node::Int)
            }
            Marker::I8 => Node::Int(i64::from(i8::from_be_bytes(self.be()?))),
            Marker::I16 => Node::Int(i64::from(i16::from_be_bytes(self.be()?))),
            Marker::I32 => Node::Int(i64::from(i32::from_be_bytes(self.be()?))),
            Marker::I64 => Node::Int(i64::from_be_bytes(self.be()?)),
            Marker::F32 => Node::F32(f32::from_be_bytes(self.be()?)),
            Marker::F64 => Node::Float(f64::from_be_bytes(self.be()?)),
            Marker::FixStr(n) => Node::Str(self.take(usize::from(n))?),
            Marker::Str8 => Node::Str(self.len_u8().and_then(|n| self.take(n))?),
            Marker::Str16 => Node::Str(self.len_u16().and_then(|n| self.take(n))?),
            Marker::Str32 => Node::Str(self.len_u32().and_then(|n| self.take(n))?),
            Marker::Bin8 => Node::Bin(self.len_u8().and_then(|n| self.take(n))?),
            Marker::Bin16 => Node::Bin(self.len_u16().and_then(|n| self.take(n))?),
            Marker::Bin32 => Node::Bin(self.len_u32().and_then(|n| self.take(n))?),
            Marker::FixArray(n) => self.array(usize::from(n), depth)?,
            Marker::Array16 => self.len_u16().and_then(|n| self.array(n, depth))?,
            Marker::Array32 => self.len_u32().and_then(|n| self.array(n, depth))?,
            Marker::FixMap(n) => self.map(usize::from(n), depth)?,
            Marker::Map16 => self.len_u16().and_then(|n| self.map(n, depth))?,
            Marker::Map32 => self.len_u32().and_then(|n| self.map(n, depth))?,
            Marker::FixExt1 => self.ext(1)?,
            Marker::FixExt2 => self.ext(2)?,
            Marker::FixExt4 => self.ext(4)?,
            Marker::FixExt8 => self.ext(8)?,
            Marker::FixExt16 => self.ext(16)?,
            Marker::Ext8 => self.len_u8().and_then(|n| self.ext(n))?,
            Marker::Ext16 => self.len_u16().and_then(|n| self.ext(n))?,
            Marker::Ext32 => self.len_u32().and_then(|n| self.ext(n))?,
            Marker::Reserved => {
                self.pos -= 1;
                return Err(self.bad("byte 0xc1 is not a msgpack type"));
            }
        })
    }

    fn ext(&mut self, n: usize) -> Result<Node<'a>> {
        let ty = self.be::<1>()?[0] as i8;
        Ok(Node::Ext(ty, self.take(n)?))
    }

    fn array(&mut self, n: usize, depth: usize) -> Result<Node<'a>> {
        self.check_count(n, 1)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.node(depth + 1)?);
        }
        Ok(Node::Array(items))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Node<'a>> {
        self.check_count(n, 2)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.node(depth + 1)?;
            let v = self.node(depth + 1)?;
            entries.push((k, v));
        }
        Ok(Node::Map(entries))
    }
}

/// Read one msgpack value. A stream of several values is refused with a pointer to
/// [`read_stream`].
pub fn read<'a>(input: &str, bytes: &'a [u8]) -> Result<Document<'a>> {
    let mut p = Parser {
        input,
        bytes,
        pos: 0,
        ran_out: false,
    };
    let node = p.node(0)?;
    if p.pos != bytes.len() {
        return Err(Error::invalid(
            input,
            format!(
                "holds more msgpack after the first value (at byte {}): a stream of values; \
                 read it as a stream (`archive put` stores each value as its own entry)",
                p.pos
            ),
        ));
    }
    to_document(input, node, &String::new, 0)
}

/// Read every value of a msgpack stream (values one after another, as `msgpack.Packer`
/// writes them), each as its own document.
pub fn read_stream<'a>(input: &str, bytes: &'a [u8]) -> Result<Vec<Document<'a>>> {
    if bytes.is_empty() {
        return Err(Error::invalid(input, "is empty: no msgpack value"));
    }
    let mut p = Parser {
        input,
        bytes,
        pos: 0,
        ran_out: false,
    };
    let mut docs = Vec::new();
    while p.pos < bytes.len() {
        let node = p.node(0)?;
        let where_ = if docs.is_empty() && p.pos == bytes.len() {
            String::new()
        } else {
            format!("[{}]", docs.len())
        };
        docs.push(to_document(input, node, &|| where_.clone(), 0)?);
    }
    Ok(docs)
}

/// Read the first value of a msgpack stream that may not have fully arrived yet: the document
/// and the bytes it took, or `None` if `bytes` ends inside the value (read more and retry).
/// A value that is complete but malformed is an error, as in `read`.
pub fn read_one<'a>(input: &str, bytes: &'a [u8]) -> Result<Option<(Document<'a>, usize)>> {
    let mut p = Parser {
        input,
        bytes,
        pos: 0,
        ran_out: false,
    };
    let node = match p.node(0) {
        Ok(node) => node,
        Err(_) if p.ran_out && bytes.len() < MAX_PENDING => return Ok(None),
        Err(e) => return Err(e),
    };
    let used = p.pos;
    Ok(Some((to_document(input, node, &String::new, 0)?, used)))
}

/// Bytes waiting for the rest of a value are bounded: past this a value is refused.
const MAX_PENDING: usize = 1 << 30;

fn key_str<'a>(k: &Node<'a>) -> Option<&'a [u8]> {
    match k {
        Node::Str(s) | Node::Bin(s) => Some(s),
        _ => None,
    }
}

fn bin_key(entries: &[(Node<'_>, Node<'_>)], name: &str) -> bool {
    entries
        .iter()
        .any(|(k, _)| matches!(k, Node::Bin(b) if *b == name.as_bytes()))
}

/// An array as msgpack-numpy wrote it through msgpack's packer before 1.0 (`use_bin_type`
/// off): every key, and the data, a raw string. msgpack-numpy still reads such files (with
/// `raw=True`), so they are arrays here too when the map has exactly its keys: string keys
/// `nd` (a boolean), `type` and `data`, and at most `kind` and `shape` besides.
fn legacy_array(entries: &[(Node<'_>, Node<'_>)]) -> bool {
    legacy_map(entries, &["nd", "type", "data"], &["kind", "shape"], "nd")
}

/// A Python complex written the same old way: string keys `complex` (true) and `data`.
fn legacy_complex(entries: &[(Node<'_>, Node<'_>)]) -> bool {
    legacy_map(entries, &["complex", "data"], &[], "complex")
}

fn legacy_map(
    entries: &[(Node<'_>, Node<'_>)],
    needed: &[&str],
    optional: &[&str],
    flag: &str,
) -> bool {
    let named = |k: &Node<'_>, name: &str| matches!(k, Node::Str(s) if *s == name.as_bytes());
    entries.len() <= needed.len() + optional.len()
        && needed
            .iter()
            .all(|n| entries.iter().any(|(k, _)| named(k, n)))
        && entries
            .iter()
            .all(|(k, _)| needed.iter().chain(optional).any(|n| named(k, n)))
        && entries
            .iter()
            .any(|(k, v)| named(k, flag) && matches!(v, Node::Bool(_)))
}

/// Where a node sits, for error messages: made only when an error needs it, so a record's
/// fields cost no allocations for their paths.
type PathFn<'p> = &'p dyn Fn() -> String;

/// An error at the node `path` names (the top level when it is empty).
#[cold]
fn error_at(input: &str, path: PathFn<'_>, why: String) -> Error {
    let place = path();
    let place = if place.is_empty() {
        "the top level".to_owned()
    } else {
        place
    };
    Error::invalid(input, format!("at {place}: {why}"))
}

fn to_document<'a>(
    input: &str,
    node: Node<'a>,
    path: PathFn<'_>,
    depth: usize,
) -> Result<Document<'a>> {
    let at = |why: String| error_at(input, path, why);
    if depth > MAX_DOCUMENT_DEPTH {
        return Err(at(format!(
            "nested deeper than {MAX_DOCUMENT_DEPTH} levels"
        )));
    }
    Ok(match node {
        Node::Nil => Document::Scalar(Value::Null),
        Node::Bool(b) => Document::Scalar(Value::Bool(b)),
        Node::Int(i) => Document::Scalar(Value::Int(i)),
        Node::BigUint(u) => Document::Scalar(Value::BigUint(u)),
        Node::Float(f) => Document::Scalar(Value::Float(f)),
        Node::Str(s) => Document::Scalar(Value::Str(
            std::str::from_utf8(s)
                .map_err(|_| at("a string is not valid UTF-8".into()))?
                .to_owned(),
        )),
        n @ (Node::F32(_) | Node::Bin(_) | Node::Ext(..)) => {
            Document::Scalar(node_to_value(input, n, path, depth)?)
        }
        Node::Array(items) => Document::List(list_items(input, items, path, depth)?),
        Node::Map(entries) if bin_key(&entries, "nd") || legacy_array(&entries) => {
            Document::Tensor(array(input, entries, path)?)
        }
        Node::Map(entries) if bin_key(&entries, "complex") || legacy_complex(&entries) => {
            Document::Tensor(complex(input, entries, &path())?)
        }
        Node::Map(entries) => {
            if let [(Node::Str(b"$ref"), Node::Str(hex))] = entries.as_slice() {
                return reference(input, hex, path);
            }
            if entries.iter().all(|(k, _)| matches!(k, Node::Str(_))) {
                Document::Map(map_fields(input, entries, path, depth)?)
            } else {
                Document::Scalar(node_to_value(input, Node::Map(entries), path, depth)?)
            }
        }
    })
}

/// A value kept as msgpack has it, for what a record's fields cannot say: a map with a key
/// that is not a string (truss's `{b"__uuid__": true, b"data": ...}`), raw bytes, extension
/// values and float32s, and whatever those hold. Arrays have no place in it.
fn node_to_value(input: &str, node: Node<'_>, path: PathFn<'_>, depth: usize) -> Result<Value> {
    let at = |why: String| error_at(input, path, why);
    if depth > MAX_DOCUMENT_DEPTH {
        return Err(at(format!(
            "nested deeper than {MAX_DOCUMENT_DEPTH} levels"
        )));
    }
    let inner = |n: Node<'_>| node_to_value(input, n, path, depth + 1);
    Ok(match node {
        Node::F32(f) => Value::F32(f),
        Node::Bin(b) => Value::Bytes(b.to_vec()),
        Node::Ext(t, d) => Value::Ext(t, d.to_vec()),
        Node::Array(items) => Value::List(items.into_iter().map(inner).collect::<Result<_>>()?),
        Node::Map(entries)
            if bin_key(&entries, "nd")
                || legacy_array(&entries)
                || bin_key(&entries, "complex") =>
        {
            return Err(at(
                "a msgpack-numpy array inside a map whose keys are not all strings; such maps \
                 are kept as values, which hold no arrays"
                    .into(),
            ));
        }
        Node::Map(entries) => {
            let pairs = entries
                .into_iter()
                .map(|(k, v)| Ok((inner(k)?, inner(v)?)))
                .collect::<Result<Vec<_>>>()?;
            Value::from_pairs(pairs).map_err(|e| at(e.to_string()))?
        }
        other => match to_document(input, other, path, depth)? {
            Document::Scalar(v) => v,
            _ => return Err(at("an array where a plain value was expected".into())),
        },
    })
}

/// A list's items, each one level deeper. Inlined: it is `to_document`'s own loop.
#[inline]
fn list_items<'a>(
    input: &str,
    items: Vec<Node<'a>>,
    path: PathFn<'_>,
    depth: usize,
) -> Result<Vec<Document<'a>>> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, n)| to_document(input, n, &|| format!("{}[{i}]", path()), depth + 1))
        .collect()
}

/// `{"$ref": hex}`: a reference to a stored object.
fn reference<'a>(input: &str, hex: &[u8], path: PathFn<'_>) -> Result<Document<'a>> {
    let hex = std::str::from_utf8(hex).unwrap_or_default();
    let h: ObjectHash = hex
        .parse()
        .map_err(|_| error_at(input, path, format!("`$ref` `{hex}` is not an object hash")))?;
    Ok(Document::Scalar(Value::Ref(h)))
}

/// A plain map's fields, in order: keys must be strings, each once; values one level deeper.
/// Inlined: it is `to_document`'s own loop, run for every record.
#[inline]
fn map_fields<'a>(
    input: &str,
    entries: Vec<(Node<'a>, Node<'a>)>,
    path: PathFn<'_>,
    depth: usize,
) -> Result<Vec<(String, Document<'a>)>> {
    let at = |why: String| error_at(input, path, why);
    let mut fields: Vec<(String, Document<'a>)> = Vec::with_capacity(entries.len());
    // Small maps (records) check duplicates by scanning; large ones through a set.
    let mut seen = std::collections::HashSet::new();
    let small = entries.len() <= 32;
    for (k, v) in entries {
        let key = key_str(&k)
            .and_then(|k| std::str::from_utf8(k).ok())
            .ok_or_else(|| {
                at(format!(
                    "a map key is {k:?}, not a string; records have string field names"
                ))
            })?
            .to_owned();
        let twice = if small {
            fields.iter().any(|(f, _)| *f == key)
        } else {
            !seen.insert(key.clone())
        };
        if twice {
            return Err(at(format!("the key `{key}` appears twice in one map")));
        }
        let doc = to_document(input, v, &|| join_path(&path(), '.', &key), depth + 1)?;
        fields.push((key, doc));
    }
    Ok(fields)
}

/// Where an array sits, for its errors. The name (input and path) is made only when there is
/// an error: arrays are read at a high rate on the logging path.
#[derive(Clone, Copy)]
struct ArrayAt<'i, 'p> {
    input: &'i str,
    path: PathFn<'p>,
}

impl ArrayAt<'_, '_> {
    #[cold]
    fn name(&self) -> String {
        let path = (self.path)();
        if path.is_empty() {
            self.input.to_owned()
        } else {
            format!("{}: {path}", self.input)
        }
    }

    #[cold]
    fn bad(&self, why: &str) -> Error {
        Error::invalid(
            self.name(),
            format!("not a valid msgpack-numpy array: {why}"),
        )
    }

    /// An error from a helper that names only the input, renamed to name the array.
    #[cold]
    fn renamed(&self, e: Error) -> Error {
        match e {
            Error::InvalidInput { reason, .. } => Error::invalid(self.name(), reason),
            other => other,
        }
    }
}

/// An msgpack-numpy map's values by key; a key that appears twice keeps its last value.
#[derive(Default)]
struct ArrayFields<'a> {
    nd: Option<Node<'a>>,
    ty: Option<Node<'a>>,
    kind: Option<Node<'a>>,
    shape: Option<Node<'a>>,
    data: Option<Node<'a>>,
}

impl<'a> ArrayFields<'a> {
    /// Pick out the map's values by key; any other key is refused. Filled in place rather
    /// than returned, so the fields are not moved again on a path taken for every array.
    #[inline]
    fn pick(&mut self, entries: Vec<(Node<'a>, Node<'a>)>, at: ArrayAt<'_, '_>) -> Result<()> {
        for (k, v) in entries {
            match key_str(&k) {
                Some(b"nd") => self.nd = Some(v),
                Some(b"type") => self.ty = Some(v),
                Some(b"kind") => self.kind = Some(v),
                Some(b"shape") => self.shape = Some(v),
                Some(b"data") => self.data = Some(v),
                _ => return Err(at.bad(&format!("unexpected key {k:?}"))),
            }
        }
        Ok(())
    }
}

/// An msgpack-numpy array or numpy scalar map. Kept out of line: inlined into the recursive
/// `to_document`, it would enlarge the frame that every nested value pays for.
#[inline(never)]
fn array<'a>(
    input: &str,
    entries: Vec<(Node<'a>, Node<'a>)>,
    path: PathFn<'_>,
) -> Result<Array<'a>> {
    let at = ArrayAt { input, path };
    // The checks run in a fixed order, so a map with several faults is always refused for the
    // same one.
    let mut f = ArrayFields::default();
    f.pick(entries, at)?;
    let is_array = match f.nd {
        Some(Node::Bool(b)) => b,
        _ => return Err(at.bad("`nd` is not a boolean")),
    };
    check_kind(f.kind.as_ref(), at)?;
    let ty = match f.ty {
        Some(Node::Str(s) | Node::Bin(s)) => std::str::from_utf8(s).unwrap_or("?"),
        _ => return Err(at.bad("`type` is not a string")),
    };
    let (dtype, big_endian) = parse_numpy_dtype(input, ty).map_err(|e| at.renamed(e))?;
    let shape = if is_array {
        array_shape(f.shape, at)?
    } else {
        Shape::new(vec![])
    };
    let bytes = match f.data {
        Some(Node::Bin(b) | Node::Str(b)) => b,
        _ => return Err(at.bad("`data` is not binary")),
    };
    let mut array =
        Array::new(input, dtype, shape, Cow::Borrowed(bytes)).map_err(|e| at.renamed(e))?;
    if big_endian {
        swap_to_little_endian(dtype, array.data.to_mut());
    }
    Ok(array)
}

/// `kind` must be empty (or absent): 'O' is a pickle and 'V' an ml_dtypes array whose type
/// msgpack-numpy lost, each refused with its own reason.
#[inline]
fn check_kind(kind: Option<&Node<'_>>, at: ArrayAt<'_, '_>) -> Result<()> {
    match kind.map(key_str) {
        None | Some(Some(b"")) => Ok(()),
        Some(Some(b"O")) => Err(Error::invalid(
            at.name(),
            pickle_refusal("holds Python objects (msgpack-numpy kind 'O')"),
        )),
        Some(Some(b"V")) => Err(Error::invalid(
            at.name(),
            "holds void or structured elements (msgpack-numpy kind 'V'): msgpack-numpy \
             writes ml_dtypes arrays (bfloat16, float8) this way and loses which type \
             they were; send `type` as the ml_dtypes name (`bfloat16`, `float8_e4m3fn`, \
             `float8_e5m2`) with an empty `kind`, or use safetensors",
        )),
        Some(_) => Err(at.bad("`kind` is not '', 'V' or 'O'")),
    }
}

/// An array's `shape`: a list of non-negative integers.
#[inline]
fn array_shape(shape: Option<Node<'_>>, at: ArrayAt<'_, '_>) -> Result<Shape> {
    let Some(Node::Array(dims)) = shape else {
        return Err(at.bad("`shape` is not a list"));
    };
    let dims = dims
        .iter()
        .map(|d| match d {
            Node::Int(i) => u64::try_from(*i).ok(),
            Node::BigUint(u) => Some(*u),
            _ => None,
        })
        .collect::<Option<Vec<u64>>>()
        .ok_or_else(|| at.bad("`shape` holds something other than non-negative integers"))?;
    Ok(Shape::new(dims))
}

/// A Python complex as msgpack-numpy writes it: `{complex: true, data: repr(z)}`.
fn complex<'a>(input: &str, entries: Vec<(Node<'a>, Node<'a>)>, path: &str) -> Result<Array<'a>> {
    let here = format!(
        "{input}: {}",
        if path.is_empty() { "top level" } else { path }
    );
    let text = entries
        .iter()
        .find(|(k, _)| key_str(k) == Some(b"data"))
        .and_then(|(_, v)| key_str(v))
        .and_then(|s| std::str::from_utf8(s).ok())
        .ok_or_else(|| Error::invalid(&here, "a msgpack-numpy complex without string `data`"))?;
    let (re, im) = parse_complex(text)
        .ok_or_else(|| Error::invalid(&here, format!("`{text}` is not a Python complex number")))?;
    let mut data = re.to_le_bytes().to_vec();
    data.extend_from_slice(&im.to_le_bytes());
    Array::new(&here, Dtype::C128, Shape::new(vec![]), Cow::Owned(data))
}

/// Parse Python's `repr` of a complex: `1j`, `(1+2j)`, `(-0-0j)`, `(nan+infj)`, `(1e-05-2j)`.
fn parse_complex(s: &str) -> Option<(f64, f64)> {
    let s = s.trim();
    let s = s
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or(s);
    let body = s.strip_suffix('j')?;
    let split = body
        .char_indices()
        .filter(|&(i, c)| {
            i > 0
                && (c == '+' || c == '-')
                && !body
                    .get(..i)
                    .is_some_and(|p| p.ends_with('e') || p.ends_with('E'))
        })
        .map(|(i, _)| i)
        .next_back();
    match split {
        Some(i) => Some((body.get(..i)?.parse().ok()?, body.get(i..)?.parse().ok()?)),
        None => Some((0.0, body.parse().ok()?)),
    }
}

/// Write a document as one msgpack value, arrays in msgpack-numpy's encoding.
pub fn write(output: &str, doc: &Document<'_>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    write_node(output, doc, &mut out)?;
    Ok(out)
}

fn write_node(output: &str, doc: &Document<'_>, out: &mut Vec<u8>) -> Result<()> {
    use rmp::encode as enc;
    // Writing into a Vec cannot fail; lengths past u32 are refused before they are written.
    let len32 = |n: usize, what: &str| {
        u32::try_from(n).map_err(|_| {
            Error::invalid(
                output,
                format!("msgpack cannot hold {what} of {n} items or bytes (the limit is 2^32 - 1)"),
            )
        })
    };
    match doc {
        Document::Tensor(a) => {
            let ty = descr(a.dtype()).ok_or_else(|| {
                Error::invalid(
                    output,
                    format!("msgpack-numpy has no dtype for {}", a.dtype()),
                )
            })?;
            let _ = enc::write_map_len(out, 5);
            let _ = enc::write_bin(out, b"nd");
            let _ = enc::write_bool(out, true);
            let _ = enc::write_bin(out, b"type");
            let _ = enc::write_str(out, &ty);
            let _ = enc::write_bin(out, b"kind");
            let _ = enc::write_bin(out, b"");
            let _ = enc::write_bin(out, b"shape");
            let _ = enc::write_array_len(out, len32(a.shape().rank(), "a shape")?);
            for &d in a.shape().dims() {
                let _ = enc::write_uint(out, d);
            }
            let _ = enc::write_bin(out, b"data");
            let _ = enc::write_bin_len(out, len32(a.data().len(), "an array")?);
            out.extend_from_slice(a.data());
        }
        Document::Map(fields) => {
            let _ = enc::write_map_len(out, len32(fields.len(), "a map")?);
            for (k, v) in fields {
                let _ = enc::write_str(out, k);
                write_node(output, v, out)?;
            }
        }
        Document::List(items) => {
            let _ = enc::write_array_len(out, len32(items.len(), "a list")?);
            for v in items {
                write_node(output, v, out)?;
            }
        }
        Document::Scalar(v) => write_value(v, out),
    }
    Ok(())
}

fn write_value(v: &Value, out: &mut Vec<u8>) {
    use rmp::encode as enc;
    match v {
        Value::Null => {
            let _ = enc::write_nil(out);
        }
        Value::Bool(b) => {
            let _ = enc::write_bool(out, *b);
        }
        Value::Int(i) => {
            let _ = enc::write_sint(out, *i);
        }
        Value::Float(f) => {
            let _ = enc::write_f64(out, *f);
        }
        Value::Str(s) => {
            let _ = enc::write_str(out, s);
        }
        Value::Ref(h) => {
            let _ = enc::write_map_len(out, 1);
            let _ = enc::write_str(out, "$ref");
            let _ = enc::write_str(out, &h.to_string());
        }
        Value::List(items) => {
            let _ = enc::write_array_len(out, items.len() as u32);
            for i in items {
                write_value(i, out);
            }
        }
        Value::Record(r) => {
            let _ = enc::write_map_len(out, r.len() as u32);
            for (k, v) in r.fields() {
                let _ = enc::write_str(out, k);
                write_value(v, out);
            }
        }
        Value::F32(f) => {
            let _ = enc::write_f32(out, *f);
        }
        Value::BigUint(u) => {
            let _ = enc::write_u64(out, *u);
        }
        Value::Bytes(b) => {
            let _ = enc::write_bin(out, b);
        }
        Value::Ext(t, d) => {
            let _ = enc::write_ext_meta(out, d.len() as u32, *t);
            out.extend_from_slice(d);
        }
        Value::Map(pairs) => {
            let _ = enc::write_map_len(out, pairs.len() as u32);
            for (k, v) in pairs {
                write_value(k, out);
                write_value(v, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Issue 4: `archive log` reads a stream as it arrives; a value cut anywhere must read as
    // "not yet", never as malformed (a map that claims more items than the bytes so far did).
    #[test]
    fn a_value_cut_anywhere_waits_for_its_rest() {
        let whole = sample();
        for cut in 1..whole.len() {
            match read_one("t", &whole[..cut]) {
                Ok(None) => {}
                other => panic!("cut at {cut}: {:?}", other.map(|o| o.map(|(_, n)| n))),
            }
        }
        let mut two = whole.clone();
        two.extend_from_slice(&whole);
        let (_, used) = read_one("t", &two).expect("read").expect("a whole value");
        assert_eq!(used, whole.len());
    }

    /// `msgpack.packb({"probs": np.array([1.5, -2.0], ">f4"), "n": 3}, default=m.encode)`
    fn sample() -> Vec<u8> {
        let mut v = vec![0x82, 0xa5];
        v.extend_from_slice(b"probs");
        v.push(0x85);
        for (k, val) in [
            (&b"nd"[..], &[0xc3][..]),
            (b"type", b"\xa3>f4"),
            (b"kind", b"\xc4\x00"),
            (b"shape", b"\x91\x02"),
        ] {
            v.extend_from_slice(&[0xc4, k.len() as u8]);
            v.extend_from_slice(k);
            v.extend_from_slice(val);
        }
        v.extend_from_slice(b"\xc4\x04data\xc4\x08");
        v.extend_from_slice(&1.5f32.to_be_bytes());
        v.extend_from_slice(&(-2.0f32).to_be_bytes());
        v.extend_from_slice(b"\xa1n\x03");
        v
    }

    #[test]
    fn arrays_are_found_in_maps_and_converted_to_little_endian() {
        let bytes = sample();
        let doc = read("t", &bytes).expect("read");
        let Document::Map(fields) = &doc else {
            panic!("not a map")
        };
        let Document::Tensor(a) = &fields[0].1 else {
            panic!("not a tensor")
        };
        let le: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        assert_eq!(
            (a.dtype(), a.shape().dims(), a.data()),
            (Dtype::F32, &[2][..], &le[..])
        );
        assert_eq!(fields[1], ("n".into(), Document::Scalar(Value::Int(3))));
        // Written back, then read again: the same document.
        let again = write("o", &doc).expect("write");
        assert_eq!(read("o", &again).expect("read"), doc);
    }

    #[test]
    fn streams_read_value_by_value() {
        let mut s = sample();
        s.extend_from_slice(&sample());
        assert!(read("t", &s).is_err());
        assert_eq!(read_stream("t", &s).expect("stream").len(), 2);
    }

    #[test]
    fn python_complex_reprs_parse() {
        for (s, re, im) in [
            ("1j", 0.0, 1.0),
            ("(1+2j)", 1.0, 2.0),
            ("(-0-0j)", -0.0, -0.0),
            ("(1e-05-2.5e+10j)", 1e-05, -2.5e10),
            ("(inf+nanj)", f64::INFINITY, f64::NAN),
        ] {
            let (r, i) = parse_complex(s).expect(s);
            assert_eq!(r.to_bits(), re.to_bits(), "{s}");
            assert!(
                i.to_bits() == im.to_bits() || (i.is_nan() && im.is_nan()),
                "{s}"
            );
        }
        assert!(parse_complex("1+2").is_none());
    }

    #[test]
    fn bad_input_is_refused_with_reasons() {
        let good = sample();
        for cut in 0..good.len() {
            assert!(read("t", &good[..cut]).is_err(), "cut at {cut}");
        }
        let msg = |b: &[u8]| {
            read("x.msgpack", b)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        // The shape says 3 elements, the data holds 2.
        let mut lying = sample();
        let at = lying
            .windows(2)
            .position(|w| w == b"\x91\x02")
            .expect("shape");
        lying[at + 1] = 0x03;
        assert!(msg(&lying).contains("needs 12 bytes"), "{}", msg(&lying));
        let mut pickled = sample();
        let at = pickled
            .windows(3)
            .position(|w| w == b"\xc4\x00\xc4")
            .expect("kind");
        pickled.splice(at..at + 2, [0xc4, 0x01, b'O']);
        assert!(msg(&pickled).contains("pickle"));
        // A map claiming 2^32 - 1 entries in a 5-byte input.
        assert!(msg(&[0xdf, 0xff, 0xff, 0xff, 0xff]).contains("claims"));
        // Shape product overflows.
        let mut huge = sample();
        let at = huge
            .windows(2)
            .position(|w| w == b"\x91\x02")
            .expect("shape");
        huge.splice(
            at..at + 2,
            [
                0x92, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x04,
            ],
        );
        assert!(msg(&huge).contains("overflows"));
        let deep: Vec<u8> = std::iter::repeat_n(0x91, 200).chain([0xc0]).collect();
        assert!(msg(&deep).contains("deeper"));
        assert!(msg(&[0xc1]).contains("0xc1"));
    }
}
