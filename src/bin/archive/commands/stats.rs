//! `archive stats`: counts, sizes, savings.

use std::process::ExitCode;

use anyhow::Result;

use super::Ctx;
use crate::output::{print_table, size, table};

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1} %", part as f64 * 100.0 / whole as f64)
    }
}

pub fn run(ctx: &Ctx) -> Result<ExitCode> {
    let archive = ctx.open()?;
    let s = archive.stats()?;
    if ctx.json {
        crate::output::json_line(&serde_json::to_value(&s)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let dedup = s.logical_bytes.saturating_sub(s.raw_bytes);
    let compression = s.raw_bytes.saturating_sub(s.stored_bytes);
    let mut t = table(&[]);
    let kinds = s
        .by_kind
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    t.add_row(vec!["objects".into(), s.objects.to_string(), kinds]);
    let live = s.entries.saturating_sub(s.removed_entries);
    let removed = match s.removed_entries {
        0 => String::new(),
        n => format!("{n} removed, about {} for gc", size(s.removable_bytes)),
    };
    t.add_row(vec!["entries".into(), live.to_string(), removed]);
    t.add_row(vec![
        "logged bytes".into(),
        size(s.logical_bytes),
        "every entry's object, decoded".into(),
    ]);
    t.add_row(vec![
        "object bytes".into(),
        size(s.raw_bytes),
        format!("dedup saves {}", pct(dedup, s.logical_bytes)),
    ]);
    t.add_row(vec![
        "stored bytes".into(),
        size(s.stored_bytes),
        format!("compression saves {}", pct(compression, s.raw_bytes)),
    ]);
    t.add_row(vec![
        "segments".into(),
        s.segments.to_string(),
        size(s.segment_bytes),
    ]);
    t.add_row(vec![
        "index".into(),
        size(s.index_bytes),
        "sled and lookup tables, rebuildable".into(),
    ]);
    print_table(&t)?;
    Ok(ExitCode::SUCCESS)
}
