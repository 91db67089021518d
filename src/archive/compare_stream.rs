//! Big tensors a block of rows at a time. Comparing two of one dtype and shape (`diff` of two
//! tensors of a GiB), and summarising one (`show`): memory stays that of a block of each, not
//! of the tensors, and progress is reported as the rows go by. The figures are those of a comparison of the whole tensors:
//! counts add up, the first largest difference wins (its index offset by the block's first
//! row), and argmax flips count when every block's rows are probability-like. Blocks are read
//! as slices (`Archive::get_rows`): each decoded chunk is checked against its declared size,
//! and, as for any slice, the whole tensor is not re-hashed (`verify` checks it).

use super::Archive;
use crate::error::Result;
use crate::hash::ObjectHash;
use crate::object::Kind;
use crate::summary::{TensorDiff, compare, default_tolerance};
use crate::{Dtype, Shape};

/// A comparison of two big tensors: their dtype and shape, the tolerances used, the figures.
pub(super) struct Streamed {
    pub dtype: Dtype,
    pub shape: Shape,
    pub rtol: f64,
    pub atol: f64,
    pub diff: TensorDiff,
}

/// Tensors over this many decoded bytes are compared and summarised a block at a time.
pub const STREAM_ABOVE: u64 = 64 << 20;

/// About how many decoded bytes of each tensor a block holds.
const BLOCK_BYTES: u64 = 16 << 20;

/// The comparison of `a` and `b` if both are tensors of one dtype and shape over
/// `STREAM_ABOVE` bytes, compared a block of rows at a time; `None` otherwise (the caller
/// compares them whole). `tol` is (rtol, atol), `None` for the dtype's default;
/// `progress(rows done, rows)`.
pub(super) fn streamed(
    archive: &Archive,
    a: &ObjectHash,
    b: &ObjectHash,
    tol: (Option<f64>, Option<f64>),
    progress: &dyn Fn(u64, u64),
) -> Result<Option<Streamed>> {
    let (ia, ib) = (archive.info(a)?, archive.info(b)?);
    let (Some(dtype), Some(shape)) = (ia.dtype, ia.shape.clone()) else {
        return Ok(None);
    };
    let alike = ia.kind == Kind::Tensor
        && ib.kind == Kind::Tensor
        && ib.dtype == Some(dtype)
        && ib.shape.as_ref() == Some(&shape);
    let rows = shape.dims().first().copied().unwrap_or(0);
    if !alike || ia.raw_len <= STREAM_ABOVE || rows == 0 {
        return Ok(None);
    }
    let per_block = rows_per_block(ia.raw_len, rows);
    let row_elements = shape.elements().unwrap_or(0) / rows;
    let (rtol, atol) = default_tolerance(dtype);
    let (rtol, atol) = (tol.0.unwrap_or(rtol), tol.1.unwrap_or(atol));
    let mut d = TensorDiff::default();
    let mut flips = Some((0, 0));
    let mut start = 0;
    while start < rows {
        let end = (start + per_block).min(rows);
        let (x, _) = archive.get_rows(a, start..end)?;
        let (y, _) = archive.get_rows(b, start..end)?;
        let part = compare(&x.view(), &y.view(), rtol, atol);
        merge(&mut d, &part, start * row_elements);
        flips = match (flips, part.argmax_flips) {
            (Some((r, f)), Some((pr, pf))) => Some((r + pr, f + pf)),
            _ => None,
        };
        start = end;
        progress(start, rows);
    }
    d.argmax_flips = flips;
    Ok(Some(Streamed {
        dtype,
        shape,
        rtol,
        atol,
        diff: d,
    }))
}

/// Rows of a tensor of `raw_len` decoded bytes and `rows` rows in a block of about
/// `BLOCK_BYTES` (one at least).
fn rows_per_block(raw_len: u64, rows: u64) -> u64 {
    (BLOCK_BYTES / (raw_len / rows.max(1)).max(1)).max(1)
}

/// Add the figures of a block whose first element is element `offset` of the whole.
fn merge(d: &mut TensorDiff, part: &TensorDiff, offset: u64) {
    d.count += part.count;
    d.mismatched += part.mismatched;
    d.nan_changed += part.nan_changed;
    let larger = |whole: Option<(f64, u64)>, p: Option<(f64, u64)>| match (whole, p) {
        (_, None) => whole,
        (Some((m, _)), Some((v, _))) if v <= m => whole,
        (_, Some((v, i))) => Some((v, i + offset)),
    };
    d.max_abs = larger(d.max_abs, part.max_abs);
    d.max_rel = larger(d.max_rel, part.max_rel);
}

impl Archive {
    /// `summary::summarise` of a stored tensor. One over 64 MiB is read a block of rows at a
    /// time, in a few walks (`summary::summarise_passes`), with `progress(walk, rows done,
    /// rows)` after each block: memory is that of a block, not of the tensor.
    pub fn summarise(
        &self,
        hash: &ObjectHash,
        progress: &dyn Fn(u32, u64, u64),
    ) -> Result<crate::summary::TensorSummary> {
        let info = self.info(hash)?;
        let not_a_tensor = || {
            crate::error::Error::invalid(
                hash.to_string(),
                format!("is {}, not a tensor", info.kind.name()),
            )
        };
        let shape = info.shape.clone().ok_or_else(not_a_tensor)?;
        let rows = shape.dims().first().copied().unwrap_or(0);
        if info.kind != Kind::Tensor {
            return Err(not_a_tensor());
        }
        if info.raw_len <= STREAM_ABOVE || rows == 0 {
            return match self.get(hash)? {
                crate::Object::Tensor(t) => Ok(crate::summary::summarise(&t.view())),
                _ => Err(not_a_tensor()),
            };
        }
        let per_block = rows_per_block(info.raw_len, rows);
        let walks = std::cell::Cell::new(0u32);
        let mut walk = |visit: &mut dyn FnMut(&crate::TensorView<'_>)| {
            walks.set(walks.get() + 1);
            let mut start = 0;
            while start < rows {
                let end = (start + per_block).min(rows);
                let (t, _) = self.get_rows(hash, start..end)?;
                visit(&t.view());
                start = end;
                progress(walks.get(), start, rows);
            }
            Ok(())
        };
        crate::summary::summarise_passes(&shape, &mut walk)
    }
}
