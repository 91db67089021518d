//! What the reliability tests (tests/reliability.rs) and `benches/reliability_report.rs` share:
//! the workloads that kill, corrupt, fill and crash-image a store, and the checks that count
//! what survived. The tests run them small and assert; the report runs them long and prints
//! the figures. A module of the test binary; the report includes it with `#[path]`.
//!
//! "Wrong data" is checked independently of the store: an object `get` returns is hashed here
//! (`Object::address`) and compared with the address it was asked for.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use model_archive::format::frame::FrameHeader;
use model_archive::{
    Archive, Codec, Dtype, Error, ObjectHash, PutOptions, Record, Shape, TensorView, Value,
};

/// Deterministic pseudo-random bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(b"reliability")
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

/// A small deterministic generator (splitmix64), so every run injects the same damage.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a check of acknowledged objects found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// Acknowledged objects looked up.
    pub checked: u64,
    /// Acknowledged objects missing or unreadable.
    pub lost: u64,
    /// Objects served whose content does not hash to their address.
    pub wrong: u64,
}

impl std::ops::AddAssign for Checked {
    fn add_assign(&mut self, o: Checked) {
        self.checked += o.checked;
        self.lost += o.lost;
        self.wrong += o.wrong;
    }
}

/// Get every hash in `hashes` and hash what comes back.
pub fn check_acknowledged(a: &Archive, hashes: &[ObjectHash]) -> Checked {
    let mut c = Checked::default();
    for h in hashes {
        c.checked += 1;
        match a.get(h) {
            Ok(obj) if obj.address() == *h => {}
            Ok(_) => c.wrong += 1,
            Err(_) => c.lost += 1,
        }
    }
    c
}

/// The `archive` binary of the same build as this executable: beside it (programs:
/// target/debug/reliability-report) or one directory up (tests: target/debug/deps/..).
pub fn archive_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("target dir");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("target dir");
    }
    dir.join(format!("archive{}", std::env::consts::EXE_SUFFIX))
}

/// What a run of kills found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kills {
    /// Children killed with SIGKILL (or that finished first: counted in `finished`).
    pub tried: u64,
    /// Children that finished before the kill landed.
    pub finished: u64,
    /// Kills after which the store opened with no manual step, lost nothing acknowledged,
    /// served nothing wrong and verified.
    pub survived: u64,
    /// Acknowledged objects checked after the kills, and what was lost or wrong.
    pub acked: Checked,
    /// What went wrong after the first kill that was not survived.
    pub first_failure: Option<String>,
    /// Opens after a kill that found sled's index damaged and rebuilt it from the segments.
    pub index_rebuilds: u64,
}

