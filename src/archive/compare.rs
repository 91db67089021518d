//! Comparing stored objects and runs (`archive diff`): the figures as JSON, the same that
//! `archive --json diff` prints and Python's `Archive.diff` returns.
//!
//! - `Archive::compare(a, b, tol)`: tensors of one dtype and shape element by element under
//!   `rtol`/`atol` (defaults per dtype, `summary::default_tolerance`), records field by field
//!   (the tensors they refer to compared the same way), text by its first differing line. The
//!   same hash is identical, with nothing read. `equal` says whether they agree.
//! - `Archive::compare_runs(query_a, query_b, key, tol, top)`: two sets of entries paired by a
//!   tag or record field; counts of pairs, one-side-only entries, identical pairs, pairs within
//!   tolerance and different ones, missing and duplicate keys, argmax flips, the `top` most
//!   different pairs.

// `report["key"]` on a serde_json value reads `Null` when the key is missing, never panics;
// the writes go into objects built here with `json!({..})`, where they cannot panic either.
#![allow(clippy::indexing_slicing)]

use std::collections::HashMap;

use serde_json::{Value as Json, json};

use super::Archive;
use crate::error::{Error, Result};
use crate::hash::ObjectHash;
use crate::info::EntryInfo;
use crate::object::Object;
use crate::object::record::Value;
use crate::object::tensor::Tensor;
use crate::summary::{TensorDiff, compare, default_tolerance};

/// Tolerances for comparing tensors; `None` takes the dtype's default.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tolerance {
    /// Relative tolerance.
    pub rtol: Option<f64>,
    /// Absolute tolerance.
    pub atol: Option<f64>,
}

impl Archive {
    /// How two objects differ, `b` the reference (see the module's documentation).
    pub fn compare(&self, a: &ObjectHash, b: &ObjectHash, tol: &Tolerance) -> Result<Json> {
        self.compare_with_progress(a, b, tol, &|_, _| {})
    }

    /// `compare`; two tensors of one dtype and shape over 64 MiB are read a block of rows at
    /// a time (memory that of a block), with `progress(rows done, rows)` after each.
    pub fn compare_with_progress(
        &self,
        a: &ObjectHash,
        b: &ObjectHash,
        tol: &Tolerance,
        progress: &dyn Fn(u64, u64),
    ) -> Result<Json> {
        objects_with(self, a, b, tol, progress)
    }

    /// How the entries of two queries differ, paired by `key` (see the module's documentation).
    pub fn compare_runs(
        &self,
        query_a: &str,
        query_b: &str,
        key: &str,
        tol: &Tolerance,
        top: usize,
    ) -> Result<Json> {
        Ok(runs(self, query_a, query_b, key, tol, top, false)?.0)
    }

    /// `compare_runs`, and a row per key found on either side, in the order of `query_a`'s
    /// entries, then those only `query_b` has.
    pub fn compare_runs_pairs(
        &self,
        query_a: &str,
        query_b: &str,
        key: &str,
        tol: &Tolerance,
        top: usize,
    ) -> Result<(Json, Vec<PairRow>)> {
        runs(self, query_a, query_b, key, tol, top, true)
    }
}

/// What a key's entries can be to each other (`PairRow::status`).
const STATUSES: [&str; 5] = [
    "identical",
    "within_tolerance",
    "different",
    "only_in_a",
    "only_in_b",
];

/// Where `status` is among `STATUSES`.
fn status_at(status: &str) -> usize {
    STATUSES.iter().position(|s| *s == status).unwrap_or(0)
}

/// How one key's entries compare (`Archive::compare_runs_pairs`).
#[derive(Clone, Debug, PartialEq)]
pub struct PairRow {
    /// The value of the key the entries are paired by.
    pub key: String,
    /// `identical` (same hash), `within_tolerance`, `different`, `only_in_a` or `only_in_b`.
    pub status: &'static str,
    /// The object of `query_a`'s entry, if it has one.
    pub a: Option<ObjectHash>,
    /// The object of `query_b`'s entry, if it has one.
    pub b: Option<ObjectHash>,
    /// The largest `|a - b|` over the pair's tensors (`None`: no tensor compared).
    pub max_abs: Option<f64>,
    /// Elements outside the tolerance.
    pub mismatched: u64,
    /// Probability rows whose argmax differs.
    pub argmax_flipped: u64,
}

