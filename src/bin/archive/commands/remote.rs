//! `archive remote`, `push`, `pull`, `clone`, `verify --remote`: a store shared through object
//! storage, with progress bars (bytes and rate) and summaries (`--json`: one object).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use model_archive::remote::{self, Remote, RemoteSpec};

use super::Ctx;
use crate::args::RemoteAction;
use crate::output::{outln, progress, size};

pub fn manage(ctx: &Ctx, action: RemoteAction) -> Result<ExitCode> {
    let root = ctx.store_path()?;
    model_archive::store_dir::check_store(&root)?;
    match action {
        RemoteAction::Add {
            name,
            url,
            endpoint,
        } => {
            remote::add_remote(&root, &name, RemoteSpec { url, endpoint })?;
            if !ctx.json {
                outln!("added remote `{name}`")?;
            }
        }
        RemoteAction::Rm { name } => {
            let spec = remote::remove_remote(&root, &name)?;
            if !ctx.json {
                outln!(
                    "forgot remote `{name}` ({}); nothing on it changed",
                    spec.url
                )?;
            }
        }
        RemoteAction::Ls => {
            for (name, spec) in remote::remotes(&root)? {
                if ctx.json {
                    crate::output::json_line(&serde_json::json!({
                        "name": name, "url": spec.url, "endpoint": spec.endpoint,
                    }))?;
                } else {
                    let endpoint = spec
                        .endpoint
                        .map(|e| format!("  (endpoint {e})"))
                        .unwrap_or_default();
                    outln!("{name}\t{}{endpoint}", spec.url)?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn push(ctx: &Ctx, name: Option<&str>) -> Result<ExitCode> {
    let archive = ctx.open()?;
    let (_, spec) = remote::remote_named(archive.path(), name)?;
    let remote = Remote::connect(&spec)?;
    let report = with_bar(&format!("pushing to {}", remote.url()), |p| {
        remote::push(&archive, &remote, p)
    });
    let r = report?;
    for d in &r.diverged {
        eprintln!(
            "archive: warning: {d}: the remote holds other bytes of this segment than this store: \
             left alone"
        );
    }
    if ctx.json {
        crate::output::json_line(&serde_json::to_value(&r)?)?;
    } else if r.pieces == 0 && r.tables == 0 {
        outln!("{}: up to date", r.remote)?;
    } else {
        outln!(
            "{}: {} in {} pieces of {} segments pushed ({}/s), {} objects tabled; {} requests, \
             {:.1} s",
            r.remote,
            size(r.bytes),
            r.pieces,
            r.segments,
            size((r.bytes as f64 / r.seconds.max(1e-3)) as u64),
            r.table_entries,
            r.requests,
            r.seconds
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn pull(ctx: &Ctx, name: Option<&str>) -> Result<ExitCode> {
    let archive = ctx.open()?;
    let (_, spec) = remote::remote_named(archive.path(), name)?;
    let remote = Remote::connect(&spec)?;
    let report = with_bar(&format!("pulling from {}", remote.url()), |p| {
        remote::pull(&archive, &remote, p)
    });
    pull_summary(ctx, &report?, "pulled")
}

pub fn clone(ctx: &Ctx, url: String, path: &Path, endpoint: Option<String>) -> Result<ExitCode> {
    let spec = RemoteSpec { url, endpoint };
    let report = with_bar(&format!("cloning {}", spec.url), |p| {
        remote::clone_store(&spec, path, p)
    });
    pull_summary(ctx, &report?, &format!("cloned into {}:", path.display()))
}

fn pull_summary(ctx: &Ctx, r: &remote::PullReport, what: &str) -> Result<ExitCode> {
    for d in &r.diverged {
        eprintln!(
            "archive: warning: {d}: this store's own segment; the remote holds more of it than \
             this store does: left alone"
        );
    }
    for d in &r.damaged {
        eprintln!("archive: damaged remote object, not used: {d}");
    }
    if ctx.json {
        crate::output::json_line(&serde_json::to_value(r)?)?;
    } else {
        outln!(
            "{what} {} in {} pieces of {} segments from {} ({}/s); {} requests, {:.1} s",
            size(r.bytes),
            r.pieces,
            r.segments,
            r.remote,
            size((r.bytes as f64 / r.seconds.max(1e-3)) as u64),
            r.requests,
            r.seconds
        )?;
    }
    Ok(ExitCode::from(if r.damaged.is_empty() { 0 } else { 4 }))
}

pub fn verify(ctx: &Ctx, name: &str) -> Result<ExitCode> {
    let root = ctx.store_path()?;
    model_archive::store_dir::check_store(&root)?;
    let (_, spec) = remote::remote_named(&root, Some(name))?;
    let remote = Remote::connect(&spec)?;
    let report = with_bar(&format!("verifying {}", remote.url()), |p| {
        remote::verify_remote(&root, &remote, p)
    });
    let r = report?;
    if ctx.json {
        for p in &r.problems {
            crate::output::json_line(&serde_json::json!({ "problem": p }))?;
        }
        for p in &r.waiting {
            crate::output::json_line(&serde_json::json!({ "waiting": p }))?;
        }
        crate::output::json_line(&serde_json::json!({
            "ok": r.problems.is_empty(), "remote": r.remote, "pieces": r.pieces,
            "bytes": r.bytes, "tables": r.tables, "problems": r.problems.len(),
            "waiting": r.waiting.len(),
        }))?;
    } else {
        for p in &r.problems {
            outln!("BAD  {p}")?;
        }
        for p in &r.waiting {
            outln!("WAIT {p}")?;
        }
        outln!(
            "{}: {} pieces ({}) and {} tables re-hashed: {}",
            r.remote,
            r.pieces,
            size(r.bytes),
            r.tables,
            if r.problems.is_empty() {
                "all good".to_owned()
            } else {
                format!("{} problems", r.problems.len())
            }
        )?;
    }
    Ok(ExitCode::from(if r.problems.is_empty() { 0 } else { 4 }))
}

/// Run `work` with a progress bar of bytes (and rate) named `what`, cleared when it ends.
fn with_bar<T>(what: &str, work: impl FnOnce(&dyn Fn(u64, u64)) -> T) -> T {
    let bar = progress(what);
    let done = work(&|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    done
}