/// SIGKILL `archive put` children writing mixed inputs (text, raw and zstd tensors, JSON
/// records with tensors, which are batches of several frames) at pseudo-random moments, up to
/// `max_delay_ms` after the spawn. After each kill the store is opened in-process; every put
/// acknowledged so far (in-process puts, and children that printed their hash) must be there
/// and hash back to its address, and `verify` (every `verify_every` kills, and at the end)
/// must pass. `big` is the size of the tensor inputs. The delays spread over 1.5 times what
/// one whole put took here, so kills land in every phase and some children finish.
pub fn kill_loop(
    bin: &Path,
    dir: &Path,
    kills: u64,
    big: usize,
    verify_every: u64,
    seed: u64,
) -> Kills {
    let store = dir.join("store");
    drop(Archive::create(&store).expect("create store"));
    let input = dir.join("input-warmup");
    std::fs::write(&input, noise(big, !seed)).expect("input");
    let started = std::time::Instant::now();
    let ok = Command::new(bin)
        .arg("--store")
        .arg(&store)
        .args(["put", "--dtype", "U8", "--shape", &big.to_string()])
        .arg(&input)
        .stdout(Stdio::null())
        .status()
        .expect("run archive put");
    assert!(ok.success(), "archive put failed before any kill");
    let max_delay_us = (started.elapsed().as_micros() as u64) * 3 / 2;
    let mut rng = Rng(seed);
    let mut acknowledged: Vec<ObjectHash> = Vec::new();
    let mut k = Kills::default();
    for i in 0..kills {
        let input = dir.join(format!("input-{}", i % 2));
        let mut cmd = Command::new(bin);
        cmd.arg("--store").arg(&store).arg("put");
        match i % 4 {
            0 => {
                cmd.args(["--text", &format!("killed text {i} {}", rng.next())]);
            }
            1 | 2 => {
                std::fs::write(&input, noise(big, seed ^ i)).expect("input");
                let codec = if i % 4 == 1 { "raw" } else { "zstd" };
                cmd.args([
                    "--codec",
                    codec,
                    "--dtype",
                    "U8",
                    "--shape",
                    &big.to_string(),
                ]);
                cmd.arg(&input);
            }
            _ => {
                let json = input.with_extension("json");
                let data = model_archive::interop::json_b64::to_json(
                    &model_archive::interop::Document::Map(vec![(
                        "x".into(),
                        model_archive::interop::Document::Tensor(
                            model_archive::interop::Array::new(
                                "x",
                                Dtype::U8,
                                Shape::new(vec![(big / 4) as u64]),
                                noise(big / 4, seed ^ i ^ 7).into(),
                            )
                            .expect("array"),
                        ),
                    )]),
                );
                let mut data = data;
                data["step"] = serde_json::json!(i);
                std::fs::write(&json, data.to_string()).expect("json");
                cmd.arg(&json);
            }
        }
        cmd.args(["--tag", &format!("kill={i}")]);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn archive");
        std::thread::sleep(Duration::from_micros(rng.below(max_delay_us + 1)));
        let _ = child.kill();
        let out = child.wait_with_output().expect("wait");
        k.tried += 1;
        if out.status.success() {
            k.finished += 1;
        }
        // A child that printed its hash acknowledged the put.
        if let Ok(h) = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<ObjectHash>()
        {
            acknowledged.push(h);
        }
        let a = match Archive::open(&store) {
            Ok(a) => a,
            Err(e) => {
                k.first_failure
                    .get_or_insert(format!("kill {i}: open: {e}"));
                continue;
            }
        };
        if a.warnings()
            .iter()
            .any(|w| w.contains("damaged index rebuilt"))
        {
            k.index_rebuilds += 1;
        }
        let c = check_acknowledged(&a, &acknowledged);
        let verified = if (i + 1) % verify_every == 0 || i + 1 == kills {
            match a.verify(&|_, _| {}) {
                Ok(r) if r.is_ok() => Ok(()),
                Ok(r) => Err(format!("{:?}", r.problems)),
                Err(e) => Err(e.to_string()),
            }
        } else {
            Ok(())
        };
        match (c.lost, c.wrong, verified) {
            (0, 0, Ok(())) => k.survived += 1,
            (lost, wrong, v) => {
                k.first_failure.get_or_insert(format!(
                    "kill {i}: {lost} lost, {wrong} wrong, verify: {v:?}"
                ));
            }
        }
        if i + 1 == kills {
            k.acked = c;
        }
        // An acknowledged in-process put between kills.
        let h = a
            .put_text(&format!("acknowledged {i}"), &[("between", "kills")])
            .expect("put after a kill");
        acknowledged.push(h);
    }
    k
}

/// What a run of corruption injections found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Corruptions {
    /// Bytes flipped (each in a frame's header, metadata or payload).
    pub injected: u64,
    /// Flips that `get` refused (`Corrupt`, or `NotFound` for a frame no longer found) and
    /// `verify` reported, with every other object still readable.
    pub detected: u64,
    /// Objects served whose content does not hash to their address.
    pub wrong: u64,
}

