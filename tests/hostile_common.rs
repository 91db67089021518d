//! Hostile rounds, shared by tests/hostile.rs (a round each) and the reliability report (many):
//! each round is one of issue 10's findings tried again with fresh random sizes and names,
//! through the `archive` command as a user runs it.
//!
//! - a symlink named like a segment, to a file outside the store: every command works, the
//!   file is untouched, `verify` names the link (exit 4);
//! - a frame of a newer schema version at the end of a segment: it stays byte for byte through
//!   `ls`, `put` and `verify` (which reports it, exit 4);
//! - a query nested deeper than the limit: refused with exit 2, never a crash;
//! - a logging run cut short, then the whole stream again with `--resume-by id`: each record
//!   has exactly one entry.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use model_archive::format::checksum;
use model_archive::format::frame::{FrameHeader, FrameKind};
use model_archive::format::meta::{FrameMeta, ObjectMeta};
use model_archive::{Archive, Codec, Object, ObjectHash};

use crate::reliability_common::{Rng, noise};

/// A whole frame as a writer lays it out at `start` of a segment.
pub fn frame_bytes(
    start: u64,
    version: u16,
    codec: Codec,
    hash: ObjectHash,
    meta: &FrameMeta,
    payload: &[u8],
) -> Vec<u8> {
    let meta = meta.encode().expect("metadata encodes");
    let payload_off = FrameHeader::payload_offset(start, meta.len() as u32, 64);
    let header = FrameHeader {
        version,
        kind: FrameKind::Object,
        codec,
        meta_len: meta.len() as u32,
        payload_off,
        payload_len: payload.len() as u64,
        hash,
        meta_sum: checksum(&meta),
    };
    let mut out = header.encode().to_vec();
    out.extend_from_slice(&meta);
    out.resize(payload_off as usize, 0);
    out.extend_from_slice(payload);
    out.resize(header.frame_len() as usize, 0);
    out
}

/// A text frame of schema version `version` at `start`.
pub fn text_frame(start: u64, version: u16, text: &str) -> Vec<u8> {
    let hash = Object::Text(text.into()).address();
    let meta = FrameMeta {
        object: Some(ObjectMeta {
            kind: "text".into(),
            raw_len: text.len() as u64,
            ..ObjectMeta::default()
        }),
        entry: None,
    };
    frame_bytes(start, version, Codec::Raw, hash, &meta, text.as_bytes())
}

/// How many rounds of each kind held, of how many tried, and the first failure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hostile {
    pub symlinks: (u64, u64),
    pub newer_frames: (u64, u64),
    pub deep_queries: (u64, u64),
    pub relogs: (u64, u64),
    pub first_failure: Option<String>,
}

