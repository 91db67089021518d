//! What is in a tensor (`archive show`): counts of NaN, infinities and zeros, and over the
//! finite values min, max, mean, standard deviation, quantiles and a histogram; for a
//! probability-like last axis, how often each class is the argmax. Every dtype is read as
//! f64 (bf16 and fp8 exactly); complex tensors are summarised by their magnitudes.
//!
//! The figures are numpy's: `mean` and `std` (ddof 0) of the finite values, `quantile` with
//! linear interpolation over the finite values, and `histogram` with 20 equal bins between
//! their min and max (the last bin closed).

use crate::object::tensor::{Dtype, TensorView};

/// The quantiles `summarise` reports.
pub const QUANTILES: [f64; 5] = [0.01, 0.25, 0.5, 0.75, 0.99];

/// Histogram bins.
pub const BINS: usize = 20;

/// A tensor's figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TensorSummary {
    /// Elements (of a complex tensor: its complex numbers).
    pub count: u64,
    /// NaN elements.
    pub nan: u64,
    /// +inf elements.
    pub pos_inf: u64,
    /// -inf elements.
    pub neg_inf: u64,
    /// Elements equal to zero.
    pub zeros: u64,
    /// The least finite value; `None` when there is none (so for the next three).
    pub min: Option<f64>,
    /// The greatest finite value.
    pub max: Option<f64>,
    /// The mean of the finite values.
    pub mean: Option<f64>,
    /// Their standard deviation (ddof 0, as numpy's `std`).
    pub std: Option<f64>,
    /// `(q, value)` for each of `QUANTILES`.
    pub quantiles: Vec<(f64, f64)>,
    /// `BINS` counts between `min` and `max`.
    pub histogram: Vec<u64>,
    /// For a tensor whose rows (along the last axis; a vector is one row) look like probabilities
    /// (values in [0, 1] summing to 1 within 1e-3): how many rows have each class as argmax.
    pub argmax: Option<Vec<u64>>,
}

/// Element `i` of `data` as f64 (a complex element: its magnitude; past the end: NaN).
pub fn element(dtype: Dtype, data: &[u8], i: usize) -> f64 {
    let size = dtype.size();
    let Some(bytes) = data.get(i * size..i * size + size) else {
        return f64::NAN;
    };
    let mut w = [0u8; 16];
    for (d, s) in w.iter_mut().zip(bytes) {
        *d = *s;
    }
    let lo8 = [w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]];
    let hi8 = [w[8], w[9], w[10], w[11], w[12], w[13], w[14], w[15]];
    let lo4 = [w[0], w[1], w[2], w[3]];
    let lo2 = [w[0], w[1]];
    match dtype {
        Dtype::Bool | Dtype::U8 => f64::from(w[0]),
        Dtype::I8 => f64::from(w[0] as i8),
        Dtype::U16 => f64::from(u16::from_le_bytes(lo2)),
        Dtype::I16 => f64::from(i16::from_le_bytes(lo2)),
        Dtype::U32 => f64::from(u32::from_le_bytes(lo4)),
        Dtype::I32 => f64::from(i32::from_le_bytes(lo4)),
        Dtype::U64 => u64::from_le_bytes(lo8) as f64,
        Dtype::I64 => i64::from_le_bytes(lo8) as f64,
        Dtype::F16 => f16(u16::from_le_bytes(lo2)),
        Dtype::BF16 => f64::from(f32::from_bits(u32::from(u16::from_le_bytes(lo2)) << 16)),
        Dtype::F32 => f64::from(f32::from_le_bytes(lo4)),
        Dtype::F64 => f64::from_le_bytes(lo8),
        Dtype::C64 => {
            let re = f32::from_le_bytes(lo4);
            let im = f32::from_le_bytes([w[4], w[5], w[6], w[7]]);
            f64::from(re).hypot(f64::from(im))
        }
        Dtype::C128 => f64::from_le_bytes(lo8).hypot(f64::from_le_bytes(hi8)),
        Dtype::F8E4M3 => f8(w[0], 4, 7, false),
        Dtype::F8E5M2 => f8(w[0], 5, 15, true),
    }
}

