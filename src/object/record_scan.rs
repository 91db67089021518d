//! Reading a record's canonical msgpack bytes in place: the fields a query names, the
//! references a record holds, the reference at a path, without decoding the record; and the
//! decoder of the canonical form itself. Every length is checked against the bytes left
//! before anything is allocated for it.

/// Deepest nesting of lists and records accepted, so that hostile input cannot overflow the
/// stack while decoding.
pub const MAX_DEPTH: usize = 64;

use crate::hash::ObjectHash;

/// Extension type of a reference to an earlier item of the same pack, which v5 packs store in
/// place of a record's 32-byte reference (FORMAT.md, "Pack frames"): `fixext 2`, then how many
/// items back the object is (u16, big-endian). Never part of a canonical record.
pub const EXT_LOCAL: i8 = 3;

/// What a reference field holds in a record's stored bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A reference by hash (the canonical form).
    Hash(ObjectHash),
    /// An item of the same pack, this many items before the record's (a pack's stored form).
    Local(u16),
}

/// A link met while walking a record's bytes: a binary (in a canonical record, a reference),
/// or a pack-local reference at a byte offset.
pub(crate) enum Link<'r> {
    Bin(&'r [u8]),
    Local(usize, u16),
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
    /// A reference to an earlier item of the same pack (a record's stored form in a v5 pack):
    /// how many items back.
    Local(u16),
}

