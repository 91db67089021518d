//! `archive show`: what is in an object. A tensor's counts of NaN, infinities and zeros, the
//! min, max, mean, std and quantiles of its finite values, a histogram, the argmax of a
//! probability-like last axis and its first rows; text's length and first lines; a record's
//! fields; a categorical's label counts; bytes' media type and size. `--json` for all of it.

use std::process::ExitCode;

use anyhow::Result;
use model_archive::object::record::Value;
use model_archive::reader::ReadObject;
use model_archive::summary::{BINS, TensorSummary, summarise};
use model_archive::{Categorical, Object, ObjectHash, Tensor};
use serde_json::{Value as Json, json};

use super::get::{categorical_values, quick};
use super::{Ctx, UsageError, resolve};
use crate::output::outln;

/// `START:END` (END excluded; an empty END: to the last row).
fn parse_rows(s: &str) -> Result<std::ops::Range<u64>> {
    let bad = || UsageError(format!("--rows {s}: expected START:END, e.g. 1000:1010"));
    let (a, b) = s.split_once(':').ok_or_else(bad)?;
    let start: u64 = a.trim().parse().map_err(|_| bad())?;
    let end: u64 = if b.trim().is_empty() {
        u64::MAX
    } else {
        b.trim().parse().map_err(|_| bad())?
    };
    if end < start {
        return Err(bad().into());
    }
    Ok(start..end)
}

