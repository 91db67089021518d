//! `archive`: the command-line face of model-archive. Glue only: parse, validate, call the
//! library, print. Errors map to exit codes in one place (`exit_code`).

mod args;
mod commands;
mod output;

use std::io::ErrorKind;
use std::process::ExitCode;

use clap::Parser;
use model_archive::Error;
use model_archive::error::RemoteFailure;

/// mimalloc: `archive log` allocates small records on its reading thread and frees them on
/// the writing one, a pattern glibc's allocator serves slowly (arena locks, trimming).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // No transparent huge pages: mimalloc asks for them, and a short command (a query, a
    // get) then spends a fifth of its time zeroing 2 MiB pages it barely touches (sled's
    // metrics at open, fresh buffers). Long ones (log, export) measured the same either way.
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
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

/// Whether the error is, or was caused by, writing into a closed pipe: an `io::Error` of kind
/// BrokenPipe anywhere in the `source()` chain, also inside another error (the library's
/// `Error::Io`, an `anyhow` context).
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(caused_by_broken_pipe)
}

fn caused_by_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == ErrorKind::BrokenPipe {
                return true;
            }
            // `io::Error::source` skips the error an `io::Error::new(kind, inner)` wraps and
            // goes on with the inner one's source: look at the inner one itself.
            if io
                .get_ref()
                .is_some_and(|inner| caused_by_broken_pipe(inner))
            {
                return true;
            }
        }
        next = e.source();
    }
    false
}

/// The exit codes listed in `archive --help`.
fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<Error>() {
            return match e {
                Error::InvalidInput { .. } | Error::AlreadyExists { .. } => 2,
                Error::NotFound(_) | Error::Ambiguous { .. } | Error::NoStore { .. } => 3,
                Error::Corrupt { .. } | Error::Index { .. } | Error::IndexDamaged { .. } => 4,
                Error::Locked { .. } => 5,
                Error::TooNew { .. } | Error::NeedsMigration { .. } => 6,
                Error::Removed(_) => 7,
                Error::UnknownRemote { .. } => 3,
                Error::Remote { failure, .. } => match failure {
                    RemoteFailure::Unreachable => 8,
                    RemoteFailure::Denied => 9,
                    RemoteFailure::Missing => 10,
                    RemoteFailure::Damaged => 4,
                    _ => 1,
                },
                _ => 1,
            };
        }
        if cause.downcast_ref::<commands::UsageError>().is_some() {
            return 2;
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use std::io::{Error as IoError, ErrorKind};

    use super::{exit_code, is_broken_pipe};

    fn pipe() -> IoError {
        IoError::from(ErrorKind::BrokenPipe)
    }

    #[test]
    fn a_broken_pipe_is_recognised_however_it_is_wrapped() {
        assert!(is_broken_pipe(&anyhow::Error::new(pipe())));
        assert!(is_broken_pipe(
            &anyhow::Error::new(pipe()).context("cannot write")
        ));
        let lib = model_archive::Error::Io {
            path: "out".into(),
            source: pipe(),
        };
        assert!(is_broken_pipe(
            &anyhow::Error::new(lib).context("cannot write")
        ));
        // Wrapped in another io::Error, whose `source()` skips it.
        let nested = IoError::other(model_archive::Error::Io {
            path: "out".into(),
            source: pipe(),
        });
        assert!(is_broken_pipe(&anyhow::Error::new(nested)));
        assert!(is_broken_pipe(&anyhow::Error::new(IoError::other(pipe()))));
    }

    #[test]
    fn other_errors_are_not_a_broken_pipe() {
        let denied = model_archive::Error::Io {
            path: "out".into(),
            source: IoError::from(ErrorKind::PermissionDenied),
        };
        let err = anyhow::Error::new(denied);
        assert!(!is_broken_pipe(&err));
        assert_eq!(exit_code(&err), 1);
        assert!(!is_broken_pipe(&anyhow::anyhow!("broken pipe")));
        assert!(!is_broken_pipe(&anyhow::Error::new(IoError::other(
            "closed"
        ))));
    }
}
