//! `archive ls` and `archive query`: entries, newest first, as a table, JSON lines or hashes.

use std::process::ExitCode;

use anyhow::Result;
use model_archive::query::Query;
use model_archive::{Archive, EntryInfo, ObjectInfo};

use super::{Ctx, UsageError};
use crate::args::{LsArgs, QueryArgs};
use crate::output::{outln, print_table, size, spinner, table, tags, time_local, time_rfc3339};

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

/// How to print a listing.
struct Listing {
    limit: usize,
    reverse: bool,
    hashes: bool,
}

fn print(ctx: &Ctx, archive: &Archive, query: &Query, how: &Listing) -> Result<ExitCode> {
    // A long search shows the matches found so far on a terminal; Ctrl-C ends it.
    let bar = spinner("matches");
    // What each object is, only for listings that show it.
    // Newest first, only the first `limit` are taken: runs are read ahead no further.
    let first = if how.reverse { usize::MAX } else { how.limit };
    let found: Box<dyn Iterator<Item = model_archive::Result<_>>> = if how.hashes {
        Box::new(
            archive
                .query_first(query, first)
                .map(|r| r.map(|e| (e, None))),
        )
    } else {
        Box::new(archive.query_detailed_first(query, first))
    };
    let mut matches = found.inspect(|_| bar.inc(1));
    let entries: Vec<(EntryInfo, Option<ObjectInfo>)> = if how.reverse {
        // Oldest first: every match, reversed, then the limit.
        let mut all = matches.collect::<model_archive::Result<Vec<_>>>()?;
        all.reverse();
        all.truncate(how.limit);
        all
    } else {
        (&mut matches)
            .take(how.limit)
            .collect::<model_archive::Result<Vec<_>>>()?
    };
    bar.finish_and_clear();
    let mut t = table(&["HASH", "TIME", "KIND", "DTYPE/SHAPE", "SIZE", "TAGS"]);
    for (e, info) in &entries {
        if how.hashes {
            // A write error, not a panic, when the reader goes away (`| head`): main exits 0.
            outln!("{}", e.hash)?;
            continue;
        }
        if ctx.json {
            crate::output::json_line(&json(e, info.as_ref()))?;
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
    if !ctx.json && !how.hashes {
        if entries.is_empty() {
            eprintln!("no entries match");
        } else {
            print_table(&t)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn run(ctx: &Ctx, args: LsArgs) -> Result<ExitCode> {
    // `ls` filters are a query: tags, then the time range.
    let mut parts = Vec::new();
    for t in &args.tags {
        let Some((k, v)) = t.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(UsageError(format!("--tag {t}: expected key=value")).into());
        };
        parts.push(format!("{} = {}", quote(k), quote(v)));
    }
    for (flag, op, value) in [
        ("--since", ">=", &args.since),
        ("--until", "<", &args.until),
    ] {
        if let Some(v) = value {
            if model_archive::query::parse_time(v).is_none() {
                return Err(UsageError(format!(
                    "{flag} {v}: expected a time (RFC 3339, e.g. 2026-11-01T12:00:00Z, or a date)"
                ))
                .into());
            }
            parts.push(format!("time {op} {v}"));
        }
    }
    let query = Query::parse(&parts.join(" and "))?;
    let archive = ctx.open()?;
    let how = Listing {
        limit: if args.all { usize::MAX } else { args.limit },
        reverse: false,
        hashes: false,
    };
    print(ctx, &archive, &query, &how)
}

pub fn query(ctx: &Ctx, args: QueryArgs) -> Result<ExitCode> {
    // A syntax error is reported before the store is opened; then bare words are resolved
    // against the names the store knows (`label != pred`).
    Query::parse(&args.query)?;
    let archive = ctx.open()?;
    let query = archive.parse_query(&args.query)?;
    let how = Listing {
        limit: args.limit.unwrap_or(usize::MAX),
        reverse: args.reverse,
        hashes: args.hashes,
    };
    print(ctx, &archive, &query, &how)
}
