//! A logged msgpack record of the usual shape, turned straight into its canonical bytes.
//!
//! `archive log --format msgpack` reads millions of small records: a map of string field names
//! holding numbers, strings, lists, nested maps and msgpack-numpy arrays. Read the general way
//! ([`msgpack_numpy::read_one`](super::msgpack_numpy::read_one), then
//! [`prepare_document`](super::prepare_document)), each one becomes a tree of nodes, then a
//! document, then a record, and only then bytes: a third of the logger's time. Here one pass
//! over the bytes writes the canonical record as it reads, hashing each array on the way.
//!
//! It takes only what it can read exactly as the general way does and gives `None` for
//! anything else (another value kind, a malformed or unfinished value, anything the general
//! way would refuse or read specially): the caller then reads the value the general way, which
//! gives the same result or names the problem. A test compares both on random records.

use std::borrow::Cow;

use super::{Array, EncodedRecord, Prepared, PreparedDocument, ROOT_FIELD, tensor_address};
use crate::hash::ObjectHash;
use crate::object::Kind;
use crate::object::canonical::Descriptor;
use crate::object::record::Value;
use crate::object::tensor::Shape;

/// Deepest nesting read here; deeper records are read the general way.
const MAX_NESTING: usize = 16;

/// Most fields of one map read here (duplicates are found by comparing names).
const MAX_FIELDS: usize = 64;

/// A record read here: prepared as `prepare_document` prepares it, the values of its tag
/// fields as [`tag_text`](super::tag_text) gives them, and how many bytes it took.
pub struct FastRecord {
    /// The record and its arrays, ready to store.
    pub prepared: PreparedDocument<'static>,
    /// (field, value) of each top-level field named in `tag_fields`, in field order.
    pub tags: Vec<(String, String)>,
    /// Bytes of the msgpack value.
    pub used: usize,
}

/// The msgpack record at the start of `bytes`, if it has the usual shape (see the module
/// docs); `tag_fields` names the top-level fields whose values become tags.
pub fn read_record(bytes: &[u8], tag_fields: &[String]) -> Option<FastRecord> {
    let mut r = Transcoder {
        b: bytes,
        at: 0,
        out: Vec::with_capacity(64),
        parts: Vec::new(),
        refs: Vec::new(),
    };
    let n = r.map_len()?;
    let mut tags = Vec::new();
    r.fields(n, 1, &mut |key, value| {
        if key == ROOT_FIELD {
            return None;
        }
        if tag_fields.iter().any(|t| t == key)
            && let Some(text) = value.and_then(|v| super::tag_text(v.into_value()))
        {
            tags.push((key.to_owned(), text));
        }
        Some(())
    })?;
    let Transcoder {
        out, parts, refs, ..
    } = r;
    let hash = Descriptor {
        kind: Kind::Record,
        desc: "",
        shape: &[],
    }
    .hash(&out);
    Some(FastRecord {
        prepared: PreparedDocument {
            what: Prepared::Record {
                parts,
                record: EncodedRecord {
                    record: None,
                    payload: out,
                    hash,
                    refs,
                },
            },
        },
        tags,
        used: r.at,
    })
}

/// A scalar as read, its string borrowed.
#[derive(Clone, Copy)]
enum Scalar<'b> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'b str),
}

impl Scalar<'_> {
    fn into_value(self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Int(i) => Value::Int(i),
            Scalar::Float(f) => Value::Float(f),
            Scalar::Str(s) => Value::Str(s.to_owned()),
        }
    }
}

/// One pass over a msgpack value: canonical bytes out, arrays and references gathered.
struct Transcoder<'b> {
    b: &'b [u8],
    at: usize,
    out: Vec<u8>,
    parts: Vec<(Array<'static>, ObjectHash)>,
    refs: Vec<ObjectHash>,
}

