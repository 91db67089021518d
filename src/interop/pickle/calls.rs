//! The pickle opcodes that could run code: globals (checked against `allowed`), REDUCE and
//! BUILD, which only ever rebuild numpy arrays, dtypes and scalars, and bytes.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use super::{DtypeSpec, Global, Machine, V, allowed};
use crate::error::{Error, Result};
use crate::interop::Array;
use crate::interop::npy::{fortran_to_c, parse_numpy_dtype, swap_to_little_endian};
use crate::object::tensor::Shape;

impl Machine<'_> {
    /// Globals, calls and builds: the only opcodes that could run code, so every callable is
    /// checked against `allowed`. Anything else left is refused by name.
    pub(super) fn call_op(&mut self, op: u8) -> Result<()> {
        match op {
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                let g = self.global(module, name)?;
                self.stack.push(V::Global(g));
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (V::Str(module), V::Str(name)) = (&module, &name) else {
                    return Err(self.bad("STACK_GLOBAL of values that are not strings"));
                };
                let g = self.global(module, name)?;
                self.stack.push(V::Global(g));
            }
            b'R' => {
                let args = self.pop()?;
                let f = self.pop()?;
                let V::Tuple(args) = args else {
                    return Err(self.bad("REDUCE with arguments that are not a tuple"));
                };
                let v = self.call(&f, &args.0)?;
                self.stack.push(v);
            }
            b'b' => {
                let state = self.pop()?;
                let target = self.top()?.clone();
                self.build(&target, &state)?;
            }
            0x97 | 0x98 => {
                return Err(self.bad("an out-of-band buffer (pickle protocol 5 buffer_callback)"));
            }
            b'P' | b'Q' => return Err(self.bad("a persistent id (a torch.save file?)")),
            b'i' | b'o' | 0x81 | 0x92 => {
                return Err(self.bad("an object built from a class, which this reader never does"));
            }
            0x82..=0x84 => return Err(self.bad("a copyreg extension code")),
            other => return Err(self.bad(format!("unknown opcode 0x{other:02x}"))),
        }
        Ok(())
    }

    fn global(&self, module: &str, name: &str) -> Result<Global> {
        allowed(module, name).ok_or_else(|| {
            Error::invalid(
                self.input,
                format!(
                    "the pickle names `{module}.{name}`, which it would call when loaded; only \
                     numpy arrays, dtypes and scalars and plain values are read from pickles, so \
                     it is refused"
                ),
            )
        })
    }

    fn call(&self, f: &V, args: &[V]) -> Result<V> {
        let V::Global(g) = f else {
            return Err(self.bad("REDUCE of something that is not a global"));
        };
        match (g, args) {
            (Global::Reconstruct, [V::Global(Global::Ndarray), ..]) => {
                Ok(V::Array(Rc::new(RefCell::new(None))))
            }
            (Global::Dtype, [V::Str(code), ..]) => Ok(V::Dtype(Rc::new(RefCell::new(DtypeSpec {
                code: code.to_string(),
                order: "|".into(),
            })))),
            (Global::Scalar, [V::Dtype(d), V::Bytes(b)]) => self
                .array_of(&d.borrow(), Shape::new(vec![]), b, false)
                .map(wrap),
            (Global::FromBuffer, [V::Bytes(b), V::Dtype(d), V::Tuple(shape), V::Str(order)]) => {
                let shape = self.shape(&shape.0)?;
                self.array_of(&d.borrow(), shape, b, &**order == "F")
                    .map(wrap)
            }
            (Global::Encode, [V::Str(s), V::Str(enc)]) if &**enc == "latin1" => {
                let bytes: Option<Vec<u8>> =
                    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect();
                let bytes =
                    bytes.ok_or_else(|| self.bad("latin1 text with a character past 255"))?;
                Ok(V::Bytes(bytes.into()))
            }
            (g, _) => Err(self.bad(format!("{g:?} called with arguments it never takes"))),
        }
    }

    /// BUILD: the state of a dtype (its byte order) or of an array from `_reconstruct`.
    fn build(&self, target: &V, state: &V) -> Result<()> {
        let V::Tuple(state) = state else {
            return Err(self.bad("BUILD with a state that is not a tuple"));
        };
        let state = &state.0;
        match target {
            V::Dtype(d) => {
                // (version, byte order, subarray, names, fields, itemsize, alignment, flags)
                if state.get(3).is_some_and(|n| !matches!(n, V::None)) {
                    return Err(Error::invalid(
                        self.input,
                        "holds a structured array (a dtype of named fields), which is not supported",
                    ));
                }
                match state.get(1) {
                    Some(V::Str(o)) => d.borrow_mut().order = o.to_string(),
                    _ => return Err(self.bad("a dtype state without its byte order")),
                }
                Ok(())
            }
            V::Array(slot) => {
                // (version, shape, dtype, is_fortran, data)
                let [_, V::Tuple(shape), V::Dtype(d), V::Bool(fortran), data] = &state[..] else {
                    return Err(self
                        .bad("an array state that is not (version, shape, dtype, fortran, data)"));
                };
                let V::Bytes(data) = data else {
                    return Err(self.bad("an array of Python objects (its data is a list)"));
                };
                let shape = self.shape(&shape.0)?;
                let array = self.array_of(&d.borrow(), shape, data, *fortran)?;
                *slot.borrow_mut() = Some(array);
                Ok(())
            }
            _ => Err(self.bad("BUILD of something that is not an array or a dtype")),
        }
    }

    fn shape(&self, dims: &[V]) -> Result<Shape> {
        let dims = dims
            .iter()
            .map(|d| match d {
                V::Int(n) => u64::try_from(*n).ok(),
                _ => None,
            })
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(|| self.bad("a shape that is not a tuple of sizes"))?;
        Ok(Shape::new(dims))
    }

    fn array_of(
        &self,
        d: &DtypeSpec,
        shape: Shape,
        data: &[u8],
        fortran: bool,
    ) -> Result<Array<'static>> {
        let order = if d.order == "=" {
            "<"
        } else {
            d.order.as_str()
        };
        let (dtype, big_endian) = parse_numpy_dtype(self.input, &format!("{order}{}", d.code))?;
        let mut array = Array::new(self.input, dtype, shape, Cow::Owned(data.to_vec()))?;
        if big_endian {
            swap_to_little_endian(dtype, array.data.to_mut());
        }
        if fortran && array.shape.rank() > 1 {
            let c = fortran_to_c(&array.data, array.shape.dims(), dtype.size());
            array.data = Cow::Owned(c);
        }
        Ok(array)
    }
}

fn wrap(a: Array<'static>) -> V {
    V::Array(Rc::new(RefCell::new(Some(a))))
}
