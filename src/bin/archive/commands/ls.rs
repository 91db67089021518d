//! `archive ls`: entries, newest first.

use std::process::ExitCode;

use anyhow::Result;
use model_archive::{Archive, EntryInfo, ObjectInfo};

use super::Ctx;
use crate::args::LsArgs;
use crate::output::{print_table, size, table, tags, time_local, time_rfc3339};

/// Shape for tensors, the media type or schema for others.
fn what(info: &ObjectInfo) -> String {
    match (info.dtype, &info.shape) {
        (Some(d), Some(s)) => format!("{d} {s}"),
        _ => info.desc.clone().unwrap_or_default(),
    }
}

fn json(e: &EntryInfo, info: Option<&ObjectInfo>) -> serde_json::Value {
    serde_json::json!({
        "seq": e.seq,
        "time": time_rfc3339(e.time_ns),
        "hash": e.hash.to_string(),
        "kind": info.map(|i| i.kind.name()),
        "dtype": info.and_then(|i| i.dtype.map(|d| d.name())),
        "shape": info.and_then(|i| i.shape.as_ref().map(|s| s.dims().to_vec())),
        "bytes": info.map(|i| i.raw_len),
        "tags": e.tags.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
            .collect::<serde_json::Map<_, _>>(),
    })
}

pub fn run(ctx: &Ctx, args: LsArgs) -> Result<ExitCode> {
    let archive: Archive = ctx.open()?;
    let limit = if args.all { usize::MAX } else { args.limit };
    let mut t = table(&["HASH", "TIME", "KIND", "DTYPE/SHAPE", "SIZE", "TAGS"]);
    let mut shown = 0;
    for entry in archive.entries().take(limit) {
        let e = entry?;
        let info = archive.info(&e.hash).ok();
        shown += 1;
        if ctx.json {
            crate::output::json_line(&json(&e, info.as_ref()))?;
            continue;
        }
        t.add_row(vec![
            e.hash.short(12),
            time_local(e.time_ns),
            info.as_ref().map_or("?".into(), |i| i.kind.to_string()),
            info.as_ref().map_or(String::new(), what),
            info.as_ref().map_or(String::new(), |i| size(i.raw_len)),
            tags(&e.tags),
        ]);
    }
    if !ctx.json {
        if shown == 0 {
            eprintln!("no entries yet; add some with `archive put`");
        } else {
            print_table(&t)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
