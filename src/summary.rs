//! What is in a tensor (`archive show`): counts of NaN, infinities and zeros, and over the
//! finite values min, max, mean, standard deviation, quantiles and a histogram; for a
//! probability-like last axis, how often each class is the argmax. Every dtype is read as
//! f64 (bf16 and fp8 exactly); complex tensors are summarised by their magnitudes.
//!
//! The figures are numpy's: `mean` and `std` (ddof 0) of the finite values, `quantile` with
//! linear interpolation over the finite values, and `histogram` with 20 equal bins between
//! their min and max (the last bin closed).

use crate::object::tensor::{Dtype, Shape, TensorView};

/// The quantiles `summarise` reports.
pub const QUANTILES: [f64; 5] = [0.01, 0.25, 0.5, 0.75, 0.99];

/// Histogram bins.
pub const BINS: usize = 20;

/// The most classes a last axis may have for its argmax to be counted.
const MAX_CLASSES: usize = 100_000;

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
        Dtype::Str(_) | Dtype::Bytes(_) => f64::NAN,
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
    let mut whole = |visit: &mut dyn FnMut(&TensorView<'_>)| {
        visit(t);
        Ok(())
    };
    summarise_passes(t.shape(), &mut whole).unwrap_or_default()
}

/// One walk over a tensor, a block of whole rows at a time and in order: each call gives
/// `visit` every block once.
pub type Walk<'a> = dyn FnMut(&mut dyn FnMut(&TensorView<'_>)) -> crate::error::Result<()> + 'a;

/// `summarise` of a tensor of `shape` read by `walk`, a block at a time: memory that of a
/// block and of the values near each quantile, whatever the tensor's size. The figures are
/// the same as over the whole: sums in the same order, and each quantile from the exact
/// values at its ranks, found by counting values in ranges of their ordered bits (three
/// walks; more only when millions of values share one of 65,536 ranges).
pub fn summarise_passes(shape: &Shape, walk: &mut Walk<'_>) -> crate::error::Result<TensorSummary> {
    let n = shape.elements().unwrap_or(0);
    let mut s = TensorSummary {
        count: n,
        ..TensorSummary::default()
    };
    // A vector is one row: read in blocks, it is several, so its argmax is left out when
    // it is too long to have one anyway.
    let one_row = shape.dims().len() == 1 && n > MAX_CLASSES as u64;
    let mut argmax_counts = (!one_row).then(Vec::new);
    let (mut finite, mut sum) = (0u64, 0.0f64);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    walk(&mut |v| {
        each_value(v, &mut |x| match x {
            x if x.is_nan() => s.nan += 1,
            x if x == f64::INFINITY => s.pos_inf += 1,
            x if x == f64::NEG_INFINITY => s.neg_inf += 1,
            x => {
                s.zeros += u64::from(x == 0.0);
                finite += 1;
                sum += x;
                (lo, hi) = (lo.min(x), hi.max(x));
            }
        });
        argmax_counts = match (argmax_counts.take(), argmax(v)) {
            (Some(mut all), Some(part)) => {
                all.resize(all.len().max(part.len()), 0);
                all.iter_mut().zip(&part).for_each(|(a, p)| *a += p);
                Some(all)
            }
            _ => None,
        };
    })?;
    s.argmax = argmax_counts;
    if finite == 0 {
        return Ok(s);
    }
    let mean = sum / finite as f64;
    let hist = Hist::new(lo, hi);
    let mut counts = vec![0u64; BINS];
    let mut var = 0.0f64;
    let mut ranks = Ranks::new(finite, key(lo), key(hi));
    walk(&mut |v| {
        each_value(v, &mut |x| {
            if x.is_finite() {
                var += (x - mean) * (x - mean);
                hist.add(&mut counts, x);
                ranks.count(key(x));
            }
        });
    })?;
    (s.min, s.max, s.mean) = (Some(lo), Some(hi), Some(mean));
    s.std = Some((var / finite as f64).sqrt());
    s.histogram = counts;
    let values = ranks.resolve(walk)?;
    s.quantiles = QUANTILES
        .iter()
        .map(|q| (*q, quantile_of(&values, finite, *q)))
        .collect();
    Ok(s)
}

