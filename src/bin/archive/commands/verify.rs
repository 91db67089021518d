//! `archive verify` and `archive reindex`: the two whole-store passes, with progress bars.

use std::process::ExitCode;

use anyhow::Result;

use super::Ctx;
use crate::output::{outln, progress, size};

pub fn run(ctx: &Ctx) -> Result<ExitCode> {
    let archive = ctx.open()?;
    let bar = progress("verifying");
    let report = archive.verify(&|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    if ctx.json {
        for p in &report.problems {
            crate::output::json_line(&serde_json::json!({
                "hash": p.hash.map(|h| h.to_string()),
                "path": p.path, "offset": p.offset, "problem": p.reason,
            }))?;
        }
        crate::output::json_line(&serde_json::json!({
            "ok": report.is_ok(), "objects": report.objects_checked,
            "bytes": report.bytes_checked, "frames": report.frames,
            "problems": report.problems.len(),
        }))?;
    } else {
        for p in &report.problems {
            let what = p
                .hash
                .map(|h| format!("object {}: ", h.short(12)))
                .unwrap_or_default();
            outln!(
                "BAD  {what}{} @ {}: {}",
                p.path.display(),
                p.offset,
                p.reason
            )?;
        }
        outln!(
            "{} objects ({}) in {} frames checked: {}",
            report.objects_checked,
            size(report.bytes_checked),
            report.frames,
            if report.is_ok() {
                "all good".to_owned()
            } else {
                format!("{} problems", report.problems.len())
            }
        )?;
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(4)
    })
}

pub fn reindex(ctx: &Ctx) -> Result<ExitCode> {
    let mut archive = ctx.open()?;
    let bar = progress("reindexing");
    archive.reindex(&|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    let s = archive.stats()?;
    if ctx.json {
        crate::output::json_line(
            &serde_json::json!({ "objects": s.objects, "entries": s.entries }),
        )?;
    } else {
        outln!(
            "reindexed {} objects and {} entries from {} segments",
            s.objects,
            s.entries,
            s.segments
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
