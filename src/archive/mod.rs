//! `Archive`: an open store. Each file follows one path through it:
//!
//! | file | what happens there |
//! | --- | --- |
//! | `open.rs` | `ArchiveBuilder`: create a store, open it, open it for logging only |
//! | `recover.rs` | recovery on open: index what the segments hold past the index, cut torn tails; `reindex` |
//! | `append.rs` | this process's segment: which one a batch appends to, group commit, claims |
//! | `put.rs` | put: `Writer` (a batch, one fsync) and the one-put `Archive::put_*` |
//! | `get.rs` | get, map, info, resolve a short hash |
//! | `entries.rs` | the entries: all of them, or those of one object |
//! | `query.rs` | the entries a query matches, read through the index's runs and tags |
//! | `compare.rs` | how two objects, or two runs paired by a key, differ (`archive diff`) |
//! | `stack.rs` | one tensor field of every match, stacked into one tensor |
//! | `verify.rs` | verify: every frame re-read and re-hashed, the index checked against it |
//! | `pin.rs` | the gc lock: gc holds it; a batch logging stored content pins the store |
//! | `gc.rs` | gc: mark (`gc_mark.rs`), copy the live frames (`gc_copy.rs`), drop the old segments |
//! | `remove.rs` | rm: a removal frame naming the entries a query matches |
//! | `stats.rs` | counts and sizes, from the totals the index keeps; `recount` walks |
//! | `share.rs` | what a push gives a remote: the live segments, as far as they are indexed |
//!
//! Byte layouts live in `format`, segment files in `segment`, the index in `index`, object
//! lookup in `locator`, and the store directory's names in `store_dir`.

mod append;
mod compare;
mod compare_stream;
pub use compare_stream::STREAM_ABOVE;
mod entries;
mod gc;
mod gc_copy;
mod gc_mark;
mod get;
mod handoff;
mod lease;
mod open;
mod pin;
mod prepared;
mod put;
mod query;
mod recover;
mod remove;
mod share;
mod stack;
mod stats;
#[cfg(feature = "table")]
mod table;
mod verify;
mod walk;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub use crate::info::{EntryInfo, ObjectInfo};
pub use crate::mapped::MappedObject;
pub use crate::tags::{MAX_TAG_KEY, MAX_TAG_VALUE};
pub use compare::{PairRow, Tolerance};
pub use gc::{GcOptions, GcReport};
pub use gc_copy::CopyCounts;
pub use handoff::LoggedBatch;
pub use lease::IndexWaits;
pub use open::ArchiveBuilder;
pub use put::{MAX_DESC, PutOptions, Writer, WriterTotals};
pub use remove::RmReport;
pub use share::IndexedSegment;
pub use stats::Stats;
pub use verify::{Problem, VerifyReport};

use crate::error::Result;
use crate::format::store_header::Settings;
use crate::index::Index;
use crate::locator::Locator;
use crate::reader::ArchiveReader;

/// Segment files: (name, path), sorted by name.
type SegmentList = Vec<(String, PathBuf)>;

