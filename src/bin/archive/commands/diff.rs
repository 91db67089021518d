//! `archive diff A B`: how two objects differ. Tensors of one dtype and shape are compared
//! element by element under `--rtol`/`--atol` (defaults per dtype, as torch.testing has
//! them); records field by field (tensors they refer to compared the same way); text by its
//! first differing line. The same hash is the same content: identical, with nothing read.
//! Exit codes follow `diff`: 0 equal within tolerance, 1 different, 2 trouble.

use std::process::ExitCode;

use anyhow::Result;
use model_archive::object::record::Value;
use model_archive::summary::{TensorDiff, compare, default_tolerance};
use model_archive::{Archive, Object, ObjectHash, Tensor};
use serde_json::{Value as Json, json};

use super::{Ctx, UsageError, resolve};
use crate::args::DiffArgs;
use crate::output::outln;

pub fn run(ctx: &Ctx, args: DiffArgs) -> Result<ExitCode> {
    // As `diff`: trouble (a bad flag, an unknown hash) is exit 2, whatever it was.
    match compare_objects(ctx, &args) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("archive: {e:#}");
            Ok(ExitCode::from(2))
        }
    }
}

fn compare_objects(ctx: &Ctx, args: &DiffArgs) -> Result<ExitCode> {
    for (name, v) in [("--rtol", args.rtol), ("--atol", args.atol)] {
        if v.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
            return Err(UsageError(format!("{name}: expected a number ≥ 0")).into());
        }
    }
    let archive = ctx.open()?;
    if let Some(key) = &args.by {
        let (report, code) = super::diff_runs::run(&archive, args, key)?;
        if ctx.json {
            crate::output::json_line(&report)?;
        } else {
            for line in super::diff_runs::describe(&report) {
                outln!("{line}")?;
            }
        }
        return Ok(code);
    }
    let a = resolve(&archive, &args.a)?;
    let b = resolve(&archive, &args.b)?;
    let report = objects(&archive, &a, &b, args)?;
    let same = report["equal"].as_bool().unwrap_or(false);
    if ctx.json {
        crate::output::json_line(&report)?;
    } else {
        for line in describe(&report, "") {
            outln!("{line}")?;
        }
    }
    Ok(if same {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The comparison of two objects, as JSON; `equal` says whether they agree.
pub(super) fn objects(
    archive: &Archive,
    a: &ObjectHash,
    b: &ObjectHash,
    args: &DiffArgs,
) -> Result<Json> {
    if a == b {
        return Ok(
            json!({"equal": true, "identical": true, "a": a.to_string(), "b": b.to_string()}),
        );
    }
    let (x, y) = (archive.get(a)?, archive.get(b)?);
    let mut out = match (&x, &y) {
        (Object::Tensor(x), Object::Tensor(y)) => tensors(x, y, args),
        (Object::Record(x), Object::Record(y)) => {
            let mut fields = Vec::new();
            let mut equal = true;
            let paths = |r: &model_archive::Record| r.paths();
            let mut all = paths(x);
            all.extend(paths(y).into_iter().filter(|p| x.at_path(p).is_none()));
            for p in all {
                let f = field(archive, &p, x.at_path(&p), y.at_path(&p), args)?;
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
    args: &DiffArgs,
) -> Result<Option<Json>> {
    Ok(Some(match (x, y) {
        (Some(Value::Record(_)), Some(Value::Record(_))) => return Ok(None),
        (Some(Value::Ref(a)), Some(Value::Ref(b))) => {
            let mut inner = objects(archive, a, b, args)?;
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

fn tensors(x: &Tensor, y: &Tensor, args: &DiffArgs) -> Json {
    if x.dtype != y.dtype || x.shape != y.shape {
        return json!({
            "kind": "tensor", "equal": false,
            "a_type": format!("{} {}", x.dtype, x.shape),
            "b_type": format!("{} {}", y.dtype, y.shape),
        });
    }
    let (rtol, atol) = default_tolerance(x.dtype);
    let (rtol, atol) = (args.rtol.unwrap_or(rtol), args.atol.unwrap_or(atol));
    let d: TensorDiff = compare(&x.view(), &y.view(), rtol, atol);
    let index = |i: u64| unravel(i, x.shape.dims());
    json!({
        "kind": "tensor", "equal": d.mismatched == 0,
        "type": format!("{} {}", x.dtype, x.shape),
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
    json!({
        "kind": "text", "equal": x == y,
        "a_lines": x.lines().count(), "b_lines": y.lines().count(),
        "first_difference": {
            "line": first + 1,
            "a": x.lines().nth(first), "b": y.lines().nth(first),
        },
    })
}

/// The text of a report, fields indented under their record.
fn describe(r: &Json, indent: &str) -> Vec<String> {
    let what = r["path"]
        .as_str()
        .map_or(String::new(), |p| format!("{p}: "));
    let verdict = if r["equal"].as_bool().unwrap_or(false) {
        "equal"
    } else {
        "different"
    };
    if r["identical"].as_bool().unwrap_or(false) {
        return vec![format!("{indent}{what}identical (same hash)")];
    }
    match r["kind"].as_str() {
        Some("tensor") if r.get("mismatched").is_some() => {
            let mut out = vec![format!(
                "{indent}{what}{verdict}: {} of {} elements outside rtol {} atol {} ({})",
                r["mismatched"],
                r["count"],
                r["rtol"],
                r["atol"],
                r["type"].as_str().unwrap_or_default()
            )];
            for (k, label) in [("max_abs", "max |a-b|"), ("max_rel", "max |a-b|/|b|")] {
                if let Some(m) = r.get(k).filter(|m| !m.is_null()) {
                    out.push(format!(
                        "{indent}  {label} {:.6e} at {}",
                        m["value"].as_f64().unwrap_or(0.0),
                        m["index"]
                    ));
                }
            }
            if r["nan_changed"].as_u64().unwrap_or(0) > 0 {
                out.push(format!(
                    "{indent}  NaN on one side only: {}",
                    r["nan_changed"]
                ));
            }
            if let Some(a) = r.get("argmax").filter(|a| !a.is_null()) {
                out.push(format!(
                    "{indent}  argmax of the last axis flipped in {} of {} rows",
                    a["flipped"], a["rows"]
                ));
            }
            out
        }
        Some("tensor") => vec![format!(
            "{indent}{what}different: {} vs {}",
            r["a_type"].as_str().unwrap_or_default(),
            r["b_type"].as_str().unwrap_or_default()
        )],
        Some("record") => {
            let mut out = vec![format!("{indent}{what}records {verdict}")];
            for f in r["fields"].as_array().into_iter().flatten() {
                out.extend(describe_field(f, &format!("{indent}  ")));
            }
            out
        }
        Some("text") => {
            let mut out = vec![format!(
                "{indent}{what}text {verdict}: {} and {} lines",
                r["a_lines"], r["b_lines"]
            )];
            if !r["equal"].as_bool().unwrap_or(false) {
                let d = &r["first_difference"];
                out.push(format!("{indent}  first difference at line {}:", d["line"]));
                out.push(format!(
                    "{indent}  - {}",
                    d["a"].as_str().unwrap_or("(no line)")
                ));
                out.push(format!(
                    "{indent}  + {}",
                    d["b"].as_str().unwrap_or("(no line)")
                ));
            }
            out
        }
        _ => vec![format!(
            "{indent}{what}different: {}",
            r["kind"].as_str().unwrap_or("objects")
        )],
    }
}

fn describe_field(f: &Json, indent: &str) -> Vec<String> {
    let path = f["path"].as_str().unwrap_or_default();
    if f.get("kind").is_some() || f.get("identical").is_some() {
        return describe(f, indent);
    }
    if let Some(side) = f["only_in"].as_str() {
        return vec![format!("{indent}{path}: only in {side}")];
    }
    if f["equal"].as_bool().unwrap_or(false) {
        return vec![format!("{indent}{path}: equal")];
    }
    vec![format!(
        "{indent}{path}: {} -> {}",
        f["a_value"].as_str().unwrap_or("?"),
        f["b_value"].as_str().unwrap_or("?")
    )]
}