/// Call `f` with each element of `v`, as f64, in order.
fn each_value(v: &TensorView<'_>, f: &mut dyn FnMut(f64)) {
    if v.dtype().is_string() {
        // Strings have no values to count: a summary of one is its count alone.
        return;
    }
    let n = v.shape().elements().unwrap_or(0) as usize;
    let mut block = vec![0.0; BLOCK.min(n)];
    for start in (0..n).step_by(BLOCK) {
        let len = BLOCK.min(n - start);
        let xs = block.get_mut(..len).unwrap_or_default();
        fill(v.dtype(), v.data(), start, xs);
        xs.iter().for_each(|x| f(*x));
    }
}

/// numpy's `histogram(x, bins=BINS)`: equal bins between the min and the max (half a unit
/// either side when they are equal), the last bin closed; a value on an edge goes where
/// numpy puts it (its bin index, then corrected against the `linspace` edges).
struct Hist {
    lo: f64,
    hi: f64,
    step: f64,
    norm: f64,
}

impl Hist {
    fn new(lo: f64, hi: f64) -> Hist {
        let (lo, hi) = if lo == hi {
            (lo - 0.5, hi + 0.5)
        } else {
            (lo, hi)
        };
        Hist {
            lo,
            hi,
            step: (hi - lo) / BINS as f64,
            norm: BINS as f64 / (hi - lo),
        }
    }

    fn edge(&self, i: usize) -> f64 {
        if i == BINS {
            self.hi
        } else {
            self.lo + i as f64 * self.step
        }
    }

    fn add(&self, counts: &mut [u64], x: f64) {
        let mut bin = (((x - self.lo) * self.norm) as usize).min(BINS - 1);
        if x < self.edge(bin) {
            bin = bin.saturating_sub(1);
        } else if x >= self.edge(bin + 1) && bin != BINS - 1 {
            bin += 1;
        }
        if let Some(c) = counts.get_mut(bin) {
            *c += 1;
        }
    }
}

/// The bits of `x` as an integer in the order of the values (negatives reversed below the
/// positives; -0 just below +0, as `total_cmp` has them).
fn key(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 { !b } else { b | 1 << 63 }
}