/// Bytes in the files of `files`, as they are now.
fn files_len(files: &[(String, PathBuf)]) -> u64 {
    files
        .iter()
        .filter_map(|(_, p)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Step times of long work on stderr when the variable `env` is `1` (`ARCHIVE_TRACE_GC`,
/// `ARCHIVE_TRACE_REMOTE`), for profiling whole processes.
pub(crate) struct Trace(Option<(std::time::Instant, &'static str)>);

impl Trace {
    pub(crate) fn new(env: &str, label: &'static str) -> Trace {
        let on = std::env::var_os(env).is_some_and(|v| v == "1");
        Trace(on.then(|| (std::time::Instant::now(), label)))
    }

    pub(crate) fn step(&self, what: &str) {
        if let Some((start, label)) = self.0 {
            eprintln!(
                "{label}: {what} done at {:.3} s",
                start.elapsed().as_secs_f64()
            );
        }
    }
}

/// Nanoseconds since the Unix epoch.
pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// An open archive. `Send + Sync`: share it between threads by reference or `Arc`.
pub struct Archive {
    root: PathBuf,
    segments_dir: PathBuf,
    settings: Settings,
    /// The index and its lock, taken when needed and handed back during long work
    /// (`lease.rs`); never taken when opened for logging only (`ArchiveBuilder::open_logger`).
    lease: lease::Lease,
    /// Lookup tables, to find objects already stored when the index is not open.
    reader: Option<ArchiveReader>,
    locator: Locator,
    /// This process's segment and the batches appending to it (`append.rs`).
    slot: Mutex<append::SegmentSlot>,
    /// New objects appended by a batch but not yet in the index (`append.rs`).
    claims: append::Claims,
    /// This process's shared hold on the gc lock, for batches that log stored content.
    pins: pin::Pins,
    segment_size: u64,
    warnings: Mutex<Vec<String>>,
    /// True while `catch_up` runs: taking the index again then does not start another.
    catching_up: std::sync::atomic::AtomicBool,
    /// Batches a logger of this process handed over, for the catch-up (`handoff.rs`).
    logged: Mutex<Vec<handoff::LoggedBatch>>,
    /// How many of them the catch-up applied.
    logged_taken: std::sync::atomic::AtomicU64,
}

impl Archive {
    /// Open the store at `path` with default settings.
    pub fn open(path: impl AsRef<Path>) -> Result<Archive> {
        ArchiveBuilder::default().open(path)
    }

    /// Create a store at `path` with default settings.
    pub fn create(path: impl AsRef<Path>) -> Result<Archive> {
        ArchiveBuilder::default().create(path)
    }

    /// A builder for non-default settings.
    pub fn builder() -> ArchiveBuilder {
        ArchiveBuilder::default()
    }

    /// The store's root directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Problems found while opening (damaged frames skipped, torn tails cut), for display.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// Record a warning once: the segment listing, say, is read at open and again when a
    /// writer picks its segment, and a foreign file there is one problem, not two.
    fn warn(&self, msg: String) {
        if let Ok(mut w) = self.warnings.lock()
            && !w.contains(&msg)
        {
            w.push(msg);
        }
    }

    /// The segment files, sorted by name, less those a compaction replaced (`segments`).
    fn segment_files(&self) -> Result<Vec<(String, PathBuf)>> {
        Ok(self.segments()?.0)
    }

    /// The segment files, sorted by name: those in use, and those a compaction replaced
    /// (superseded: left alone by every reader, deleted by gc). Entries named like segments
    /// that are not regular files (symlinks above all) are left alone and reported as
    /// warnings.
    fn segments(&self) -> Result<(SegmentList, SegmentList)> {
        let crate::store_dir::SegmentFiles { files, foreign } =
            crate::store_dir::segment_files(&self.segments_dir)?;
        for path in foreign {
            self.warn(format!(
                "{}: not a regular file, so not a segment of this store: left alone",
                path.display()
            ));
        }
        let gone = crate::segment::superseded::superseded(&files);
        Ok(files
            .into_iter()
            .partition(|(name, _)| !gone.contains(name)))
    }

    /// What a warning says of an index rebuilt for `reason`: an upgrade, or damage.
    fn rebuilt_warning(&self, reason: &str) -> String {
        let dir = self.root.join(crate::store_dir::INDEX_DIR);
        match reason.starts_with(crate::index::OTHER_LAYOUT) {
            true => format!(
                "{}: index rebuilt from the segments for this version of model-archive ({reason})",
                dir.display()
            ),
            false => format!(
                "{}: damaged index rebuilt from the segments ({reason})",
                dir.display()
            ),
        }
    }

    /// The index, or an error saying this archive was opened for logging only. Taken again
    /// (waiting for another process, caught up with the segments if it had to be rebuilt)
    /// when it was handed back.
    fn index(&self) -> Result<Arc<Index>> {
        let (index, damaged, again) = self.lease.get()?;
        if let Some(reason) = &damaged {
            self.warn(self.rebuilt_warning(reason));
        }
        // Taken again after a hand-over: what others wrote meanwhile (a `put` that found the
        // index busy writes without it) is indexed now, unless a catch-up is what handed it
        // over (it goes on by itself).
        let catching_up = self.catching_up.load(std::sync::atomic::Ordering::Relaxed);
        if (damaged.is_some() || again) && !catching_up {
            drop(index);
            self.catch_up(&|_, _| {})?;
            return Ok(self.lease.get()?.0);
        }
        Ok(index)
    }

    /// Run `work`, which may hand the index over at yield points, again if another process
    /// rebuilt the index meanwhile (a gc, a reindex): what it read before is stale then.
    fn again_if_rebuilt<T>(&self, work: &dyn Fn() -> Result<T>) -> Result<T> {
        for _ in 0..3 {
            self.lease.take_rebuilt();
            let done = work();
            if !self.lease.take_rebuilt() {
                return done;
            }
        }
        Err(crate::error::Error::invalid(
            self.root.display().to_string(),
            "the index was rebuilt (by `archive gc` or `reindex`) three times while this ran: run \
             it again",
        ))
    }

    /// True if this archive may read and update the index (not opened for logging only).
    fn has_index(&self) -> bool {
        self.lease.indexed()
    }

    /// Hand the index back to any process waiting for it; this archive takes it again when
    /// it next needs it. For code that embeds the library and keeps an `Archive` open while
    /// idle: other processes' commands then need not wait for it to close.
    pub fn release_index(&self) {
        self.lease.release();
    }

    /// How long this archive has waited for other processes to hand over the index.
    pub fn index_waits(&self) -> IndexWaits {
        self.lease.waits()
    }
}

impl Drop for Archive {
    fn drop(&mut self) {
        self.sync_segment();
        self.lease.flush();
    }
}