impl PairRow {
    fn one_side(
        key: &str,
        status: &'static str,
        a: Option<ObjectHash>,
        b: Option<ObjectHash>,
    ) -> Self {
        PairRow {
            key: key.to_owned(),
            status,
            a,
            b,
            max_abs: None,
            mismatched: 0,
            argmax_flipped: 0,
        }
    }
}

/// The comparison of two objects, as JSON; `equal` says whether they agree.
fn objects(archive: &Archive, a: &ObjectHash, b: &ObjectHash, tol: &Tolerance) -> Result<Json> {
    objects_with(archive, a, b, tol, &|_, _| {})
}

/// `objects`, with the progress of a comparison of big tensors (`compare_stream.rs`).
fn objects_with(
    archive: &Archive,
    a: &ObjectHash,
    b: &ObjectHash,
    tol: &Tolerance,
    progress: &dyn Fn(u64, u64),
) -> Result<Json> {
    if a == b {
        return Ok(
            json!({"equal": true, "identical": true, "a": a.to_string(), "b": b.to_string()}),
        );
    }
    let big = super::compare_stream::streamed(archive, a, b, (tol.rtol, tol.atol), progress)?;
    if let Some(s) = big {
        let mut out = tensor_json(s.dtype, &s.shape, s.rtol, s.atol, &s.diff);
        out["a"] = json!(a.to_string());
        out["b"] = json!(b.to_string());
        return Ok(out);
    }
    let (x, y) = (archive.get(a)?, archive.get(b)?);
    let mut out = match (&x, &y) {
        (Object::Tensor(x), Object::Tensor(y)) => tensors(x, y, tol),
        (Object::Record(x), Object::Record(y)) => {
            let mut fields = Vec::new();
            let mut equal = true;
            let paths = |r: &crate::object::record::Record| r.paths();
            let mut all = paths(x);
            all.extend(paths(y).into_iter().filter(|p| x.at_path(p).is_none()));
            for p in all {
                let f = field(archive, &p, x.at_path(&p), y.at_path(&p), tol)?;
                if let Some(f) = f {
                    equal &= f["equal"].as_bool().unwrap_or(false);
                    fields.push(f);
                }
            }
            json!({"kind": "record", "equal": equal, "fields": fields})
        }
        (Object::Text(x), Object::Text(y)) => text(x, y),
        (x, y) => json!({
            "equal": false,
            "kind": format!("{} and {}", x.kind(), y.kind()),
        }),
    };
    out["a"] = json!(a.to_string());
    out["b"] = json!(b.to_string());
    Ok(out)
}

/// One field of two records: `None` when it is a nested record (its leaves are compared).
fn field(
    archive: &Archive,
    path: &str,
    x: Option<&Value>,
    y: Option<&Value>,
    tol: &Tolerance,
) -> Result<Option<Json>> {
    Ok(Some(match (x, y) {
        (Some(Value::Record(_)), Some(Value::Record(_))) => return Ok(None),
        (Some(Value::Ref(a)), Some(Value::Ref(b))) => {
            let mut inner = objects(archive, a, b, tol)?;
            inner["path"] = json!(path);
            inner
        }
        (Some(a), Some(b)) => json!({
            "path": path, "equal": a == b,
            "a_value": a.query_text().map(|t| t.into_owned()),
            "b_value": b.query_text().map(|t| t.into_owned()),
        }),
        (a, _) => json!({
            "path": path, "equal": false,
            "only_in": if a.is_some() { "a" } else { "b" },
        }),
    }))
}

fn tensors(x: &Tensor, y: &Tensor, tol: &Tolerance) -> Json {
    if x.dtype != y.dtype || x.shape != y.shape {
        return json!({
            "kind": "tensor", "equal": false,
            "a_type": format!("{} {}", x.dtype, x.shape),
            "b_type": format!("{} {}", y.dtype, y.shape),
        });
    }
    let (rtol, atol) = default_tolerance(x.dtype);
    let (rtol, atol) = (tol.rtol.unwrap_or(rtol), tol.atol.unwrap_or(atol));
    let d: TensorDiff = compare(&x.view(), &y.view(), rtol, atol);
    tensor_json(x.dtype, &x.shape, rtol, atol, &d)
}