/// IEEE half precision.
fn f16(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let mant = f64::from(bits & 0x3ff);
    sign * match exp {
        0 => mant * 2f64.powi(-24),
        31 if mant == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + mant / 1024.0) * 2f64.powi(e - 15),
    }
}

/// An 8-bit float of `exp_bits` exponent bits and the rest mantissa. E5M2 has infinities
/// (IEEE-like); E4M3FN has none, and only all-ones is NaN.
fn f8(byte: u8, exp_bits: u32, bias: i32, ieee: bool) -> f64 {
    let mant_bits = 7 - exp_bits;
    let sign = if byte & 0x80 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((byte >> mant_bits) & ((1 << exp_bits) - 1));
    let mant_max = (1u8 << mant_bits) - 1;
    let mant = byte & mant_max;
    let exp_max = (1 << exp_bits) - 1;
    let scale = f64::from(1u32 << mant_bits);
    if ieee && exp == exp_max {
        return if mant == 0 {
            sign * f64::INFINITY
        } else {
            f64::NAN
        };
    }
    if !ieee && exp == exp_max && mant == mant_max {
        return f64::NAN;
    }
    sign * match exp {
        0 => f64::from(mant) / scale * 2f64.powi(1 - bias),
        e => (1.0 + f64::from(mant) / scale) * 2f64.powi(e - bias),
    }
}

/// The figures of a tensor.
pub fn summarise(t: &TensorView<'_>) -> TensorSummary {
    let dtype = t.dtype();
    let data = t.data();
    let n = t.shape().elements().unwrap_or(0) as usize;
    let mut s = TensorSummary {
        count: n as u64,
        ..TensorSummary::default()
    };
    let mut finite = Vec::with_capacity(n);
    let mut block = vec![0.0; BLOCK.min(n)];
    for start in (0..n).step_by(BLOCK) {
        let len = BLOCK.min(n - start);
        let xs = block.get_mut(..len).unwrap_or_default();
        fill(dtype, data, start, xs);
        for &x in xs.iter() {
            count_value(&mut s, &mut finite, x);
        }
    }
    if !finite.is_empty() {
        moments(&mut s, &finite);
        finite.sort_unstable_by(f64::total_cmp);
        s.quantiles = QUANTILES
            .iter()
            .map(|q| (*q, quantile(&finite, *q)))
            .collect();
    }
    s.argmax = argmax(t);
    s
}

fn count_value(s: &mut TensorSummary, finite: &mut Vec<f64>, x: f64) {
    match x {
        x if x.is_nan() => s.nan += 1,
        x if x == f64::INFINITY => s.pos_inf += 1,
        x if x == f64::NEG_INFINITY => s.neg_inf += 1,
        x => {
            s.zeros += u64::from(x == 0.0);
            finite.push(x);
        }
    }
}

fn moments(s: &mut TensorSummary, finite: &[f64]) {
    let len = finite.len() as f64;
    let mean = finite.iter().sum::<f64>() / len;
    let var = finite.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / len;
    let (lo, hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(*x), hi.max(*x))
        });
    s.mean = Some(mean);
    s.std = Some(var.sqrt());
    s.min = Some(lo);
    s.max = Some(hi);
    s.histogram = histogram(finite, lo, hi);
}

/// numpy's `histogram(x, bins=BINS)`: equal bins between the min and the max (half a unit
/// either side when they are equal), the last bin closed; a value on an edge goes where
/// numpy puts it (its bin index, then corrected against the `linspace` edges).
fn histogram(finite: &[f64], lo: f64, hi: f64) -> Vec<u64> {
    let (lo, hi) = if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    let step = (hi - lo) / BINS as f64;
    let edge = |i: usize| if i == BINS { hi } else { lo + i as f64 * step };
    let norm = BINS as f64 / (hi - lo);
    let mut counts = vec![0u64; BINS];
    for x in finite {
        let mut bin = (((x - lo) * norm) as usize).min(BINS - 1);
        if *x < edge(bin) {
            bin = bin.saturating_sub(1);
        } else if *x >= edge(bin + 1) && bin != BINS - 1 {
            bin += 1;
        }
        if let Some(c) = counts.get_mut(bin) {
            *c += 1;
        }
    }
    counts
}