impl<'r> Scalar<'r> {
    /// The text queries compare, as [`Value::query_text`](crate::object::record::Value::query_text) gives it (a reference has none).
    pub fn query_text(self) -> Option<std::borrow::Cow<'r, str>> {
        use std::borrow::Cow;
        Some(match self {
            Scalar::Null => Cow::Borrowed("null"),
            Scalar::Bool(b) => Cow::Borrowed(if b { "true" } else { "false" }),
            Scalar::Int(i) => Cow::Owned(i.to_string()),
            Scalar::UInt(u) => Cow::Owned(u.to_string()),
            Scalar::Float(f) => Cow::Owned(f.to_string()),
            Scalar::Str(s) => Cow::Borrowed(s),
            Scalar::Ref(_) | Scalar::Local(_) => return None,
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
/// (as [`Record::paths`](crate::object::record::Record::paths) gives them) and, for a scalar or a reference, its value (strings
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

/// `scan_fields` for top-level field names only: `f` gets the index in `names` of each one
/// the record has, and its value as `scan_fields` gives it. Other fields are passed over
/// without a look inside (their strings are not checked, as `find_ref` leaves what it skips):
/// a query that names two fields of a record reads just those. An error says why the bytes
/// are not a record.
pub fn scan_top_fields<'r>(
    bytes: &'r [u8],
    names: &[&str],
    f: &mut dyn FnMut(usize, Option<Scalar<'r>>),
) -> std::result::Result<(), String> {
    let mut c = Cursor { b: bytes, at: 0 };
    for _ in 0..c.map_len()? {
        let key = c.key_bytes()?;
        let marker = c.byte()?;
        match names.iter().position(|n| n.as_bytes() == key) {
            Some(i) => {
                let value = c.scalar_after(marker, 0)?;
                f(i, value);
            }
            None => c.skip_after(marker, 1)?,
        }
    }
    Ok(())
}

/// Every reference in a record's canonical bytes, lists and nested records included, found
/// without decoding it (what [`Record::refs`](crate::object::record::Record::refs) gives, in the same order). An error says why the
/// bytes are not a record.
pub fn scan_refs(bytes: &[u8], f: &mut dyn FnMut(ObjectHash)) -> std::result::Result<(), String> {
    let mut c = Cursor { b: bytes, at: 0 };
    let m = c.byte()?;
    let mut bad = false;
    c.walk_after(m, 0, &mut |link| match link {
        Link::Bin(b) => match ObjectHash::from_slice(b) {
            Some(h) => f(h),
            None => bad = true,
        },
        // A pack's stored form, never a canonical record's.
        Link::Local(..) => bad = true,
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
    Ok(match find_target(bytes, path)? {
        Some(Target::Hash(h)) => Some(h),
        _ => None,
    })
}

/// `a == b` inline: a field name is a few bytes, and `==` on slices calls `memcmp`.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// `find_ref` over a record's bytes as a pack stores them, where a reference may be to an
/// earlier item of the pack ([`Target::Local`]).
pub fn find_target(bytes: &[u8], path: &str) -> std::result::Result<Option<Target>, String> {
    let mut c = Cursor { b: bytes, at: 0 };
    let n = c.map_len()?;
    c.find_ref(n, path, 0)
}

/// Every pack-local reference of a record's stored bytes: the offset of its `fixext 2` marker
/// and how many items back it points. An error says why the bytes are not a record.
pub(crate) fn scan_locals(
    bytes: &[u8],
    f: &mut dyn FnMut(usize, u16),
) -> std::result::Result<(), String> {
    let mut c = Cursor { b: bytes, at: 0 };
    let m = c.byte()?;
    if !matches!(m, 0x80..=0x8f | 0xde | 0xdf) {
        return Err(format!("expected a map, found marker 0x{m:02x}"));
    }
    c.walk_after(m, 0, &mut |link| {
        if let Link::Local(at, back) = link {
            f(at, back);
        }
    })?;
    if c.at != bytes.len() {
        return Err("trailing bytes after the record".into());
    }
    Ok(())
}

/// Every reference of a record's canonical bytes stored as a `bin 8` of 32 bytes: the offset
/// of its marker and the hash.
pub(crate) fn scan_ref_offsets(
    bytes: &[u8],
    f: &mut dyn FnMut(usize, ObjectHash),
) -> std::result::Result<(), String> {
    let base = bytes.as_ptr() as usize;
    let mut c = Cursor { b: bytes, at: 0 };
    let m = c.byte()?;
    c.walk_after(m, 0, &mut |link| {
        if let Link::Bin(b) = link
            && let Some(h) = ObjectHash::from_slice(b)
            && let Some(at) = (b.as_ptr() as usize - base).checked_sub(2)
            && bytes.get(at..at + 2) == Some(&[0xc4, 0x20][..])
        {
            f(at, h);
        }
    })?;
    if c.at != bytes.len() {
        return Err("trailing bytes after the record".into());
    }
    Ok(())
}

#[derive(Clone, Copy)]
pub(crate) struct Cursor<'r> {
    pub(crate) b: &'r [u8],
    pub(crate) at: usize,
}

/// The length of a map (`0x80..=0x8f`, `0xde`, `0xdf`) or list (`0x90..=0x9f`, `0xdc`, `0xdd`)
/// whose marker was read.
pub(crate) fn count(c: &mut Cursor<'_>, m: u8) -> std::result::Result<usize, String> {
    match m {
        0xdc | 0xde => c.be(2),
        0xdd | 0xdf => c.be(4),
        m => Ok(usize::from(m & 0x0f)),
    }
}

impl<'r> Cursor<'r> {
    pub(crate) fn take(&mut self, n: usize) -> std::result::Result<&'r [u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.b.len());
        let out = end
            .and_then(|e| self.b.get(self.at..e))
            .ok_or("truncated record")?;
        self.at += n;
        Ok(out)
    }

    pub(crate) fn byte(&mut self) -> std::result::Result<u8, String> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }

    pub(crate) fn be(&mut self, n: usize) -> std::result::Result<usize, String> {
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

    pub(crate) fn uint(&mut self, n: usize) -> std::result::Result<u64, String> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// An extension value whose marker (`0xd4..=0xd8`, `0xc7..=0xc9`) was read: its type, data.
    pub(crate) fn ext(&mut self, marker: u8) -> std::result::Result<(i8, &'r [u8]), String> {
        let n = match marker {
            0xd4..=0xd8 => 1usize << (marker - 0xd4),
            m => self.be(1 << (m - 0xc7))?,
        };
        let ty = self.byte()? as i8;
        Ok((ty, self.take(n)?))
    }

    /// True if the `n` pairs of the map ahead all have string keys (the map is a record);
    /// nothing is consumed.
    pub(crate) fn record_ahead(&self, n: usize, depth: usize) -> std::result::Result<bool, String> {
        let mut c = *self;
        for _ in 0..n {
            let m = c.byte()?;
            if !matches!(m, 0xa0..=0xbf | 0xd9..=0xdb) {
                return Ok(false);
            }
            c.walk_after(m, depth, &mut |_| {})?;
            let v = c.byte()?;
            c.walk_after(v, depth, &mut |_| {})?;
        }
        Ok(true)
    }

    pub(crate) fn str_of(&mut self, len: usize) -> std::result::Result<&'r str, String> {
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
            if let m @ (0x80..=0x8f | 0xde | 0xdf) = marker {
                f(path, None);
                self.nested(m, path, f, depth)?;
                path.truncate(len);
                continue;
            }
            let text = self.scalar_after(marker, depth)?;
            f(path, text);
            path.truncate(len);
        }
        Ok(())
    }

    /// The scalar whose marker was read (a field's value at `depth`), or `None` for a list, a
    /// map or an extension value that is no pack-local reference, which is skipped.
    fn scalar_after(
        &mut self,
        marker: u8,
        depth: usize,
    ) -> std::result::Result<Option<Scalar<'r>>, String> {
        Ok(match marker {
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
            0xd5 => self.local()?.map(Scalar::Local),
            m => {
                self.skip_after(m, depth + 1)?;
                None
            }
        })
    }

