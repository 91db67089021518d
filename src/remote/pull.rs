//! `pull` and `clone`: download what a store lacks of a remote, check it, then index it.
//!
//! A segment this store does not have is downloaded under a temporary name, synced, marked
//! sealed (`sealed/<name>`: no writer here appends to it, gc leaves it whole) and renamed into
//! place, so a reader never sees half of it. A sealed segment the remote has more of gets the
//! new pieces appended, in order. Every piece is checked against its name (size and blake3)
//! before a byte of it is written; a damaged one is named, and that segment stops before it.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt;

use super::pieces::{HEADER, Piece, SEGMENTS, by_segment, chain, check};
use super::{DEFAULT_REMOTE, Remote, RemoteSpec, add_remote};
use crate::archive::Archive;
use crate::error::{Error, RemoteFailure, Result};
use crate::format::store_header::StoreHeader;
use crate::format::version::SCHEMA_VERSION;
use crate::segment::writer::{sync_dir, try_lock};
use crate::store_dir::{HEADER_FILE, SEALED_DIR, SEGMENTS_DIR, read_store_header, segment_files};

/// What a pull (or clone) did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PullReport {
    /// The remote's URL.
    pub remote: String,
    /// Segments that gained bytes (new or longer).
    pub segments: u64,
    /// Pieces downloaded.
    pub pieces: u64,
    /// Bytes downloaded.
    pub bytes: u64,
    /// Remote objects found damaged or truncated, and never used (named, with the reason).
    pub damaged: Vec<String>,
    /// This store's own segments the remote holds other bytes of: left alone.
    pub diverged: Vec<String>,
    /// Requests sent.
    pub requests: u64,
    /// Wall time, the index catch-up included.
    pub seconds: f64,
}

/// What to download of one segment.
struct Job {
    segment: String,
    /// The segment itself, locked, to append to; `None` for a new segment (written to a
    /// temporary file, then renamed).
    append: Option<std::fs::File>,
    from: u64,
    pieces: Vec<Piece>,
}