/// numpy's default (`linear`) quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = pos - lo as f64;
    let a = sorted.get(lo).copied().unwrap_or(f64::NAN);
    let b = sorted.get(hi).copied().unwrap_or(a);
    a + (b - a) * frac
}

/// Argmax counts along the last axis, when its rows look like probabilities.
fn argmax(t: &TensorView<'_>) -> Option<Vec<u64>> {
    let dims = t.shape().dims();
    let classes = usize::try_from(*dims.last()?).ok()?;
    if dims.is_empty()
        || !(2..=100_000).contains(&classes)
        || matches!(t.dtype(), Dtype::C64 | Dtype::C128 | Dtype::Bool)
    {
        return None;
    }
    let rows = t.shape().elements()? as usize / classes;
    let mut counts = vec![0u64; classes];
    for r in 0..rows {
        let (mut best, mut best_at, mut sum) = (f64::NEG_INFINITY, 0, 0.0);
        for c in 0..classes {
            let x = element(t.dtype(), t.data(), r * classes + c);
            if !(0.0..=1.0).contains(&x) {
                return None;
            }
            sum += x;
            if x > best {
                (best, best_at) = (x, c);
            }
        }
        if (sum - 1.0).abs() > 1e-3 {
            return None;
        }
        if let Some(c) = counts.get_mut(best_at) {
            *c += 1;
        }
    }
    Some(counts)
}

/// Default tolerances `(rtol, atol)` for comparing tensors of a dtype: torch.testing's
/// `assert_close` defaults where it has them, exact for integers and bools, and for fp8 one
/// unit of the last mantissa place (E4M3 0.125, E5M2 0.25) with atol 1e-5.
pub fn default_tolerance(dtype: Dtype) -> (f64, f64) {
    match dtype {
        Dtype::F16 => (1e-3, 1e-5),
        Dtype::BF16 => (1.6e-2, 1e-5),
        Dtype::F32 | Dtype::C64 => (1.3e-6, 1e-5),
        Dtype::F64 | Dtype::C128 => (1e-7, 1e-7),
        Dtype::F8E4M3 => (0.125, 1e-5),
        Dtype::F8E5M2 => (0.25, 1e-5),
        _ => (0.0, 0.0),
    }
}

/// How two tensors of one shape differ, `b` the reference: element `i` is within tolerance
/// when `|a - b| <= atol + rtol * |b|` (numpy's `isclose`), or both are NaN, or both are the
/// same infinity.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TensorDiff {
    /// Elements compared.
    pub count: u64,
    /// Elements outside the tolerance.
    pub mismatched: u64,
    /// Elements NaN on one side only.
    pub nan_changed: u64,
    /// The largest `|a - b|` over elements finite on both sides, and its flat index.
    pub max_abs: Option<(f64, u64)>,
    /// The largest `|a - b| / |b|` over elements finite on both sides with `b != 0`, and its
    /// flat index.
    pub max_rel: Option<(f64, u64)>,
    /// For probability-like rows (see `TensorSummary::argmax`) on both sides: rows compared,
    /// and rows whose argmax differs.
    pub argmax_flips: Option<(u64, u64)>,
}

