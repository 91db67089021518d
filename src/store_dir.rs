//! The store directory: the names of what it holds, the store header's I/O, the index lock,
//! and the list of segment files. Everything above that opens a store starts here.
//!
//! ```text
//! <store>/ARCHIVE      store header (format::store_header)
//! <store>/segments/    append-only segment files, the single source of truth
//! <store>/index/       derived from the segments: sled and the lookup tables
//! <store>/index.lock   held by the process that has the index open
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

/// Take the index lock, waiting up to `timeout`; on time-out, say who holds it. The kernel
/// drops the lock when its holder dies, so a dead holder never blocks anyone.
pub(crate) fn lock_index(path: &Path, timeout: Duration) -> Result<File> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut owner = String::new();
                let _ = File::open(path).and_then(|mut f| f.read_to_string(&mut owner));
                let owner = owner.trim();
                return Err(Error::Locked {
                    path: path.to_owned(),
                    owner: if owner.is_empty() {
                        "another process".into()
                    } else {
                        owner.into()
                    },
                    waited_ms: start.elapsed().as_millis() as u64,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
        }
    }
    let cmd: Vec<String> = std::env::args().collect();
    let owner = format!("pid {} ({})", std::process::id(), cmd.join(" "));
    file.set_len(0)
        .and_then(|()| file.write_all(owner.as_bytes()))
        .and_then(|()| file.flush())
        .map_err(|e| Error::io(path, e))?;
    Ok(file)
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
