//! `archive merge`: fold other stores into this one, each with a progress bar and a summary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use model_archive::{Archive, Error, MergeReport};

use super::{Ctx, UsageError};
use crate::output::{progress, size};

pub fn run(ctx: &Ctx, others: &[PathBuf]) -> Result<ExitCode> {
    if others.is_empty() {
        return Err(UsageError("merge needs at least one OTHER_STORE".into()).into());
    }
    let archive = ctx.open()?;
    for other in others {
        // Caught before opening: the other store's index lock is ours already, and waiting
        // for it would only time out.
        if same_dir(archive.path(), other) {
            return Err(Error::InvalidInput {
                input: other.display().to_string(),
                reason: "this is the store being merged into; a store cannot be merged into \
                         itself"
                    .into(),
            }
            .into());
        }
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
    println!(
        "{}: {} entries merged, {} already present; {} new objects ({} raw, {} stored)",
        other.display(),
        r.entries_merged,
        r.entries_skipped,
        r.new_objects,
        size(r.raw_bytes),
        size(r.stored_bytes)
    );
    Ok(())
}
