//! A segment on a remote is a chain of immutable pieces: `segments/<segment>/<from>-<to>-<sum>`
//! holds bytes `from..to` of the segment (16 hex digits each), `sum` the first 16 bytes of
//! their blake3 hash (32 hex digits). The first piece starts at 0 (the segment header), each
//! next one where the last ends, and every piece ends at a frame boundary. A segment that is
//! still growing travels as more pieces: each push adds the frames indexed since the last.
//!
//! Names carry range and hash, so a truncated or damaged piece is known by its listing (size)
//! or its first read (hash), and two stores pushing the same bytes name them alike (the
//! second create finds the first and does nothing).

use std::collections::BTreeMap;

use object_store::ObjectMeta;

use crate::format::frame::{FRAME_HEADER_LEN, FrameHeader, SEGMENT_HEADER_LEN};

/// The folder of segment pieces on a remote.
pub(super) const SEGMENTS: &str = "segments";
/// The folder of lookup tables on a remote.
pub(super) const TABLES: &str = "index";
/// The store header on a remote.
pub(super) const HEADER: &str = "ARCHIVE";
/// A push cuts a segment into pieces of about this size (at frame boundaries; a bigger frame
/// is a piece of its own), so pieces travel in parallel and a cut-off push loses little.
pub(super) const PIECE_TARGET: u64 = 16 << 20;

/// One piece of a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Piece {
    pub segment: String,
    pub from: u64,
    pub to: u64,
    /// The first 16 bytes of blake3 of the piece's bytes, as 32 hex digits.
    pub sum: String,
    /// Its size as the remote listed it (`to - from` unless truncated).
    pub size: u64,
}

impl Piece {
    /// A piece of `bytes`, from `from` of `segment`.
    pub fn of(segment: &str, from: u64, bytes: &[u8]) -> Piece {
        Piece {
            segment: segment.to_owned(),
            from,
            to: from + bytes.len() as u64,
            sum: sum_of(bytes),
            size: bytes.len() as u64,
        }
    }

    /// Its key, relative to the remote's root.
    pub fn key(&self) -> String {
        format!(
            "{SEGMENTS}/{}/{:016x}-{:016x}-{}",
            self.segment, self.from, self.to, self.sum
        )
    }

    /// The piece a listed key names; `None` for anything else under `segments/`.
    pub fn parse(meta: &ObjectMeta) -> Option<Piece> {
        let mut parts = meta.location.parts();
        let (first, segment, leaf) = (parts.next()?, parts.next()?, parts.next()?);
        if first.as_ref() != SEGMENTS || parts.next().is_some() {
            return None;
        }
        let segment = segment.as_ref();
        if !segment.ends_with(".seg") || segment.starts_with('.') {
            return None;
        }
        let mut fields = leaf.as_ref().split('-');
        let from = u64::from_str_radix(fields.next()?, 16).ok()?;
        let to = u64::from_str_radix(fields.next()?, 16).ok()?;
        let sum = fields.next()?;
        if fields.next().is_some()
            || to <= from
            || sum.len() != 32
            || !sum.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        Some(Piece {
            segment: segment.to_owned(),
            from,
            to,
            sum: sum.to_owned(),
            size: meta.size,
        })
    }

    /// True if the listed size is what the name says.
    pub fn whole(&self) -> bool {
        self.size == self.to - self.from
    }
}

/// The check sum a piece's name carries.
pub(super) fn sum_of(bytes: &[u8]) -> String {
    let mut h = blake3::Hasher::new();
    if bytes.len() >= 1 << 20 {
        h.update_rayon(bytes);
    } else {
        h.update(bytes);
    }
    let hex = h.finalize().to_hex();
    hex.get(..32).unwrap_or_default().to_owned()
}

/// What is wrong with a piece's bytes against its name (`len` bytes hashing to `sum`).
pub(super) fn check(bytes: &[u8], len: u64, sum: &str) -> Option<String> {
    if bytes.len() as u64 != len {
        return Some(format!(
            "truncated: {} bytes, its name says {len}",
            bytes.len()
        ));
    }
    let got = sum_of(bytes);
    (got != sum).then(|| format!("damaged: its bytes hash to {got}, its name says {sum}"))
}

