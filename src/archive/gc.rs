//! `archive gc`: get back the space of what `rm` removed. The steps, in the order that keeps
//! every moment safe to crash in (FORMAT.md, "gc"):
//!
//! 1. Take the gc lock (`pin.rs`): from here until the end, no batch logs an entry of stored
//!    content without pinning the store first, which it cannot.
//! 2. Catch the index up and read the removals. Remove temporary outputs of gcs that died.
//! 3. Take the lock of every segment no writer holds (never one a writer appends to). A
//!    writer keeps every segment an open batch wrote to locked (`append.rs`), so each segment
//!    gc holds has only whole batches in it, all visible to the mark.
//! 4. Mark (`gc_mark.rs`): one walk of every segment; garbage is what removed entries reach
//!    and no live entry does. The index is handed back meanwhile: gc does not need it.
//!    Choose the segments to replace among those gc holds: those whose garbage is at least
//!    `min_dead` of their size and that read back whole. gc keeps their locks until it
//!    deletes them, so no writer adopts one meanwhile, and lets go of the others.
//! 5. Copy (`gc_copy.rs`) their live frames into a new segment under a temporary name; sync
//!    it; rename it into `segments/`; sync the directory. From this rename on, the new
//!    segment's first frame says which segments it replaces, and every reader leaves those
//!    alone.
//! 6. Clear the index (under the index lock: from then on no index holds the replaced
//!    segments), and rebuild it from the segments ...
//! 7. ... while another thread deletes the replaced segments (and any an earlier gc left
//!    behind) and syncs the directory: freeing their blocks takes the file system most of a
//!    second per few GiB.
//!
//! A crash before 5's rename leaves a temporary file (removed by the next gc) and the store
//! as it was; after it, the new segment holds everything live, and the next open rebuilds
//! the index if 6 did not finish (an index that holds a replaced or missing segment is
//! rebuilt), and the next gc deletes what 7 did not.

use std::collections::HashMap;
use std::path::PathBuf;

use super::gc_copy::{CopyCounts, Output, is_temp_name};
use super::gc_mark::{Marks, PrefixSet, SegMark};
use super::{Archive, now_ns};
use crate::error::{Error, Result};
use crate::segment::writer::{sync_dir, try_lock};

/// What `gc` is asked to do.
#[derive(Clone, Debug)]
pub struct GcOptions {
    /// Only say what would be done.
    pub dry_run: bool,
    /// A segment is rewritten when garbage takes at least this share of it (0 to 1).
    pub min_dead: f64,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            dry_run: false,
            min_dead: 0.1,
        }
    }
}

/// What `gc` did, or with `dry_run` would do.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct GcReport {
    /// True if nothing was changed.
    pub dry_run: bool,
    /// Segments replaced.
    pub segments_replaced: u64,
    /// Their bytes on disk.
    pub bytes_replaced: u64,
    /// Bytes of the segment written in their place (dry run: an estimate).
    pub bytes_written: u64,
    /// Space given back: replaced less written, plus segments an interrupted gc left.
    pub bytes_reclaimed: u64,
    /// Stored bytes of garbage in the whole store, as the mark found it.
    pub garbage_bytes: u64,
    /// Of those, bytes left where they are: in segments below `min_dead`, held by a writer,
    /// or damaged.
    pub garbage_left: u64,
    /// Segments with garbage that a writer holds (left for a later gc).
    pub segments_busy: u64,
    /// Segments with garbage that do not read back whole (left as they are; see `verify`).
    pub segments_damaged: u64,
    /// Segments an interrupted gc had replaced, deleted now.
    pub leftovers_deleted: u64,
    /// Live and removed entries the mark saw.
    pub live_entries: u64,
    /// Entries removals name.
    pub removed_entries: u64,
    /// What the copy did.
    pub copy: CopyCounts,
    /// The new segment's name.
    pub output: Option<String>,
}

/// Where a gc stops when `ARCHIVE_GC_CRASH_AT` names that point: for the crash tests, which
/// kill gc at each of its sync points. Each point is after the step it names is durable.
fn crash_point(at: &str) {
    if std::env::var_os("ARCHIVE_GC_CRASH_AT").is_some_and(|v| v == at) {
        std::process::abort();
    }
}