/// Flip one byte at a time in a frame's header, metadata or payload (never padding), reopen,
/// and check that `get` refuses that object, `verify` reports it, and the other objects still
/// read back exactly. Each flip is undone before the next. Objects: tensors in every codec,
/// text, bytes and records.
pub fn corruption_loop(dir: &Path, injections: u64, seed: u64) -> Corruptions {
    let store = dir.join("store");
    let a = Archive::create(&store).expect("create store");
    let mut hashes = Vec::new();
    for (i, codec) in [Codec::Raw, Codec::Zstd, Codec::ShuffleZstd]
        .into_iter()
        .enumerate()
    {
        let data: Vec<u8> = (0..3000u32)
            .flat_map(|x| ((x as f32 * 0.01 + i as f32).sin()).to_le_bytes())
            .collect();
        let shape = Shape::new(vec![3000]);
        let opts = PutOptions {
            codec: Some(codec),
            level: None,
        };
        let view = TensorView::new(Dtype::F32, &shape, &data).expect("view");
        hashes.push(
            a.put_tensor_with(&view, &[("codec", codec.name())], &opts)
                .expect("put"),
        );
    }
    hashes.push(a.put_text("some generated text", &[]).expect("put"));
    hashes.push(
        a.put_bytes(&noise(500, seed), Some("image/png"), &[])
            .expect("put"),
    );
    let rec = Record::new()
        .with("label", Value::Str("cat".into()))
        .and_then(|r| r.with("score", Value::Float(0.75)))
        .expect("record");
    hashes.push(a.put_record(&rec, &[]).expect("put"));
    let frames: Vec<(PathBuf, u64, FrameHeader)> = hashes
        .iter()
        .map(|h| {
            let info = a.info(h).expect("info");
            let seg = segment_of(&store);
            let bytes = std::fs::read(&seg).expect("read");
            let header = FrameHeader::decode(&bytes[info.offset as usize..]).expect("header");
            (seg, info.offset, header)
        })
        .collect();
    drop(a);
    let mut rng = Rng(seed);
    let mut c = Corruptions::default();
    for _ in 0..injections {
        let victim = rng.below(hashes.len() as u64) as usize;
        let (seg, offset, header) = &frames[victim];
        // A byte of the header, the metadata or the payload, chosen uniformly.
        let meta_end = 64 + u64::from(header.meta_len);
        let spans = [
            (0, meta_end),
            (
                u64::from(header.payload_off),
                u64::from(header.payload_off) + header.payload_len,
            ),
        ];
        let total: u64 = spans.iter().map(|(s, e)| e - s).sum();
        let mut pick = rng.below(total);
        let mut at = 0;
        for (s, e) in spans {
            if pick < e - s {
                at = offset + s + pick;
                break;
            }
            pick -= e - s;
        }
        let bit = 1u8 << rng.below(8);
        flip(seg, at, bit);
        c.injected += 1;
        let a = Archive::open(&store).expect("open a damaged store");
        let refused = match a.get(&hashes[victim]) {
            Ok(obj) => {
                if obj.address() != hashes[victim] {
                    c.wrong += 1;
                }
                false
            }
            Err(Error::Corrupt { .. } | Error::NotFound(_)) => true,
            Err(_) => false,
        };
        let others = hashes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != victim)
            .map(|(_, h)| *h)
            .collect::<Vec<_>>();
        let rest = check_acknowledged(&a, &others);
        c.wrong += rest.wrong;
        let reported = a.verify(&|_, _| {}).map(|r| !r.is_ok()).unwrap_or(false);
        if refused && reported && rest.lost == 0 {
            c.detected += 1;
        }
        drop(a);
        // Undo the damage for the next round. The index is kept throughout: it knows every
        // frame was committed, so a damaged last frame is never taken for a torn tail.
        flip(seg, at, bit);
    }
    c
}

fn segment_of(store: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(store.join("segments"))
        .expect("segments")
        .map(|e| e.expect("entry").path())
        .collect();
    segs.sort();
    assert_eq!(segs.len(), 1, "one segment expected");
    segs.remove(0)
}

fn flip(path: &Path, at: u64, bit: u8) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[at as usize] ^= bit;
    std::fs::write(path, bytes).expect("write");
}

/// The sizes of every segment file, by name.
pub fn segment_sizes(store: &Path) -> BTreeMap<String, u64> {
    std::fs::read_dir(store.join("segments"))
        .expect("segments")
        .map(|e| {
            let e = e.expect("entry");
            let len = e.metadata().expect("meta").len();
            (e.file_name().to_string_lossy().into_owned(), len)
        })
        .collect()
}