/// Pull what `archive` lacks of `remote`, then index it. Damaged remote objects are listed in
/// the report (the caller decides the exit status); everything else is pulled.
pub fn pull(archive: &Archive, remote: &Remote, progress: &dyn Fn(u64, u64)) -> Result<PullReport> {
    let start = Instant::now();
    let trace = crate::archive::Trace::new("ARCHIVE_TRACE_REMOTE", "pull");
    let root = archive.path();
    let local = read_store_header(root)?;
    // The downloads need no index: other processes may use it meanwhile.
    archive.release_index();
    let segments_dir = root.join(SEGMENTS_DIR);
    remove_temp_files(&segments_dir)?;
    let (arrived, arrivals) = std::sync::mpsc::channel::<()>();
    let mut report = std::thread::scope(|s| {
        // Segments are indexed as they arrive, beside the downloads still running (a catch-up
        // reads whole frames only, and never cuts a segment a pull holds locked).
        s.spawn(move || {
            while arrivals.recv().is_ok() {
                while arrivals.try_recv().is_ok() {}
                let _ = archive.refresh();
            }
        });
        let done = remote.block_on(async {
            let theirs = remote_header(remote).await?;
            super::same_version(remote, theirs.version, local.version)?;
            let listing = remote.list(SEGMENTS).await?;
            let mut report = PullReport {
                remote: remote.url().to_owned(),
                ..PullReport::default()
            };
            let jobs = plan(root, &by_segment(&listing), &mut report)?;
            let segment_done = || {
                let _ = arrived.send(());
            };
            download(root, remote, jobs, &mut report, progress, &segment_done).await?;
            Ok::<_, Error>(report)
        });
        drop(arrived);
        done
    })?;
    sync_dir(&segments_dir)?;
    trace.step("download");
    archive.refresh()?;
    trace.step("index");
    report.requests = remote.requests();
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// Clone the archive at `spec` into `path` (new, or an empty directory), its remote named
/// `origin`. A clone that fails leaves nothing behind.
pub fn clone_store(
    spec: &RemoteSpec,
    path: &Path,
    progress: &dyn Fn(u64, u64),
) -> Result<PullReport> {
    let non_empty = std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some());
    if non_empty || path.is_file() {
        return Err(Error::AlreadyExists {
            path: path.to_owned(),
        });
    }
    let remote = Remote::connect(spec)?;
    let header = remote.block_on(async {
        remote_header(&remote).await?;
        remote.get(HEADER).await
    })?;
    let created = !path.exists();
    let done = (|| {
        std::fs::create_dir_all(path.join(SEGMENTS_DIR))
            .map_err(|e| Error::io(path.join(SEGMENTS_DIR), e))?;
        let file = path.join(HEADER_FILE);
        std::fs::File::create(&file)
            .and_then(|mut f| {
                f.write_all(&header.unwrap_or_default())?;
                f.sync_all()
            })
            .map_err(|e| Error::io(&file, e))?;
        add_remote(path, DEFAULT_REMOTE, spec.clone())?;
        pull(&Archive::open(path)?, &remote, progress)
    })();
    if done.is_err() {
        if created {
            let _ = std::fs::remove_dir_all(path);
        } else if let Ok(entries) = std::fs::read_dir(path) {
            for e in entries.flatten() {
                let p = e.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
    }
    done
}

/// The remote's store header, checked: an error if there is none (no archive there) or it is
/// of a version this program cannot read.
async fn remote_header(remote: &Remote) -> Result<StoreHeader> {
    let Some(bytes) = remote.get(HEADER).await? else {
        return Err(Error::Remote {
            remote: remote.url().to_owned(),
            failure: RemoteFailure::Missing,
            reason: "no archive here (no ARCHIVE object): check the URL, or push to it first"
                .to_owned(),
        });
    };
    let h = StoreHeader::decode(&bytes).map_err(|e| Error::Remote {
        remote: remote.url_of(HEADER),
        failure: RemoteFailure::Damaged,
        reason: format!("not an archive header: {e}"),
    })?;
    if h.version > SCHEMA_VERSION {
        return Err(Error::TooNew {
            path: PathBuf::from(remote.url()),
            found: h.version,
            current: SCHEMA_VERSION,
        });
    }
    Ok(h)
}

/// What to download of each remote segment.
fn plan(
    root: &Path,
    remote: &std::collections::BTreeMap<String, Vec<Piece>>,
    report: &mut PullReport,
) -> Result<Vec<Job>> {
    let files = segment_files(&root.join(SEGMENTS_DIR))?.files;
    let replaced = crate::segment::superseded::superseded(&files);
    let have: HashSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let mut jobs = Vec::new();
    for (name, pieces) in remote {
        if replaced.contains(name) {
            continue;
        }
        let path = root.join(SEGMENTS_DIR).join(name);
        let (append, from) = if !have.contains(name.as_str()) {
            (None, 0)
        } else if crate::store_dir::is_sealed(root, name) {
            match sealed_end(&path, pieces)? {
                Some((end, file)) => (Some(file), end),
                None => continue,
            }
        } else {
            // This store's own segment: it is the source of the remote's pieces, never the
            // other way round.
            let len = std::fs::metadata(&path).map_or(0, |m| m.len());
            if super::pieces::remote_end(pieces) > len {
                report.diverged.push(name.clone());
            }
            continue;
        };
        let todo: Vec<Piece> = chain(pieces, from).into_iter().cloned().collect();
        if !todo.is_empty() {
            jobs.push(Job {
                segment: name.clone(),
                append,
                from,
                pieces: todo,
            });
        }
    }
    Ok(jobs)
}

/// Where to append to a sealed segment: its length, cut back to the end of a remote piece if
/// a pull was cut off mid-piece, and the segment, locked. `None` if another process holds it
/// (a pull running).
fn sealed_end(path: &Path, pieces: &[Piece]) -> Result<Option<(u64, std::fs::File)>> {
    let Some(lock) = try_lock(path)? else {
        return Ok(None);
    };
    let len = lock.metadata().map_err(|e| Error::io(path, e))?.len();
    let boundary = chain(pieces, 0)
        .iter()
        .map(|p| p.to)
        .take_while(|&to| to <= len)
        .last()
        .unwrap_or(0);
    if boundary < len {
        lock.set_len(boundary).map_err(|e| Error::io(path, e))?;
    }
    Ok(Some((boundary, lock)))
}

/// Download the jobs, four segments at a time and four pieces ahead within each; `segment_done`
/// is told when a segment is in place.
async fn download(
    root: &Path,
    remote: &Remote,
    jobs: Vec<Job>,
    report: &mut PullReport,
    progress: &dyn Fn(u64, u64),
    segment_done: &dyn Fn(),
) -> Result<()> {
    let total: u64 = jobs
        .iter()
        .flat_map(|j| &j.pieces)
        .map(|p| p.to - p.from)
        .sum();
    let done = std::cell::Cell::new(0u64);
    progress(0, total);
    let tick = |n: u64| {
        done.set(done.get() + n);
        progress(done.get(), total);
    };
    let mut segments = futures::stream::iter(
        jobs.into_iter()
            .map(|job| pull_segment(root, remote, job, &tick)),
    )
    .buffer_unordered(4);
    while let Some(result) = segments.next().await {
        let (pieces, bytes, damaged) = result?;
        if pieces > 0 {
            report.segments += 1;
        }
        report.pieces += pieces;
        report.bytes += bytes;
        report.damaged.extend(damaged);
        segment_done();
    }
    Ok(())
}

/// One segment's pieces, in order: checked, written, synced; a new segment is then sealed
/// and renamed into place. Pieces written, bytes, damage found.
async fn pull_segment(
    root: &Path,
    remote: &Remote,
    job: Job,
    tick: &dyn Fn(u64),
) -> Result<(u64, u64, Vec<String>)> {
    let dir = root.join(SEGMENTS_DIR);
    let target = dir.join(&job.segment);
    let new = job.append.is_none();
    let path = if new {
        dir.join(format!(".pull-{}.tmp", job.segment))
    } else {
        target.clone()
    };
    let mut file = Some(open_for(&path, job.append, job.from)?);
    let (mut pieces, mut bytes, mut damaged) = (0u64, 0u64, Vec::new());
    let mut fetches = futures::stream::iter(job.pieces.iter().map(|p| async move {
        if !p.whole() {
            return Ok((p, None));
        }
        Ok::<_, Error>((p, remote.get(&p.key()).await?))
    }))
    .buffered(4);
    // Each piece is checked, written and synced on a blocking thread while the next ones
    // download; the next write waits for it (pieces go in order).
    let mut pending: Option<Written> = None;
    loop {
        let next = fetches.next().await;
        if let Some(w) = pending.take() {
            let (f, done) = w.await.map_err(|e| Error::internal(e.to_string()))??;
            file = Some(f);
            match done {
                Ok(n) => {
                    pieces += 1;
                    bytes += n;
                    tick(n);
                }
                Err(why) => {
                    damaged.push(why);
                    break;
                }
            }
        }
        let Some(next) = next else { break };
        let (p, got) = next?;
        let url = remote.url_of(&p.key());
        let Some(got) = got else {
            damaged.push(format!("{url}: {}", missing(p)));
            break;
        };
        let (Some(mut f), path) = (file.take(), path.clone()) else {
            break;
        };
        let (len, sum) = (p.to - p.from, p.sum.clone());
        pending = Some(tokio::task::spawn_blocking(move || {
            if let Some(why) = check(&got, len, &sum) {
                return Ok((f, Err(format!("{url}: {why}"))));
            }
            f.write_all(&got)
                .and_then(|()| f.sync_data())
                .map_err(|e| Error::io(&path, e))?;
            Ok((f, Ok(got.len() as u64)))
        }));
    }
    let Some(file) = file else {
        return Err(Error::internal("a pull lost its segment file"));
    };
    file.sync_data().map_err(|e| Error::io(&path, e))?;
    drop(file);
    if new {
        if pieces == 0 {
            let _ = std::fs::remove_file(&path);
        } else {
            seal(root, &job.segment)?;
            std::fs::rename(&path, &target).map_err(|e| Error::io(&target, e))?;
        }
    }
    Ok((pieces, bytes, damaged))
}

/// A piece being checked and written: the file back, and the bytes written or what is wrong.
type Written = tokio::task::JoinHandle<Result<(std::fs::File, std::result::Result<u64, String>)>>;

/// What is wrong with a piece the remote listed but did not give.
fn missing(p: &Piece) -> String {
    if p.whole() {
        "gone: listed, then not found".to_owned()
    } else {
        format!(
            "truncated: {} bytes, its name says {}",
            p.size,
            p.to - p.from
        )
    }
}

/// The file a segment's pieces are written to (`append`, or a new file at `path`),
/// positioned at `from`.
fn open_for(path: &Path, append: Option<std::fs::File>, from: u64) -> Result<std::fs::File> {
    use std::io::{Seek, SeekFrom};
    let mut file = match append {
        Some(f) => f,
        None => std::fs::File::create(path).map_err(|e| Error::io(path, e))?,
    };
    file.seek(SeekFrom::Start(from))
        .map_err(|e| Error::io(path, e))?;
    Ok(file)
}

/// Mark segment `name` as pulled (before it appears under its name, so no writer ever sees it
/// unmarked).
fn seal(root: &Path, name: &str) -> Result<()> {
    let dir = root.join(SEALED_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let marker = dir.join(name);
    std::fs::File::create(&marker).map_err(|e| Error::io(&marker, e))?;
    sync_dir(&dir)
}

/// Remove what pulls that died left in `segments/`.
fn remove_temp_files(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".pull-") && name.ends_with(".tmp") {
            let p = e.path();
            std::fs::remove_file(&p).map_err(|err| Error::io(&p, err))?;
        }
    }
    Ok(())
}
