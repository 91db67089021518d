//! `push`: upload what a remote lacks. Each live segment's indexed frames past the remote's
//! end of it go up as new pieces (in parallel, each created once); then one lookup table names
//! the objects of every piece no remote table covers yet, so a `get --remote` finds them. A
//! push cut off between the two leaves pieces without a table: the next push writes it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use memmap2::Mmap;

use super::Remote;
use super::pieces::{HEADER, Piece, SEGMENTS, TABLES, by_segment, cut, remote_end};
use super::reader::sync_tables;
use crate::archive::{Archive, IndexedSegment, Trace, now_ns};
use crate::error::{Error, RemoteFailure, Result};
use crate::format::store_header::StoreHeader;
use crate::index::lookup::{RawEntry, Tables, encode};
use crate::store_dir::{HEADER_FILE, INDEX_DIR};

/// What a push did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PushReport {
    /// The remote's URL.
    pub remote: String,
    /// Segments with new pieces.
    pub segments: u64,
    /// Pieces uploaded.
    pub pieces: u64,
    /// Bytes uploaded in pieces.
    pub bytes: u64,
    /// Pieces another push had uploaded first (same bytes, same name).
    pub pieces_present: u64,
    /// Lookup tables uploaded (0 or 1) and the objects they name.
    pub tables: u64,
    /// Objects named by the uploaded table.
    pub table_entries: u64,
    /// Segments left alone: the remote holds other bytes for them (named).
    pub diverged: Vec<String>,
    /// Requests sent.
    pub requests: u64,
    /// Wall time.
    pub seconds: f64,
}

/// Bytes of a mapped segment, shared by the uploads without a copy.
struct MapSlice {
    map: Arc<Mmap>,
    from: usize,
    to: usize,
}

impl AsRef<[u8]> for MapSlice {
    fn as_ref(&self) -> &[u8] {
        self.map.get(self.from..self.to).unwrap_or_default()
    }
}

/// One piece to upload.
struct Job {
    segment: String,
    map: Arc<Mmap>,
    from: u64,
    to: u64,
}

/// Push what the remote lacks of `archive`. `progress(done, total)` is told bytes.
pub fn push(archive: &Archive, remote: &Remote, progress: &dyn Fn(u64, u64)) -> Result<PushReport> {
    let start = Instant::now();
    let trace = Trace::new("ARCHIVE_TRACE_REMOTE", "push");
    let root = archive.path().to_owned();
    let header =
        std::fs::read(root.join(HEADER_FILE)).map_err(|e| Error::io(root.join(HEADER_FILE), e))?;
    let segments = archive.indexed_segments()?;
    // The uploads need no index: other processes may use it meanwhile.
    archive.release_index();
    trace.step("catch-up");
    remote.block_on(async {
        ensure_header(remote, &header).await?;
        let listing = remote.list(SEGMENTS).await?;
        trace.step("header and listing");
        let mut remote_pieces = by_segment(&listing);
        let mut report = PushReport {
            remote: remote.url().to_owned(),
            ..PushReport::default()
        };
        let jobs = plan(&segments, &remote_pieces, &mut report)?;
        let uploaded = upload(remote, jobs, &mut report, progress).await?;
        trace.step("pieces");
        for p in uploaded {
            remote_pieces.entry(p.segment.clone()).or_default().push(p);
        }
        publish_table(&root, remote, &remote_pieces, &segments, &mut report).await?;
        trace.step("table");
        report.requests = remote.requests();
        report.seconds = start.elapsed().as_secs_f64();
        Ok(report)
    })
}

/// Put this store's header on a remote that has none; refuse a remote of another version.
pub(super) async fn ensure_header(remote: &Remote, local: &[u8]) -> Result<()> {
    let theirs = match remote.get(HEADER).await? {
        Some(b) => b,
        None if remote.create(HEADER, Bytes::copy_from_slice(local)).await? => return Ok(()),
        // Another store created it first.
        None => remote.get(HEADER).await?.unwrap_or_default(),
    };
    let ours = StoreHeader::decode(local).map_err(Error::internal)?;
    let theirs = StoreHeader::decode(&theirs).map_err(|e| Error::Remote {
        remote: remote.url_of(HEADER),
        failure: RemoteFailure::Damaged,
        reason: format!("not an archive header: {e}"),
    })?;
    super::same_version(remote, theirs.version, ours.version)
}

/// The pieces to upload: each segment's indexed frames past the remote's end of it.
fn plan(
    segments: &[IndexedSegment],
    remote: &BTreeMap<String, Vec<Piece>>,
    report: &mut PushReport,
) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    for seg in segments {
        let end = remote.get(&seg.name).map_or(0, |p| remote_end(p));
        if seg.indexed_to <= end {
            continue;
        }
        let Some(map) = crate::segment::reader::map_file(&seg.path)? else {
            continue;
        };
        let map = Arc::new(map);
        let to = seg.indexed_to.min(map.len() as u64);
        let Some(cuts) = cut(&map, end, to) else {
            report.diverged.push(seg.name.clone());
            continue;
        };
        if !cuts.is_empty() {
            report.segments += 1;
        }
        for (from, to) in cuts {
            jobs.push(Job {
                segment: seg.name.clone(),
                map: Arc::clone(&map),
                from,
                to,
            });
        }
    }
    Ok(jobs)
}

