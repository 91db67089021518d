//! The index lease: the index lock and the open index (sled allows one process at a time).
//! An `Archive` takes it when a call first needs the index and can hand it back: during long
//! work that needs neither (verify's walk of the segments), and, between steps of long work
//! that does (a catch-up, an export), when another process is waiting for it. Waiters say so
//! by holding a shared lock on `index.wait` (`store_dir`), so no command waits for another
//! longer than one step of the other's work.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::index::Index;
use crate::store_dir::{INDEX_DIR, LOCK_FILE, lock_index, someone_waits};

/// How long a holder keeps the index before it yields to a waiter at a yield point: long
/// enough that a handover (a sled close and open, a few ms) costs little of the work.
const HOLD_BEFORE_YIELD: Duration = Duration::from_millis(100);

/// How often a holder looks for waiters at its yield points.
const LOOK_EVERY: Duration = Duration::from_millis(5);

/// How long this process waited for other processes to hand over the index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexWaits {
    /// Times the index was taken.
    pub takes: u32,
    /// Time spent waiting for it, in all.
    pub total: Duration,
    /// The longest single wait.
    pub longest: Duration,
    /// The longest this archive held the index at a stretch (so far, handed back).
    pub longest_hold: Duration,
}

/// The index and its lock, while held.
struct Held {
    index: Arc<Index>,
    since: Instant,
    _lock: File,
}

/// The index lease of one `Archive`.
pub(super) struct Lease {
    root: PathBuf,
    timeout: Duration,
    /// False for an archive opened for logging only, which never takes the index.
    indexed: bool,
    held: Mutex<Option<Held>>,
    waits: Mutex<IndexWaits>,
    /// When a yield point last looked for waiters.
    looked: Mutex<Instant>,
    /// Whether the index was taken before (so a take is a take again, after a hand-over).
    taken_before: std::sync::atomic::AtomicBool,
    /// The generation of the index when last held (`Index::generation`).
    generation: Mutex<Option<u64>>,
    /// Set when the index was found rebuilt by another process on a take (a gc, a reindex),
    /// or this one rebuilt it: work under way meanwhile must start again.
    rebuilt: std::sync::atomic::AtomicBool,
}