/// With `ARCHIVE_TRACE_GC=1`, each step's end on stderr, in seconds since gc began.
/// A segment chosen for replacement, and its lock.
struct Victim<'m> {
    seg: &'m SegMark,
    _lock: std::fs::File,
}

impl Archive {
    /// Collect garbage: rewrite the segments where removed entries left enough of it, then
    /// drop them. `progress(step, done, total)` reports bytes per step (`mark`, `copy`,
    /// `index`).
    pub fn gc(&self, opts: &GcOptions, progress: &dyn Fn(&str, u64, u64)) -> Result<GcReport> {
        if !(0.0..=1.0).contains(&opts.min_dead) {
            return Err(Error::invalid(
                "min_dead",
                format!("{} is not a share between 0 and 1", opts.min_dead),
            ));
        }
        let trace = super::Trace::new("ARCHIVE_TRACE_GC", "gc");
        let _gc_lock = self.lock_for_gc(self.lease.timeout())?;
        self.remove_temp_outputs()?;
        self.catch_up(&|_, _| {})?;
        let removed = self.removed()?;
        trace.step("lock, catch-up, removals read");
        // This process's own segment is fair game once it lets go of it.
        self.close_segment()?;
        let own = self.own_segment()?;
        let (files, gone) = self.segments()?;
        let free = files.iter().filter(|(name, _)| {
            own.as_deref() != Some(name.as_str()) && !crate::store_dir::is_sealed(&self.root, name)
        });
        let held = lock_free(free)?;
        // The walk and the copy need no index: other processes may use it meanwhile.
        self.lease.release();
        let marks = self.mark(&files, &removed, &|d, t| progress("mark", d, t))?;
        trace.step("mark");
        let mut report = GcReport {
            dry_run: opts.dry_run,
            live_entries: marks.live_entries,
            removed_entries: marks.removed_entries,
            ..GcReport::default()
        };
        let garbage = marks.garbage_prefixes();
        let victims = choose(&marks, &garbage, opts, held, &mut report);
        if opts.dry_run {
            return Ok(report);
        }
        let replaced = !victims.is_empty();
        if replaced {
            self.replace(
                &victims,
                &marks,
                &garbage,
                &removed,
                &mut report,
                &trace,
                progress,
            )?;
            // From here no index holds the replaced segments: they can go.
            self.locator.clear();
            self.lease.clear()?;
            crash_point("cleared");
        }
        // Steps 6 and 7 at once: the file system frees the replaced segments' blocks (most of
        // a second per few GiB) while the index is rebuilt from the new one.
        let (indexed, deleted) = std::thread::scope(|s| {
            let deleting = s.spawn(|| self.delete_replaced(victims, &gone));
            let indexed = if replaced {
                self.catch_up(&|d, t| progress("index", d, t))
                    .and_then(|()| self.index()?.flush())
            } else {
                Ok(())
            };
            let deleted = deleting
                .join()
                .unwrap_or_else(|_| Err(Error::internal("deleting the old segments failed")));
            (indexed, deleted)
        });
        indexed?;
        let (bytes, leftovers) = deleted?;
        report.bytes_reclaimed += bytes;
        report.leftovers_deleted += leftovers;
        trace.step("index rebuilt, old segments deleted");
        crash_point("deleted");
        Ok(report)
    }

    /// Step 7: delete the replaced segments (letting go of their locks), and those an earlier
    /// gc replaced but did not delete; sync the directory. Returns the bytes of the latter, and
    /// how many they were.
    fn delete_replaced(
        &self,
        victims: Vec<Victim<'_>>,
        gone: &[(String, PathBuf)],
    ) -> Result<(u64, u64)> {
        for v in victims {
            remove_segment(&v.seg.path)?;
        }
        let (mut bytes, mut leftovers) = (0, 0);
        for (_, path) in gone {
            if try_lock(path)?.is_some() {
                bytes += std::fs::metadata(path).map_or(0, |m| m.len());
                remove_segment(path)?;
                leftovers += 1;
            }
        }
        sync_dir(&self.segments_dir)?;
        Ok((bytes, leftovers))
    }

