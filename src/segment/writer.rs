//! Appending frames to a segment: one writer per segment, enforced by an exclusive lock on the
//! segment file; small frames gathered in a buffer; durability by `sync_data` at commit (group
//! commit: one fsync for many frames). A failed write rolls the file back to the last sync, so
//! a full disk never leaves a half-written frame behind the ones already acknowledged.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::format::checksum;
use crate::format::frame::{
    FRAME_ALIGN, FRAME_HEADER_LEN, FrameHeader, FrameKind, SEGMENT_HEADER_LEN, SegmentHeader,
};
use crate::format::version::SCHEMA_VERSION;
use crate::hash::ObjectHash;

/// Buffered bytes are written out past this size.
const BUFFER_LIMIT: usize = 1 << 20;

/// The file name of segment `seq` of writer `writer_id`: unique across processes and
/// machines without coordination.
pub fn segment_name(writer_id: u64, seq: u64) -> String {
    format!("{writer_id:016x}-{seq:06}.seg")
}

/// fsync a directory, so that a file created or renamed in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Try to take the write lock of an existing segment; `None` if another writer holds it.
pub fn try_lock(path: &Path) -> Result<Option<File>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(path, e)),
    }
}

/// What a frame's header says besides its metadata, as `SegmentWriter::frame` takes it.
struct Head {
    kind: FrameKind,
    codec: Codec,
    hash: ObjectHash,
    payload_len: u64,
    align: u64,
}

/// The one appender of a segment.
pub struct SegmentWriter {
    path: PathBuf,
    name: String,
    file: File,
    buf: Vec<u8>,
    /// Bytes handed to the file (excluding `buf`).
    written: u64,
    /// Bytes known durable: everything before this was synced.
    synced: u64,
}

impl SegmentWriter {
    /// Create a new segment in `dir` and make its existence durable.
    pub fn create(dir: &Path, writer_id: u64, seq: u64, now_ns: i64) -> Result<Self> {
        Self::create_as(dir, &segment_name(writer_id, seq), writer_id, seq, now_ns)
    }

