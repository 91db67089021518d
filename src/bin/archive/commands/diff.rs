//! `archive diff A B`: how two objects differ. Tensors of one dtype and shape are compared
//! element by element under `--rtol`/`--atol` (defaults per dtype, as torch.testing has
//! them); records field by field (tensors they refer to compared the same way); text by its
//! first differing line. The same hash is the same content: identical, with nothing read.
//! Exit codes follow `diff`: 0 equal within tolerance, 1 different, 2 trouble.

use std::process::ExitCode;

use anyhow::Result;
use model_archive::Tolerance;
use serde_json::Value as Json;

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
    let tol = Tolerance {
        rtol: args.rtol,
        atol: args.atol,
    };
    if let Some(key) = &args.by {
        let report = archive.compare_runs(&args.a, &args.b, key, &tol, args.top)?;
        if ctx.json {
            crate::output::json_line(&report)?;
        } else {
            for line in describe_runs(&report) {
                outln!("{line}")?;
            }
        }
        let none = |k: &str| report[k].as_u64() == Some(0);
        let same = none("different") && none("only_in_a") && none("only_in_b");
        return Ok(if same {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let a = resolve(&archive, &args.a)?;
    let b = resolve(&archive, &args.b)?;
    // Two big tensors are read a block of rows at a time: a bar counts the rows.
    let bar = crate::output::progress_count("diff", "rows");
    let report = archive.compare_with_progress(&a, &b, &tol, &|done, rows| {
        bar.set_length(rows);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
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
                // The unified diff, at most 200 lines of it.
                let unified = r["unified"].as_str().unwrap_or_default();
                let total = unified.lines().count();
                out.extend(unified.lines().take(200).map(|l| format!("{indent}  {l}")));
                if total > 200 {
                    out.push(format!(
                        "{indent}  … {} more lines (--json has all)",
                        total - 200
                    ));
                }
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

/// The summary's text.
fn describe_runs(r: &Json) -> Vec<String> {
    let side = |s: &Json| {
        format!(
            "{} entries ({} without `{}`, {} duplicate keys)",
            s["entries"],
            s["without_key"],
            r["by"].as_str().unwrap_or_default(),
            s["duplicate_keys"]
        )
    };
    let mut out = vec![
        format!("a: {}", side(&r["a"])),
        format!("b: {}", side(&r["b"])),
        format!(
            "{} pairs by `{}`: {} identical, {} within tolerance, {} different",
            r["pairs"],
            r["by"].as_str().unwrap_or_default(),
            r["identical"],
            r["within_tolerance"],
            r["different"]
        ),
        format!(
            "only in a: {}, only in b: {}",
            r["only_in_a"], r["only_in_b"]
        ),
    ];
    if let Some(a) = r.get("argmax").filter(|a| !a.is_null()) {
        out.push(format!(
            "argmax flipped in {} of {} rows of the pairs that differ",
            a["flipped"], a["rows"]
        ));
    }
    let worst = r["most_different"].as_array().cloned().unwrap_or_default();
    if !worst.is_empty() {
        out.push("most different:".into());
        for w in worst {
            out.push(format!(
                "  {:<24} max |a-b| {:.4e}  {} mismatched",
                w["key"].as_str().unwrap_or_default(),
                w["max_abs"].as_f64().unwrap_or(f64::INFINITY),
                w["mismatched"]
            ));
        }
    }
    out
}