/// The figures of a tensor comparison, as `archive --json diff` prints them.
fn tensor_json(
    dtype: crate::Dtype,
    shape: &crate::Shape,
    rtol: f64,
    atol: f64,
    d: &TensorDiff,
) -> Json {
    let index = |i: u64| unravel(i, shape.dims());
    json!({
        "kind": "tensor", "equal": d.mismatched == 0,
        "type": format!("{dtype} {shape}"),
        "rtol": rtol, "atol": atol,
        "count": d.count, "mismatched": d.mismatched, "nan_changed": d.nan_changed,
        "max_abs": d.max_abs.map(|(v, i)| json!({"value": v, "index": index(i)})),
        "max_rel": d.max_rel.map(|(v, i)| json!({"value": v, "index": index(i)})),
        "argmax": d.argmax_flips.map(|(rows, flips)| json!({"rows": rows, "flipped": flips})),
    })
}

/// A flat index as an index per axis.
fn unravel(mut i: u64, dims: &[u64]) -> Vec<u64> {
    let mut out = vec![0; dims.len()];
    for (slot, d) in out.iter_mut().zip(dims).rev() {
        if *d > 0 {
            *slot = i % d;
            i /= d;
        }
    }
    out
}

fn text(x: &str, y: &str) -> Json {
    let first = x
        .lines()
        .zip(y.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| x.lines().count().min(y.lines().count()));
    let unified = similar::TextDiff::from_lines(x, y)
        .unified_diff()
        .context_radius(3)
        .header("a", "b")
        .to_string();
    json!({
        "kind": "text", "equal": x == y,
        "a_lines": x.lines().count(), "b_lines": y.lines().count(),
        "first_difference": {
            "line": first + 1,
            "a": x.lines().nth(first), "b": y.lines().nth(first),
        },
        "unified": unified,
    })
}

/// Each entry's key: its tag `key`, else its record's field at that path. Where a key comes
/// twice, the newest entry is the one compared (queries list newest first).
struct Side {
    by_key: HashMap<String, ObjectHash>,
    /// Keys in the order first seen (newest first, as queries list entries).
    order: Vec<String>,
    entries: u64,
    missing: u64,
    duplicates: u64,
}

fn side(archive: &Archive, query: &str, key: &str) -> Result<Side> {
    let q = archive.parse_query(query)?;
    let mut s = Side {
        by_key: HashMap::new(),
        order: Vec::new(),
        entries: 0,
        missing: 0,
        duplicates: 0,
    };
    for e in archive.query(&q) {
        let e: EntryInfo = e?;
        s.entries += 1;
        let Some(k) = key_of(archive, &e, key)? else {
            s.missing += 1;
            continue;
        };
        if s.by_key.contains_key(&k) {
            s.duplicates += 1;
            continue;
        }
        s.by_key.insert(k.clone(), e.hash);
        s.order.push(k);
    }
    if s.entries == 0 {
        return Err(Error::invalid(query, "no entries match"));
    }
    Ok(s)
}

fn key_of(archive: &Archive, e: &EntryInfo, key: &str) -> Result<Option<String>> {
    if let Some((_, v)) = e.tags.iter().find(|(k, _)| k == key) {
        return Ok(Some(v.clone()));
    }
    Ok(match archive.get(&e.hash)? {
        Object::Record(r) => r
            .at_path(key)
            .and_then(|v| v.query_text())
            .map(|t| t.into_owned()),
        _ => None,
    })
}