impl<'b> Transcoder<'b> {
    fn take(&mut self, n: usize) -> Option<&'b [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn be(&mut self, n: usize) -> Option<u64> {
        Some(
            self.take(n)?
                .iter()
                .fold(0u64, |v, b| (v << 8) | u64::from(*b)),
        )
    }

    /// A count of `n` items of at least `min` bytes each that the bytes left can hold.
    fn count(&self, n: u64, min: usize) -> Option<usize> {
        let n = usize::try_from(n).ok()?;
        (n.saturating_mul(min) <= self.b.len().saturating_sub(self.at)).then_some(n)
    }

    fn map_len(&mut self) -> Option<usize> {
        let n = match self.byte()? {
            m @ 0x80..=0x8f => u64::from(m & 0x0f),
            0xde => self.be(2)?,
            0xdf => self.be(4)?,
            _ => return None,
        };
        self.count(n, 2).filter(|n| *n <= MAX_FIELDS)
    }

    /// A string (valid UTF-8), its marker read.
    fn str_after(&mut self, m: u8) -> Option<&'b str> {
        let n = match m {
            0xa0..=0xbf => u64::from(m & 0x1f),
            0xd9 => self.be(1)?,
            0xda => self.be(2)?,
            0xdb => self.be(4)?,
            _ => return None,
        };
        let n = usize::try_from(n).ok()?;
        std::str::from_utf8(self.take(n)?).ok()
    }

    /// An integer, its marker read; `None` past i64 (the general way keeps those apart).
    fn int_after(&mut self, m: u8) -> Option<i64> {
        Some(match m {
            0x00..=0x7f => i64::from(m),
            0xe0..=0xff => i64::from(m as i8),
            0xcc => self.be(1)? as i64,
            0xcd => self.be(2)? as i64,
            0xce => self.be(4)? as i64,
            0xcf => i64::try_from(self.be(8)?).ok()?,
            0xd0 => i64::from(self.be(1)? as u8 as i8),
            0xd1 => i64::from(self.be(2)? as u16 as i16),
            0xd2 => i64::from(self.be(4)? as u32 as i32),
            0xd3 => self.be(8)? as i64,
            _ => return None,
        })
    }

    /// `n` fields of a map whose length was read, written as a record's; `seen(name, value)`
    /// is told of each field with its value when it is a scalar, and stops the read with
    /// `None`.
    fn fields(
        &mut self,
        n: usize,
        depth: usize,
        seen: &mut dyn FnMut(&str, Option<Scalar<'b>>) -> Option<()>,
    ) -> Option<()> {
        let _ = rmp::encode::write_map_len(&mut self.out, n as u32);
        let mut names: Vec<&'b str> = Vec::with_capacity(n);
        for _ in 0..n {
            let m = self.byte()?;
            let name = self.str_after(m)?;
            // Twice in one map, or a name the general way reads specially (an array written
            // with string keys, a reference): read there.
            if names.contains(&name) || matches!(name, "nd" | "complex" | "$ref") {
                return None;
            }
            names.push(name);
            let _ = rmp::encode::write_str(&mut self.out, name);
            let value = self.value(depth)?;
            seen(name, value)?;
        }
        Some(())
    }

    /// A value, written canonically; for a scalar, the value too.
    fn value(&mut self, depth: usize) -> Option<Option<Scalar<'b>>> {
        if depth > MAX_NESTING {
            return None;
        }
        let m = self.byte()?;
        let scalar = match m {
            0xc0 => Scalar::Null,
            0xc2 => Scalar::Bool(false),
            0xc3 => Scalar::Bool(true),
            0xcb => Scalar::Float(f64::from_bits(self.be(8)?)),
            0xa0..=0xbf | 0xd9..=0xdb => Scalar::Str(self.str_after(m)?),
            0x90..=0x9f | 0xdc | 0xdd => {
                let n = match m {
                    0xdc => self.be(2)?,
                    0xdd => self.be(4)?,
                    _ => u64::from(m & 0x0f),
                };
                let n = self.count(n, 1)?;
                let _ = rmp::encode::write_array_len(&mut self.out, n as u32);
                for _ in 0..n {
                    self.value(depth + 1)?;
                }
                return Some(None);
            }
            0x80..=0x8f | 0xde | 0xdf => {
                self.at -= 1;
                self.map(depth)?;
                return Some(None);
            }
            m => Scalar::Int(self.int_after(m)?),
        };
        let out = &mut self.out;
        let _ = match scalar {
            Scalar::Null => rmp::encode::write_nil(out).map_err(|_| ()),
            Scalar::Bool(b) => rmp::encode::write_bool(out, b).map_err(|_| ()),
            Scalar::Float(f) => rmp::encode::write_f64(out, f).map_err(|_| ()),
            Scalar::Str(s) => rmp::encode::write_str(out, s).map_err(|_| ()),
            Scalar::Int(i) => rmp::encode::write_sint(out, i).map(|_| ()).map_err(|_| ()),
        };
        Some(Some(scalar))
    }

    /// A nested map: an msgpack-numpy array (binary keys), or a record (string keys).
    fn map(&mut self, depth: usize) -> Option<()> {
        let n = self.map_len()?;
        match self.b.get(self.at) {
            Some(0xc4) if n > 0 => self.array(n),
            _ => self.fields(n, depth + 1, &mut |_, _| Some(())),
        }
    }

    /// An msgpack-numpy array as msgpack-numpy writes it: the binary keys `nd` (true), `type`,
    /// `kind` (empty), `shape` and `data`, each once. Stored as a tensor beside the record,
    /// which holds its address.
    fn array(&mut self, n: usize) -> Option<()> {
        if n != 5 {
            return None;
        }
        let (mut nd, mut ty, mut kind, mut shape, mut data) = (None, None, None, None, None);
        for _ in 0..n {
            let key = match self.byte()? {
                0xc4 => {
                    let len = self.be(1)? as usize;
                    self.take(len)?
                }
                _ => return None,
            };
            let slot = match key {
                b"nd" => &mut nd,
                b"type" => &mut ty,
                b"kind" => &mut kind,
                b"shape" => &mut shape,
                b"data" => &mut data,
                _ => return None,
            };
            if slot.is_some() {
                return None;
            }
            *slot = Some(self.at);
            self.skip_array_field(key)?;
        }
        let (nd, ty, kind, shape, data) = (nd?, ty?, kind?, shape?, data?);
        let b = self.b;
        let at = |i: usize| b.get(i..);
        if at(nd)?.first() != Some(&0xc3) || !matches!(at(kind)?.first(), Some(0xc4 | 0xa0)) {
            return None;
        }
        if at(kind)?.first() == Some(&0xc4) && at(kind)?.get(1) != Some(&0) {
            return None;
        }
        let end = self.at;
        self.at = ty;
        let m = self.byte()?;
        let ty = self.str_after(m)?;
        let (dtype, big_endian) = super::npy::parse_numpy_dtype("", ty).ok()?;
        self.at = shape;
        let dims = self.dims()?;
        self.at = data;
        let data = self.bin()?;
        self.at = end;
        if big_endian {
            return None;
        }
        let array = Array::new("", dtype, Shape::new(dims), Cow::Owned(data.to_vec())).ok()?;
        let hash = tensor_address(&array).ok()?;
        let _ = rmp::encode::write_bin(&mut self.out, hash.as_bytes());
        self.parts.push((array, hash));
        self.refs.push(hash);
        Some(())
    }

    /// Step over the value of an array's field `key`, checking its kind.
    fn skip_array_field(&mut self, key: &[u8]) -> Option<()> {
        match key {
            b"nd" => self.byte().filter(|m| *m == 0xc2 || *m == 0xc3).map(|_| ()),
            b"shape" => self.dims().map(|_| ()),
            b"data" => self.bin().map(|_| ()),
            _ => {
                let m = self.byte()?;
                match m {
                    0xc4 => self.bin_after(m).map(|_| ()),
                    _ => self.str_after(m).map(|_| ()),
                }
            }
        }
    }

    /// An array's shape: a list of non-negative integers.
    fn dims(&mut self) -> Option<Vec<u64>> {
        let m = self.byte()?;
        let n = match m {
            0x90..=0x9f => usize::from(m & 0x0f),
            _ => return None,
        };
        (0..n)
            .map(|_| {
                let m = self.byte()?;
                u64::try_from(self.int_after(m)?).ok()
            })
            .collect()
    }

    fn bin(&mut self) -> Option<&'b [u8]> {
        let m = self.byte()?;
        self.bin_after(m)
    }

    fn bin_after(&mut self, m: u8) -> Option<&'b [u8]> {
        let n = match m {
            0xc4 => self.be(1)?,
            0xc5 => self.be(2)?,
            0xc6 => self.be(4)?,
            _ => return None,
        };
        self.take(usize::try_from(n).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interop::{Document, msgpack_numpy, prepare_document};
    use proptest::prelude::*;
    use rmp::encode as e;

    /// A msgpack value to write, in the forms writers use (integers in any width).
    #[derive(Clone, Debug)]
    enum G {
        Nil,
        Bool(bool),
        /// An integer and the width it is written in (0: the shortest).
        Int(i64, u8),
        Big(u64),
        F64(f64),
        F32(f32),
        Str(String),
        Bin(Vec<u8>),
        List(Vec<G>),
        Map(Vec<(String, G)>),
        /// A map with binary keys, as msgpack-numpy writes an array: (key, value) in order.
        Numpy(Vec<(String, G)>),
    }

    fn write(out: &mut Vec<u8>, g: &G) {
        let _ = match g {
            G::Nil => e::write_nil(out).map_err(|_| ()),
            G::Bool(b) => e::write_bool(out, *b).map_err(|_| ()),
            G::Int(i, 1) => e::write_i64(out, *i).map_err(|_| ()),
            G::Int(i, 2) if *i >= 0 => e::write_u32(out, *i as u32).map_err(|_| ()),
            G::Int(i, 3) if *i >= 0 => e::write_u64(out, *i as u64).map_err(|_| ()),
            G::Int(i, _) => e::write_sint(out, *i).map(|_| ()).map_err(|_| ()),
            G::Big(u) => e::write_u64(out, *u).map_err(|_| ()),
            G::F64(f) => e::write_f64(out, *f).map_err(|_| ()),
            G::F32(f) => e::write_f32(out, *f).map_err(|_| ()),
            G::Str(s) => e::write_str(out, s).map_err(|_| ()),
            G::Bin(b) => e::write_bin(out, b).map_err(|_| ()),
            G::List(items) => {
                let _ = e::write_array_len(out, items.len() as u32);
                items.iter().for_each(|i| write(out, i));
                Ok(())
            }
            G::Map(fields) => {
                let _ = e::write_map_len(out, fields.len() as u32);
                for (k, v) in fields {
                    let _ = e::write_str(out, k);
                    write(out, v);
                }
                Ok(())
            }
            G::Numpy(fields) => {
                let _ = e::write_map_len(out, fields.len() as u32);
                for (k, v) in fields {
                    let _ = e::write_bin(out, k.as_bytes());
                    write(out, v);
                }
                Ok(())
            }
        };
    }

    /// An array as msgpack-numpy writes it, now and then with a fault or an unusual form.
    fn numpy() -> impl Strategy<Value = G> {
        let ty = prop::sample::select(vec!["<f4", "<f8", "|u1", "<i8", ">f4", "<U2", "<q"]);
        (
            ty,
            prop::collection::vec(0u64..4, 0..3),
            0u8..12,
            any::<u8>(),
        )
            .prop_map(|(ty, dims, fault, seed)| {
                let item = match ty {
                    "<f4" | ">f4" => 4,
                    "|u1" => 1,
                    "<U2" => 8,
                    _ => 8,
                };
                let n: u64 = dims.iter().product();
                let mut len = (n as usize) * item;
                if fault == 1 {
                    len += 1;
                }
                let data = (0..len).map(|i| seed.wrapping_add(i as u8)).collect();
                let mut fields = vec![
                    ("nd".to_owned(), G::Bool(fault != 2)),
                    ("type".to_owned(), G::Str(ty.to_owned())),
                    (
                        "kind".to_owned(),
                        G::Bin(if fault == 3 { b"O".to_vec() } else { vec![] }),
                    ),
                    (
                        "shape".to_owned(),
                        G::List(dims.iter().map(|d| G::Int(*d as i64, fault % 4)).collect()),
                    ),
                    ("data".to_owned(), G::Bin(data)),
                ];
                match fault {
                    4 => fields.rotate_left(2),
                    5 => drop(fields.remove(2)),
                    6 => fields.push(("extra".into(), G::Nil)),
                    7 => fields[0].0 = "data".into(),
                    _ => {}
                }
                G::Numpy(fields)
            })
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::sample::select(vec!["label", "id", "probs", "run", "split", "a.b", ""])
                .prop_map(str::to_owned),
            1 => prop::sample::select(vec!["nd", "$ref", "$root", "complex", "type", "data"])
                .prop_map(str::to_owned),
            1 => "[a-zé]{1,12}",
        ]
    }

    fn value() -> impl Strategy<Value = G> {
        let leaf = prop_oneof![
            Just(G::Nil),
            any::<bool>().prop_map(G::Bool),
            (any::<i64>(), 0u8..4).prop_map(|(i, w)| G::Int(i, w)),
            (-200i64..300, 0u8..4).prop_map(|(i, w)| G::Int(i, w)),
            (i64::MAX as u64..=u64::MAX).prop_map(G::Big),
            any::<f64>().prop_map(G::F64),
            any::<f32>().prop_map(G::F32),
            "[a-z0-9 ]{0,40}".prop_map(G::Str),
            prop::collection::vec(any::<u8>(), 0..8).prop_map(G::Bin),
            numpy(),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(G::List),
                prop::collection::vec((key(), inner), 0..5).prop_map(G::Map),
            ]
        })
    }

    fn record() -> impl Strategy<Value = G> {
        prop::collection::vec((key(), value()), 0..8).prop_map(G::Map)
    }

    /// The general way, as `archive log` takes it: the document, its tags, then prepared.
    fn general(bytes: &[u8], tag_fields: &[String]) -> Option<FastRecord> {
        let (doc, used) = msgpack_numpy::read_one("stdin", bytes).ok()??;
        let mut tags = Vec::new();
        if let Document::Map(fields) = &doc {
            for (name, value) in fields {
                if let (true, Document::Scalar(v)) = (tag_fields.contains(name), value) {
                    tags.extend(crate::interop::tag_text(v.clone()).map(|t| (name.clone(), t)));
                }
            }
        }
        let prepared = prepare_document(doc).ok()?;
        Some(FastRecord {
            prepared,
            tags,
            used,
        })
    }

    /// What a prepared record stores: its bytes, address and references, and each array's
    /// address, dtype, shape and bytes.
    type Stored = (
        Vec<u8>,
        ObjectHash,
        Vec<ObjectHash>,
        Vec<(ObjectHash, String)>,
    );

    fn stored(r: &FastRecord) -> Option<Stored> {
        let Prepared::Record { parts, record } = &r.prepared.what else {
            return None;
        };
        let parts = parts
            .iter()
            .map(|(a, h)| {
                let v = a.view().expect("view");
                (
                    *h,
                    format!("{} {:?} {:?}", v.dtype().name(), v.shape().dims(), v.data()),
                )
            })
            .collect();
        Some((
            record.payload.clone(),
            record.hash,
            record.refs.clone(),
            parts,
        ))
    }

    fn tag_fields() -> Vec<String> {
        ["label", "id", "run", "split", "a.b"]
            .map(str::to_owned)
            .to_vec()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever the one pass reads, it reads as the general way does: the same bytes,
        /// address, references, arrays, tags and length; it leaves the rest to it.
        #[test]
        fn the_one_pass_reads_as_the_general_way(g in record(), tail in any::<u8>()) {
            let mut bytes = Vec::new();
            write(&mut bytes, &g);
            bytes.push(tail);
            let fields = tag_fields();
            if let Some(fast) = read_record(&bytes, &fields) {
                let slow = general(&bytes, &fields).expect("the general way reads it");
                prop_assert_eq!(stored(&fast), stored(&slow));
                prop_assert_eq!(&fast.tags, &slow.tags);
                prop_assert_eq!(fast.used, slow.used);
                prop_assert_eq!(fast.used, bytes.len() - 1);
            }
            // Cut anywhere, it is not read: the rest has not arrived.
            for cut in 0..bytes.len() - 1 {
                prop_assert!(read_record(&bytes[..cut], &fields).is_none());
            }
        }
    }

    /// A logged prediction, as `find-bench` writes it.
    fn prediction() -> G {
        let probs: Vec<u8> = (0..40).collect();
        G::Map(vec![
            (
                "probs".into(),
                G::Numpy(vec![
                    ("nd".into(), G::Bool(true)),
                    ("type".into(), G::Str("<f4".into())),
                    ("kind".into(), G::Bin(vec![])),
                    ("shape".into(), G::List(vec![G::Int(10, 0)])),
                    ("data".into(), G::Bin(probs)),
                ]),
            ),
            ("label".into(), G::Int(3, 0)),
            ("score".into(), G::F64(0.25)),
            ("id".into(), G::Str("img-000000123".into())),
            ("ok".into(), G::Bool(true)),
            (
                "meta".into(),
                G::Map(vec![("source".into(), G::Str("cam".into()))]),
            ),
            ("boxes".into(), G::List(vec![G::Int(-1, 0), G::Nil])),
        ])
    }

    #[test]
    fn a_logged_prediction_is_read_in_one_pass() {
        let mut bytes = Vec::new();
        write(&mut bytes, &prediction());
        let fields = tag_fields();
        let fast = read_record(&bytes, &fields).expect("the usual shape");
        let slow = general(&bytes, &fields).expect("general");
        assert_eq!(stored(&fast), stored(&slow));
        assert_eq!(
            fast.tags,
            [("label", "3"), ("id", "img-000000123")].map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        let (_, _, refs, parts) = stored(&fast).expect("record");
        assert_eq!(refs.len(), 1);
        assert!(parts[0].1.starts_with("F32 [10]"), "{parts:?}");
    }

    #[test]
    fn unusual_values_are_left_to_the_general_way() {
        let fields = tag_fields();
        let cases = [
            G::Map(vec![("x".into(), G::F32(1.5))]),
            G::Map(vec![("x".into(), G::Big(u64::MAX))]),
            G::Map(vec![("x".into(), G::Bin(vec![1, 2]))]),
            G::Map(vec![("$ref".into(), G::Str("00".into()))]),
            G::Map(vec![("$root".into(), G::Int(1, 0))]),
            G::Map(vec![("a".into(), G::Nil), ("a".into(), G::Nil)]),
            G::Map(vec![("nd".into(), G::Bool(true))]),
            G::List(vec![G::Int(1, 0)]),
            G::Str("x".into()),
        ];
        for g in cases {
            let mut bytes = Vec::new();
            write(&mut bytes, &g);
            assert!(read_record(&bytes, &fields).is_none(), "{g:?}");
        }
        // A big-endian array is swapped by the general way.
        let mut be = prediction();
        if let G::Map(f) = &mut be
            && let G::Numpy(a) = &mut f[0].1
        {
            a[1].1 = G::Str(">f4".into());
        }
        let mut bytes = Vec::new();
        write(&mut bytes, &be);
        assert!(read_record(&bytes, &fields).is_none());
        assert!(general(&bytes, &fields).is_some());
    }
}
