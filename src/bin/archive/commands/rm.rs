//! `archive rm`: remove the entries a query matches.

use std::process::ExitCode;

use anyhow::Result;

use super::{Ctx, UsageError};
use crate::args::RmArgs;
use crate::output::{outln, size};

pub fn run(ctx: &Ctx, args: RmArgs) -> Result<ExitCode> {
    if args.query.trim().is_empty() {
        return Err(UsageError(
            "rm needs a query: removing everything takes one that says so (e.g. 'time > 1970-01-01')"
                .into(),
        )
        .into());
    }
    let archive = ctx.open()?;
    let query = archive.parse_query(&args.query)?;
    let r = archive.rm(&query, &args.query, args.dry_run)?;
    if ctx.json {
        crate::output::json_line(&serde_json::to_value(&r)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if r.entries == 0 {
        outln!("no entries match `{}`: nothing removed", args.query)?;
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if r.dry_run { "would remove" } else { "removed" };
    outln!(
        "{verb} {} {}; {} no live entry logs any more ({}, back at the next `archive gc`)",
        r.entries,
        if r.entries == 1 { "entry" } else { "entries" },
        count(r.objects),
        size(r.stored_bytes)
    )?;
    Ok(ExitCode::SUCCESS)
}

fn count(n: u64) -> String {
    format!("{n} {}", if n == 1 { "object" } else { "objects" })
}
