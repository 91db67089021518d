//! The gc lock (`gc.lock`): `gc` holds it exclusively from the moment it decides which
//! objects are garbage until the segments it replaced are gone; a batch that logs an entry of
//! content stored before (a duplicate, a record's reference) holds it shared from that put
//! until its frames are durable. So gc never collects an object a batch is about to log
//! again: either the batch pinned the store first, and gc waits for its commit (and then sees
//! its entry), or gc holds the lock, and the batch stores the content again instead of
//! pointing at the old copy (or, when it has no copy to store, waits for gc).
//!
//! Batches that store only new content never touch the lock, so loggers do not slow gc down,
//! nor gc loggers. An object a batch stores without an entry (a record's tensor part) before
//! the record that refers to it is safe without the lock: gc only collects what removed
//! entries reach (`gc.rs`).

use std::collections::HashSet;
use std::fs::File;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::Archive;
use crate::error::{Error, Result};
use crate::hash::ObjectHash;
use crate::store_dir::{GC_LOCK_FILE, locked, open_lock_file, write_owner};

/// How long a batch waits for a running gc when it must refer to stored content.
const PIN_WAIT: Duration = Duration::from_secs(600);

/// This process's shared hold on the gc lock, while some batch relies on it.
struct Pinned {
    _file: File,
    /// Batches relying on it.
    batches: usize,
    /// The segments compactions replaced, as of when the pin was taken (no gc can replace
    /// more while it is held).
    gone: Arc<HashSet<String>>,
}

/// This process's pin of the store, if any batch holds it.
#[derive(Default)]
pub(super) struct Pins(Mutex<Option<Pinned>>);

impl Pins {
    fn lock(&self) -> Result<MutexGuard<'_, Option<Pinned>>> {
        self.0
            .lock()
            .map_err(|_| Error::internal("the gc pin's lock is poisoned"))
    }
}

/// `gc`'s exclusive hold on the gc lock: released when dropped.
pub(super) struct GcLock {
    _file: File,
}

impl Archive {
    /// Pin the store for a batch about to log an entry of stored content: false if gc runs
    /// now (the caller stores the content again, or waits with `wait_pin`).
    pub(super) fn try_pin(&self) -> Result<bool> {
        let mut pins = self.pins.lock()?;
        if let Some(p) = pins.as_mut() {
            p.batches += 1;
            return Ok(true);
        }
        let path = self.root.join(GC_LOCK_FILE);
        let file = open_lock_file(&path)?;
        match file.try_lock_shared() {
            Ok(()) => {
                let gone = self.segments()?.1.into_iter().map(|(n, _)| n).collect();
                *pins = Some(Pinned {
                    _file: file,
                    batches: 1,
                    gone: Arc::new(gone),
                });
                Ok(true)
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }

    /// Pin the store, waiting for a running gc to finish.
    pub(super) fn wait_pin(&self) -> Result<()> {
        let start = Instant::now();
        while !self.try_pin()? {
            if start.elapsed() >= PIN_WAIT {
                return Err(locked(&self.root.join(GC_LOCK_FILE), "the segments", start));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// A batch that pinned the store is durable (or gone): let go of its pin.
    pub(super) fn unpin(&self) {
        if let Ok(mut pins) = self.pins.lock()
            && let Some(p) = pins.as_mut()
        {
            p.batches = p.batches.saturating_sub(1);
            if p.batches == 0 {
                *pins = None;
            }
        }
    }

    /// With the store pinned: true if `segment`, where a copy of some content was found, is
    /// still there and no compaction replaced it. What the index or the lookup tables say may
    /// be older than the last gc (a logger reads the tables it opened with).
    pub(super) fn still_there(&self, segment: &str) -> Result<bool> {
        let gone = match self.pins.lock()?.as_ref() {
            Some(p) => Arc::clone(&p.gone),
            None => return Err(Error::internal("still_there without a pin")),
        };
        Ok(!gone.contains(segment) && self.segments_dir.join(segment).is_file())
    }

    /// With the store pinned: true if `hash` is stored in a segment that is still there.
    pub(super) fn still_stored(&self, hash: &ObjectHash) -> Result<bool> {
        match self.stored_in(hash)? {
            Some(segment) => self.still_there(&segment),
            None => Ok(false),
        }
    }

    /// Take the gc lock exclusively, waiting up to the lock timeout for batches that pinned
    /// the store to commit; on time-out, an error saying so.
    pub(super) fn lock_for_gc(&self, timeout: Duration) -> Result<GcLock> {
        let path = self.root.join(GC_LOCK_FILE);
        let mut file = open_lock_file(&path)?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
            if start.elapsed() >= timeout {
                return Err(Error::Locked {
                    path,
                    what: "the segments",
                    owner: "batches of other processes that log entries of stored content".into(),
                    waited_ms: start.elapsed().as_millis() as u64,
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        write_owner(&mut file, &path)?;
        Ok(GcLock { _file: file })
    }
}