fn from_key(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

/// numpy's default (`linear`) quantile, from the values at the ranks it needs.
fn quantile_of(values: &std::collections::HashMap<u64, f64>, finite: u64, q: f64) -> f64 {
    let pos = q * (finite - 1) as f64;
    let lo = pos.floor() as u64;
    let hi = (lo + 1).min(finite - 1);
    let frac = pos - lo as f64;
    let a = values.get(&lo).copied().unwrap_or(f64::NAN);
    let b = values.get(&hi).copied().unwrap_or(a);
    a + (b - a) * frac
}

/// Ranges of ordered bits counted in the first walk that counts (`Ranks`): about one per 64
/// finite values, between these bounds.
const FIRST_RANGES: (usize, usize) = (1 << 10, 1 << 20);
/// Ranges a range too full to gather is split into on the next walk.
const NEXT_RANGES: usize = 1 << 12;
/// Values near a rank gathered and sorted at most.
const GATHER: u64 = 1 << 20;

/// The values at the ranks the quantiles need, found without holding the values: each rank
/// is narrowed to a range of keys (`key`) by counting values in sub-ranges, until a range
/// holds one value or few enough to gather and sort.
struct Ranks {
    /// One per rank: the rank within its range, the range of keys, the values in it.
    targets: Vec<Target>,
    /// The split of the range being counted: first key, shift, per sub-range (count, least
    /// key, greatest key).
    from: u64,
    shift: u32,
    bins: Vec<(u64, u64, u64)>,
    /// The first split's first key and shift: every later range lies in one of its ranges.
    first: (u64, u32),
}

#[derive(Clone, Debug)]
struct Target {
    rank: u64,
    within: u64,
    lo: u64,
    hi: u64,
    count: u64,
    value: Option<f64>,
}

impl Ranks {
    fn new(finite: u64, lo: u64, hi: u64) -> Ranks {
        let mut ranks: Vec<u64> = QUANTILES
            .iter()
            .flat_map(|q| {
                let lo = (q * (finite - 1) as f64).floor() as u64;
                [lo, (lo + 1).min(finite - 1)]
            })
            .collect();
        ranks.sort_unstable();
        ranks.dedup();
        let targets = ranks
            .into_iter()
            .map(|rank| Target {
                rank,
                within: rank,
                lo,
                hi,
                count: finite,
                value: None,
            })
            .collect();
        let ranges = usize::try_from(finite / 64)
            .unwrap_or(usize::MAX)
            .clamp(FIRST_RANGES.0, FIRST_RANGES.1);
        let shift = split_shift(hi - lo, ranges);
        Ranks {
            targets,
            from: lo,
            shift,
            bins: vec![(0, u64::MAX, 0); ranges],
            first: (lo, shift),
        }
    }

    /// Count a key in the first split (every target's range is the whole one).
    fn count(&mut self, k: u64) {
        let i = ((k - self.from) >> self.shift) as usize;
        if let Some(b) = self.bins.get_mut(i) {
            *b = (b.0 + 1, b.1.min(k), b.2.max(k));
        }
    }

    /// Narrow each target to the sub-range holding its rank.
    fn narrow(&mut self) {
        let bins = std::mem::take(&mut self.bins);
        for t in &mut self.targets {
            let mut below = 0;
            for &(count, lo, hi) in &bins {
                if below + count > t.within {
                    *t = Target {
                        within: t.within - below,
                        lo,
                        hi,
                        count,
                        ..t.clone()
                    };
                    break;
                }
                below += count;
            }
            if t.lo == t.hi {
                t.value = Some(from_key(t.lo));
            }
        }
    }

    /// The split of one target's range on the next walk (no ranges when it is gathered).
    fn split_of(&self, t: &Target) -> Ranks {
        let ranges = if t.count > GATHER { NEXT_RANGES } else { 0 };
        Ranks {
            targets: vec![t.clone()],
            from: t.lo,
            shift: split_shift(t.hi - t.lo, NEXT_RANGES),
            bins: vec![(0, u64::MAX, 0); ranges],
            first: self.first,
        }
    }

    /// Walk again until every target has its value; returns them by rank. Each walk gathers
    /// the values of every target whose range holds few enough, and splits the range of
    /// every other one.
    fn resolve(
        mut self,
        walk: &mut Walk<'_>,
    ) -> crate::error::Result<std::collections::HashMap<u64, f64>> {
        self.narrow();
        while self.targets.iter().any(|t| t.value.is_none()) {
            let open: Vec<Target> = self
                .targets
                .iter()
                .filter(|t| t.value.is_none())
                .cloned()
                .collect();
            let mut gathered: Vec<Vec<f64>> = vec![Vec::new(); open.len()];
            let mut splits: Vec<Ranks> = open.iter().map(|t| self.split_of(t)).collect();
            // Most values lie in none of the open ranges: one look at the first split's range
            // they fall in says so.
            let (from, shift) = self.first;
            let first_range = |k: u64| ((k - from) >> shift) as usize;
            let mut wanted =
                vec![
                    false;
                    first_range(self.targets.iter().map(|t| t.hi).max().unwrap_or(from)) + 1
                ];
            for t in &open {
                if let Some(w) = wanted.get_mut(first_range(t.lo)) {
                    *w = true;
                }
            }
            walk(&mut |v| {
                each_value(v, &mut |x| {
                    if !x.is_finite() {
                        return;
                    }
                    let k = key(x);
                    if !wanted.get(first_range(k)).copied().unwrap_or(false) {
                        return;
                    }
                    for ((t, g), split) in open.iter().zip(&mut gathered).zip(&mut splits) {
                        if !(t.lo..=t.hi).contains(&k) {
                            continue;
                        }
                        if t.count > GATHER {
                            split.count(k);
                        } else {
                            g.push(x);
                        }
                    }
                });
            })?;
            for ((t, mut values), mut split) in open.into_iter().zip(gathered).zip(splits) {
                let Some(slot) = self.targets.iter_mut().find(|s| s.rank == t.rank) else {
                    continue;
                };
                if t.count > GATHER {
                    split.narrow();
                    if let Some(narrowed) = split.targets.pop() {
                        *slot = narrowed;
                    }
                } else {
                    values.sort_unstable_by(f64::total_cmp);
                    slot.value = Some(values.get(t.within as usize).copied().unwrap_or(f64::NAN));
                }
            }
        }
        Ok(self
            .targets
            .iter()
            .map(|t| (t.rank, t.value.unwrap_or(f64::NAN)))
            .collect())
    }
}

/// The shift that splits a span of `span + 1` keys into at most `ranges` sub-ranges.
fn split_shift(span: u64, ranges: usize) -> u32 {
    let mut shift = 0;
    while (span >> shift) >= ranges as u64 {
        shift += 1;
    }
    shift
}

/// Argmax counts along the last axis, when its rows look like probabilities.
fn argmax(t: &TensorView<'_>) -> Option<Vec<u64>> {
    let dims = t.shape().dims();
    let classes = usize::try_from(*dims.last()?).ok()?;
    if dims.is_empty()
        || !(2..=MAX_CLASSES).contains(&classes)
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
    if a.dtype().is_string() {
        // Strings are equal or not: the elements that differ, and no distances.
        let w = a.dtype().size().max(1);
        let mismatched = a
            .data()
            .chunks_exact(w)
            .zip(b.data().chunks_exact(w))
            .filter(|(x, y)| x != y)
            .count() as u64;
        return TensorDiff {
            count: n as u64,
            mismatched,
            ..TensorDiff::default()
        };
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The figures of `data` ([rows, cols] f64) read whole, and in walks of `per` rows.
    fn both(data: &[f64], cols: usize, per: usize) -> (TensorSummary, TensorSummary) {
        let rows = data.len() / cols;
        let bytes: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        let shape = Shape::new(vec![rows as u64, cols as u64]);
        let whole = summarise(&TensorView::new(Dtype::F64, &shape, &bytes).expect("view"));
        let mut walk = |visit: &mut dyn FnMut(&TensorView<'_>)| {
            for start in (0..rows).step_by(per) {
                let end = (start + per).min(rows);
                let part = Shape::new(vec![(end - start) as u64, cols as u64]);
                let b = &bytes[start * cols * 8..end * cols * 8];
                visit(&TensorView::new(Dtype::F64, &part, b).expect("view"));
            }
            Ok(())
        };
        let walked = summarise_passes(&shape, &mut walk).expect("walk");
        (whole, walked)
    }

    fn sorted_quantile(values: &[f64], q: f64) -> f64 {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_unstable_by(f64::total_cmp);
        let pos = q * (v.len() - 1) as f64;
        let lo = pos.floor() as usize;
        let hi = (lo + 1).min(v.len() - 1);
        v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
    }

    #[test]
    fn walks_in_blocks_give_the_figures_of_the_whole() {
        // Probability rows (argmax counted), then the same with NaN and infinities.
        let mut data: Vec<f64> = (0..7000)
            .map(|i| if i % 7 == (i / 7) % 7 { 0.4 } else { 0.1 })
            .collect();
        let (whole, walked) = both(&data, 7, 37);
        assert_eq!(whole, walked);
        assert_eq!(
            walked.argmax.as_ref().map(|a| a.iter().sum::<u64>()),
            Some(1000)
        );
        for (i, x) in data.iter_mut().enumerate() {
            *x = match i % 97 {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => f64::NEG_INFINITY,
                _ => ((i * 7919) % 1013) as f64 / 17.0 - 20.0,
            };
        }
        let (whole, walked) = both(&data, 7, 37);
        assert_eq!(whole, walked);
        assert_eq!(walked.argmax, None);
        for (q, v) in &walked.quantiles {
            assert_eq!(*v, sorted_quantile(&data, *q), "q {q}");
        }
    }

    #[test]
    fn quantiles_of_values_crowded_into_one_range_are_exact() {
        // Over a million distinct values within one of the first 65,536 ranges of keys (an
        // outlier stretches the span): that range is split again before it is gathered.
        let n = 1_100_000usize;
        let mut data: Vec<f64> = (0..n)
            .map(|i| 1.0 + ((i * 7_654_321) % n) as f64 * 2f64.powi(-40))
            .collect();
        data[17] = 1e300;
        data[18] = -1e300;
        data[19] = 0.0;
        let (whole, walked) = both(&data, 1, 100_000);
        assert_eq!(whole.quantiles, walked.quantiles);
        for (q, v) in &walked.quantiles {
            assert_eq!(*v, sorted_quantile(&data, *q), "q {q}");
        }
    }
}
