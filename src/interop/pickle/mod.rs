//! Pickles read without running them, as `torch.load(weights_only=True)` and candle's reader
//! do: the opcodes are interpreted into values, and the only callables a pickle may name are
//! numpy's own array, dtype and scalar reconstruction (and `_codecs.encode`, which protocols 0
//! to 2 use for bytes). Any other global is refused by name; nothing is ever called. Plain
//! values (None, bools, ints, floats, strings, bytes, lists, tuples, dicts with string keys)
//! become the document's scalars, lists and maps; numpy arrays and scalars become tensors.
//! Protocols 0 to 5, in-band buffers only. Read-only: there is no pickle writer.
//!
//! `calls.rs` holds the opcodes that could run code (globals, REDUCE, BUILD) and numpy's
//! reconstruction; this file the rest of the machine and the document it makes.
//!
//! Every length is checked against the bytes that remain before anything is allocated, the
//! memo and the stack are bounded by the input, and nesting by `MAX_DOCUMENT_DEPTH`.

use std::cell::RefCell;
use std::rc::Rc;

mod calls;

use super::{Array, Document, MAX_DOCUMENT_DEPTH};
use crate::error::{Error, Result};
use crate::object::record::Value;

/// The callables a pickle may name.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Global {
    /// `numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')`, then BUILD with the state.
    Reconstruct,
    /// `numpy.ndarray`, the class `_reconstruct` is given.
    Ndarray,
    /// `numpy.dtype(code, False, True)`, then BUILD with the byte order.
    Dtype,
    /// `numpy.core.multiarray.scalar(dtype, bytes)`.
    Scalar,
    /// `numpy.core.numeric._frombuffer(buffer, dtype, shape, order)` (protocol 5).
    FromBuffer,
    /// `_codecs.encode(text, 'latin1')`: bytes, as protocols 0 to 2 write them.
    Encode,
}

fn allowed(module: &str, name: &str) -> Option<Global> {
    let core =
        |m: &str, sub: &str| m == format!("numpy.core.{sub}") || m == format!("numpy._core.{sub}");
    Some(match (module, name) {
        (m, "_reconstruct") if core(m, "multiarray") => Global::Reconstruct,
        ("numpy", "ndarray") => Global::Ndarray,
        ("numpy", "dtype") => Global::Dtype,
        (m, "scalar") if core(m, "multiarray") => Global::Scalar,
        (m, "_frombuffer") if core(m, "numeric") => Global::FromBuffer,
        ("_codecs", "encode") => Global::Encode,
        _ => return None,
    })
}

/// A numpy dtype being built: its code (`f4`) and byte order (`<`, `>`, `|`, `=`).
#[derive(Debug)]
struct DtypeSpec {
    code: String,
    order: String,
}