/// What `index_damage_loop` found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexDamage {
    /// Damages done to the derived index (a lookup table flipped or cut, `lookup/` replaced
    /// by a file, a table removed).
    pub injected: u64,
    /// Opens after which every object was found again and the warning named the rebuild
    /// (a removed table is found by the rebuild too, without a warning: nothing is damaged).
    pub healed: u64,
    /// Objects reported missing after an open, in all (must be 0).
    pub missing: u64,
}

/// Damage the derived index `injections` times, each time one way at random (flip a byte of
/// a lookup table, cut a table short, replace `index/lookup` by a plain file, remove a table),
/// then open the store and check that every packed and whole-frame object is found, with no
/// manual step.
pub fn index_damage_loop(dir: &Path, injections: u64, seed: u64) -> IndexDamage {
    let store = dir.join("store");
    let a = Archive::create(&store).expect("create store");
    let mut hashes = Vec::new();
    let mut w = a.writer();
    for i in 0..400u64 {
        hashes.push(
            w.put_text(&format!("packed output {i}"), &[("run", "r")])
                .expect("put"),
        );
    }
    w.commit().expect("commit");
    drop(w);
    let data = noise(20_000, seed);
    hashes.push(a.put_bytes(&data, None, &[]).expect("put"));
    drop(a);
    let lookup = store.join("index").join("lookup");
    let mut rng = Rng(seed);
    let mut d = IndexDamage::default();
    for _ in 0..injections {
        let tables: Vec<PathBuf> = std::fs::read_dir(&lookup)
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "tbl"))
                    .collect()
            })
            .unwrap_or_default();
        let Some(table) = tables.get(rng.below(tables.len().max(1) as u64) as usize) else {
            continue;
        };
        let bytes = std::fs::read(table).expect("read table");
        let how = rng.below(4);
        match how {
            0 => {
                let mut bad = bytes.clone();
                let at = rng.below(bad.len() as u64) as usize;
                bad[at] ^= 1 << rng.below(8);
                std::fs::write(table, bad).expect("flip");
            }
            1 => {
                let cut = rng.below(bytes.len() as u64) as usize;
                std::fs::write(table, &bytes[..cut]).expect("cut");
            }
            2 => {
                std::fs::remove_dir_all(&lookup).expect("remove lookup");
                std::fs::write(&lookup, b"not a directory").expect("write file");
            }
            _ => std::fs::remove_file(table).expect("remove table"),
        }
        d.injected += 1;
        let a = Archive::open(&store).expect("open after index damage");
        let warned = a
            .warnings()
            .iter()
            .any(|w| w.contains("damaged index rebuilt"));
        let missing = hashes
            .iter()
            .filter(|h| a.get(h).map(|o| o.address() != **h).unwrap_or(true))
            .count() as u64;
        d.missing += missing;
        // A removed table is not damage: its objects are found again (through the rebuild
        // that a missing table needs, or still in sled), with or without a warning.
        if missing == 0 && (warned || how == 3) {
            d.healed += 1;
        }
    }
    d
}

/// A size-limited tmpfs mounted for a test, unmounted when dropped.
pub struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    /// Mount a tmpfs of `size` (e.g. "8m"); `Err` with the reason where this machine does not
    /// let us mount (not root, no mount namespace).
    pub fn mount(size: &str) -> Result<SmallFs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(SmallFs { dir })
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// What the disk-full rounds found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskFull {
    /// Puts or commits that met ENOSPC.
    pub cases: u64,
    /// Of those, the ones that failed with `Error::Io` naming the segment, lost nothing
    /// acknowledged, verified, and took new puts once space was freed.
    pub handled: u64,
    /// Acknowledged objects checked, and what was lost or wrong.
    pub acked: Checked,
    /// What went wrong in the first round not handled.
    pub first_unhandled: Option<String>,
    /// Cases where sled, writing the index, met the full disk first.
    pub index_failures: u64,
    /// Acknowledged objects the open handle could not read after such a failure (all of them
    /// read back after reopening; lost ones are in `acked`).
    pub unreadable_until_reopen: u64,
}

