//! One module per subcommand, and what they share: finding and opening the store.

mod diff;
mod export;
mod gc;
mod get;
mod info;
mod init;
mod log;
mod ls;
mod merge;
mod put;
mod remote;
mod rm;
mod show;
mod stats;
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use model_archive::{Archive, Error, ObjectHash};

use crate::args::{Cli, Command};
use crate::output::outln;

/// A mistake in how the command was called (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Global options every command sees.
pub struct Ctx {
    store: Option<PathBuf>,
    /// Print JSON instead of tables.
    pub json: bool,
    wait: Duration,
}

/// Name of the directory `init` creates and discovery looks for.
pub const DEFAULT_DIR: &str = ".archive";

impl Ctx {
    /// The store path: --store / $ARCHIVE_STORE, else the nearest `.archive` upward.
    pub fn store_path(&self) -> Result<PathBuf> {
        if let Some(p) = &self.store {
            return Ok(p.clone());
        }
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        for dir in cwd.ancestors() {
            let candidate = dir.join(DEFAULT_DIR);
            if candidate.join("ARCHIVE").is_file() {
                return Ok(candidate);
            }
        }
        Err(Error::NoStore {
            path: cwd.join(DEFAULT_DIR),
        })
        .context(
            "no store given and no `.archive` found here or above; pass --store PATH, set \
             ARCHIVE_STORE, or run `archive init`",
        )
    }

    /// Open the store, printing what recovery did.
    pub fn open(&self) -> Result<Opened> {
        let path = self.store_path()?;
        let archive = Archive::builder().lock_timeout(self.wait).open(&path)?;
        for w in archive.warnings() {
            eprintln!("archive: warning: {w}");
        }
        Ok(Opened(archive))
    }
}

impl Ctx {
    /// Open the store for writing: with the index if nobody holds it, else without it (as
    /// `archive log` does), so a write never waits for another command. Without the index the
    /// new entries are indexed by the next command that opens the store.
    pub fn open_for_writing(&self) -> Result<Opened> {
        let path = self.store_path()?;
        let archive = match Archive::builder().lock_timeout(Duration::ZERO).open(&path) {
            Err(Error::Locked { .. }) => Archive::builder().open_logger(&path)?,
            other => other?,
        };
        for w in archive.warnings() {
            eprintln!("archive: warning: {w}");
        }
        Ok(Opened(archive))
    }
}

/// An open store that, when the command is done with it, says how long the command waited
/// for other processes to hand over the index: always with `ARCHIVE_TRACE_WAITS=1` (for
/// measuring), otherwise only past a second.
pub struct Opened(pub Archive);

impl std::ops::Deref for Opened {
    type Target = Archive;
    fn deref(&self) -> &Archive {
        &self.0
    }
}

impl std::ops::DerefMut for Opened {
    fn deref_mut(&mut self) -> &mut Archive {
        &mut self.0
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        let w = self.0.index_waits();
        let trace = std::env::var_os("ARCHIVE_TRACE_WAITS").is_some_and(|v| v == "1");
        if trace {
            eprintln!(
                "archive: index held {} ms at most; index waits: {} takes, {} ms in all, longest {} ms",
                w.longest_hold.as_millis(),
                w.takes,
                w.total.as_millis(),
                w.longest.as_millis()
            );
        } else if w.longest > Duration::from_secs(1) {
            eprintln!(
                "archive: note: waited {:.1} s for another process to hand over the index",
                w.longest.as_secs_f64()
            );
        }
    }
}

/// Resolve a hash or prefix, with the prefix named in the error. A full hash needs no
/// lookup: the read that follows finds the object, or says it is not there.
pub fn resolve(archive: &Archive, prefix: &str) -> Result<ObjectHash> {
    match prefix.trim().parse::<ObjectHash>() {
        Ok(hash) => Ok(hash),
        Err(_) => Ok(archive.resolve(prefix.trim())?),
    }
}

/// Write `bytes` to `path` atomically (temp file, then rename), or to stdout for `-`.
pub fn write_output(path: Option<&Path>, bytes: &[u8]) -> Result<()> {
    write_parts_to(path, &[bytes])
}

/// `write_output` to `path` of `parts`, one after the other; returns how many bytes.
pub fn write_parts(path: &Path, parts: &[&[u8]]) -> Result<u64> {
    write_parts_to(Some(path), parts)?;
    Ok(parts.iter().map(|p| p.len() as u64).sum())
}

