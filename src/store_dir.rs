//! The store directory: the names of what it holds, the store header's I/O, the index lock,
//! and the list of segment files. Everything above that opens a store starts here.
//!
//! ```text
//! <store>/ARCHIVE      store header (format::store_header)
//! <store>/segments/    append-only segment files, the single source of truth
//! <store>/index/       derived from the segments: sled and the lookup tables
//! <store>/index.lock   held by the process that has the index open
//! <store>/index.queue/ a ticket per process waiting for it, first come first served
//! ```

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::format::store_header::{STORE_MAGIC, StoreHeader, VERSION_OFFSET};
use crate::format::{le_u16, version};
use crate::segment::writer::sync_dir;

/// Name of the store header file.
pub const HEADER_FILE: &str = "ARCHIVE";
/// Name of the segments directory.
pub const SEGMENTS_DIR: &str = "segments";
/// Name of the index directory.
pub const INDEX_DIR: &str = "index";
/// Name of the file whose lock guards the index.
pub const LOCK_FILE: &str = "index.lock";
/// Name of the file whose lock `gc` holds while it rewrites segments; writers hold it shared
/// while a batch logs entries of content stored before (`archive::pin`).
pub const GC_LOCK_FILE: &str = "gc.lock";
/// Segments this store pulled from a remote, one empty file per segment name: no writer of
/// this store appends to them, and gc leaves them whole, so they stay byte for byte the
/// remote's (a pull appends what the remote gained since).
pub const SEALED_DIR: &str = "sealed";
/// Name of the directory where processes waiting for the index queue: a ticket each, named
/// by when it was taken and locked by its owner while it waits. The first live ticket's owner
/// takes the index next, and a holder that sees tickets hands the index over at its next
/// yield point (`archive::lease`). A dead waiter's ticket is unlocked, and removed by the
/// next process that looks.
pub const QUEUE_DIR: &str = "index.queue";

/// Read and check the store header of the store at `root`: a newer version is refused as
/// newer, not as corrupt, and an older one asks for `archive migrate`.
pub(crate) fn read_store_header(root: &Path) -> Result<StoreHeader> {
    let header = read_any_store_header(root)?;
    version::check(root, header.version)?;
    Ok(header)
}

/// Write the store header of the store at `root`: to a temp name, synced, renamed, the
/// directory synced, so a crash leaves the old header or the new one, whole.
pub(crate) fn write_store_header(root: &Path, header: &StoreHeader) -> Result<()> {
    let tmp = root.join(format!("{HEADER_FILE}.tmp"));
    let bytes = header
        .encode()
        .map_err(|reason| Error::internal(format!("{}: {reason}", root.display())))?;
    let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    let dst = root.join(HEADER_FILE);
    std::fs::rename(&tmp, &dst).map_err(|e| Error::io(&dst, e))?;
    sync_dir(root)
}

/// Read the store header at `root` of any version this program knows, old ones included
/// (for migrations); a newer one is refused.
pub(crate) fn read_any_store_header(root: &Path) -> Result<StoreHeader> {
    let header_path = root.join(HEADER_FILE);
    let mut buf = Vec::new();
    match File::open(&header_path) {
        Ok(f) => f
            .take(1 << 20)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(&header_path, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NoStore {
                path: root.to_owned(),
            });
        }
        Err(e) => return Err(Error::io(&header_path, e)),
    };
    if buf.get(..STORE_MAGIC.len()) != Some(&STORE_MAGIC[..]) {
        return Err(Error::corrupt(
            &header_path,
            0,
            "not an archive store header (wrong magic)",
        ));
    }
    let found = le_u16(&buf, VERSION_OFFSET)
        .ok_or_else(|| Error::corrupt(&header_path, 0, "store header is truncated"))?;
    version::check_segment(root, found)?;
    StoreHeader::decode(&buf).map_err(|reason| Error::corrupt(&header_path, 0, reason))
}

pub(crate) fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

