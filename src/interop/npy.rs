//! numpy's `.npy` format, versions 1.0, 2.0 and 3.0. Fortran-ordered and big-endian arrays are
//! converted to C order, little-endian on the way in; object arrays (pickles) are refused.
//!
//! numpy has no names of its own for bfloat16 and fp8: `ml_dtypes` registers them
//! (`bfloat16`, `float8_e4m3fn`, `float8_e5m2`), and a header whose `descr` is one of those
//! names loads with `np.load` wherever `ml_dtypes` is imported. That is how they go out, and
//! they are read back the same way. (`np.save` itself writes such arrays as void `<V2`,
//! which says nothing of the type; those are refused with a message saying how to save them.)

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::object::tensor::{Dtype, Shape, check_len};

/// The magic string that starts every `.npy` file.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Headers longer than this are refused (numpy itself refuses past 10,000 by default).
pub const MAX_HEADER_LEN: usize = 1 << 20;

/// An array read from `.npy`: C order, little-endian, borrowing the input where it could.
#[derive(Debug)]
pub struct NpyArray<'a> {
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Shape,
    /// The elements.
    pub data: Cow<'a, [u8]>,
}

/// The numpy `descr` of a dtype: the byte-order form (`<f4`, `<U7`, `|S7`) where numpy has
/// one, the `ml_dtypes` name for bfloat16 and fp8. `None` for none today; kept an `Option` so
/// that a dtype numpy cannot name gets a clear error rather than a wrong header.
pub fn descr(dtype: Dtype) -> Option<Cow<'static, str>> {
    Some(Cow::Borrowed(match dtype {
        Dtype::Str(n) => return Some(Cow::Owned(format!("<U{n}"))),
        Dtype::Bytes(n) => return Some(Cow::Owned(format!("|S{n}"))),
        Dtype::Bool => "|b1",
        Dtype::U8 => "|u1",
        Dtype::I8 => "|i1",
        Dtype::U16 => "<u2",
        Dtype::U32 => "<u4",
        Dtype::U64 => "<u8",
        Dtype::I16 => "<i2",
        Dtype::I32 => "<i4",
        Dtype::I64 => "<i8",
        Dtype::F16 => "<f2",
        Dtype::F32 => "<f4",
        Dtype::F64 => "<f8",
        Dtype::C64 => "<c8",
        Dtype::C128 => "<c16",
        Dtype::BF16 => "bfloat16",
        Dtype::F8E4M3 => "float8_e4m3fn",
        Dtype::F8E5M2 => "float8_e5m2",
    }))
}

/// The name numpy (with `ml_dtypes` for bfloat16 and fp8) gives a dtype: `dtype.name`, or
/// for strings `str(dtype)` (`<U7`, `|S7`), which says the width.
pub fn numpy_name(dtype: Dtype) -> Cow<'static, str> {
    Cow::Borrowed(match dtype {
        Dtype::Str(_) | Dtype::Bytes(_) => return descr(dtype).unwrap_or_default(),
        Dtype::Bool => "bool",
        Dtype::U8 => "uint8",
        Dtype::U16 => "uint16",
        Dtype::U32 => "uint32",
        Dtype::U64 => "uint64",
        Dtype::I8 => "int8",
        Dtype::I16 => "int16",
        Dtype::I32 => "int32",
        Dtype::I64 => "int64",
        Dtype::F16 => "float16",
        Dtype::BF16 => "bfloat16",
        Dtype::F32 => "float32",
        Dtype::F64 => "float64",
        Dtype::C64 => "complex64",
        Dtype::C128 => "complex128",
        Dtype::F8E4M3 => "float8_e4m3fn",
        Dtype::F8E5M2 => "float8_e5m2",
    })
}

/// What a refused pickle is told: why, and how to convert safely.
pub(crate) fn pickle_refusal(what: &str) -> String {
    format!(
        "{what}, which numpy stores as pickles; pickles can run code when loaded, so they are \
         refused. Convert to a numeric array first (e.g. `np.asarray(x, dtype=np.float32)`) \
         and save that"
    )
}

