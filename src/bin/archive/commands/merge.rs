//! `archive merge`: fold other stores into this one, each with a progress bar and a summary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use model_archive::{Archive, Error, MergeReport};

use super::{Ctx, UsageError};
use crate::output::{outln, progress, size};

pub fn run(ctx: &Ctx, others: &[PathBuf]) -> Result<ExitCode> {
    if others.is_empty() {
        return Err(UsageError("merge needs at least one OTHER_STORE".into()).into());
    }
    let archive = ctx.open()?;
    // Checked before opening any: this store's index lock is ours already, so opening it again
    // would only time out, and nothing should be merged from a command line that is wrong.
    if let Some(me) = others.iter().find(|o| same_dir(archive.path(), o)) {
        return Err(Error::InvalidInput {
            input: me.display().to_string(),
            reason: "this is the store being merged into; a store cannot be merged into itself"
                .into(),
        }
        .into());
    }
    for other in others {
        let from = Archive::builder()
            .lock_timeout(ctx.wait)
            .open(other)
            .with_context(|| format!("{}: cannot open the store to merge", other.display()))?;
        for w in from.warnings() {
            eprintln!("archive: warning: {w}");
        }
        let bar = progress(&format!("merging {}", other.display()));
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} entries ({per_sec}, {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        let report = model_archive::merge::merge(&archive, &from, &|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        });
        bar.finish_and_clear();
        let report = report.with_context(|| {
            format!(
                "{}: merge stopped; run it again to finish (entries already merged are skipped)",
                other.display()
            )
        })?;
        print_report(ctx, other, &report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn print_report(ctx: &Ctx, other: &Path, r: &MergeReport) -> Result<()> {
    if ctx.json {
        let mut v = serde_json::to_value(r)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("from".into(), other.display().to_string().into());
        }
        return crate::output::json_line(&v);
    }
    outln!(
        "{}: {} merged, {} already present; {} ({} raw, {} stored)",
        other.display(),
        count(r.entries_merged, "entry", "entries"),
        r.entries_skipped,
        count(r.new_objects, "new object", "new objects"),
        size(r.raw_bytes),
        size(r.stored_bytes)
    )?;
    if r.removals_carried > 0 {
        outln!(
            "{}: {} removed there, recorded here too",
            other.display(),
            count(r.removals_carried, "entry", "entries")
        )?;
    }
    Ok(())
}

fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