/// `show --rows`: the figures of a slice of a tensor, read chunk by chunk.
fn rows(ctx: &Ctx, prefix: &str, range: &str) -> Result<ExitCode> {
    let range = parse_rows(range)?;
    let archive = ctx.open()?;
    let hash = resolve(&archive, prefix)?;
    let (t, (decoded, chunks)) = archive.get_rows(&hash, range.clone())?;
    let mut figures = tensor(&t);
    figures["hash"] = json!(hash.to_string());
    figures["rows"] = json!({"start": range.start, "count": t.shape.dims().first()});
    figures["chunks_decoded"] = json!({"decoded": decoded, "of": chunks});
    if ctx.json {
        crate::output::json_line(&figures)?;
    } else {
        let first = t.shape.dims().first().copied().unwrap_or(0);
        outln!(
            "rows {}..{} ({} decoded of {} chunks)",
            range.start,
            range.start + first,
            decoded,
            chunks
        )?;
        for line in describe(&figures) {
            outln!("{line}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(ctx: &Ctx, prefix: &str, range: Option<&str>) -> Result<ExitCode> {
    if let Some(range) = range {
        return rows(ctx, prefix, range);
    }
    if let Some(hash) = big_tensor(ctx, prefix)? {
        return big(ctx, &hash);
    }
    // Most objects are found through the lookup tables, without the index.
    let (hash, object, labels) = match quick(ctx, prefix, false)? {
        Some((reader, hash, object)) => {
            let labels = labels_of(&reader, &object)?;
            (hash, object, labels)
        }
        None => {
            let archive = ctx.open()?;
            let hash = resolve(&archive, prefix)?;
            let object = archive.get(&hash)?;
            let labels = labels_of(&*archive, &object)?;
            (hash, object, labels)
        }
    };
    print(ctx, &figures(&hash, &object, labels.as_deref()))
}

/// The figures as JSON (`--json`) or as text.
fn print(ctx: &Ctx, figures: &Json) -> Result<ExitCode> {
    if ctx.json {
        crate::output::json_line(figures)?;
    } else {
        for line in describe(figures) {
            outln!("{line}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A tensor too big to decode whole for its figures (`Archive::summarise` reads it a block
/// at a time), found through the lookup tables.
fn big_tensor(ctx: &Ctx, prefix: &str) -> Result<Option<ObjectHash>> {
    let Some((reader, hash)) = super::get::quick_hash(ctx, prefix)? else {
        return Ok(None);
    };
    let big = |i: &model_archive::ObjectInfo| {
        i.kind == model_archive::Kind::Tensor && i.raw_len > model_archive::archive::STREAM_ABOVE
    };
    Ok(reader.info(&hash)?.filter(big).map(|_| hash))
}

/// `show` of a big tensor: its figures from walks of blocks of rows, a bar on a terminal.
fn big(ctx: &Ctx, hash: &ObjectHash) -> Result<ExitCode> {
    let archive = ctx.open()?;
    let bar = crate::output::progress_count("show", "rows");
    let s = archive.summarise(hash, &|walk, done, rows| {
        bar.set_message(format!("show, walk {walk}"));
        bar.set_length(rows);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    let info = archive.info(hash)?;
    let shape = info
        .shape
        .unwrap_or_else(|| model_archive::Shape::new(vec![]));
    let (head, _) = archive.get_rows(hash, 0..3)?;
    let mut figures = tensor_figures(&s, &shape, &head);
    figures["hash"] = json!(hash.to_string());
    print(ctx, &figures)
}

fn labels_of(reader: &dyn ReadObject, object: &Object) -> Result<Option<Vec<String>>> {
    match object {
        Object::Categorical(c) => Ok(Some(categorical_values(reader, c)?)),
        _ => Ok(None),
    }
}

/// Every figure, as JSON (what `--json` prints and the text is drawn from).
fn figures(hash: &ObjectHash, object: &Object, labels: Option<&[String]>) -> Json {
    let mut out = match object {
        Object::Tensor(t) => tensor(t),
        Object::Text(s) => json!({
            "kind": "text",
            "chars": s.chars().count(),
            "bytes": s.len(),
            "lines": s.lines().count(),
            "preview": s.lines().take(5).collect::<Vec<_>>(),
        }),
        Object::Bytes { media_type, data } => json!({
            "kind": "bytes", "media_type": media_type, "bytes": data.len(),
        }),
        Object::Record(r) => json!({
            "kind": "record",
            // Leaf fields by path (`meta.source`); the nested records are in their paths.
            "fields": r.paths().iter().filter_map(|p| match r.at_path(p) {
                Some(Value::Record(_)) | None => None,
                Some(v) => Some(json!({ "path": p, "value": preview(v) })),
            }).collect::<Vec<_>>(),
        }),
        Object::Categorical(c) => categorical(c, labels.unwrap_or_default()),
        other => json!({ "kind": other.kind().to_string() }),
    };
    out["hash"] = json!(hash.to_string());
    out
}

fn preview(v: &Value) -> String {
    let text = match v {
        Value::Str(s) => format!("{s:?}"),
        Value::Ref(h) => format!("-> {}", h.short(12)),
        Value::List(items) => format!("list of {}", items.len()),
        Value::Record(r) => format!("a record of {} fields", r.fields().len()),
        other => other
            .query_text()
            .map(|t| t.into_owned())
            .unwrap_or_default(),
    };
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(59).collect::<String>())
    } else {
        text
    }
}

fn categorical(c: &Categorical, values: &[String]) -> Json {
    let mut counts: Vec<(String, u64)> = c.labels.iter().map(|l| (l.clone(), 0)).collect();
    for v in values {
        if let Some(slot) = counts.iter_mut().find(|(l, _)| l == v) {
            slot.1 += 1;
        }
    }
    json!({
        "kind": "categorical",
        "count": values.len(),
        "labels": counts.iter().map(|(l, n)| json!({"label": l, "count": n})).collect::<Vec<_>>(),
    })
}

fn tensor(t: &Tensor) -> Json {
    tensor_figures(&summarise(&t.view()), &t.shape, t)
}

/// The figures of a tensor of `shape` summarised as `s`; `head` holds its first rows.
fn tensor_figures(s: &TensorSummary, shape: &model_archive::Shape, head: &Tensor) -> Json {
    let cols = shape.dims().last().copied().unwrap_or(1).max(1) as usize;
    let held = head.shape.elements().unwrap_or(0) as usize;
    let strings = model_archive::object::tensor::string_elements(head.dtype, &head.data);
    let first_rows: Vec<Vec<Json>> = (0..3)
        .map(|r| {
            (0..cols.min(8))
                .filter_map(|c| {
                    let i = r * cols + c;
                    (i < held).then(|| match strings.get(i) {
                        Some(s) => json!(String::from_utf8_lossy(s)),
                        None => json!(model_archive::summary::element(head.dtype, &head.data, i)),
                    })
                })
                .collect::<Vec<Json>>()
        })
        .filter(|row| !row.is_empty())
        .collect();
    json!({
        "kind": "tensor",
        "dtype": head.dtype.name(),
        "shape": shape.dims(),
        "count": s.count,
        "strings": head.dtype.is_string(),
        "nan": s.nan, "pos_inf": s.pos_inf, "neg_inf": s.neg_inf, "zeros": s.zeros,
        "min": s.min, "max": s.max, "mean": s.mean, "std": s.std,
        "quantiles": s.quantiles.iter().map(|(q, v)| json!({"q": q, "value": v})).collect::<Vec<_>>(),
        "histogram": {"bins": BINS, "min": s.min, "max": s.max, "counts": s.histogram},
        "argmax": s.argmax,
        "first_rows": first_rows,
    })
}

/// Short figures: up to 4 significant digits, in plain or scientific notation.
fn num(v: &Json) -> String {
    match v.as_f64() {
        None => "—".into(),
        Some(x) if x == 0.0 || (1e-3..1e5).contains(&x.abs()) => {
            let s = format!("{x:.4}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            s.to_owned()
        }
        Some(x) => format!("{x:.3e}"),
    }
}

/// The text lines of `archive show`, at most 80 columns.
fn describe(f: &Json) -> Vec<String> {
    let hash = f["hash"].as_str().unwrap_or_default();
    let short = hash.get(..12).unwrap_or(hash);
    match f["kind"].as_str() {
        Some("tensor") => describe_tensor(f, short),
        Some("text") => {
            let mut out = vec![format!(
                "{short}  text: {} characters, {} lines",
                f["chars"], f["lines"]
            )];
            for l in f["preview"].as_array().into_iter().flatten() {
                out.push(format!("  | {}", clip(l.as_str().unwrap_or_default(), 74)));
            }
            out
        }
        Some("bytes") => vec![format!(
            "{short}  bytes: {} ({})",
            f["bytes"],
            f["media_type"].as_str().unwrap_or("no media type")
        )],
        Some("record") => {
            let fields = f["fields"].as_array().cloned().unwrap_or_default();
            let mut out = vec![format!("{short}  record: {} fields", fields.len())];
            for x in fields {
                let path = clip(x["path"].as_str().unwrap_or_default(), 24);
                out.push(format!(
                    "  {path:<24} {}",
                    clip(x["value"].as_str().unwrap_or_default(), 52)
                ));
            }
            out
        }
        _ => {
            let labels = f["labels"].as_array().cloned().unwrap_or_default();
            let total = f["count"].as_u64().unwrap_or(0).max(1) as f64;
            let mut out = vec![format!("{short}  categorical: {} values", f["count"])];
            for l in labels {
                let n = l["count"].as_u64().unwrap_or(0);
                let label = clip(l["label"].as_str().unwrap_or_default(), 30);
                out.push(format!(
                    "  {label:<30} {n:>10}  {:5.1}%",
                    n as f64 * 100.0 / total
                ));
            }
            out
        }
    }
}

fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(width - 1).collect::<String>())
    }
}

fn describe_tensor(f: &Json, short: &str) -> Vec<String> {
    let dims: Vec<String> = f["shape"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| d.to_string())
        .collect();
    let mut out = vec![format!(
        "{short}  tensor {} [{}]: {} values",
        f["dtype"].as_str().unwrap_or("?"),
        dims.join(", "),
        f["count"]
    )];
    if f["strings"] != true {
        out.push(format!(
            "  min {}  max {}  mean {}  std {}",
            num(&f["min"]),
            num(&f["max"]),
            num(&f["mean"]),
            num(&f["std"])
        ));
        out.push(format!(
            "  NaN {}  +inf {}  -inf {}  zeros {}",
            f["nan"], f["pos_inf"], f["neg_inf"], f["zeros"]
        ));
    }
    let qs: Vec<String> = f["quantiles"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|q| {
            format!(
                "{}%: {}",
                q["q"].as_f64().unwrap_or(0.0) * 100.0,
                num(&q["value"])
            )
        })
        .collect();
    if !qs.is_empty() {
        out.push(format!("  quantiles  {}", qs.join("  ")));
    }
    out.extend(histogram_lines(f));
    if let Some(classes) = f["argmax"].as_array() {
        let rows: u64 = classes.iter().filter_map(Json::as_u64).sum();
        out.push(format!(
            "  argmax of the last axis (rows sum to 1), {rows} rows:"
        ));
        let mut top: Vec<(usize, u64)> = classes
            .iter()
            .enumerate()
            .map(|(c, n)| (c, n.as_u64().unwrap_or(0)))
            .collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let shown: Vec<String> = top
            .iter()
            .take(6)
            .map(|(c, n)| format!("{c}: {n}"))
            .collect();
        out.push(format!(
            "    {}{}",
            shown.join("  "),
            if top.len() > 6 { "  …" } else { "" }
        ));
    }
    let rows = f["first_rows"].as_array().cloned().unwrap_or_default();
    if !rows.is_empty() {
        out.push("  first values:".into());
        for row in rows {
            let cells: Vec<String> = row
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| match v.as_str() {
                    Some(s) => format!("{:>8}", clip(&format!("{s:?}"), 20)),
                    None => format!("{:>8}", num(v)),
                })
                .collect();
            out.push(format!("   {}", cells.join(" ")));
        }
    }
    out
}

/// The histogram, one line a bin, bars of `#` scaled to the fullest bin.
fn histogram_lines(f: &Json) -> Vec<String> {
    let counts: Vec<u64> = f["histogram"]["counts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_u64)
        .collect();
    let (Some(lo), Some(hi)) = (f["min"].as_f64(), f["max"].as_f64()) else {
        return Vec::new();
    };
    let (lo, hi) = if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    let most = counts.iter().copied().max().unwrap_or(0).max(1);
    let mut out = vec![format!("  histogram of the finite values ({BINS} bins):")];
    for (i, n) in counts.iter().enumerate() {
        let from = lo + (hi - lo) * i as f64 / counts.len() as f64;
        let bar = "#".repeat(((*n as f64 / most as f64) * 40.0).ceil() as usize);
        out.push(format!("  {:>10} {bar:<40} {n}", num(&json!(from))));
    }
    out
}