impl Lease {
    /// The lease of an archive opened for logging only.
    pub fn none(root: &Path) -> Lease {
        Lease {
            root: root.to_owned(),
            timeout: Duration::ZERO,
            indexed: false,
            held: Mutex::new(None),
            waits: Mutex::default(),
            looked: Mutex::new(Instant::now()),
            taken_before: std::sync::atomic::AtomicBool::new(false),
            generation: Mutex::new(None),
            rebuilt: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A lease that takes the index now, waiting up to `timeout` for another process. The
    /// reason is given when the index was found damaged and cleared: the caller rebuilds it.
    pub fn take(root: &Path, timeout: Duration) -> Result<(Lease, Option<String>)> {
        let lease = Lease {
            root: root.to_owned(),
            timeout,
            indexed: true,
            held: Mutex::new(None),
            waits: Mutex::default(),
            looked: Mutex::new(Instant::now()),
            taken_before: std::sync::atomic::AtomicBool::new(false),
            generation: Mutex::new(None),
            rebuilt: std::sync::atomic::AtomicBool::new(false),
        };
        let (_, damaged, _) = lease.get()?;
        Ok((lease, damaged))
    }

    /// How long a take waits for another process.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// False for an archive opened for logging only.
    pub fn indexed(&self) -> bool {
        self.indexed
    }

    fn slot(&self) -> Result<MutexGuard<'_, Option<Held>>> {
        self.held
            .lock()
            .map_err(|_| Error::internal("the index lease's lock is poisoned"))
    }

    /// The index, taken again if it was handed back; with the reason when it was found
    /// damaged and cleared on the way (the caller rebuilds it from the segments), and whether
    /// it was taken again after a hand-over (other processes may have written meanwhile: the
    /// caller catches it up).
    pub fn get(&self) -> Result<(Arc<Index>, Option<String>, bool)> {
        if !self.indexed {
            return Err(Error::invalid(
                self.root.display().to_string(),
                "opened for logging only: this needs the index (open the archive normally)",
            ));
        }
        let mut slot = self.slot()?;
        if let Some(held) = slot.as_ref() {
            return Ok((Arc::clone(&held.index), None, false));
        }
        let start = Instant::now();
        let lock = lock_index(&self.root.join(LOCK_FILE), self.timeout)?;
        self.count_wait(start.elapsed());
        let since = Instant::now();
        let index_dir = self.root.join(INDEX_DIR);
        let (index, damaged) = match Index::open(&index_dir) {
            // The index is derived from the segments: one sled finds damaged (seen after a
            // SIGKILL mid-write) or cannot read is rebuilt, so a killed process never leaves
            // a store that needs a manual `reindex`. Lock and I/O errors are not damage.
            Err(Error::IndexDamaged { reason, .. }) => {
                std::fs::remove_dir_all(&index_dir).map_err(|e| Error::io(&index_dir, e))?;
                (Index::open(&index_dir)?.0, Some(reason))
            }
            // Damaged lookup tables: the index was cleared, for the caller to rebuild.
            other => other?,
        };
        let generation = index.generation()?;
        if let Ok(mut seen) = self.generation.lock() {
            if seen.is_some_and(|g| g != generation) {
                self.rebuilt
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            *seen = Some(generation);
        }
        let index = Arc::new(index);
        *slot = Some(Held {
            index: Arc::clone(&index),
            since,
            _lock: lock,
        });
        let again = self
            .taken_before
            .swap(true, std::sync::atomic::Ordering::Relaxed);
        Ok((index, damaged, again))
    }

    fn count_wait(&self, waited: Duration) {
        if let Ok(mut w) = self.waits.lock() {
            w.takes += 1;
            w.total += waited;
            w.longest = w.longest.max(waited);
        }
    }

    fn count_hold(&self, held: Duration) {
        if let Ok(mut w) = self.waits.lock() {
            w.longest_hold = w.longest_hold.max(held);
        }
    }

    /// What waiting for the index has cost so far, and the longest hold, the one going on
    /// included.
    pub fn waits(&self) -> IndexWaits {
        let mut w = self.waits.lock().map(|w| *w).unwrap_or_default();
        if let Ok(slot) = self.slot()
            && let Some(held) = slot.as_ref()
        {
            w.longest_hold = w.longest_hold.max(held.since.elapsed());
        }
        w
    }

    /// Hand the index back (flushed) if nothing of this process is using it; true if it was.
    pub fn release(&self) -> bool {
        let Ok(mut slot) = self.slot() else {
            return false;
        };
        match slot.as_ref() {
            Some(held) if Arc::strong_count(&held.index) == 1 => {
                let _ = held.index.flush();
                self.count_hold(held.since.elapsed());
                *slot = None;
                true
            }
            _ => false,
        }
    }

    /// At a yield point of long work: hand the index back if it has been held a while and
    /// another process is waiting for it. True if it was handed back.
    pub fn yield_to_waiters(&self) -> bool {
        let due = self
            .slot()
            .ok()
            .and_then(|s| s.as_ref().map(|h| h.since.elapsed() >= HOLD_BEFORE_YIELD))
            .unwrap_or(false);
        // Looking at the queue costs a directory read: at most every few ms.
        let look = due
            && self.looked.lock().is_ok_and(|mut at| {
                let now = Instant::now();
                let look = now.duration_since(*at) >= LOOK_EVERY;
                if look {
                    *at = now;
                }
                look
            });
        look && someone_waits(&self.root) && self.release()
    }

    /// Clear the index, for a rebuild: nothing of this process may be using it. It is cleared
    /// in place: removing the directory and opening a new one is faster, but sled goes on
    /// writing for a moment after its handle is dropped, and a snapshot of the old index could
    /// land in the new directory.
    pub fn clear(&self) -> Result<()> {
        drop(self.get()?);
        let mut slot = self.slot()?;
        let index = slot
            .as_mut()
            .and_then(|h| Arc::get_mut(&mut h.index))
            .ok_or_else(|| Error::internal("the index is in use: it cannot be cleared"))?;
        index.clear()?;
        if let Ok(mut seen) = self.generation.lock() {
            *seen = Some(index.generation()?);
        }
        // Work this process had under way when it took the index again (a catch-up then
        // found it must rebuild) holds segment ids of the old index: it starts again too.
        self.rebuilt
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// True (once) if the index was rebuilt, by another process or this one, since the last
    /// call.
    pub fn take_rebuilt(&self) -> bool {
        self.rebuilt
            .swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// Flush the index if it is held.
    pub fn flush(&self) {
        if let Ok(slot) = self.slot()
            && let Some(held) = slot.as_ref()
        {
            let _ = held.index.flush();
        }
    }
}