/// Parse a numpy dtype as `.npy` headers, msgpack-numpy and JSON name it: a `descr` (`<f4`,
/// `|b1`, `>i8`), a `dtype.name` (`float32`, `bfloat16`, `float8_e4m3fn`) or an archive
/// name (`F32`). Returns the dtype and whether its bytes are big-endian.
pub fn parse_numpy_dtype(input: &str, d: &str) -> Result<(Dtype, bool)> {
    let bad = |why: String| Error::invalid(input, why);
    // Little-endian numbers (`<f4`, `|u1`) first: a msgpack-numpy stream names a dtype in
    // every record.
    if let Some(dtype) = d
        .strip_prefix('<')
        .or_else(|| d.strip_prefix('|'))
        .and_then(numeric_code)
    {
        return Ok((dtype, false));
    }
    if let Some(dtype) = Dtype::ALL
        .into_iter()
        .find(|t| numpy_name(*t) == d || t.name() == d)
    {
        return Ok((dtype, false));
    }
    if let Ok(dtype @ (Dtype::Str(_) | Dtype::Bytes(_))) = d.parse::<Dtype>()
        && !d.starts_with('<')
        && !d.starts_with('|')
    {
        return Ok((dtype, false));
    }
    if d.contains('O') {
        return Err(bad(pickle_refusal(&format!(
            "holds Python objects (dtype `{d}`)"
        ))));
    }
    let (order, rest) = match d.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, d.get(1..).unwrap_or_default()),
        _ => ('=', d),
    };
    if let Some(found) = strings_and_times(input, d, order, rest) {
        return found;
    }
    if rest.starts_with('V') {
        return Err(bad(format!(
            "holds void elements (dtype `{d}`): numpy writes ml_dtypes arrays (bfloat16, \
             float8) this way and loses which type they were. Save them with safetensors, or \
             write the descr as its ml_dtypes name (`bfloat16`, `float8_e4m3fn`, \
             `float8_e5m2`), or put `a.tobytes()` with --dtype and --shape"
        )));
    }
    let Some(dtype) = numeric_code(rest) else {
        return Err(bad(format!("unsupported numpy dtype `{d}`")));
    };
    let host_big = cfg!(target_endian = "big");
    let big = match order {
        '>' => true,
        '=' => host_big,
        _ => false,
    };
    Ok((dtype, big && dtype.size() > 1))
}

/// The numeric type of a `descr` past its byte order (`f4`, `u1`).
fn numeric_code(code: &str) -> Option<Dtype> {
    Some(match code {
        "b1" => Dtype::Bool,
        "u1" => Dtype::U8,
        "i1" => Dtype::I8,
        "u2" => Dtype::U16,
        "u4" => Dtype::U32,
        "u8" => Dtype::U64,
        "i2" => Dtype::I16,
        "i4" => Dtype::I32,
        "i8" => Dtype::I64,
        "f2" => Dtype::F16,
        "f4" => Dtype::F32,
        "f8" => Dtype::F64,
        "c8" => Dtype::C64,
        "c16" => Dtype::C128,
        _ => return None,
    })
}