/// Compare two tensors of one dtype and shape (the caller checks) under `(rtol, atol)`.
pub fn compare(a: &TensorView<'_>, b: &TensorView<'_>, rtol: f64, atol: f64) -> TensorDiff {
    use rayon::prelude::*;
    let n = a.shape().elements().unwrap_or(0) as usize;
    // Blocks on every core, merged in order: the first largest difference wins, as numpy's
    // argmax finds it.
    let parts: Vec<TensorDiff> = (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .map(|k| {
            let start = k * BLOCK;
            let len = BLOCK.min(n - start);
            let (mut xs, mut ys) = (vec![0.0; len], vec![0.0; len]);
            fill(a.dtype(), a.data(), start, &mut xs);
            fill(b.dtype(), b.data(), start, &mut ys);
            compare_block(&xs, &ys, start as u64, rtol, atol)
        })
        .collect();
    let mut d = TensorDiff {
        count: n as u64,
        ..TensorDiff::default()
    };
    for p in parts {
        d.mismatched += p.mismatched;
        d.nan_changed += p.nan_changed;
        if p.max_abs
            .is_some_and(|(v, _)| d.max_abs.is_none_or(|(m, _)| v > m))
        {
            d.max_abs = p.max_abs;
        }
        if p.max_rel
            .is_some_and(|(v, _)| d.max_rel.is_none_or(|(m, _)| v > m))
        {
            d.max_rel = p.max_rel;
        }
    }
    d.argmax_flips = flips(a, b);
    d
}

/// Elements a tensor is read in, converted to f64 a block at a time.
const BLOCK: usize = 1 << 14;

/// Elements `start..start + out.len()` of `data` as f64: a typed loop for the common float
/// dtypes, `element` for the rest.
fn fill(dtype: Dtype, data: &[u8], start: usize, out: &mut [f64]) {
    let size = dtype.size();
    let bytes = data
        .get(start * size..(start + out.len()) * size)
        .unwrap_or_default();
    match dtype {
        Dtype::F32 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = <[u8; 4]>::try_from(c).map_or(f64::NAN, |w| f64::from(f32::from_le_bytes(w)));
            }
        }
        Dtype::F64 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                *o = <[u8; 8]>::try_from(c).map_or(f64::NAN, f64::from_le_bytes);
            }
        }
        _ => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = element(dtype, data, start + i);
            }
        }
    }
}

/// `compare` of one block, `first` the flat index of its first element.
fn compare_block(xs: &[f64], ys: &[f64], first: u64, rtol: f64, atol: f64) -> TensorDiff {
    let mut d = TensorDiff::default();
    for (i, (&x, &y)) in xs.iter().zip(ys).enumerate() {
        let at = first + i as u64;
        if x.is_nan() || y.is_nan() {
            if x.is_nan() != y.is_nan() {
                d.nan_changed += 1;
                d.mismatched += 1;
            }
            continue;
        }
        if x.is_infinite() || y.is_infinite() {
            d.mismatched += u64::from(x != y);
            continue;
        }
        let diff = (x - y).abs();
        d.mismatched += u64::from(diff > atol + rtol * y.abs());
        if d.max_abs.is_none_or(|(m, _)| diff > m) {
            d.max_abs = Some((diff, at));
        }
        if y != 0.0 {
            let rel = diff / y.abs();
            if d.max_rel.is_none_or(|(m, _)| rel > m) {
                d.max_rel = Some((rel, at));
            }
        }
    }
    d
}

/// Rows, and rows whose argmax differs, when both tensors' rows look like probabilities.
fn flips(a: &TensorView<'_>, b: &TensorView<'_>) -> Option<(u64, u64)> {
    argmax(a)?;
    argmax(b)?;
    let classes = *a.shape().dims().last()? as usize;
    let rows = a.shape().elements()? as usize / classes;
    let best = |t: &TensorView<'_>, r: usize| {
        (0..classes)
            .map(|c| element(t.dtype(), t.data(), r * classes + c))
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |(bi, bx), (i, x)| {
                if x > bx { (i, x) } else { (bi, bx) }
            })
            .0
    };
    let flipped = (0..rows).filter(|r| best(a, *r) != best(b, *r)).count();
    Some((rows as u64, flipped as u64))
}
