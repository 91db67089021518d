//! Creating and opening a store: `ArchiveBuilder`. Opening reads the store header, takes the
//! index lock, opens the index (rebuilding one sled reports damaged) and catches it up with
//! the segments (`recover.rs`). Opening for logging takes neither lock nor index.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use super::handoff::LoggedBatch;
use super::lease::Lease;
use super::{Archive, append, now_ns};
use crate::error::{Error, Result};
use crate::format::frame::SEGMENT_HEADER_LEN;
use crate::format::store_header::{Settings, StoreHeader};
use crate::format::version;
use crate::locator::Locator;
use crate::reader::ArchiveReader;
use crate::segment::writer::sync_dir;
use crate::store_dir::{SEGMENTS_DIR, read_store_header, write_store_header};

/// Configures and opens or creates an archive.
///
/// ## Defaults
/// - `zstd_level`: none (level 1 behind a byte shuffle, 3 for plain zstd)
/// - `lock_timeout`: 10 s waiting for another process to release the index
/// - `segment_size`: 1 GiB before a writer starts a new segment
#[derive(Clone, Debug)]
pub struct ArchiveBuilder {
    zstd_level: Option<i32>,
    lock_timeout: Duration,
    segment_size: u64,
}

impl Default for ArchiveBuilder {
    fn default() -> Self {
        ArchiveBuilder {
            zstd_level: None,
            lock_timeout: Duration::from_secs(10),
            segment_size: 1 << 30,
        }
    }
}

impl ArchiveBuilder {
    /// The zstd level recorded in a new store and used by puts that give none.
    pub fn zstd_level(&mut self, level: i32) -> &mut Self {
        self.zstd_level = Some(level);
        self
    }

    /// How long to wait for another process that holds the index.
    pub fn lock_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.lock_timeout = timeout;
        self
    }

    /// Size past which a writer seals its segment and starts a new one.
    pub fn segment_size(&mut self, bytes: u64) -> &mut Self {
        self.segment_size = bytes.max(SEGMENT_HEADER_LEN as u64 + 1);
        self
    }

    /// Create a new store at `path` (which must not exist, or be an empty directory).
    pub fn create(&self, path: impl AsRef<Path>) -> Result<Archive> {
        let root = path.as_ref();
        let non_empty = std::fs::read_dir(root)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        if non_empty || root.is_file() {
            return Err(Error::AlreadyExists {
                path: root.to_owned(),
            });
        }
        std::fs::create_dir_all(root.join(SEGMENTS_DIR))
            .map_err(|e| Error::io(root.join(SEGMENTS_DIR), e))?;
        let header = StoreHeader {
            version: version::SCHEMA_VERSION,
            settings: Settings {
                created_ns: now_ns(),
                zstd_level: self.zstd_level,
            },
        };
        // A crash leaves either no header (not a store yet) or a whole one.
        write_store_header(root, &header)?;
        sync_dir(&root.join(SEGMENTS_DIR))?;
        self.open(root)
    }

    /// Open the store at `path`, catching the index up with the segments.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Archive> {
        self.open_with_logged(path, Vec::new())
    }

    /// `open`, where the catch-up applies `logged`, batches a logger of this process committed
    /// (`Writer::hand_over`), instead of reading their frames back, where they are the next
    /// frames to index; the others are read as usual.
    pub fn open_with_logged(
        &self,
        path: impl AsRef<Path>,
        logged: Vec<LoggedBatch>,
    ) -> Result<Archive> {
        let root = path.as_ref().to_owned();
        let header = read_store_header(&root)?;
        let (lease, damaged) = Lease::take(&root, self.lock_timeout)?;
        let archive = self.assemble(root, header.settings, lease, None);
        if let Ok(mut l) = archive.logged.lock() {
            *l = logged;
        }
        if let Some(reason) = damaged {
            archive.warn(archive.rebuilt_warning(&reason));
        }
        archive.catch_up(&|_, _| {})?;
        if let Ok(mut l) = archive.logged.lock() {
            l.clear();
        }
        Ok(archive)
    }

    /// Open the store at `path` for logging only: puts and batch writers work, into a segment
    /// of this process's own, with no index and no index lock, so any number of processes log
    /// into one store at once. Reads and listings need the index and return an error; the
    /// index learns of the new frames when a process next opens the store normally. Content
    /// already in the lookup tables is not stored again.
    pub fn open_logger(&self, path: impl AsRef<Path>) -> Result<Archive> {
        let root = path.as_ref().to_owned();
        let header = read_store_header(&root)?;
        let reader = ArchiveReader::open(&root)?;
        let lease = Lease::none(&root);
        Ok(self.assemble(root, header.settings, lease, reader))
    }

    /// An `Archive` over `root` with nothing written yet by this process.
    fn assemble(
        &self,
        root: PathBuf,
        settings: Settings,
        lease: Lease,
        reader: Option<ArchiveReader>,
    ) -> Archive {
        let segments_dir = root.join(SEGMENTS_DIR);
        Archive {
            segments_dir: segments_dir.clone(),
            root,
            settings,
            lease,
            reader,
            locator: Locator::new(segments_dir),
            slot: Mutex::new(append::SegmentSlot::new()),
            claims: append::Claims::default(),
            pins: super::pin::Pins::default(),
            segment_size: self.segment_size,
            warnings: Mutex::new(Vec::new()),
            catching_up: std::sync::atomic::AtomicBool::new(false),
            logged: Mutex::new(Vec::new()),
            logged_taken: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Open the store at `path`, creating it if there is none.
    pub fn open_or_create(&self, path: impl AsRef<Path>) -> Result<Archive> {
        match self.open(path.as_ref()) {
            Err(Error::NoStore { .. }) => self.create(path),
            other => other,
        }
    }
}