/// Take the index lock, waiting up to `timeout` in the queue; on time-out, say who holds it.
/// The kernel drops the lock when its holder dies, so a dead holder never blocks anyone.
pub(crate) fn lock_index(path: &Path, timeout: Duration) -> Result<File> {
    let mut file = open_lock_file(path)?;
    let queue = path.with_file_name(QUEUE_DIR);
    let start = Instant::now();
    // Nobody waiting: take it if it is free. Otherwise, in line.
    let free = !someone_waits_in(&queue) && file.try_lock().is_ok();
    if !free {
        let ticket = Ticket::take(&queue)?;
        loop {
            if ticket.first_in_line() {
                match file.try_lock() {
                    Ok(()) => break,
                    Err(std::fs::TryLockError::WouldBlock) => {}
                    Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
                }
            }
            if start.elapsed() >= timeout {
                return Err(locked(path, "the index", start));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    write_owner(&mut file, path)?;
    Ok(file)
}

/// Write this process (pid and command line) into the lock file it holds, for whoever finds
/// the lock taken.
pub(crate) fn write_owner(file: &mut File, path: &Path) -> Result<()> {
    let cmd: Vec<String> = std::env::args().collect();
    let owner = format!("pid {} ({})", std::process::id(), cmd.join(" "));
    file.set_len(0)
        .and_then(|()| file.write_all(owner.as_bytes()))
        .and_then(|()| file.flush())
        .map_err(|e| Error::io(path, e))
}

/// The error of a lock at `path` (guarding `what`) not taken since `start`, naming its holder
/// as the holder wrote itself into the file.
pub(crate) fn locked(path: &Path, what: &'static str, start: Instant) -> Error {
    let mut owner = String::new();
    let _ = File::open(path).and_then(|mut f| f.read_to_string(&mut owner));
    let owner = owner.trim();
    Error::Locked {
        path: path.to_owned(),
        what,
        owner: if owner.is_empty() {
            "another process".into()
        } else {
            owner.into()
        },
        waited_ms: start.elapsed().as_millis() as u64,
    }
}

/// A place in the index queue, held (locked) while waiting, removed when dropped.
struct Ticket {
    path: PathBuf,
    _file: File,
}

impl Ticket {
    fn take(queue: &Path) -> Result<Ticket> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        std::fs::create_dir_all(queue).map_err(|e| Error::io(queue, e))?;
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!(
            "{:020}-{}-{n}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
            std::process::id()
        );
        // Locked under a temporary name, then put in line: nobody ever sees it unlocked
        // (and takes it for a dead waiter's).
        let tmp = queue.join(format!(".{name}"));
        let file = open_lock_file(&tmp)?;
        file.lock().map_err(|e| Error::io(&tmp, e))?;
        let path = queue.join(&name);
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        Ok(Ticket { path, _file: file })
    }

    /// True if no live ticket is older than this one. Dead waiters' tickets are removed.
    fn first_in_line(&self) -> bool {
        let (Some(queue), Some(mine)) = (self.path.parent(), self.path.file_name()) else {
            return true;
        };
        live_tickets(queue, |name| name < mine)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// True if no live ticket in `queue` passes `older`; removes dead ones on the way.
fn live_tickets(queue: &Path, older: impl Fn(&std::ffi::OsStr) -> bool) -> bool {
    let Ok(items) = std::fs::read_dir(queue) else {
        return true;
    };
    for item in items.flatten() {
        let name = item.file_name();
        if name.as_encoded_bytes().first() == Some(&b'.') || !older(&name) {
            continue;
        }
        let Ok(f) = File::open(item.path()) else {
            continue;
        };
        match f.try_lock() {
            Err(std::fs::TryLockError::WouldBlock) => return false,
            // Its owner died waiting.
            Ok(()) => {
                let _ = std::fs::remove_file(item.path());
            }
            Err(std::fs::TryLockError::Error(_)) => {}
        }
    }
    true
}

fn someone_waits_in(queue: &Path) -> bool {
    !live_tickets(queue, |_| true)
}

/// Whether another process is waiting for the index of the store at `root`.
pub(crate) fn someone_waits(root: &Path) -> bool {
    someone_waits_in(&root.join(QUEUE_DIR))
}

/// What `segments/` holds.
pub(crate) struct SegmentFiles {
    /// Regular files named `*.seg`, with their paths, sorted by name.
    pub files: Vec<(String, PathBuf)>,
    /// Other entries named like segments (symlinks, directories): not ours, and nothing
    /// opens, maps or cuts them.
    pub foreign: Vec<PathBuf>,
}

/// The segment files in `dir`.
pub(crate) fn segment_files(dir: &Path) -> Result<SegmentFiles> {
    let mut files = Vec::new();
    let mut foreign = Vec::new();
    for item in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let item = item.map_err(|e| Error::io(dir, e))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".seg") {
            continue;
        }
        // `file_type` does not follow symlinks.
        let regular = item.file_type().is_ok_and(|t| t.is_file());
        if regular {
            files.push((name, item.path()));
        } else {
            foreign.push(item.path());
        }
    }
    files.sort();
    foreign.sort();
    Ok(SegmentFiles { files, foreign })
}

/// True if segment `name` of the store at `root` was pulled from a remote (`SEALED_DIR`).
pub(crate) fn is_sealed(root: &Path, name: &str) -> bool {
    root.join(SEALED_DIR).join(name).exists()
}

/// Check that `root` holds a store this program reads (its header), as commands that touch no
/// segment (`remote add`) do before they write anything into it.
pub fn check_store(root: &Path) -> Result<()> {
    read_store_header(root).map(|_| ())
}
