//! `archive info`: what an object is, from the index (plus labels for categoricals).

use std::process::ExitCode;

use anyhow::Result;
use model_archive::{Archive, Codec, EntryInfo, Kind, Object, ObjectHash, ObjectInfo, Value};

use super::{Ctx, resolve};
use crate::output::{outln, size, tags, time_local, time_rfc3339};

fn ratio(info: &ObjectInfo) -> f64 {
    if info.raw_len == 0 {
        1.0
    } else {
        info.stored_len as f64 / info.raw_len as f64
    }
}

/// One line per top-level field of a record: its name and what it holds.
fn fields(archive: &Archive, value: &Object) -> Vec<(String, String)> {
    let Object::Record(rec) = value else {
        return Vec::new();
    };
    rec.fields()
        .iter()
        .map(|(name, v)| {
            let what = match v {
                Value::Ref(h) => match archive.info(h) {
                    Ok(i) => match (i.dtype, &i.shape) {
                        (Some(d), Some(s)) => format!("tensor {d} {s} ({})", h.short(12)),
                        _ => format!("{} ({})", i.kind, h.short(12)),
                    },
                    Err(_) => format!("missing object {}", h.short(12)),
                },
                Value::Null => "null".into(),
                Value::Bool(b) => b.to_string(),
                Value::Int(i) => i.to_string(),
                Value::Float(f) => f.to_string(),
                Value::Str(s) if s.chars().count() <= 40 => format!("{s:?}"),
                Value::Str(s) => format!("text, {} chars", s.chars().count()),
                Value::List(items) => format!("list of {}", items.len()),
                Value::Record(r) => format!("record of {} fields", r.len()),
                Value::F32(f) => format!("{f} (float32)"),
                Value::BigUint(u) => u.to_string(),
                Value::Bytes(b) => format!("bytes, {} long", b.len()),
                Value::Ext(t, d) => format!("msgpack extension type {t}, {} bytes", d.len()),
                Value::Map(pairs) => format!("map of {} pairs (keys not all strings)", pairs.len()),
            };
            (name.clone(), what)
        })
        .collect()
}

/// What `info` shows about one object.
struct Shown {
    hash: ObjectHash,
    info: ObjectInfo,
    entries: Vec<EntryInfo>,
    /// A categorical's labels and what its codes are.
    labels: Option<(Vec<String>, ObjectInfo)>,
    /// A record's fields, each with a preview.
    fields: Vec<(String, String)>,
}

pub fn run(ctx: &Ctx, prefix: &str) -> Result<ExitCode> {
    let archive = ctx.open()?;
    let hash = resolve(&archive, prefix)?;
    let info = archive.info(&hash)?;
    let entries = archive.entries_of(&hash)?;
    let labels = match (info.kind, info.desc.as_deref()) {
        (Kind::Record, Some("categorical")) => match archive.get(&hash)? {
            Object::Categorical(c) => Some((c.labels.clone(), archive.info(&c.codes)?)),
            _ => None,
        },
        _ => None,
    };
    let fields = match (info.kind, &labels) {
        (Kind::Record, None) => fields(&archive, &archive.get(&hash)?),
        _ => Vec::new(),
    };
    let shown = Shown {
        hash,
        info,
        entries,
        labels,
        fields,
    };
    if ctx.json {
        print_json(&shown)?;
    } else {
        print_text(&shown)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_json(s: &Shown) -> Result<()> {
    let (info, labels) = (&s.info, &s.labels);
    let v = serde_json::json!({
        "hash": s.hash.to_string(),
        "kind": info.kind.name(),
        "dtype": info.dtype.map(|d| d.name()),
        "shape": info.shape.as_ref().map(|s| s.dims().to_vec()),
        "desc": info.desc,
        "raw_bytes": info.raw_len,
        "stored_bytes": info.stored_len,
        "codec": info.codec.name(),
        "ratio": ratio(info),
        "segment": info.segment,
        "offset": info.offset,
        "slot": info.slot,
        "labels": labels.as_ref().map(|(l, _)| l),
        "codes": labels.as_ref().map(|(_, c)| c.hash.to_string()),
        "fields": s.fields.iter().map(|(n, w)| serde_json::json!({"name": n, "value": w}))
            .collect::<Vec<_>>(),
        "entries": s.entries.iter().map(|e| serde_json::json!({
            "seq": e.seq, "time": time_rfc3339(e.time_ns),
            "tags": e.tags.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
                .collect::<serde_json::Map<_, _>>(),
        })).collect::<Vec<_>>(),
    });
    crate::output::json_line(&v)
}

fn print_text(s: &Shown) -> Result<()> {
    let (hash, info) = (&s.hash, &s.info);
    outln!("hash     {hash}")?;
    match (info.dtype, &info.shape) {
        (Some(d), Some(s)) => outln!("kind     tensor {d} {s}")?,
        _ => match &info.desc {
            Some(desc) => outln!("kind     {} ({desc})", info.kind)?,
            None => outln!("kind     {}", info.kind)?,
        },
    }
    if let Some((labels, codes)) = &s.labels {
        let n = codes.shape.as_ref().and_then(|s| s.elements()).unwrap_or(0);
        outln!("labels   {} labels: {}", labels.len(), labels.join(", "))?;
        outln!(
            "codes    {} ({n} codes, {})",
            codes.hash.short(12),
            codes.dtype.map_or("?".into(), |d| d.name())
        )?;
    }
    if !s.fields.is_empty() {
        let width = s
            .fields
            .iter()
            .map(|(n, _)| n.chars().count())
            .max()
            .unwrap_or(0);
        outln!("fields   {}", s.fields.len())?;
        for (name, what) in &s.fields {
            outln!("  {name:<width$}  {what}")?;
        }
    }
    outln!(
        "size     {} raw, {} stored",
        size(info.raw_len),
        size(info.stored_len)
    )?;
    let saving = (1.0 - ratio(info)) * 100.0;
    let codec = match info.codec {
        Codec::Raw if matches!(info.kind, Kind::Tensor | Kind::Bytes) => {
            "raw (memory-mappable)".to_owned()
        }
        Codec::Raw => "raw".to_owned(),
        c => format!("{c}, {saving:.1} % smaller"),
    };
    outln!("codec    {codec}")?;
    if info.slot == 0 {
        outln!("location {} @ {}", info.segment, info.offset)?;
    } else {
        outln!(
            "location {} @ {}, item {} of a pack (stored: its share of the pack)",
            info.segment,
            info.offset,
            info.slot
        )?;
    }
    outln!("entries  {}", s.entries.len())?;
    for e in &s.entries {
        outln!(
            "  #{:<6} {}  {}",
            e.seq,
            time_local(e.time_ns),
            tags(&e.tags)
        )?;
    }
    Ok(())
}