    /// Step 5: write the replacement and rename it into place.
    #[allow(clippy::too_many_arguments)]
    fn replace(
        &self,
        victims: &[Victim<'_>],
        marks: &Marks,
        garbage: &PrefixSet,
        removed: &crate::index::Removed,
        report: &mut GcReport,
        trace: &super::Trace,
        progress: &dyn Fn(&str, u64, u64),
    ) -> Result<()> {
        let mut replaces: Vec<String> = Vec::new();
        for v in victims {
            replaces.push(v.seg.name.clone());
            replaces.extend(v.seg.replaces.iter().cloned());
        }
        let level = Some(self.settings.zstd_level.unwrap_or(1));
        let id = super::append::new_writer_id();
        let mut out = Output::create(&self.segments_dir, id, replaces, level, now_ns())?;
        // All the garbage, also what stays in segments not replaced now: a get of an object
        // still stored finds it before it looks here.
        out.set_collected(marks.garbage());
        let total = report.bytes_replaced;
        let mut done = 0;
        for v in victims {
            let copied = out.copy_segment(v.seg, marks, garbage, removed, &|at| {
                progress("copy", done + at, total);
            });
            if let Err(e) = copied {
                out.abandon();
                return Err(e);
            }
            done += v.seg.len;
        }
        trace.step("copy");
        crash_point("copied");
        report.output = Some(out.name().to_owned());
        report.copy = out.counts;
        let written = out.finish(now_ns())?;
        trace.step("sync and rename");
        crash_point("renamed");
        report.bytes_written = written;
        report.bytes_reclaimed = report.bytes_replaced.saturating_sub(written);
        Ok(())
    }

    /// Remove the temporary outputs of gcs that died (only a gc holding the gc lock writes
    /// one, and this one holds it).
    fn remove_temp_outputs(&self) -> Result<()> {
        let dir = &self.segments_dir;
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            if is_temp_name(&name.to_string_lossy()) {
                let path: PathBuf = entry.path();
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
        }
        Ok(())
    }
}

/// Step 4: the segments worth replacing, locked; the report's figures of what the mark found.
fn choose<'m>(
    marks: &'m Marks,
    garbage: &PrefixSet,
    opts: &GcOptions,
    mut held: HashMap<String, std::fs::File>,
    report: &mut GcReport,
) -> Vec<Victim<'m>> {
    let mut victims = Vec::new();
    for seg in &marks.segs {
        let dead: u64 = seg
            .objects
            .iter()
            .filter(|(p, _)| garbage.contains(p))
            .map(|(_, n)| n)
            .sum();
        report.garbage_bytes += dead;
        if dead == 0 {
            continue;
        }
        let share = dead as f64 / seg.len.max(1) as f64;
        if !seg.clean {
            report.segments_damaged += 1;
        } else if share >= opts.min_dead {
            match held.remove(&seg.name) {
                Some(lock) => {
                    report.segments_replaced += 1;
                    report.bytes_replaced += seg.len;
                    victims.push(Victim { seg, _lock: lock });
                    continue;
                }
                None => report.segments_busy += 1,
            }
        }
        report.garbage_left += dead;
    }
    if opts.dry_run {
        let dead_in_victims = report.garbage_bytes - report.garbage_left;
        report.bytes_written = report.bytes_replaced.saturating_sub(dead_in_victims);
        report.bytes_reclaimed = dead_in_victims;
    }
    victims
}

/// Delete a segment gc replaced.
fn remove_segment(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// How long gc waits before it tries a taken segment lock once more.
const RELOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// The locks of the segments of `files` that no writer holds, by name. A lock found taken is
/// tried once more a little later: a child process shares the file descriptors of the process
/// that forked it until it runs its program, so a segment this process let go of can look
/// held for a moment.
fn lock_free<'f>(
    files: impl Iterator<Item = &'f (String, PathBuf)>,
) -> Result<HashMap<String, std::fs::File>> {
    let mut held = HashMap::new();
    let mut taken = Vec::new();
    for (name, path) in files {
        match try_lock(path)? {
            Some(lock) => drop(held.insert(name.clone(), lock)),
            None => taken.push((name, path)),
        }
    }
    if !taken.is_empty() {
        std::thread::sleep(RELOCK_WAIT);
        for (name, path) in taken {
            if let Some(lock) = try_lock(path)? {
                held.insert(name.clone(), lock);
            }
        }
    }
    Ok(held)
}