/// The string dtypes of a `descr` (`<U7`, `|S7`) and the refusal of datetime64 and
/// timedelta64; `None` for any other.
fn strings_and_times(
    input: &str,
    d: &str,
    order: char,
    rest: &str,
) -> Option<Result<(Dtype, bool)>> {
    let bad = |why: String| Error::invalid(input, why);
    if let Some(width) = rest.strip_prefix('U').or_else(|| rest.strip_prefix('S')) {
        let text = rest.starts_with('U');
        let name = format!("{}{width}", if text { "STR" } else { "BYTES" });
        let Ok(dtype) = name.parse::<Dtype>() else {
            return Some(Err(bad(format!(
                "string dtype `{d}` has no width between 1 and 2^24"
            ))));
        };
        let host_big = cfg!(target_endian = "big");
        let big = order == '>' || (order == '=' && host_big);
        return Some(Ok((dtype, big && text)));
    }
    // `<M8[ns]` as a descr, `datetime64[ns]` as a name; a pickle's `M8` keeps its unit apart.
    let (what, unit) = if let Some(u) = rest.strip_prefix("datetime64") {
        ("datetime64", u)
    } else if let Some(u) = rest.strip_prefix("timedelta64") {
        ("timedelta64", u)
    } else {
        match rest.chars().next() {
            Some('M') => ("datetime64", rest.get(2..).unwrap_or_default()),
            Some('m') => ("timedelta64", rest.get(2..).unwrap_or_default()),
            _ => return None,
        }
    };
    let unit = unit.trim_start_matches('[').trim_end_matches(']');
    let keep = match unit {
        "" => "the unit".to_owned(),
        u => format!("the unit (`{u}`)"),
    };
    Some(Err(bad(format!(
        "holds {what} elements (dtype `{d}`), which the archive does not store yet; store them \
         as int64 (`a.view(np.int64)`) and keep {keep} in a tag"
    ))))
}

/// Swap big-endian elements to little-endian in place. Complex numbers swap each component,
/// not the pair.
pub(crate) fn swap_to_little_endian(dtype: Dtype, data: &mut [u8]) {
    let unit = dtype.unit();
    if unit > 1 {
        data.chunks_exact_mut(unit).for_each(<[u8]>::reverse);
    }
}

/// A tiny reader for the Python dict literal of a `.npy` header.
struct Lit<'s> {
    s: &'s str,
    pos: usize,
}

enum Val {
    Str(String),
    Bool(bool),
    Tuple(Vec<u64>),
}

impl Lit<'_> {
    fn ws(&mut self) {
        while self
            .s
            .get(self.pos..)
            .is_some_and(|r| r.starts_with(|c: char| c.is_whitespace()))
        {
            self.pos += 1;
        }
    }
    fn eat(&mut self, c: char) -> bool {
        self.ws();
        if self.s.get(self.pos..).is_some_and(|r| r.starts_with(c)) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }
    fn string(&mut self) -> Option<String> {
        self.ws();
        let rest = self.s.get(self.pos..)?;
        let q = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let end = rest.get(1..)?.find(q)? + 1;
        self.pos += end + 1;
        rest.get(1..end).map(str::to_owned)
    }
    fn value(&mut self) -> Option<Val> {
        self.ws();
        let rest = self.s.get(self.pos..)?;
        if rest.starts_with("True") {
            self.pos += 4;
            return Some(Val::Bool(true));
        }
        if rest.starts_with("False") {
            self.pos += 5;
            return Some(Val::Bool(false));
        }
        if self.eat('(') {
            let mut dims = Vec::new();
            loop {
                if self.eat(')') {
                    return Some(Val::Tuple(dims));
                }
                self.ws();
                let rest = self.s.get(self.pos..)?;
                let n = rest
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len());
                dims.push(rest.get(..n)?.parse().ok()?);
                self.pos += n;
                // Python 2 wrote longs with a suffix: `(2L,)`. numpy reads them.
                if self.s.get(self.pos..)?.starts_with(['L', 'l']) {
                    self.pos += 1;
                }
                if !self.eat(',') && !self.s.get(self.pos..)?.trim_start().starts_with(')') {
                    return None;
                }
            }
        }
        self.string().map(Val::Str)
    }
}

