//! `archive diff QUERY_A QUERY_B --by KEY`: two sets of entries paired by a tag or record
//! field. Pairs of the same hash are identical with nothing read (content addressing); the
//! others are compared as `archive diff` compares two objects.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::Result;
use model_archive::{Archive, EntryInfo, Object, ObjectHash};
use serde_json::{Value as Json, json};

use super::UsageError;
use super::diff::objects;
use crate::args::DiffArgs;

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
        return Err(UsageError(format!("`{query}`: no entries match")).into());
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

pub fn run(archive: &Archive, args: &DiffArgs, key: &str) -> Result<(Json, ExitCode)> {
    let a = side(archive, &args.a, key)?;
    let b = side(archive, &args.b, key)?;
    let (mut identical, mut close, mut different) = (0u64, 0u64, 0u64);
    let (mut rows, mut flips) = (0u64, 0u64);
    let mut worst: Vec<(f64, String, Json)> = Vec::new();
    for k in &a.order {
        let (Some(ha), Some(hb)) = (a.by_key.get(k), b.by_key.get(k)) else {
            continue;
        };
        if ha == hb {
            identical += 1;
            continue;
        }
        let r = objects(archive, ha, hb, args)?;
        if r["equal"].as_bool().unwrap_or(false) {
            close += 1;
        } else {
            different += 1;
        }
        let t = TensorFigures::of(&r);
        rows += t.rows;
        flips += t.flips;
        let fallback = if r["equal"] == true {
            0.0
        } else {
            f64::INFINITY
        };
        let size = t.max_abs.unwrap_or(fallback);
        let mut r = r;
        r["mismatched"] = json!(t.mismatched);
        worst.push((size, k.clone(), r));
    }
    worst.sort_by(|x, y| y.0.total_cmp(&x.0).then_with(|| x.1.cmp(&y.1)));
    let only_a = a
        .order
        .iter()
        .filter(|k| !b.by_key.contains_key(*k))
        .count() as u64;
    let only_b = b
        .order
        .iter()
        .filter(|k| !a.by_key.contains_key(*k))
        .count() as u64;
    let report = json!({
        "by": key,
        "a": {"query": args.a, "entries": a.entries, "without_key": a.missing, "duplicate_keys": a.duplicates},
        "b": {"query": args.b, "entries": b.entries, "without_key": b.missing, "duplicate_keys": b.duplicates},
        "pairs": identical + close + different,
        "only_in_a": only_a, "only_in_b": only_b,
        "identical": identical, "within_tolerance": close, "different": different,
        "argmax": (rows > 0).then(|| json!({"rows": rows, "flipped": flips})),
        "most_different": worst.iter().take(args.top).filter(|w| w.0 > 0.0).map(|(v, k, r)| json!({
            "key": k, "max_abs": v, "a": r["a"], "b": r["b"], "mismatched": r["mismatched"],
        })).collect::<Vec<_>>(),
    });
    let same = different == 0 && only_a == 0 && only_b == 0;
    Ok((
        report,
        if same {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    ))
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

/// The summary's text.
pub fn describe(r: &Json) -> Vec<String> {
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