/// A value on the stack or in the memo. Lists, dicts, dtypes and arrays are shared, as in
/// Python: a memoized list that is appended to later is the same list.
#[derive(Clone, Debug)]
enum V {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    List(Rc<RefCell<Items>>),
    Tuple(Rc<Items>),
    /// Keys and values, one after the other.
    Dict(Rc<RefCell<Items>>),
    Global(Global),
    Dtype(Rc<RefCell<DtypeSpec>>),
    /// An array from `_reconstruct`, filled in by BUILD.
    Array(Rc<RefCell<Option<Array<'static>>>>),
    Mark,
}

/// What a list, tuple or dict holds. Dropped without recursion: a pickle can nest lists a
/// million deep, which a recursive drop would overflow the stack on. Each drop moves the
/// values into a per-thread grave, which the outermost drop empties one value at a time. (A
/// list that holds itself is left to leak.)
#[derive(Debug, Default)]
struct Items(Vec<V>);

thread_local! {
    static GRAVE: RefCell<Vec<V>> = const { RefCell::new(Vec::new()) };
    static DIGGING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Drop for Items {
    fn drop(&mut self) {
        let items = std::mem::take(&mut self.0);
        if items.is_empty() {
            return;
        }
        GRAVE.with(|g| g.borrow_mut().extend(items));
        if DIGGING.with(|d| d.replace(true)) {
            return;
        }
        while let Some(v) = GRAVE.with(|g| g.borrow_mut().pop()) {
            drop(v);
        }
        DIGGING.with(|d| d.set(false));
    }
}

fn shared(items: Vec<V>) -> Rc<RefCell<Items>> {
    Rc::new(RefCell::new(Items(items)))
}

struct Machine<'a> {
    input: &'a str,
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<V>,
    memo: Vec<Option<V>>,
}

/// Read a pickle's bytes (compressed ones, `zlib.compress(pickle.dumps(x))`, are inflated by
/// `interop::read` first, as for every format). `input` names the file in errors.
pub fn read(input: &str, bytes: &[u8]) -> Result<Document<'static>> {
    let mut m = Machine {
        input,
        bytes,
        pos: 0,
        stack: Vec::new(),
        memo: Vec::new(),
    };
    let top = m.run()?;
    to_document(input, &top, 0, &mut Budget::for_input(bytes.len()))
}

