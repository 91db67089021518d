//! `archive gc`: rewrite segments with enough garbage, drop the old ones, say what it gave back.

use std::process::ExitCode;

use anyhow::{Result, bail};
use model_archive::{GcOptions, GcReport};

use super::Ctx;
use crate::args::GcArgs;
use crate::output::{outln, progress, size};

pub fn run(ctx: &Ctx, args: GcArgs) -> Result<ExitCode> {
    if !(0.0..=1.0).contains(&args.min_dead) {
        bail!(super::UsageError(format!(
            "--min-dead {}: give a share between 0 and 1 (0.1: a tenth of a segment)",
            args.min_dead
        )));
    }
    let archive = ctx.open()?;
    let bar = progress("gc");
    let opts = GcOptions {
        dry_run: args.dry_run,
        min_dead: args.min_dead,
    };
    let report = archive.gc(&opts, &|step, done, total| {
        bar.set_message(step.to_owned());
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    if ctx.json {
        crate::output::json_line(&serde_json::to_value(&report)?)?;
    } else {
        print(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print(r: &GcReport) -> Result<()> {
    if r.garbage_bytes == 0 && r.leftovers_deleted == 0 {
        outln!(
            "no garbage: nothing to do ({} live entries, {} removed)",
            r.live_entries,
            r.removed_entries
        )?;
        return Ok(());
    }
    let (verb, gives) = if r.dry_run {
        ("would rewrite", "would give back")
    } else {
        ("rewrote", "gave back")
    };
    outln!(
        "{verb} {} {} ({} into {}): {gives} {}",
        r.segments_replaced,
        if r.segments_replaced == 1 {
            "segment"
        } else {
            "segments"
        },
        size(r.bytes_replaced),
        size(r.bytes_written),
        size(r.bytes_reclaimed)
    )?;
    if !r.dry_run && r.segments_replaced > 0 {
        outln!(
            "  {} objects dropped ({}), {} removed entries left out, {} packs rebuilt",
            r.copy.objects_collected,
            size(r.copy.bytes_collected),
            r.copy.entries_dropped,
            r.copy.packs_rebuilt
        )?;
    }
    if r.leftovers_deleted > 0 {
        outln!(
            "  {} segments an interrupted gc had replaced: deleted",
            r.leftovers_deleted
        )?;
    }
    if r.garbage_left > 0 {
        outln!(
            "  {} of garbage left: {} segments held by writers, {} damaged (see `archive verify`), \
             the rest below --min-dead",
            size(r.garbage_left),
            r.segments_busy,
            r.segments_damaged
        )?;
    }
    Ok(())
}