/// Upload `jobs`, eight at a time; the pieces now on the remote.
async fn upload(
    remote: &Remote,
    jobs: Vec<Job>,
    report: &mut PushReport,
    progress: &dyn Fn(u64, u64),
) -> Result<Vec<Piece>> {
    let total: u64 = jobs.iter().map(|j| j.to - j.from).sum();
    progress(0, total);
    let mut done = 0;
    let mut out = Vec::with_capacity(jobs.len());
    let mut uploads = futures::stream::iter(jobs.into_iter().map(|job| async move {
        let bytes = Bytes::from_owner(MapSlice {
            map: job.map,
            from: job.from as usize,
            to: job.to as usize,
        });
        let piece = Piece::of(&job.segment, job.from, &bytes);
        let created = remote.create(&piece.key(), bytes).await?;
        Ok::<_, Error>((piece, created))
    }))
    .buffer_unordered(8);
    while let Some(next) = uploads.next().await {
        let (piece, created) = next?;
        let n = piece.to - piece.from;
        if created {
            report.pieces += 1;
            report.bytes += n;
        } else {
            report.pieces_present += 1;
        }
        done += n;
        progress(done, total);
        out.push(piece);
    }
    Ok(out)
}

/// Upload one table naming the objects of every remote piece no remote table covers whose
/// bytes this store holds and has indexed.
async fn publish_table(
    root: &std::path::Path,
    remote: &Remote,
    pieces: &BTreeMap<String, Vec<Piece>>,
    segments: &[IndexedSegment],
    report: &mut PushReport,
) -> Result<()> {
    let cache = super::cache_dir(root, remote.url());
    let covered: HashSet<String> = sync_tables(remote, &cache)
        .await?
        .into_iter()
        .flat_map(|(_, names)| names)
        .collect();
    let local: HashMap<&str, u64> = segments
        .iter()
        .map(|s| (s.name.as_str(), s.indexed_to))
        .collect();
    let mut todo: HashMap<&str, Vec<&Piece>> = HashMap::new();
    for (seg, list) in pieces {
        let Some(&indexed_to) = local.get(seg.as_str()) else {
            continue;
        };
        for p in list {
            if p.to <= indexed_to && !covered.contains(&p.key()) {
                todo.entry(seg.as_str()).or_default().push(p);
            }
        }
    }
    if todo.is_empty() {
        return Ok(());
    }
    let (keys, entries) = table_entries(root, &todo);
    let names: Vec<&str> = keys.iter().map(String::as_str).collect();
    let bytes = Bytes::from(encode(&names, &entries));
    let key = format!("{TABLES}/{:016x}-{:016x}.tbl", writer_id(root), now_ns());
    remote.create(&key, bytes.clone()).await?;
    // Kept in the cache, as if fetched: this store needs not download its own tables.
    let file = cache.join(key.trim_start_matches(&format!("{TABLES}/")));
    let _ = std::fs::create_dir_all(&cache).and_then(|()| std::fs::write(file, &bytes));
    report.tables += 1;
    report.table_entries = entries.len() as u64;
    Ok(())
}

/// The local lookup tables' entries that fall in `pieces`, as locations in them: the pieces'
/// keys, and entries indexing them (sorted by prefix).
fn table_entries(
    root: &std::path::Path,
    pieces: &HashMap<&str, Vec<&Piece>>,
) -> (Vec<String>, Vec<RawEntry>) {
    let mut keys = Vec::new();
    // By segment: each piece's range and the index of its key, sorted by start.
    let mut ranges: HashMap<&str, Vec<(u64, u64, u32)>> = HashMap::new();
    for (seg, list) in pieces {
        for p in list {
            ranges
                .entry(seg)
                .or_default()
                .push((p.from, p.to, keys.len() as u32));
            keys.push(p.key());
        }
    }
    for v in ranges.values_mut() {
        v.sort_unstable();
    }
    let mut out = Vec::new();
    let dir = root.join(INDEX_DIR).join(crate::index::LOOKUP_DIR);
    if let Some(tables) = Tables::open(&dir) {
        tables.for_each(&mut |prefix, seg, slot, offset| {
            let Some(list) = ranges.get(seg) else {
                return;
            };
            let i = list.partition_point(|r| r.0 <= offset);
            if let Some(&(from, to, segment)) = i.checked_sub(1).and_then(|i| list.get(i))
                && offset < to
            {
                out.push(RawEntry {
                    prefix,
                    segment,
                    slot,
                    offset: offset - from,
                });
            }
        });
    }
    out.sort_unstable_by_key(|e| (e.prefix, e.segment, e.offset, e.slot));
    out.dedup();
    (keys, out)
}

/// A name for this push's table no other push picks: the process, the store and the time.
fn writer_id(root: &std::path::Path) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(&std::process::id().to_le_bytes());
    h.update(root.as_os_str().as_encoded_bytes());
    h.update(&now_ns().to_le_bytes());
    let [a, b, c, d, e, f, g, i, ..] = *h.finalize().as_bytes();
    u64::from_le_bytes([a, b, c, d, e, f, g, i])
}