    /// The map whose marker was read, a field at `path`: its fields if it is a record; a map
    /// with keys that are not strings is a value, with no fields.
    fn nested(
        &mut self,
        marker: u8,
        path: &mut String,
        f: &mut dyn FnMut(&str, Option<Scalar<'r>>),
        depth: usize,
    ) -> std::result::Result<(), String> {
        let n = count(self, marker)?;
        if self.record_ahead(n, depth + 1)? {
            return self.fields(n, path, f, depth + 1);
        }
        self.skip_pairs(n, depth + 1)
    }

    fn skip_pairs(&mut self, n: usize, depth: usize) -> std::result::Result<(), String> {
        for _ in 0..n.saturating_mul(2) {
            let m = self.byte()?;
            self.skip_after(m, depth)?;
        }
        Ok(())
    }

    /// Look for the reference at `path` among `n` fields (see `find_ref`).
    fn find_ref(
        &mut self,
        n: usize,
        path: &str,
        depth: usize,
    ) -> std::result::Result<Option<Target>, String> {
        if depth > MAX_DEPTH {
            return Err("nested too deep".into());
        }
        for _ in 0..n {
            let name = self.key_bytes()?;
            let marker = self.byte()?;
            if same_bytes(name, path.as_bytes()) {
                return Ok(match marker {
                    0xc4..=0xc6 => {
                        let n = self.be(1 << (marker - 0xc4))?;
                        ObjectHash::from_slice(self.take(n)?).map(Target::Hash)
                    }
                    0xd5 => self.local()?.map(Target::Local),
                    _ => None,
                });
            }
            // Only a record is looked into: the path's prefix is compared for those alone.
            let inner = || {
                path.as_bytes()
                    .strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(b"."))
            };
            match marker {
                m @ (0x80..=0x8f | 0xde | 0xdf) if let Some(rest) = inner() => {
                    let n = count(self, m)?;
                    let rest = std::str::from_utf8(rest).map_err(|e| e.to_string())?;
                    if !self.record_ahead(n, depth + 1)? {
                        // Not a record: no fields to look in.
                        self.skip_pairs(n, depth + 1)?;
                    } else if let Some(h) = self.find_ref(n, rest, depth + 1)? {
                        return Ok(Some(h));
                    }
                }
                // Scalars, the most fields of a record, stepped over here; the rest walked.
                m => match self.skip_scalar(m) {
                    Some(skipped) => skipped?,
                    None => self.skip_after(m, depth + 1)?,
                },
            }
        }
        Ok(None)
    }

    /// The `fixext 2` whose marker (`0xd5`) was read: how many items back, if it is a
    /// pack-local reference; `None` for another extension type.
    fn local(&mut self) -> std::result::Result<Option<u16>, String> {
        let (ty, data) = self.ext(0xd5)?;
        Ok(match (ty, data) {
            (EXT_LOCAL, [hi, lo]) => Some(u16::from_be_bytes([*hi, *lo])),
            _ => None,
        })
    }

    /// Step over the scalar whose marker `m` was read (a number, nil, a boolean, a short
    /// string); `None` if `m` is no such scalar's.
    #[inline]
    fn skip_scalar(&mut self, m: u8) -> Option<std::result::Result<(), String>> {
        let n = match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => 0,
            0xa0..=0xbf => usize::from(m & 0x1f),
            0xcc | 0xd0 => 1,
            0xcd | 0xd1 => 2,
            0xce | 0xd2 | 0xca => 4,
            0xcf | 0xd3 | 0xcb => 8,
            _ => return None,
        };
        Some(self.take(n).map(|_| ()))
    }

    /// Skip a value whose marker was read: numbers, lists, references.
    fn skip_after(&mut self, marker: u8, depth: usize) -> std::result::Result<(), String> {
        self.walk_after(marker, depth, &mut |_| {})
    }

    /// Skip the value whose marker was just read, handing `on_link` every binary in it (in a
    /// record, binaries are references and nothing else) and every pack-local reference.
    fn walk_after(
        &mut self,
        marker: u8,
        depth: usize,
        on_link: &mut dyn FnMut(Link<'r>),
    ) -> std::result::Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("nested too deep".into());
        }
        let mut items = |c: &mut Self, n: usize, per: usize| -> std::result::Result<(), String> {
            for _ in 0..n.saturating_mul(per) {
                let m = c.byte()?;
                c.walk_after(m, depth + 1, on_link)?;
            }
            Ok(())
        };
        if let Some(skipped) = self.skip_scalar(marker) {
            return skipped;
        }
        match marker {
            // str8/16/32 and bin8/16/32: a 1-, 2- or 4-byte length, then the bytes.
            m @ (0xd9..=0xdb | 0xc4..=0xc6) => {
                let width = 1 << (m - if m >= 0xd9 { 0xd9 } else { 0xc4 });
                let n = self.be(width)?;
                let bytes = self.take(n)?;
                if m <= 0xc6 {
                    on_link(Link::Bin(bytes));
                }
                Ok(())
            }
            0xd5 => {
                let at = self.at - 1;
                if let Some(back) = self.local()? {
                    on_link(Link::Local(at, back));
                }
                Ok(())
            }
            // fixext 1..16 and ext8/16/32: the type byte, then the data.
            m @ 0xd4..=0xd8 => self.take(1 + (1usize << (m - 0xd4))).map(|_| ()),
            m @ 0xc7..=0xc9 => {
                let n = self.be(1 << (m - 0xc7))?;
                self.take(n.saturating_add(1)).map(|_| ())
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
