//! `archive`: the command-line face of model-archive. Glue only: parse, validate, call the
//! library, print. Errors map to exit codes in one place (`exit_code`).

mod args;
mod commands;
mod output;

use std::io::ErrorKind;
use std::process::ExitCode;

use clap::Parser;
use model_archive::Error;

/// mimalloc: `archive log` allocates small records on its reading thread and frees them on
/// the writing one, a pattern glibc's allocator serves slowly (arena locks, trimming).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                // `archive ls | head` closing the pipe early is not a failure.
                return ExitCode::SUCCESS;
            }
            eprintln!("archive: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
    })
}

/// The exit codes listed in `archive --help`.
fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<Error>() {
            return match e {
                Error::InvalidInput { .. } | Error::AlreadyExists { .. } => 2,
                Error::NotFound(_) | Error::Ambiguous { .. } | Error::NoStore { .. } => 3,
                Error::Corrupt { .. } | Error::Index { .. } => 4,
                Error::Locked { .. } => 5,
                Error::TooNew { .. } | Error::NeedsMigration { .. } => 6,
                _ => 1,
            };
        }
        if cause.downcast_ref::<commands::UsageError>().is_some() {
            return 2;
        }
    }
    1
}