    /// `create` under file name `name` (gc writes its output under a temporary name, which
    /// nobody reads as a segment, and renames it once it is whole and durable).
    pub fn create_as(
        dir: &Path,
        name: &str,
        writer_id: u64,
        seq: u64,
        now_ns: i64,
    ) -> Result<Self> {
        let name = name.to_owned();
        let path = dir.join(&name);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        file.try_lock()
            .map_err(|e| Error::io(&path, std::io::Error::other(e.to_string())))?;
        let header = SegmentHeader {
            version: SCHEMA_VERSION,
            writer_id,
            seq,
            created_ns: now_ns,
        };
        let written = file
            .write_all(&header.encode())
            .and_then(|()| file.sync_data())
            .map_err(|e| Error::io(&path, e));
        if let Err(e) = written.and_then(|()| sync_dir(dir)) {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        let len = SEGMENT_HEADER_LEN as u64;
        Ok(SegmentWriter {
            path,
            name,
            file,
            buf: Vec::new(),
            written: len,
            synced: len,
        })
    }

    /// Take over an existing segment whose lock is held in `file` and whose last whole frame
    /// ends at `valid_end`: anything after it (a torn write) is cut off first.
    pub fn adopt(path: &Path, file: File, valid_end: u64) -> Result<Self> {
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len != valid_end {
            file.set_len(valid_end)
                .and_then(|()| file.sync_all())
                .map_err(|e| Error::io(path, e))?;
        }
        let mut file = file;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(valid_end))
            .map_err(|e| Error::io(path, e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(SegmentWriter {
            path: path.to_owned(),
            name,
            file,
            buf: Vec::new(),
            written: valid_end,
            synced: valid_end,
        })
    }

    /// The segment's file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Logical length: written plus buffered bytes.
    pub fn len(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    /// Append one frame, its payload aligned to `align` (see `FrameHeader::payload_align`);
    /// returns its offset. The frame is not durable until `sync`.
    pub fn append(
        &mut self,
        kind: FrameKind,
        codec: Codec,
        hash: ObjectHash,
        meta: &[u8],
        payload: &[&[u8]],
        align: u64,
    ) -> Result<u64> {
        let payload_len: u64 = payload.iter().map(|p| p.len() as u64).sum();
        let head = Head {
            kind,
            codec,
            hash,
            payload_len,
            align,
        };
        self.frame(head, meta, &mut |w| {
            for part in payload {
                w.push(part)?;
            }
            Ok(())
        })
    }

    /// `append` of a frame whose payload is `len` bytes of `src` from `src_offset`, copied
    /// file to file by the kernel where it can (`copy_file_range`): gc moves big payloads
    /// this way without reading them into memory.
    #[allow(clippy::too_many_arguments)]
    pub fn append_from(
        &mut self,
        kind: FrameKind,
        codec: Codec,
        hash: ObjectHash,
        meta: &[u8],
        src: &File,
        src_offset: u64,
        len: u64,
        align: u64,
    ) -> Result<u64> {
        let head = Head {
            kind,
            codec,
            hash,
            payload_len: len,
            align,
        };
        self.frame(head, meta, &mut |w| {
            w.flush()?;
            let mut from = src;
            std::io::Seek::seek(&mut from, std::io::SeekFrom::Start(src_offset))
                .map_err(|e| Error::io(&w.path, e))?;
            let copied = std::io::copy(&mut std::io::Read::take(from, len), &mut w.file)
                .map_err(|e| Error::io(&w.path, e))?;
            w.written += copied;
            if copied != len {
                return Err(Error::io(
                    &w.path,
                    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "source ended early"),
                ));
            }
            Ok(())
        })
    }

    /// Append a frame: header, metadata and padding, the payload `payload` writes (exactly
    /// `head.payload_len` bytes), closing padding. A failure rolls back to the last sync.
    fn frame(
        &mut self,
        head: Head,
        meta: &[u8],
        payload: &mut dyn FnMut(&mut Self) -> Result<()>,
    ) -> Result<u64> {
        let offset = self.len();
        let meta_len = u32::try_from(meta.len())
            .map_err(|_| Error::invalid("metadata", "larger than 4 GiB"))?;
        let payload_off = FrameHeader::payload_offset(offset, meta_len, head.align);
        let header = FrameHeader {
            version: SCHEMA_VERSION,
            kind: head.kind,
            codec: head.codec,
            meta_len,
            payload_off,
            payload_len: head.payload_len,
            hash: head.hash,
            meta_sum: checksum(meta),
        };
        let pad_meta = payload_off as usize - FRAME_HEADER_LEN - meta.len();
        let pad_end = (header.frame_len() - u64::from(payload_off) - head.payload_len) as usize;
        debug_assert!(pad_end < FRAME_ALIGN as usize);
        let result = (|| {
            self.push(&header.encode())?;
            self.push(meta)?;
            self.push(vec![0u8; pad_meta].as_slice())?;
            payload(self)?;
            self.push(vec![0u8; pad_end].as_slice())
        })();
        match result {
            Ok(()) => Ok(offset),
            Err(e) => {
                self.rollback();
                Err(e)
            }
        }
    }

    fn push(&mut self, bytes: &[u8]) -> Result<()> {
        if self.buf.len() + bytes.len() <= BUFFER_LIMIT {
            self.buf.extend_from_slice(bytes);
            return Ok(());
        }
        self.flush()?;
        if bytes.len() <= BUFFER_LIMIT {
            self.buf.extend_from_slice(bytes);
            return Ok(());
        }
        self.file
            .write_all(bytes)
            .map_err(|e| Error::io(&self.path, e))?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Hand buffered bytes to the file (not yet durable).
    pub fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            self.rollback();
            return Err(Error::io(&self.path, e));
        }
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Make every appended frame durable.
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        if self.synced == self.written {
            return Ok(());
        }
        if let Err(e) = self.file.sync_data() {
            self.rollback();
            return Err(Error::io(&self.path, e));
        }
        self.synced = self.written;
        Ok(())
    }

    /// Cut the segment back to `offset` (a frame boundary at or after the last whole frame
    /// anyone acknowledged), dropping the frames appended after it.
    pub fn truncate_to(&mut self, offset: u64) -> Result<()> {
        if offset >= self.written {
            self.buf.truncate((offset - self.written) as usize);
            return Ok(());
        }
        self.buf.clear();
        self.file
            .set_len(offset)
            .and_then(|()| {
                std::io::Seek::seek(&mut self.file, std::io::SeekFrom::Start(offset)).map(|_| ())
            })
            .map_err(|e| Error::io(&self.path, e))?;
        self.written = offset;
        self.synced = self.synced.min(offset);
        Ok(())
    }

    /// Drop everything after the last sync: buffered bytes, and bytes written since.
    fn rollback(&mut self) {
        self.buf.clear();
        // Truncation frees space, so it works on a full disk; if it fails anyway, the partial
        // frame is a torn tail that the next writer cuts off.
        let _ = self.file.set_len(self.synced);
        let _ = std::io::Seek::seek(&mut self.file, std::io::SeekFrom::Start(self.synced));
        self.written = self.synced;
    }
}