/// `write_output` of `parts`, one after the other.
fn write_parts_to(path: Option<&Path>, parts: &[&[u8]]) -> Result<()> {
    use std::io::Write;
    // Flushed here, not at exit (where a failed write goes unreported): output that does not
    // end in a newline stays in stdout's line buffer until then.
    let to_stdout = || -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        for p in parts {
            out.write_all(p)?;
        }
        out.flush()
    };
    match path {
        None => to_stdout().map_err(Into::into),
        Some(p) if p == Path::new("-") => to_stdout().map_err(Into::into),
        Some(p) => write_file(p, &mut |f| {
            for part in parts {
                f.write_all(part)
                    .with_context(|| format!("{}: cannot write", p.display()))?;
            }
            Ok(())
        }),
    }
}

/// Write a file atomically: `write` fills a temporary file beside `path` (buffered), which
/// then takes its name; on an error, or Ctrl-C (SIGINT, SIGTERM) while it writes, the temporary
/// file is removed and `path` left as it was. A `path` that is there and not a regular file
/// (`/dev/null`, a named pipe, a terminal) is written to as it is: renaming a file over it
/// would replace the device.
pub fn write_file(
    path: &Path,
    write: &mut dyn FnMut(&mut (dyn std::io::Write + Send)) -> Result<()>,
) -> Result<()> {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        let cannot = || format!("{}: cannot write", path.display());
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(cannot)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        write(&mut w)?;
        return w.flush().with_context(cannot);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut ids = Vec::new();
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        ids.push(signal_hook::flag::register(signal, Arc::clone(&stop))?);
    }
    let cannot = || format!("{}: cannot write", path.display());
    let result = (|| -> Result<()> {
        let file = std::fs::File::create(&tmp).with_context(cannot)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, Stoppable(file, Arc::clone(&stop)));
        // The writer's own errors name the output already.
        write(&mut w)?;
        w.flush().with_context(cannot)?;
        std::fs::rename(&tmp, path).with_context(cannot)
    })();
    for id in ids {
        signal_hook::low_level::unregister(id);
    }
    result.inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// A file whose writes fail once `.1` is set (by a signal).
struct Stoppable(std::fs::File, std::sync::Arc<std::sync::atomic::AtomicBool>);

impl std::io::Write for Stoppable {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.1.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(std::io::Error::other("interrupted: nothing written"));
        }
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    if !(cli.wait.is_finite() && cli.wait >= 0.0) {
        return Err(
            UsageError(format!("--wait {}: expected a number of seconds", cli.wait)).into(),
        );
    }
    let ctx = Ctx {
        store: cli.store,
        json: cli.json,
        wait: Duration::from_secs_f64(cli.wait),
    };
    match cli.command {
        Command::Init { path } => init::run(&ctx, path),
        Command::Put(args) => put::run(&ctx, args),
        Command::Get(args) => get::run(&ctx, args),
        Command::Cat { hash } => get::cat(&ctx, &hash),
        Command::Show { hash, rows } => show::run(&ctx, &hash, rows.as_deref()),
        Command::Diff(args) => diff::run(&ctx, args),
        Command::Info { hash } => info::run(&ctx, &hash),
        Command::Ls(args) => ls::run(&ctx, args),
        Command::Verify { remote: None } => verify::run(&ctx),
        Command::Verify { remote: Some(name) } => remote::verify(&ctx, &name),
        Command::Remote { action } => remote::manage(&ctx, action),
        Command::Push { remote: name } => remote::push(&ctx, name.as_deref()),
        Command::Pull { remote: name } => remote::pull(&ctx, name.as_deref()),
        Command::Clone {
            url,
            path,
            endpoint,
        } => remote::clone(&ctx, url, &path, endpoint),
        Command::Reindex => verify::reindex(&ctx),
        Command::Stats => stats::run(&ctx),
        Command::Merge { others } => merge::run(&ctx, &others),
        Command::Rm(args) => rm::run(&ctx, args),
        Command::Gc(args) => gc::run(&ctx, args),
        Command::Log(args) => log::run(&ctx, args),
        Command::Query(args) => ls::query(&ctx, args),
        Command::Export(args) => export::run(&ctx, args),
        Command::Migrate => {
            let report = model_archive::migrate::migrate(ctx.store_path()?)?;
            if ctx.json {
                crate::output::json_line(&serde_json::json!({
                    "from": report.from, "to": report.to, "steps": report.steps,
                }))?;
            } else if report.steps.is_empty() {
                outln!("schema v{} is current: nothing to migrate", report.to)?;
            } else {
                for step in &report.steps {
                    outln!("applied {step}")?;
                }
                outln!("migrated from schema v{} to v{}", report.from, report.to)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