impl<'a> Machine<'a> {
    #[cold]
    fn bad(&self, why: impl std::fmt::Display) -> Error {
        Error::invalid(
            self.input,
            format!(
                "not a pickle this archive reads: at byte {}: {why}",
                self.pos
            ),
        )
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let n = usize::try_from(n).map_err(|_| self.bad("a length past the end"))?;
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| self.bad(format!("{n} bytes claimed, fewer left")))?;
        let s = self.bytes.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(s)
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N as u64)?);
        Ok(out)
    }

    /// The bytes up to the next newline, which is passed.
    fn raw_line(&mut self) -> Result<&'a [u8]> {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let n = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| self.bad("a text argument without its newline"))?;
        self.pos += n + 1;
        Ok(rest.get(..n).unwrap_or_default())
    }

    fn line(&mut self) -> Result<&'a str> {
        let line = self.raw_line()?;
        std::str::from_utf8(line).map_err(|_| self.bad("a text argument is not UTF-8"))
    }

    fn pop(&mut self) -> Result<V> {
        match self.stack.pop() {
            Some(V::Mark) | None => Err(self.bad("the stack is empty")),
            Some(v) => Ok(v),
        }
    }

    fn top(&self) -> Result<&V> {
        match self.stack.last() {
            Some(V::Mark) | None => Err(self.bad("the stack is empty")),
            Some(v) => Ok(v),
        }
    }

    /// The values since the last mark, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<V>> {
        let at = self
            .stack
            .iter()
            .rposition(|v| matches!(v, V::Mark))
            .ok_or_else(|| self.bad("no mark to go back to"))?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }

    fn put(&mut self, at: u64) -> Result<()> {
        let v = self.top()?.clone();
        // The memo is bounded by the input: a pickle stores at most one value per byte.
        let at = usize::try_from(at)
            .ok()
            .filter(|a| *a <= self.bytes.len())
            .ok_or_else(|| self.bad(format!("memo slot {at} past any the input can fill")))?;
        if self.memo.len() <= at {
            self.memo.resize(at + 1, None);
        }
        if let Some(slot) = self.memo.get_mut(at) {
            *slot = Some(v);
        }
        Ok(())
    }

    fn get(&mut self, at: u64) -> Result<()> {
        let v = usize::try_from(at)
            .ok()
            .and_then(|a| self.memo.get(a).cloned().flatten())
            .ok_or_else(|| self.bad(format!("memo slot {at} is empty")))?;
        self.stack.push(v);
        Ok(())
    }

    fn run(&mut self) -> Result<V> {
        loop {
            let op = *self
                .bytes
                .get(self.pos)
                .ok_or_else(|| self.bad("ends before its STOP"))?;
            self.pos += 1;
            if op == b'.' {
                return self.pop();
            }
            if !(self.scalar_op(op)? || self.container_op(op)? || self.memo_op(op)?) {
                self.call_op(op)?;
            }
        }
    }

    /// Opcodes that push a scalar, or say what protocol follows. True if `op` was one.
    fn scalar_op(&mut self, op: u8) -> Result<bool> {
        let v = match op {
            0x80 => return self.take(1).map(|_| true),
            0x95 => return self.take(8).map(|_| true),
            b'N' => V::None,
            0x88 => V::Bool(true),
            0x89 => V::Bool(false),
            b'J' => V::Int(i64::from(i32::from_le_bytes(self.le()?))),
            b'K' => V::Int(i64::from(self.le::<1>()?[0])),
            b'M' => V::Int(i64::from(u16::from_le_bytes(self.le()?))),
            0x8a => {
                let n = u64::from(self.le::<1>()?[0]);
                self.long(n)?
            }
            0x8b => {
                let n = i32::from_le_bytes(self.le()?);
                self.long(u64::try_from(n).map_err(|_| self.bad("a negative length"))?)?
            }
            b'I' | b'L' => self.text_int()?,
            b'G' => V::Float(f64::from_be_bytes(self.le()?)),
            b'F' => {
                let l = self.line()?;
                V::Float(
                    l.trim()
                        .parse()
                        .map_err(|_| self.bad(format!("`{l}` is not a float")))?,
                )
            }
            b'X' => {
                let n = self.len(4)?;
                self.text(n)?
            }
            0x8c => {
                let n = self.len(1)?;
                self.text(n)?
            }
            0x8d => {
                let n = self.len(8)?;
                self.text(n)?
            }
            b'V' => self.unicode_line()?,
            b'B' => {
                let n = self.len(4)?;
                self.raw(n)?
            }
            b'C' => {
                let n = self.len(1)?;
                self.raw(n)?
            }
            0x8e | 0x96 => {
                let n = self.len(8)?;
                self.raw(n)?
            }
            b'T' => {
                let n = i32::from_le_bytes(self.le()?);
                self.raw(u64::try_from(n).map_err(|_| self.bad("a negative length"))?)?
            }
            b'U' => {
                let n = self.len(1)?;
                self.raw(n)?
            }
            _ => return Ok(false),
        };
        self.stack.push(v);
        Ok(true)
    }

    /// Protocol 0's `V`: a line of raw-unicode-escape text (`\\uXXXX` and `\\UXXXXXXXX`
    /// escapes, every other byte a Latin-1 character).
    fn unicode_line(&mut self) -> Result<V> {
        let line = self.raw_line()?;
        let n = line.len();
        let mut out = String::with_capacity(n);
        let mut i = 0;
        while i < line.len() {
            let width = match (line.get(i), line.get(i + 1)) {
                (Some(b'\\'), Some(b'u')) => 4,
                (Some(b'\\'), Some(b'U')) => 8,
                (b, _) => {
                    let b = b.copied().unwrap_or_default();
                    out.push(char::from(b));
                    i += 1;
                    continue;
                }
            };
            let c = line
                .get(i + 2..i + 2 + width)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .and_then(char::from_u32)
                .ok_or_else(|| self.bad("a bad \\u escape in text"))?;
            out.push(c);
            i += 2 + width;
        }
        Ok(V::Str(out.into()))
    }

    /// A little-endian unsigned length of `width` bytes.
    fn len(&mut self, width: usize) -> Result<u64> {
        let b = self.take(width as u64)?;
        let mut w = [0u8; 8];
        for (d, s) in w.iter_mut().zip(b) {
            *d = *s;
        }
        Ok(u64::from_le_bytes(w))
    }

    fn text(&mut self, n: u64) -> Result<V> {
        let b = self.take(n)?;
        let s = std::str::from_utf8(b).map_err(|_| self.bad("a string is not UTF-8"))?;
        Ok(V::Str(s.into()))
    }

    fn raw(&mut self, n: u64) -> Result<V> {
        Ok(V::Bytes(self.take(n)?.into()))
    }

    /// A little-endian two's-complement integer of `n` bytes, if it fits in 64 bits.
    fn long(&mut self, n: u64) -> Result<V> {
        let b = self.take(n)?;
        if b.len() > 8 {
            return Err(self.bad(format!(
                "an integer of {} bytes does not fit in 64 bits",
                b.len()
            )));
        }
        let fill = if b.last().is_some_and(|x| x & 0x80 != 0) {
            0xff
        } else {
            0
        };
        let mut w = [fill; 8];
        for (d, s) in w.iter_mut().zip(b) {
            *d = *s;
        }
        Ok(V::Int(i64::from_le_bytes(w)))
    }

    /// Protocol 0's `I` and `L`: decimal text (`01`/`00` are True and False).
    fn text_int(&mut self) -> Result<V> {
        let l = self.line()?;
        Ok(match l {
            "01" => V::Bool(true),
            "00" => V::Bool(false),
            _ => V::Int(
                l.trim_end_matches('L')
                    .parse()
                    .map_err(|_| self.bad(format!("`{l}` is not a 64-bit integer")))?,
            ),
        })
    }

    /// Opcodes that build tuples, lists and dicts. True if `op` was one.
    fn container_op(&mut self, op: u8) -> Result<bool> {
        match op {
            b'(' => self.stack.push(V::Mark),
            b')' => self.stack.push(V::Tuple(Rc::default())),
            b']' => self.stack.push(V::List(Rc::default())),
            b'}' => self.stack.push(V::Dict(Rc::default())),
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let at = self
                    .stack
                    .len()
                    .checked_sub(n)
                    .filter(|at| !self.stack.iter().skip(*at).any(|v| matches!(v, V::Mark)))
                    .ok_or_else(|| self.bad("a tuple of values the stack does not hold"))?;
                let items = self.stack.split_off(at);
                self.stack.push(V::Tuple(Rc::new(Items(items))));
            }
            b't' => {
                let items = self.pop_mark()?;
                self.stack.push(V::Tuple(Rc::new(Items(items))));
            }
            b'l' => {
                let items = self.pop_mark()?;
                self.stack.push(V::List(shared(items)));
            }
            b'd' => {
                let items = self.pop_mark()?;
                self.check_pairs(&items)?;
                self.stack.push(V::Dict(shared(items)));
            }
            b'a' => {
                let v = self.pop()?;
                self.extend_list(vec![v])?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.extend_list(items)?;
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.extend_dict(vec![k, v])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.check_pairs(&items)?;
                self.extend_dict(items)?;
            }
            0x8f..=0x91 => return Err(self.bad("a set, which has no record form")),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn check_pairs(&self, items: &[V]) -> Result<()> {
        if !items.len().is_multiple_of(2) {
            return Err(self.bad("a dict of an odd number of values"));
        }
        Ok(())
    }

    fn extend_list(&mut self, items: Vec<V>) -> Result<()> {
        match self.top()? {
            V::List(l) => {
                l.borrow_mut().0.extend(items);
                Ok(())
            }
            _ => Err(self.bad("APPEND to something not a list")),
        }
    }

    fn extend_dict(&mut self, pairs: Vec<V>) -> Result<()> {
        match self.top()? {
            V::Dict(d) => {
                d.borrow_mut().0.extend(pairs);
                Ok(())
            }
            _ => Err(self.bad("SETITEM on something not a dict")),
        }
    }

    /// Memo and stack housekeeping. True if `op` was one.
    fn memo_op(&mut self, op: u8) -> Result<bool> {
        match op {
            b'p' => {
                let l = self.line()?;
                let at = l
                    .parse()
                    .map_err(|_| self.bad(format!("memo slot `{l}`")))?;
                self.put(at)?;
            }
            b'q' => {
                let at = self.le::<1>()?[0];
                self.put(u64::from(at))?;
            }
            b'r' => {
                let at = u32::from_le_bytes(self.le()?);
                self.put(u64::from(at))?;
            }
            0x94 => self.put(self.memo.len() as u64)?,
            b'g' => {
                let l = self.line()?;
                let at = l
                    .parse()
                    .map_err(|_| self.bad(format!("memo slot `{l}`")))?;
                self.get(at)?;
            }
            b'h' => {
                let at = self.le::<1>()?[0];
                self.get(u64::from(at))?;
            }
            b'j' => {
                let at = u32::from_le_bytes(self.le()?);
                self.get(u64::from(at))?;
            }
            b'0' => {
                self.stack
                    .pop()
                    .ok_or_else(|| self.bad("POP of an empty stack"))?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let v = self.top()?.clone();
                self.stack.push(v);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// What building the document may still spend. Shared values (the memo, DUP) let a small
/// pickle name an exponential tree, "a billion laughs": every value and every tensor byte
/// put into the document counts, against a budget proportional to the input.
struct Budget {
    values: u64,
    bytes: u64,
}

impl Budget {
    fn for_input(len: usize) -> Budget {
        let len = len as u64;
        Budget {
            values: 1_000_000 + 16 * len,
            bytes: (64 << 20) + 4 * len,
        }
    }

    fn spend(&mut self, input: &str, values: u64, bytes: u64) -> Result<()> {
        if values > self.values || bytes > self.bytes {
            return Err(Error::invalid(
                input,
                "a pickle whose shared values expand past what its size allows (a \"billion \
                 laughs\"): refused",
            ));
        }
        self.values -= values;
        self.bytes -= bytes;
        Ok(())
    }
}

/// The document a pickled value is.
fn to_document(input: &str, v: &V, depth: usize, budget: &mut Budget) -> Result<Document<'static>> {
    let bad = |why: &str| {
        Error::invalid(
            input,
            format!("a pickle of {why}, which has no record form"),
        )
    };
    if depth > MAX_DOCUMENT_DEPTH {
        return Err(Error::invalid(
            input,
            format!("nested deeper than {MAX_DOCUMENT_DEPTH} levels (or a list that holds itself)"),
        ));
    }
    budget.spend(input, 1, 0)?;
    Ok(match v {
        V::None => Document::Scalar(Value::Null),
        V::Bool(b) => Document::Scalar(Value::Bool(*b)),
        V::Int(i) => Document::Scalar(Value::Int(*i)),
        V::Float(f) => Document::Scalar(Value::Float(*f)),
        V::Str(s) => {
            budget.spend(input, 0, s.len() as u64)?;
            Document::Scalar(Value::Str(s.to_string()))
        }
        V::Bytes(_) => return Err(bad("raw bytes")),
        V::List(l) => Document::List(list(input, &l.borrow().0, depth, budget)?),
        V::Tuple(t) => Document::List(list(input, &t.0, depth, budget)?),
        V::Dict(d) => Document::Map(fields(input, &d.borrow().0, depth, budget)?),
        V::Array(a) => match &*a.borrow() {
            Some(a) => {
                budget.spend(input, 0, a.data.len() as u64)?;
                Document::Tensor(a.clone())
            }
            None => return Err(bad("an array whose state never came")),
        },
        V::Global(g) => return Err(bad(&format!("the callable {g:?} itself"))),
        V::Dtype(_) => return Err(bad("a dtype alone")),
        V::Mark => return Err(bad("a mark")),
    })
}

fn list(
    input: &str,
    items: &[V],
    depth: usize,
    budget: &mut Budget,
) -> Result<Vec<Document<'static>>> {
    items
        .iter()
        .map(|v| to_document(input, v, depth + 1, budget))
        .collect()
}

/// A dict's fields in insertion order; a key set again keeps its place and takes the later
/// value, as in Python.
fn fields(
    input: &str,
    pairs: &[V],
    depth: usize,
    budget: &mut Budget,
) -> Result<Vec<(String, Document<'static>)>> {
    let mut out: Vec<(String, Document<'static>)> = Vec::new();
    let mut at: std::collections::HashMap<Rc<str>, usize> = std::collections::HashMap::new();
    for pair in pairs.chunks_exact(2) {
        let [k, v] = pair else { continue };
        let V::Str(k) = k else {
            return Err(Error::invalid(
                input,
                "a pickle of a dict whose keys are not all strings, which has no record form",
            ));
        };
        let doc = to_document(input, v, depth + 1, budget)?;
        match at.get(k) {
            Some(i) => {
                if let Some(slot) = out.get_mut(*i) {
                    slot.1 = doc;
                }
            }
            None => {
                at.insert(Rc::clone(k), out.len());
                out.push((k.to_string(), doc));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(bytes: &[u8]) -> String {
        match read("t", bytes) {
            Err(e) => e.to_string(),
            Ok(d) => panic!("read {d:?}"),
        }
    }

    #[test]
    fn plain_values_read_into_a_document() {
        // {'a': [1, 2.5, 'x', None, True]} at protocol 2.
        let p = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01]q\x02(K\x01G@\x04\x00\x00\x00\x00\x00\x00X\x01\x00\x00\x00xq\x03N\x88es.";
        let doc = read("t", p).expect("read");
        let Document::Map(fields) = doc else {
            panic!("{doc:?}")
        };
        assert_eq!(fields.len(), 1);
        assert!(matches!(&fields[0].1, Document::List(items) if items.len() == 5));
    }

    #[test]
    fn hostile_pickles_are_refused_without_allocating_or_recursing() {
        // A string claiming 4 GiB.
        assert!(msg(b"\x80\x04X\xff\xff\xff\xff").contains("claimed"));
        // A memo slot far past the input.
        assert!(msg(b"\x80\x04Nr\xff\xff\xff\xff.").contains("memo slot"));
        // A list that holds itself.
        assert!(msg(b"]q\x00h\x00a.").contains("nested deeper"));
        // Lists nested a million deep, built with APPEND: refused, and dropped without
        // recursion, whole or popped off the stack.
        let mut deep = vec![b']'; 1_000_000];
        deep.extend(std::iter::repeat_n(b'a', 999_999));
        let mut popped = deep.clone();
        deep.push(b'.');
        assert!(msg(&deep).contains("nested deeper"));
        popped.extend(b"0N.");
        assert!(matches!(
            read("t", &popped),
            Ok(Document::Scalar(Value::Null))
        ));
        // A tuple of a deep list, dropped as REDUCE's refused arguments.
        let mut args = vec![b']'; 1_000_000];
        args.extend(std::iter::repeat_n(b'a', 999_999));
        args.splice(0..0, b"c_codecs\nencode\n".iter().copied());
        args.extend(b"\x85R.");
        assert!(msg(&args).contains("arguments"));
        // A billion laughs: a list of two copies of a list of two copies of ..., 60 deep.
        let mut laughs = b"]".to_vec();
        for _ in 0..60 {
            laughs.extend(b"2\x86");
        }
        laughs.push(b'.');
        assert!(msg(&laughs).contains("billion laughs"));
        // Unknown opcodes, a missing STOP, an empty stack.
        assert!(msg(b"\xff").contains("unknown opcode"));
        assert!(msg(b"N").contains("STOP"));
        assert!(msg(b".").contains("empty"));
        // A global outside the allowed few, by name.
        assert!(msg(b"cos\nsystem\n.").contains("`os.system`"));
        // Out-of-band buffers and persistent ids.
        assert!(msg(b"\x80\x05\x97.").contains("out-of-band"));
        assert!(msg(b"\x80\x02K\x01Q.").contains("persistent"));
    }
}