/// `rounds` rounds, each on a fresh 8 MiB tmpfs holding a 3 MiB ballast file: put
/// incompressible tensors (single puts on even rounds, batches of 4 on odd ones; sizes vary by
/// round) until the disk is full, check the error and the store, free the ballast, reopen,
/// check again and put once more.
pub fn disk_full_rounds(rounds: u64) -> Result<DiskFull, String> {
    let mut d = DiskFull::default();
    let raw = PutOptions {
        codec: Some(Codec::Raw),
        level: None,
    };
    for r in 0..rounds {
        let fs = SmallFs::mount("8m")?;
        let store = fs.path().join("store");
        let ballast = fs.path().join("ballast");
        std::fs::write(&ballast, vec![1u8; 3 << 20]).map_err(|e| e.to_string())?;
        let a = Archive::create(&store).map_err(|e| e.to_string())?;
        let size = (16 << 10) << (r % 5);
        let mut acked = Vec::new();
        let mut failure = None;
        for i in 0..10_000u64 {
            let data = noise(size + i as usize, r * 100_000 + i);
            let shape = Shape::new(vec![data.len() as u64]);
            let view = TensorView::new(Dtype::U8, &shape, &data).expect("view");
            let res = if r % 2 == 0 {
                a.put_tensor_with(&view, &[], &raw).map(|h| vec![h])
            } else {
                let mut w = a.writer();
                let mut hs = Vec::new();
                let mut res = Ok(());
                for j in 0..4u64 {
                    let part = noise(size / 4, r * 100_000 + i * 10 + j + 50_000);
                    let shape = Shape::new(vec![part.len() as u64]);
                    let view = TensorView::new(Dtype::U8, &shape, &part).expect("view");
                    match w.put_tensor_with(&view, &[], &raw) {
                        Ok(h) => hs.push(h),
                        Err(e) => {
                            res = Err(e);
                            break;
                        }
                    }
                }
                let committed = w.commit();
                drop(w);
                res.and(committed).map(|()| hs)
            };
            match res {
                Ok(hs) => acked.extend(hs),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let Some(failure) = failure else { continue };
        d.cases += 1;
        let clear = match &failure {
            Error::Io { path, source } => {
                source.raw_os_error() == Some(28) && path.extension().is_some_and(|e| e == "seg")
            }
            // A batch whose earlier put failed is refused at commit as a whole.
            Error::InvalidInput { .. } => r % 2 == 1,
            // Or sled met the full disk first, writing the index after the segment was synced.
            Error::Index { reason, .. } => {
                d.index_failures += 1;
                reason.contains("No space left")
            }
            _ => false,
        };
        let before = check_acknowledged(&a, &acked);
        // After sled fails a write, the open handle cannot read what only sled indexes (the
        // bytes are safe: a reopen finds them). Counted, not lost.
        d.unreadable_until_reopen += before.lost;
        drop(a);
        std::fs::remove_file(&ballast).map_err(|e| e.to_string())?;
        let a = match Archive::open(&store) {
            Ok(a) => a,
            Err(e) => {
                d.first_unhandled
                    .get_or_insert(format!("round {r}: reopen after freeing space: {e}"));
                continue;
            }
        };
        let after = check_acknowledged(&a, &acked);
        let verified = a.verify(&|_, _| {}).map(|r| r.is_ok()).unwrap_or(false);
        let data = noise(size, u64::MAX - r);
        let shape = Shape::new(vec![data.len() as u64]);
        let view = TensorView::new(Dtype::U8, &shape, &data).expect("view");
        let again = a.put_tensor_with(&view, &[], &raw).is_ok();
        d.acked += after;
        if clear && before.wrong + after.lost + after.wrong == 0 && verified && again {
            d.handled += 1;
        } else {
            d.first_unhandled.get_or_insert(format!(
                "round {r}: error {failure}; before {before:?}, after {after:?}, verified \
                 {verified}, put again {again}"
            ));
        }
    }
    Ok(d)
}