/// Read a `.npy` file's bytes. `input` names the file in errors.
pub fn read<'a>(input: &str, bytes: &'a [u8]) -> Result<NpyArray<'a>> {
    let bad = |why: &str| Error::invalid(input, format!("not a valid .npy file: {why}"));
    if bytes.get(..6) != Some(&MAGIC[..]) {
        return Err(bad("wrong magic (expected \\x93NUMPY)"));
    }
    let major = *bytes.get(6).ok_or_else(|| bad("truncated"))?;
    let (len, start) = match major {
        1 => (crate::format::le_u16(bytes, 8).map(usize::from), 10),
        2 | 3 => (crate::format::le_u32(bytes, 8).map(|l| l as usize), 12),
        v => return Err(bad(&format!("format version {v}.x is not 1, 2 or 3"))),
    };
    let len = len.ok_or_else(|| bad("truncated header"))?;
    if len > MAX_HEADER_LEN {
        return Err(bad(&format!("header claims {len} bytes")));
    }
    let header = bytes
        .get(start..start + len)
        .ok_or_else(|| bad("header runs past the end"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
    let mut lit = Lit { s: header, pos: 0 };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    if !lit.eat('{') {
        return Err(bad("header is not a dict"));
    }
    while !lit.eat('}') {
        let key = lit.string().ok_or_else(|| bad("bad header key"))?;
        if !lit.eat(':') {
            return Err(bad("bad header"));
        }
        let structured = key == "descr"
            && lit
                .s
                .get(lit.pos..)
                .is_some_and(|r| r.trim_start().starts_with('['));
        if structured {
            return Err(Error::invalid(
                input,
                "holds a structured array (its dtype is a list of named fields), which is not \
                 supported: save each field as an array of its own (np.savez(f, **{n: a[n] for n \
                 in a.dtype.names}))",
            ));
        }
        match (key.as_str(), lit.value()) {
            ("descr", Some(Val::Str(d))) => descr = Some(d),
            ("fortran_order", Some(Val::Bool(b))) => fortran = Some(b),
            ("shape", Some(Val::Tuple(t))) => shape = Some(t),
            _ => return Err(bad(&format!("bad header entry `{key}`"))),
        }
        lit.eat(',');
    }
    let descr = descr.ok_or_else(|| bad("header has no descr"))?;
    let (dtype, big_endian) = parse_numpy_dtype(input, &descr)?;
    let shape = Shape::new(shape.ok_or_else(|| bad("header has no shape"))?);
    let fortran = fortran.ok_or_else(|| bad("header has no fortran_order"))?;
    let data = bytes.get(start + len..).unwrap_or_default();
    check_len(input, dtype, &shape, data.len())?;
    let mut data = Cow::Borrowed(data);
    if big_endian {
        swap_to_little_endian(dtype, data.to_mut());
    }
    if fortran && shape.rank() > 1 {
        data = Cow::Owned(fortran_to_c(&data, shape.dims(), dtype.size()));
    }
    Ok(NpyArray { dtype, shape, data })
}

/// Reorder the elements of a Fortran-ordered array into C order.
pub(crate) fn fortran_to_c(src: &[u8], dims: &[u64], size: usize) -> Vec<u8> {
    let rank = dims.len();
    // Fortran strides, in elements: the first index varies fastest.
    let mut strides = vec![0u64; rank];
    let mut acc = 1u64;
    for (s, d) in strides.iter_mut().zip(dims) {
        *s = acc;
        acc = acc.saturating_mul(*d);
    }
    let mut out = Vec::with_capacity(src.len());
    let mut idx = vec![0u64; rank];
    let total = src.len() / size.max(1);
    for _ in 0..total {
        let off: u64 = idx.iter().zip(&strides).map(|(i, s)| i * s).sum();
        let at = off as usize * size;
        out.extend_from_slice(src.get(at..at + size).unwrap_or_default());
        // Advance the C-order index: the last index varies fastest.
        for (i, d) in idx.iter_mut().zip(dims).rev() {
            *i += 1;
            if *i < *d {
                break;
            }
            *i = 0;
        }
    }
    out
}

/// Encode a tensor as `.npy` (format 1.0, or 2.0 if the header needs it), C order.
pub fn write(input: &str, dtype: Dtype, shape: &Shape, data: &[u8]) -> Result<Vec<u8>> {
    let mut out = header(input, dtype, shape, data.len())?;
    out.extend_from_slice(data);
    Ok(out)
}

/// The bytes of a `.npy` file before its data (`write`), with room reserved for `data_len`
/// bytes more: a large array is written after it as it is, without a copy.
pub fn header(input: &str, dtype: Dtype, shape: &Shape, data_len: usize) -> Result<Vec<u8>> {
    let d = descr(dtype).ok_or_else(|| {
        Error::invalid(
            input,
            format!("numpy has no dtype for {dtype}; write it as raw bytes (.bin) instead"),
        )
    })?;
    let dims: Vec<String> = shape.dims().iter().map(u64::to_string).collect();
    let shape_lit = match dims.len() {
        1 => format!("({},)", dims.join("")),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '{d}', 'fortran_order': False, 'shape': {shape_lit}, }}");
    // numpy pads with spaces so the data starts on a 64-byte boundary, and ends with '\n'.
    let (version, prefix) = if header.len() + 11 < 65536 {
        (1u8, 10)
    } else {
        (2u8, 12)
    };
    let total = (prefix + header.len() + 1).div_ceil(64) * 64;
    header.push_str(&" ".repeat(total - prefix - header.len() - 1));
    header.push('\n');
    let mut out = Vec::with_capacity(total + data_len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_are_refused_by_every_spelling_saying_what_to_do() {
        for (d, what, unit) in [
            ("<M8[ns]", "datetime64", "(`ns`)"),
            ("datetime64[D]", "datetime64", "(`D`)"),
            ("timedelta64[s]", "timedelta64", "(`s`)"),
            ("<m8", "timedelta64", "keep the unit in"),
        ] {
            let e = parse_numpy_dtype("x", d).expect_err(d).to_string();
            assert!(
                e.contains(what) && e.contains(unit) && e.contains("int64"),
                "{e}"
            );
        }
        assert_eq!(
            parse_numpy_dtype("x", "<U7").ok(),
            Some((Dtype::Str(7), false))
        );
        assert_eq!(
            parse_numpy_dtype("x", ">U2").ok(),
            Some((Dtype::Str(2), true))
        );
        assert_eq!(
            parse_numpy_dtype("x", "|S3").ok(),
            Some((Dtype::Bytes(3), false))
        );
    }

    #[test]
    fn write_then_read_round_trips() {
        let shape = Shape::new(vec![2, 3]);
        let data: Vec<u8> = (0..6u32).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let bytes = write("t", Dtype::F32, &shape, &data).expect("write");
        assert_eq!((bytes.len() - data.len()) % 64, 0);
        let arr = read("t", &bytes).expect("read");
        assert_eq!(
            (arr.dtype, &arr.shape, &arr.data[..]),
            (Dtype::F32, &shape, &data[..])
        );
        let scalar = write("t", Dtype::I64, &Shape::new(vec![]), &7i64.to_le_bytes()).expect("w");
        assert_eq!(read("t", &scalar).expect("read").shape.rank(), 0);
    }

    #[test]
    fn fortran_and_big_endian_are_converted() {
        // 2x3 array [[0,1,2],[3,4,5]] as big-endian i16 in Fortran order: 0,3,1,4,2,5.
        let vals: [i16; 6] = [0, 3, 1, 4, 2, 5];
        let data: Vec<u8> = vals.iter().flat_map(|v| v.to_be_bytes()).collect();
        let header = "{'descr': '>i2', 'fortran_order': True, 'shape': (2, 3), }";
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[1, 0]);
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&data);
        let arr = read("t", &bytes).expect("read");
        let expect: Vec<u8> = (0..6i16).flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(&arr.data[..], &expect[..]);
    }

    #[test]
    fn bad_files_are_refused_with_reasons() {
        let good = write("t", Dtype::U8, &Shape::new(vec![4]), &[1, 2, 3, 4]).expect("write");
        for cut in 0..good.len() {
            assert!(
                read("t", good.get(..cut).unwrap_or_default()).is_err(),
                "cut at {cut}"
            );
        }
        let at = good.windows(3).position(|w| w == b"|u1").expect("descr");
        let mut obj = good.clone();
        obj.splice(at..at + 3, b"|O8".iter().copied());
        let err = read("t", &obj).err().map(|e| e.to_string());
        assert!(err.is_some_and(|m| m.contains("pickle")));
        let mut bad = good.clone();
        bad[0] = b'x';
        assert!(read("t", &bad).is_err());
    }
}