/// `with_pairs`: a row per key too (empty otherwise: a million keys cost their rows).
fn runs(
    archive: &Archive,
    qa: &str,
    qb: &str,
    key: &str,
    tol: &Tolerance,
    top: usize,
    with_pairs: bool,
) -> Result<(Json, Vec<PairRow>)> {
    let a = side(archive, qa, key)?;
    let b = side(archive, qb, key)?;
    let (mut rows, mut flips) = (0u64, 0u64);
    let mut counts = [0u64; STATUSES.len()];
    let mut worst: Vec<(f64, String, Json)> = Vec::new();
    let mut pairs: Vec<PairRow> = Vec::new();
    // A row is made only when rows are asked for: most keys are identical pairs.
    let mut add = |status: &'static str, flipped: u64, row: &dyn Fn() -> PairRow| {
        if let Some(n) = counts.get_mut(status_at(status)) {
            *n += 1;
        }
        flips += flipped;
        if with_pairs {
            pairs.push(row());
        }
    };
    for k in &a.order {
        let (Some(&ha), hb) = (a.by_key.get(k), b.by_key.get(k).copied()) else {
            continue;
        };
        match hb {
            None => add("only_in_a", 0, &|| {
                PairRow::one_side(k, "only_in_a", Some(ha), None)
            }),
            Some(hb) if hb == ha => add("identical", 0, &|| {
                PairRow::one_side(k, "identical", Some(ha), Some(hb))
            }),
            Some(hb) => {
                let (row, argmax_rows, r) = compared(archive, k, ha, hb, tol)?;
                rows += argmax_rows;
                let fallback = if row.status == "different" {
                    f64::INFINITY
                } else {
                    0.0
                };
                worst.push((row.max_abs.unwrap_or(fallback), k.clone(), r));
                add(row.status, row.argmax_flipped, &|| row.clone());
            }
        }
    }
    for k in b.order.iter().filter(|k| !a.by_key.contains_key(*k)) {
        let hb = b.by_key.get(k).copied();
        add("only_in_b", 0, &|| {
            PairRow::one_side(k, "only_in_b", None, hb)
        });
    }
    worst.sort_by(|x, y| y.0.total_cmp(&x.0).then_with(|| x.1.cmp(&y.1)));
    let count = |s: &str| counts.get(status_at(s)).copied().unwrap_or(0);
    let (identical, close, different) = (
        count("identical"),
        count("within_tolerance"),
        count("different"),
    );
    let report = json!({
        "by": key,
        "a": {"query": qa, "entries": a.entries, "without_key": a.missing, "duplicate_keys": a.duplicates},
        "b": {"query": qb, "entries": b.entries, "without_key": b.missing, "duplicate_keys": b.duplicates},
        "pairs": identical + close + different,
        "only_in_a": count("only_in_a"), "only_in_b": count("only_in_b"),
        "identical": identical, "within_tolerance": close, "different": different,
        "argmax": (rows > 0).then(|| json!({"rows": rows, "flipped": flips})),
        "most_different": worst.iter().take(top).filter(|w| w.0 > 0.0).map(|(v, k, r)| json!({
            "key": k, "max_abs": v, "a": r["a"], "b": r["b"], "mismatched": r["mismatched"],
        })).collect::<Vec<_>>(),
    });
    Ok((report, pairs))
}

/// Two entries' objects of key `k` that differ by hash, compared: the pair's row, the
/// probability rows the argmax was compared on, and the comparison (with `mismatched`).
fn compared(
    archive: &Archive,
    k: &str,
    ha: ObjectHash,
    hb: ObjectHash,
    tol: &Tolerance,
) -> Result<(PairRow, u64, Json)> {
    let mut r = objects(archive, &ha, &hb, tol)?;
    let equal = r["equal"].as_bool().unwrap_or(false);
    let t = TensorFigures::of(&r);
    r["mismatched"] = json!(t.mismatched);
    let row = PairRow {
        key: k.to_owned(),
        status: if equal {
            "within_tolerance"
        } else {
            "different"
        },
        a: Some(ha),
        b: Some(hb),
        max_abs: t.max_abs,
        mismatched: t.mismatched,
        argmax_flipped: t.flips,
    };
    Ok((row, t.rows, r))
}

/// The tensor figures of a comparison, summed over a record's tensor fields.
#[derive(Default)]
struct TensorFigures {
    max_abs: Option<f64>,
    mismatched: u64,
    rows: u64,
    flips: u64,
}

impl TensorFigures {
    fn of(r: &Json) -> TensorFigures {
        let mut t = TensorFigures::default();
        t.add(r);
        t
    }

    fn add(&mut self, r: &Json) {
        if let Some(v) = r["max_abs"]["value"].as_f64() {
            self.max_abs = Some(self.max_abs.map_or(v, |m| m.max(v)));
        }
        self.mismatched += r["mismatched"].as_u64().unwrap_or(0);
        if let Some(f) = r.get("argmax").filter(|f| !f.is_null()) {
            self.rows += f["rows"].as_u64().unwrap_or(0);
            self.flips += f["flipped"].as_u64().unwrap_or(0);
        }
        for f in r["fields"].as_array().into_iter().flatten() {
            self.add(f);
        }
    }
}