/// The pieces of a listing, by segment, each segment's sorted by start.
pub(super) fn by_segment(listing: &[ObjectMeta]) -> BTreeMap<String, Vec<Piece>> {
    let mut out: BTreeMap<String, Vec<Piece>> = BTreeMap::new();
    for p in listing.iter().filter_map(Piece::parse) {
        out.entry(p.segment.clone()).or_default().push(p);
    }
    for v in out.values_mut() {
        v.sort_by(|a, b| (a.from, b.to).cmp(&(b.from, a.to)));
    }
    out
}

/// The chain of pieces from byte `start`: each starts where the last ends; among pieces
/// starting at the same byte, the longest. Empty if none starts at `start`.
pub(super) fn chain(pieces: &[Piece], start: u64) -> Vec<&Piece> {
    let mut out = Vec::new();
    let mut at = start;
    while let Some(p) = pieces.iter().filter(|p| p.from == at).max_by_key(|p| p.to) {
        at = p.to;
        out.push(p);
    }
    out
}

/// Where the chain from 0 ends: how much of the segment the remote holds.
pub(super) fn remote_end(pieces: &[Piece]) -> u64 {
    chain(pieces, 0).last().map_or(0, |p| p.to)
}

/// Cut bytes `from..to` of a segment (`bytes`, the whole segment) into pieces of about
/// `PIECE_TARGET` at frame boundaries. `None` if `from` is not a frame boundary of these
/// bytes (the remote holds another history of this segment).
pub(super) fn cut(bytes: &[u8], from: u64, to: u64) -> Option<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    let mut start = from;
    // The first piece holds the segment header and starts the walk at the first frame.
    let mut at = if from == 0 {
        SEGMENT_HEADER_LEN as u64
    } else {
        from
    };
    if from != 0 {
        frame_end(bytes, from)?;
    }
    while at < to {
        let Some(end) = frame_end(bytes, at).filter(|&e| e <= to) else {
            // A frame that does not decode (damage the index skipped): the rest in one piece.
            at = to;
            break;
        };
        if end - start > PIECE_TARGET && at > start {
            out.push((start, at));
            start = at;
        }
        at = end;
    }
    if at > start {
        out.push((start, at.min(to)));
    }
    Some(out)
}

/// The end of the frame whose header is at `at`.
fn frame_end(bytes: &[u8], at: u64) -> Option<u64> {
    let start = usize::try_from(at).ok()?;
    let header = bytes.get(start..start.checked_add(FRAME_HEADER_LEN)?)?;
    let h = FrameHeader::decode(header).ok()?;
    at.checked_add(h.frame_len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(from: u64, to: u64) -> Piece {
        Piece {
            segment: "a.seg".into(),
            from,
            to,
            sum: "0".repeat(32),
            size: to - from,
        }
    }

    #[test]
    fn names_round_trip_and_strangers_are_left_out() {
        let p = Piece::of("0011223344556677-000001.seg", 64, b"abc");
        let meta = ObjectMeta {
            location: p.key().as_str().into(),
            last_modified: Default::default(),
            size: 3,
            e_tag: None,
            version: None,
        };
        assert_eq!(Piece::parse(&meta), Some(p.clone()));
        for bad in [
            "segments/x.seg/0-1",
            "segments/x.seg/1-0-00000000000000000000000000000000",
            "segments/x.txt/0-1-00000000000000000000000000000000",
            "other/x.seg/0-1-00000000000000000000000000000000",
            "segments/x.seg/0-1-0000000000000000000000000000000g",
        ] {
            let meta = ObjectMeta {
                location: bad.into(),
                ..meta.clone()
            };
            assert_eq!(Piece::parse(&meta), None, "{bad}");
        }
    }

    #[test]
    fn a_chain_follows_the_longest_piece() {
        let pieces = vec![
            piece(0, 10),
            piece(10, 20),
            piece(10, 30),
            piece(30, 40),
            piece(50, 60),
        ];
        let c: Vec<_> = chain(&pieces, 0).iter().map(|p| (p.from, p.to)).collect();
        assert_eq!(c, vec![(0, 10), (10, 30), (30, 40)]);
        assert_eq!(remote_end(&pieces), 40);
        assert!(chain(&pieces, 5).is_empty());
        assert_eq!(remote_end(&[]), 0);
    }
}