fn archive(bin: &Path, store: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .arg("--store")
        .arg(store)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run archive")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// `rounds` rounds of each kind, in `dir`.
pub fn hostile_rounds(bin: &Path, dir: &Path, rounds: u64, seed: u64) -> Hostile {
    let mut rng = Rng(seed);
    let mut h = Hostile::default();
    for round in 0..rounds {
        let at = dir.join(format!("r{round}"));
        std::fs::create_dir_all(&at).expect("round dir");
        let outcomes = [
            ("symlink", symlink_round(bin, &at, &mut rng)),
            ("newer frame", newer_frame_round(bin, &at, &mut rng)),
            ("deep query", deep_query_round(bin, &at, &mut rng)),
            ("re-log", relog_round(bin, &at, &mut rng)),
        ];
        let counts = [
            &mut h.symlinks,
            &mut h.newer_frames,
            &mut h.deep_queries,
            &mut h.relogs,
        ];
        for ((what, outcome), count) in outcomes.into_iter().zip(counts) {
            count.1 += 1;
            match outcome {
                Ok(()) => count.0 += 1,
                Err(why) => {
                    h.first_failure
                        .get_or_insert_with(|| format!("{what}, round {round}: {why}"));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&at);
    }
    h
}

fn new_store(at: &Path, name: &str) -> std::path::PathBuf {
    let store = at.join(name);
    let a = Archive::create(&store).expect("create");
    a.put_text("ours", &[]).expect("put");
    store
}

fn symlink_round(bin: &Path, at: &Path, rng: &mut Rng) -> Result<(), String> {
    let store = new_store(at, "links");
    let outside = at.join("precious.bin");
    let precious = noise(1 + rng.below(1 << 16) as usize, rng.next());
    std::fs::write(&outside, &precious).expect("write");
    let name = format!("{:016x}-{:06}.seg", rng.next(), rng.below(1000));
    std::os::unix::fs::symlink(&outside, store.join("segments").join(&name)).expect("link");
    for args in [
        &["ls"][..],
        &["stats"],
        &["put", "--text", "more"],
        &["query", "has x"],
    ] {
        let o = archive(bin, &store, args);
        if !o.status.success() {
            return Err(format!("{args:?} exited {}", code(&o)));
        }
    }
    let v = archive(bin, &store, &["verify"]);
    if code(&v) != 4 || !String::from_utf8_lossy(&v.stdout).contains(&name) {
        return Err(format!("verify exited {} without naming {name}", code(&v)));
    }
    match std::fs::read(&outside) {
        Ok(bytes) if bytes == precious => Ok(()),
        _ => Err("the link's target changed".into()),
    }
}

fn newer_frame_round(bin: &Path, at: &Path, rng: &mut Rng) -> Result<(), String> {
    let store = new_store(at, "newer");
    let seg = std::fs::read_dir(store.join("segments"))
        .expect("segments")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .expect("a segment");
    let mut bytes = std::fs::read(&seg).expect("read");
    let start = bytes.len() as u64;
    let newer = model_archive::format::version::SCHEMA_VERSION + 1 + rng.below(100) as u16;
    let text = format!("written by a newer program {}", rng.next());
    bytes.extend(text_frame(start, newer, &text));
    std::fs::write(&seg, &bytes).expect("write");
    for args in [
        &["ls"][..],
        &["put", "--text", "after the newer frame"],
        &["stats"],
    ] {
        let o = archive(bin, &store, args);
        if !o.status.success() {
            return Err(format!("{args:?} exited {}", code(&o)));
        }
    }
    let v = archive(bin, &store, &["verify"]);
    if code(&v) != 4 {
        return Err(format!("verify exited {}, not 4", code(&v)));
    }
    let now = std::fs::read(&seg).expect("read");
    if now.get(..bytes.len()) != Some(&bytes[..]) {
        return Err(format!(
            "the segment's bytes changed (v{newer} frame at {start})"
        ));
    }
    Ok(())
}

fn deep_query_round(bin: &Path, at: &Path, rng: &mut Rng) -> Result<(), String> {
    let store = at.join("deep");
    if !store.exists() {
        Archive::create(&store).expect("create");
    }
    let depth = 65 + rng.below(20_000) as usize;
    let q = format!("{}a = \"1\"{}", "(".repeat(depth), ")".repeat(depth));
    let o = archive(bin, &store, &["query", &q]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    if code(&o) == 2 && stderr.contains("nest") {
        Ok(())
    } else {
        Err(format!("depth {depth}: exit {}: {stderr}", code(&o)))
    }
}

fn relog_round(bin: &Path, at: &Path, rng: &mut Rng) -> Result<(), String> {
    let store = at.join("relog");
    Archive::create(&store).expect("create");
    let n = 100 + rng.below(2000);
    let cut = rng.below(n);
    let line = |i: u64| format!("{{\"id\": \"r{i}\", \"label\": {}}}\n", i % 7);
    let log = |from_to: std::ops::Range<u64>, resume: bool| {
        let mut cmd = Command::new(bin);
        cmd.arg("--store").arg(&store);
        cmd.args(["log", "--tag", "run=a", "--tag-field", "id"]);
        if resume {
            cmd.args(["--resume-by", "id"]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn log");
        let text: String = from_to.map(line).collect();
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("feed");
        drop(stdin);
        child.wait().expect("wait").success()
    };
    if !log(0..cut, false) || !log(0..n, true) {
        return Err("a log run failed".into());
    }
    let a = Archive::open(&store).map_err(|e| e.to_string())?;
    let q = model_archive::query::Query::parse("run = \"a\"").expect("query");
    let mut ids: Vec<String> = a
        .query(&q)
        .flatten()
        .filter_map(|e| e.tags.into_iter().find(|(k, _)| k == "id").map(|(_, v)| v))
        .collect();
    let entries = ids.len() as u64;
    ids.sort();
    ids.dedup();
    if entries == n && ids.len() as u64 == n {
        Ok(())
    } else {
        Err(format!(
            "{n} records ({cut} first): {entries} entries, {} ids",
            ids.len()
        ))
    }
}
