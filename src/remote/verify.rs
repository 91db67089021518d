//! `verify --remote`: every piece on a remote read and re-hashed against its name (which
//! covers every byte of every frame in it), every table checked against its checksum and
//! against the pieces it names, and every segment's chain checked for gaps. Damage is named
//! by the object's URL.

use std::collections::HashSet;
use std::time::Instant;

use futures::StreamExt;

use super::pieces::{HEADER, Piece, SEGMENTS, TABLES, by_segment, check};
use super::{Remote, cache_dir};
use crate::error::{Error, RemoteFailure, Result};
use crate::format::store_header::StoreHeader;
use crate::index::lookup::checked_names;

/// What `verify_remote` found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RemoteVerifyReport {
    /// The remote's URL.
    pub remote: String,
    /// Pieces read and re-hashed.
    pub pieces: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Lookup tables checked.
    pub tables: u64,
    /// What is wrong, one line per object; empty when all is well.
    pub problems: Vec<String>,
    /// Pieces past a gap in their segment: a push was cut off before the pieces ahead of
    /// them went up. Readers follow each segment from byte 0 and leave them alone until the
    /// next push fills the gap; they are checked like any piece, and are not a problem.
    pub waiting: Vec<String>,
    /// Requests sent.
    pub requests: u64,
    /// Wall time.
    pub seconds: f64,
}

/// Read back and check everything on `remote`. `progress(done, total)` is told bytes.
pub fn verify_remote(
    root: &std::path::Path,
    remote: &Remote,
    progress: &dyn Fn(u64, u64),
) -> Result<RemoteVerifyReport> {
    let start = Instant::now();
    let mut report = RemoteVerifyReport {
        remote: remote.url().to_owned(),
        ..RemoteVerifyReport::default()
    };
    remote.block_on(async {
        let header = remote.get(HEADER).await?;
        let listing = remote.list(SEGMENTS).await?;
        match header {
            // Nothing at all: no archive here (a push that never got to write).
            None if listing.is_empty() => {
                return Err(Error::Remote {
                    remote: remote.url().to_owned(),
                    failure: RemoteFailure::Missing,
                    reason: "no archive here (no ARCHIVE object, no segments)".to_owned(),
                });
            }
            None => report.problems.push(format!(
                "{}: missing, though segments are there",
                remote.url_of(HEADER)
            )),
            Some(b) => {
                if let Err(e) = StoreHeader::decode(&b) {
                    report
                        .problems
                        .push(format!("{}: {e}", remote.url_of(HEADER)));
                }
            }
        }
        for meta in &listing {
            if Piece::parse(meta).is_none() {
                report.problems.push(format!(
                    "{}: not a piece of a segment (a name this program never writes)",
                    remote.url_of(meta.location.as_ref())
                ));
            }
        }
        let segments = by_segment(&listing);
        let pieces: Vec<&Piece> = segments.values().flatten().collect();
        check_chains(remote, &segments, &mut report);
        check_pieces(remote, &pieces, &mut report, progress).await?;
        let keys: HashSet<String> = pieces.iter().map(|p| p.key()).collect();
        check_tables(root, remote, &keys, &mut report).await
    })?;
    report.requests = remote.requests();
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// A piece starts at 0 or where another piece of its segment ends; one that does not waits
/// for the next push (parallel uploads cut off leave such gaps).
fn check_chains(
    remote: &Remote,
    segments: &std::collections::BTreeMap<String, Vec<Piece>>,
    report: &mut RemoteVerifyReport,
) {
    for pieces in segments.values() {
        let ends: HashSet<u64> = pieces.iter().map(|p| p.to).chain([0]).collect();
        for p in pieces.iter().filter(|p| !ends.contains(&p.from)) {
            report.waiting.push(format!(
                "{}: no piece of its segment ends where it starts (byte {}): a push was cut off \
                 before the bytes ahead of it went up; readers skip it until the next push",
                remote.url_of(&p.key()),
                p.from
            ));
        }
    }
}

/// Read every piece and check its size and hash against its name.
async fn check_pieces(
    remote: &Remote,
    pieces: &[&Piece],
    report: &mut RemoteVerifyReport,
    progress: &dyn Fn(u64, u64),
) -> Result<()> {
    let total: u64 = pieces.iter().map(|p| p.size).sum();
    let mut done = 0;
    progress(0, total);
    let mut reads = futures::stream::iter(pieces.iter().map(|p| async move {
        let got = remote.get(&p.key()).await?;
        Ok::<_, Error>((*p, got))
    }))
    .buffer_unordered(8);
    while let Some(next) = reads.next().await {
        let (p, got) = next?;
        let url = remote.url_of(&p.key());
        let problem = match got {
            None => Some("listed, then not found".to_owned()),
            Some(b) => {
                report.pieces += 1;
                report.bytes += b.len() as u64;
                done += b.len() as u64;
                progress(done, total);
                check(&b, p.to - p.from, &p.sum)
            }
        };
        if let Some(why) = problem {
            report.problems.push(format!("{url}: {why}"));
        }
    }
    Ok(())
}

/// Every table read afresh: its checksum, and every piece it names present.
async fn check_tables(
    root: &std::path::Path,
    remote: &Remote,
    pieces: &HashSet<String>,
    report: &mut RemoteVerifyReport,
) -> Result<()> {
    let scratch = cache_dir(root, remote.url()).join(format!(".verify-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| Error::io(&scratch, e))?;
    for meta in remote.list(TABLES).await? {
        let key = meta.location.to_string();
        let url = remote.url_of(&key);
        let bytes = remote.get(&key).await?.unwrap_or_default();
        let tmp = scratch.join("table.tbl");
        std::fs::write(&tmp, &bytes).map_err(|e| Error::io(&tmp, e))?;
        report.tables += 1;
        match checked_names(&tmp) {
            None => report.problems.push(format!(
                "{url}: a damaged lookup table (its checksum fails)"
            )),
            Some(names) => {
                for n in names.iter().filter(|n| !pieces.contains(*n)) {
                    report.problems.push(format!(
                        "{url}: names a piece the remote does not hold: {n}"
                    ));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}
