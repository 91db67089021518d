//! Merging two lookup tables into one, streamed (see `add`): a framed pair makes a framed
//! table (compact if either is, or if it is large), any other pair a table of segment and
//! offset entries.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{ENTRY_LEN, FRAME_LEN, MERGE_BLOCK, SUM_OFFSET, Table, flat, header, pad8};
use crate::error::{Error, Result};
use crate::format::{le_u32, le_u64};
use crate::index::table_layout::{self, Framing, TABLE_MAGIC, framed_entry};

/// Write the merge of two tables as a new one, streamed: entries are copied as they are, their
/// segment indexes renumbered into the union of both tables' segment names, so memory stays a
/// buffer's whatever the tables' size (a merge of 20 million entries once built them all as
/// values, 1.6 GB).
pub(super) fn merge_tables(dir: &Path, gen_: u64, a: &Table, b: &Table) -> Result<PathBuf> {
    let names: std::collections::BTreeSet<&str> = a
        .segments
        .iter()
        .chain(&b.segments)
        .map(String::as_str)
        .collect();
    let segments: Vec<&str> = names.into_iter().collect();
    let path = dir.join(format!("{gen_:016x}.tbl"));
    let tmp = dir.join(format!("{gen_:016x}.tmp"));
    let written = write_merged(&tmp, a, b, &segments);
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.and_then(|()| {
        // No fsync: a table is a cache (see `write_table`).
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    })?;
    Ok(path)
}

/// The body of `merge_tables`: write the merged table to `path`. Two framed tables make a
/// framed one (the second's frames after the first's, its entries' frame indexes moved by as
/// many), short if the frames are few enough; any other pair, a table of segment and offset
/// entries.
fn write_merged(path: &Path, a: &Table, b: &Table, segments: &[&str]) -> Result<()> {
    use std::io::{Seek, SeekFrom};
    let renumber = |t: &Table| -> Vec<u32> {
        t.segments
            .iter()
            .map(|s| segments.binary_search(&s.as_str()).unwrap_or(0) as u32)
            .collect()
    };
    let (map_a, map_b) = (renumber(a), renumber(b));
    let bad = || Error::corrupt(path, 0, "a table entry out of range");
    let framed = match (a.frames, b.frames) {
        (Some((_, fa)), Some((_, fb))) => Some((fa, fb)),
        _ => None,
    };
    let lossy = a.compact || b.compact;
    let framing = framed.map(|(fa, fb)| Framing::of(fa + fb, a.count + b.count, lossy));
    if lossy && framing.is_none() {
        // `add` merges a compact table only with a framed one.
        return Err(Error::invalid(
            path.display().to_string(),
            "a compact table merged with a flat one",
        ));
    }
    let head = merged_head([(a, &map_a), (b, &map_b)], segments, framing).ok_or_else(bad)?;
    // Entry `i` of `t`, whose prefix is `p`, as the merged table holds it, in `buf`: its
    // length.
    let entry = |t: &Table, renum: &[u32], base, i, p: Option<u64>, buf: &mut [u8; ENTRY_LEN]| {
        if let Some(framing) = framing {
            let (frame, slot) = t.framed_at(i)?;
            let frames = t.frames?.1;
            let frame = Some(frame).filter(|f| *f < frames)? + base;
            return framed_entry(buf, p?, frame, slot, framing);
        }
        let e = t.raw(i)?;
        *buf = flat(&e, renum.get(e.segment as usize).copied()?);
        Some(ENTRY_LEN)
    };
    let base_b = framed.map_or(0, |(fa, _)| fa);
    let io = |e: std::io::Error| Error::io(path, e);
    let mut file = fs::File::create(path).map_err(io)?;
    let mut hasher = blake3::Hasher::new();
    // Entries are gathered into blocks, each hashed and written whole: blake3 hashes a long
    // input several chunks at a time, an entry at a time it compresses one block per call.
    let mut out = head;
    out.reserve(MERGE_BLOCK);
    let mut buf = [0u8; ENTRY_LEN];
    let (mut i, mut j) = (0, 0);
    let (mut pa, mut pb) = (a.prefixes(), b.prefixes());
    let (mut xa, mut xb) = (pa.next(), pb.next());
    while i < a.count || j < b.count {
        let take_a = match (xa, xb) {
            (Some(x), Some(y)) => x <= y,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let len = if take_a {
            i += 1;
            let p = std::mem::replace(&mut xa, pa.next());
            entry(a, &map_a, 0, i - 1, p, &mut buf)
        } else {
            j += 1;
            let p = std::mem::replace(&mut xb, pb.next());
            entry(b, &map_b, base_b, j - 1, p, &mut buf)
        };
        let e = len.and_then(|n| buf.get(..n)).ok_or_else(bad)?;
        out.extend_from_slice(e);
        if out.len() >= MERGE_BLOCK {
            file.write_all(&out).map_err(io)?;
            hasher.update(&out);
            out.clear();
        }
    }
    file.write_all(&out).map_err(io)?;
    hasher.update(&out);
    let [s0, s1, s2, s3, ..] = *hasher.finalize().as_bytes();
    file.seek(SeekFrom::Start(SUM_OFFSET as u64))
        .and_then(|_| file.write_all(&[s0, s1, s2, s3]))
        .map_err(io)
}

/// The head of the merge of `tables` (each with its segments' renumbering) naming
/// `segments`: the header, then, framed, the frames and a bucketed table's directory.
fn merged_head(
    tables: [(&Table, &[u32]); 2],
    segments: &[&str],
    framing: Option<Framing>,
) -> Option<Vec<u8>> {
    let [(a, _), (b, _)] = tables;
    let count = a.count + b.count;
    let Some(framing) = framing else {
        return Some(header(TABLE_MAGIC, segments, count, None));
    };
    let frames = a.frames?.1 + b.frames?.1;
    let mut head = header(framing.magic(), segments, count, Some(frames));
    for (t, renum) in tables {
        push_frames(&mut head, t, renum)?;
    }
    pad8(&mut head);
    if framing.bucketed() {
        let dir = table_layout::encode(a.prefixes().chain(b.prefixes()), count);
        head.extend_from_slice(&dir?);
    }
    Some(head)
}

/// Add the frames of framed table `t` to `out`, their segments renumbered by `renum`.
fn push_frames(out: &mut Vec<u8>, t: &Table, renum: &[u32]) -> Option<()> {
    let (start, n) = t.frames?;
    for at in (0..n).map(|f| start + f * FRAME_LEN) {
        let seg = renum.get(le_u32(&t.map, at)? as usize)?;
        out.extend_from_slice(&seg.to_le_bytes());
        out.extend_from_slice(&le_u64(&t.map, at + 4)?.to_le_bytes());
    }
    Some(())
}
