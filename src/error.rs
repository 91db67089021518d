//! The library's one public error type. Every variant carries the context a caller needs to act
//! on it (which input, which file, which byte) and its message says what to do next.

use std::path::PathBuf;

use crate::hash::ObjectHash;

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No object matches the hash or prefix.
    #[error("no object matches `{0}`")]
    NotFound(String),

    /// The object was in the archive until `gc` dropped it, its entries removed.
    #[error("object `{0}` was removed: its entries were removed and `archive gc` dropped it")]
    Removed(String),

    /// A short hash matches more than one object.
    #[error("prefix `{prefix}` is ambiguous: it matches {}", list_hashes(.candidates))]
    Ambiguous {
        /// The prefix as given.
        prefix: String,
        /// The objects it matches (at most a handful).
        candidates: Vec<ObjectHash>,
    },

    /// Stored bytes do not decode or do not hash back to their address.
    #[error("{}: corrupt data at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The file holding the damaged bytes.
        path: PathBuf,
        /// Byte offset of the damaged frame (or structure) in that file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },

    /// The store was written by an older schema version.
    #[error(
        "{}: archive schema v{found} is older than v{current}; run `archive migrate`",
        path.display()
    )]
    NeedsMigration {
        /// The store or file.
        path: PathBuf,
        /// The version found on disk.
        found: u16,
        /// The version this program writes.
        current: u16,
    },

    /// The store was written by a newer version of this program.
    #[error(
        "{}: archive schema v{found} is newer than v{current}, the newest this program knows; \
         upgrade model-archive to read it",
        path.display()
    )]
    TooNew {
        /// The store or file.
        path: PathBuf,
        /// The version found on disk.
        found: u16,
        /// The newest version this program knows.
        current: u16,
    },

    /// Another process holds the index, or (`what`: the segments) runs `gc`.
    #[error("{}: {what} is in use by {owner}; waited {waited_ms} ms", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// What the lock guards: "the index", or "the segments" (held by `gc`).
        what: &'static str,
        /// Who holds it, as that process wrote it (pid and command line).
        owner: String,
        /// How long this process waited before giving up.
        waited_ms: u64,
    },

    /// Input from a user or a file that cannot be stored as given.
    #[error("{input}: {reason}")]
    InvalidInput {
        /// The input: a file name, an argument, a field.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// No store at the path, or none found by searching upward.
    #[error("{}: no archive here; create one with `archive init`", path.display())]
    NoStore {
        /// Where the store was looked for.
        path: PathBuf,
    },

    /// `create` on a path that already holds something.
    #[error("{}: already exists", path.display())]
    AlreadyExists {
        /// The path.
        path: PathBuf,
    },

    /// An I/O error on a named file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// sled found its own files damaged or of a layout it cannot read. The index is derived
    /// from the segments: opening the store rebuilds it.
    #[error("{}: the index is damaged: {reason}; opening the store rebuilds it", path.display())]
    IndexDamaged {
        /// The index directory.
        path: PathBuf,
        /// What sled reported.
        reason: String,
    },

    /// A failure inside this program (a lock poisoned by a thread that panicked, state that
    /// should not be possible), not a problem with the input or the store.
    #[error("internal error: {reason}")]
    Internal {
        /// What went wrong.
        reason: String,
    },

    /// A remote (object storage) failed: `remote` is its URL, or the object's.
    #[error("{remote}: {reason}")]
    Remote {
        /// The remote's URL, or the URL of the object that failed.
        remote: String,
        /// Which kind of failure.
        failure: RemoteFailure,
        /// What the server said, and what to do.
        reason: String,
    },

    /// A remote name this store does not know.
    #[error("no remote named `{name}` in {}; `archive remote ls` lists them, `archive remote add NAME URL` adds one", store.display())]
    UnknownRemote {
        /// The name asked for.
        name: String,
        /// The store.
        store: PathBuf,
    },

    /// The sled index failed; `archive reindex` rebuilds it from the segments.
    #[error("{}: index error: {reason}; `archive reindex` rebuilds it", path.display())]
    Index {
        /// The index directory.
        path: PathBuf,
        /// What sled reported.
        reason: String,
    },
}

/// What went wrong with a remote (`Error::Remote`): each has an exit code of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemoteFailure {
    /// The server could not be reached (refused, timed out, name not resolved).
    Unreachable,
    /// The server refused the credentials or the access.
    Denied,
    /// No bucket, or no archive at the URL.
    Missing,
    /// A remote object is truncated or its bytes do not hash to its name.
    Damaged,
    /// The remote holds an archive this store cannot share (another schema version), or
    /// anything else the server answered.
    Other,
}

impl From<crate::hash::ParseHashError> for Error {
    fn from(e: crate::hash::ParseHashError) -> Self {
        Error::InvalidInput {
            input: e.input,
            reason: "not a hash: expected 64 hexadecimal digits".into(),
        }
    }
}

fn list_hashes(hashes: &[ObjectHash]) -> String {
    hashes
        .iter()
        .map(|h| h.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(input: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            input: input.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn internal(reason: impl Into<String>) -> Self {
        Error::Internal {
            reason: reason.into(),
        }
    }

    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corrupt {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }
}
