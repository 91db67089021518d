//! Remotes, against a real S3 server on loopback (SeaweedFS, `s3_common`): push, clone and
//! bit-exact gets; incremental push and pull; two stores pushing at once; pushes killed and
//! cut off by a stopped server, then finished; remote objects damaged by hand; bad input.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::s3_common::{KEY_ID, SECRET, Weed, shared};
use crate::util::{TempStore, noise, sample, stdout_of};

/// The archive command with the test credentials (and no AWS profile of the machine's).
fn with_credentials(cmd: &mut assert_cmd::Command) -> &mut assert_cmd::Command {
    cmd.env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
}

/// The CLI on `t`, with the test credentials.
fn cli(t: &TempStore) -> assert_cmd::Command {
    let mut c = t.cmd();
    with_credentials(&mut c);
    c
}

/// A store holding sample tensors, a big tensor (two ranged GETs), a record of tensors and
/// `records` logged records tagged by split; with remote `origin` at `url`.
fn filled(url: &str, endpoint: &str, records: usize, seed: u64) -> TempStore {
    let t = TempStore::new();
    cli(&t).arg("init").arg(t.path()).assert().success();
    for s in [
        "digits_test_images.npy",
        "digits_test_probs.npy",
        "mlp_logits.npy",
    ] {
        cli(&t)
            .arg("put")
            .arg(sample(s))
            .args(["--tag", "run=a"])
            .assert()
            .success();
    }
    let big = t.dir.path().join("big.bin");
    std::fs::write(&big, noise(3 << 20, seed)).expect("write");
    cli(&t)
        .arg("put")
        .arg(&big)
        .args([
            "--dtype",
            "U8",
            "--shape",
            &(3usize << 20).to_string(),
            "--codec",
            "raw",
        ])
        .assert()
        .success();
    let lines: String = (0..records)
        .map(|i| {
            format!(
                "{{\"id\": \"s{seed}-{i}\", \"label\": {}, \"split\": \"{}\"}}\n",
                i % 10,
                ["train", "val", "test"][i % 3]
            )
        })
        .collect();
    cli(&t)
        .args(["log", "--tag-field", "split"])
        .write_stdin(lines)
        .assert()
        .success();
    cli(&t)
        .args(["remote", "add", "origin", url, "--endpoint", endpoint])
        .assert()
        .success();
    t
}

/// Every object hash the store's entries log.
fn hashes(t: &TempStore) -> BTreeSet<String> {
    stdout_of(cli(t).args(["--json", "ls", "--all"]))
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            v["hash"].as_str().expect("hash").to_owned()
        })
        .collect()
}

fn get(t: &TempStore, hash: &str, remote: Option<&str>) -> Vec<u8> {
    let mut c = cli(t);
    c.args(["get", hash]);
    if let Some(r) = remote {
        c.args(["--remote", r]);
    }
    c.assert().success().get_output().stdout.clone()
}

fn clone_of(url: &str, endpoint: &str) -> TempStore {
    let c = TempStore::new();
    let mut cmd = cli(&c);
    cmd.args(["clone", url]).arg(c.path());
    if !endpoint.is_empty() {
        cmd.args(["--endpoint", endpoint]);
    }
    cmd.assert().success();
    c
}

/// Remote `disk`, a directory beside `t`'s store: its path and URL.
fn add_disk_remote(t: &TempStore) -> (std::path::PathBuf, String) {
    let dir = t.dir.path().join("remote");
    let url = format!("file://{}", dir.display());
    cli(t)
        .args(["remote", "add", "disk", &url])
        .assert()
        .success();
    (dir, url)
}

/// Put `n` raw tensors of 8 MiB of noise (frames of their own, a piece each on a remote).
fn put_noise_tensors(t: &TempStore, n: u64, seed: u64) {
    for k in 0..n {
        let f = t.dir.path().join(format!("t{k}.bin"));
        std::fs::write(&f, noise(8 << 20, seed + k)).expect("write");
        cli(t)
            .arg("put")
            .arg(&f)
            .args(["--dtype", "U8", "--shape", "8388608", "--codec", "raw"])
            .assert()
            .success();
    }
}

#[test]
fn push_clone_and_get_back_bit_exact() {
    let weed = shared();
    let url = weed.url("push-clone");
    let src = filled(&url, &weed.endpoint(), 300, 1);
    let out = stdout_of(cli(&src).args(["--json", "push"]));
    let report: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert!(report["pieces"].as_u64().expect("pieces") >= 1, "{out}");
    assert_eq!(report["tables"], 1, "{out}");
    // Nothing new: nothing sent but the listings.
    let again: serde_json::Value =
        serde_json::from_str(stdout_of(cli(&src).args(["--json", "push"])).trim()).expect("json");
    assert_eq!(
        (again["pieces"].as_u64(), again["tables"].as_u64()),
        (Some(0), Some(0))
    );

    let copy = clone_of(&url, &weed.endpoint());
    let ours = hashes(&src);
    assert_eq!(hashes(&copy), ours);
    assert_eq!(ours.len(), 304);
    for h in &ours {
        let want = get(&src, h, None);
        assert_eq!(get(&copy, h, None), want, "clone: {h}");
    }
    // Read remotely without a clone: the big tensor (two ranged GETs), a sample, records.
    for h in ours.iter().step_by(17) {
        assert_eq!(
            get(&src, h, Some("origin")),
            get(&src, h, None),
            "remote: {h}"
        );
    }
    let stats = |t: &TempStore| stdout_of(cli(t).args(["--json", "stats"]));
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&stats(&src)).expect("json"),
        serde_json::from_str(&stats(&copy)).expect("json"),
    );
    assert_eq!(
        (a["entries"].clone(), a["objects"].clone()),
        (b["entries"].clone(), b["objects"].clone())
    );
    cli(&copy).arg("verify").assert().success();
    cli(&src)
        .args(["verify", "--remote", "origin"])
        .assert()
        .success();
}

#[test]
fn a_remote_read_counts_its_requests() {
    let weed = shared();
    let url = weed.url("requests");
    let src = filled(&url, &weed.endpoint(), 50, 2);
    cli(&src).arg("push").assert().success();
    let big = stdout_of(cli(&src).args(["--json", "ls", "--limit", "100"]))
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .find(|v| v["bytes"].as_u64().is_some_and(|n| n == 3 << 20))
        .map(|v| v["hash"].as_str().expect("hash").to_owned())
        .expect("the big tensor");
    let requests = |c: &mut assert_cmd::Command| -> u64 {
        let out = c.env("ARCHIVE_TRACE_REMOTE", "1").assert().success();
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        err.split_whitespace()
            .zip(err.split_whitespace().skip(1))
            .find(|(_, w)| *w == "requests")
            .and_then(|(n, _)| n.parse().ok())
            .expect("a request count")
    };
    // The tables are cached by push: a LIST, then two ranged GETs (the frame is over 256 KiB).
    assert_eq!(
        requests(cli(&src).args(["get", &big, "--remote", "origin", "-o", "-"])),
        3
    );
}

#[test]
fn pushes_and_pulls_carry_only_what_is_new() {
    let weed = shared();
    let url = weed.url("incremental");
    let src = filled(&url, &weed.endpoint(), 100, 3);
    cli(&src).arg("push").assert().success();
    let copy = clone_of(&url, &weed.endpoint());
    let sealed_before: Vec<(std::path::PathBuf, Vec<u8>)> = copy.snapshot();

    // More records into the source's segment, and some into the clone (a segment of its own).
    let lines: String = (0..50)
        .map(|i| format!("{{\"id\": \"late-{i}\"}}\n"))
        .collect();
    cli(&src).arg("log").write_stdin(lines).assert().success();
    cli(&copy)
        .args(["put", "--text", "the clone's own", "--tag", "where=clone"])
        .assert()
        .success();
    let out: serde_json::Value =
        serde_json::from_str(stdout_of(cli(&src).args(["--json", "push"])).trim()).expect("json");
    assert_eq!(out["tables"], 1);
    let pulled: serde_json::Value =
        serde_json::from_str(stdout_of(cli(&copy).args(["--json", "pull"])).trim()).expect("json");
    assert!(pulled["pieces"].as_u64().expect("pieces") >= 1);
    let mine = hashes(&copy);
    assert!(hashes(&src).is_subset(&mine));
    assert_eq!(mine.len(), hashes(&src).len() + 1);
    // The pulled segment grew by the new pieces; its old bytes are unchanged.
    for (path, old) in &sealed_before {
        let now = std::fs::read(path).expect("read");
        assert_eq!(&now[..old.len()], &old[..]);
    }
    // The clone's own text went into a segment of its own, not into a pulled one.
    let sealed: BTreeSet<String> = std::fs::read_dir(copy.path().join("sealed"))
        .expect("sealed")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(sealed.len(), sealed_before.len());
    assert_eq!(copy.segments().len(), sealed.len() + 1);
    cli(&copy).arg("verify").assert().success();
}

#[test]
fn two_stores_push_into_one_remote_at_once() {
    let weed = shared();
    let url = weed.url("concurrent");
    let a = filled(&url, &weed.endpoint(), 400, 4);
    let b = filled(&url, &weed.endpoint(), 400, 5);
    let spawn = |t: &TempStore| {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("archive"));
        c.arg("--store").arg(t.path()).arg("push");
        c.env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET);
        c.spawn().expect("push")
    };
    let (mut pa, mut pb) = (spawn(&a), spawn(&b));
    assert!(pa.wait().expect("wait").success());
    assert!(pb.wait().expect("wait").success());
    let copy = clone_of(&url, &weed.endpoint());
    let both: BTreeSet<String> = hashes(&a).union(&hashes(&b)).cloned().collect();
    // The samples are in both (one object each, two entries); the rest in one.
    assert_eq!(hashes(&copy), both);
    let entries = |t: &TempStore| {
        stdout_of(cli(t).args(["--json", "ls", "--all"]))
            .lines()
            .count()
    };
    assert_eq!(entries(&copy), entries(&a) + entries(&b));
    for h in both.iter().step_by(29) {
        let want = if hashes(&a).contains(h) {
            get(&a, h, None)
        } else {
            get(&b, h, None)
        };
        assert_eq!(get(&copy, h, None), want);
        assert_eq!(get(&a, h, Some("origin")), want, "remote read of {h}");
    }
    cli(&a)
        .args(["verify", "--remote", "origin"])
        .assert()
        .success();
}

/// A store of about 40 MiB in several segments' pieces, for pushes that take a while.
fn bulky(url: &str, endpoint: &str, seed: u64) -> TempStore {
    let t = filled(url, endpoint, 200, seed);
    put_noise_tensors(&t, 5, seed * 100);
    t
}

#[test]
fn a_push_killed_anywhere_is_finished_by_the_next() {
    let weed = shared();
    let url = weed.url("killed");
    let src = bulky(&url, &weed.endpoint(), 6);
    for delay_ms in [30u64, 120, 250] {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("archive"));
        c.arg("--store").arg(src.path()).arg("push");
        c.env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET);
        let mut child = c.spawn().expect("push");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Whatever the remote holds now reads back clean: no half objects (or there is
        // nothing yet, exit 10).
        let out = cli(&src).args(["verify", "--remote", "origin"]).assert();
        let code = out.get_output().status.code();
        assert!(matches!(code, Some(0 | 10)), "{:?}", out.get_output());
    }
    cli(&src).arg("push").assert().success();
    let copy = clone_of(&url, &weed.endpoint());
    assert_eq!(hashes(&copy), hashes(&src));
    for h in hashes(&src) {
        assert_eq!(get(&copy, &h, None), get(&src, &h, None));
    }
}

#[test]
fn a_push_cut_off_by_the_server_stopping_is_finished_later() {
    let mut weed = Weed::start();
    let url = weed.url("server-down");
    let src = bulky(&url, &weed.endpoint(), 7);
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("archive"));
    c.arg("--store").arg(src.path()).arg("push");
    c.env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .stderr(std::process::Stdio::piped());
    let started = Instant::now();
    let child = c.spawn().expect("push");
    std::thread::sleep(Duration::from_millis(150));
    weed.stop();
    let out = child.wait_with_output().expect("wait");
    // Either it finished before the stop, or it failed, in bounded time, saying why.
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(8), "{err}");
        assert!(err.contains("cannot be reached"), "{err}");
    }
    assert!(started.elapsed() < Duration::from_secs(60));
    // While it is down, every remote command fails the same way, quickly.
    let t = Instant::now();
    cli(&src).arg("push").assert().code(8);
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    weed.resume();
    cli(&src).arg("push").assert().success();
    cli(&src)
        .args(["verify", "--remote", "origin"])
        .assert()
        .success();
    let copy = clone_of(&url, &weed.endpoint());
    assert_eq!(hashes(&copy), hashes(&src));
}

#[test]
fn damaged_remote_objects_are_named_and_never_used() {
    let weed = shared();
    let url = weed.url("damaged");
    let src = filled(&url, &weed.endpoint(), 200, 8);
    cli(&src).arg("push").assert().success();
    let prefix = url
        .trim_start_matches(&format!("s3://{}/", crate::s3_common::BUCKET))
        .to_owned();
    let seg = src.segments()[0]
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    // The piece's key, from the pushing store's own bytes: its name is range and hash.
    let bytes = std::fs::read(&src.segments()[0]).expect("read");
    let sum = blake3::hash(&bytes).to_hex()[..32].to_owned();
    let key = format!(
        "{prefix}/segments/{seg}/{:016x}-{:016x}-{sum}",
        0,
        bytes.len()
    );
    assert_eq!(weed.read(&key), bytes, "the piece as pushed");

    // A flipped byte in the middle of the piece.
    let mut flipped = bytes.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x10;
    weed.overwrite(&key, &flipped);
    let out = cli(&src)
        .args(["verify", "--remote", "origin"])
        .assert()
        .code(4);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains(&seg) && text.contains("damaged"), "{text}");
    // A clone names it and holds none of its bytes.
    let c = TempStore::new();
    let out = cli(&c)
        .args(["clone", &url])
        .arg(c.path())
        .args(["--endpoint", &weed.endpoint()])
        .assert()
        .code(4);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains(&seg) && err.contains("damaged"), "{err}");
    assert!(!c.path().join("segments").join(&seg).exists());
    // A remote read of an object in it fails, exit 4, rather than serve it.
    let h = hashes(&src).into_iter().next().expect("a hash");
    let out = cli(&src).args(["get", &h, "--remote", "origin"]).assert();
    let code = out.get_output().status.code();
    // The flip may land in a frame this object is not in; the object must then read back right.
    if code == Some(0) {
        assert_eq!(out.get_output().stdout, get(&src, &h, None));
    } else {
        assert_eq!(code, Some(4));
    }

    // Truncated.
    weed.overwrite(&key, &bytes[..bytes.len() / 3]);
    let out = cli(&src)
        .args(["verify", "--remote", "origin"])
        .assert()
        .code(4);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("truncated"), "{text}");
    let out = cli(&src).args(["get", &h, "--remote", "origin"]).assert();
    assert_ne!(out.get_output().status.code(), Some(0));
}

#[test]
fn bad_remotes_get_clear_errors_and_distinct_codes() {
    let weed = shared();
    let t = filled(&weed.url("bad"), &weed.endpoint(), 10, 9);
    let before = t.snapshot();
    let err = |c: &mut assert_cmd::Command, code: i32| -> String {
        let out = c.assert().code(code);
        String::from_utf8_lossy(&out.get_output().stderr).into_owned()
    };
    // An unknown remote: not found.
    let e = err(cli(&t).args(["push", "nope"]), 3);
    assert!(e.contains("no remote named `nope`"), "{e}");
    // A malformed URL: bad input, at add and at clone.
    let e = err(cli(&t).args(["remote", "add", "x", "s3://Bad_Bucket/x"]), 2);
    assert!(e.contains("Bad_Bucket"), "{e}");
    let e = err(
        cli(&t).args(["clone", "ftp://host/x", "/tmp/never-made"]),
        2,
    );
    assert!(e.contains("ftp://host/x"), "{e}");
    assert!(!Path::new("/tmp/never-made").exists());
    // Wrong credentials: denied.
    let e = err(
        cli(&t).args(["push"]).env("AWS_SECRET_ACCESS_KEY", "wrong"),
        9,
    );
    assert!(e.contains("access denied"), "{e}");
    // No archive at the URL (a prefix nothing was pushed to): missing.
    let c = TempStore::new();
    let e = err(
        cli(&c)
            .args(["clone", &weed.url("never-pushed")])
            .arg(c.path())
            .args(["--endpoint", &weed.endpoint()]),
        10,
    );
    assert!(e.contains("no archive here"), "{e}");
    assert!(!c.path().exists(), "a failed clone leaves nothing");
    // A server that is down: unreachable, in bounded time.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    cli(&t)
        .args([
            "remote",
            "add",
            "down",
            "s3://outputs/x",
            "--endpoint",
            &format!("http://127.0.0.1:{port}"),
        ])
        .assert()
        .success();
    let start = Instant::now();
    let e = err(cli(&t).args(["push", "down"]), 8);
    assert!(e.contains("cannot be reached"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!(t.snapshot(), before, "the store is untouched");
}

#[test]
fn a_directory_is_a_remote_too() {
    let t = TempStore::new();
    cli(&t).arg("init").arg(t.path()).assert().success();
    cli(&t)
        .arg("put")
        .arg(sample("mlp_logits.npy"))
        .assert()
        .success();
    let (_, url) = add_disk_remote(&t);
    cli(&t).args(["push", "disk"]).assert().success();
    let c = clone_of(&url, "");
    assert_eq!(hashes(&c), hashes(&t));
    let h = hashes(&t).into_iter().next().expect("hash");
    assert_eq!(get(&t, &h, Some("disk")), get(&t, &h, None));
}

#[test]
fn a_pull_names_a_damaged_piece_and_keeps_what_it_had() {
    let weed = shared();
    let url = weed.url("pull-damaged");
    let prefix = url
        .trim_start_matches(&format!("s3://{}/", crate::s3_common::BUCKET))
        .to_owned();
    let src = filled(&url, &weed.endpoint(), 50, 10);
    cli(&src).arg("push").assert().success();
    let copy = clone_of(&url, &weed.endpoint());
    let before = copy.snapshot();
    let lengths = |t: &TempStore| -> Vec<(std::path::PathBuf, u64)> {
        t.segments()
            .into_iter()
            .map(|p| {
                let n = std::fs::metadata(&p).expect("stat").len();
                (p, n)
            })
            .collect()
    };
    let old = lengths(&src);
    let lines: String = (0..40)
        .map(|i| format!("{{\"id\": \"more-{i}\"}}\n"))
        .collect();
    cli(&src).arg("log").write_stdin(lines).assert().success();
    cli(&src).arg("push").assert().success();
    // The one new piece: what a segment gained, or a new segment (under 16 MiB: one piece).
    let (path, from, to) = lengths(&src)
        .into_iter()
        .find_map(|(p, n)| {
            let before = old.iter().find(|(q, _)| *q == p).map_or(0, |(_, m)| *m);
            (n > before).then_some((p, before, n))
        })
        .expect("a segment that grew");
    let seg = path
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let all = std::fs::read(&path).expect("read");
    let sum = blake3::hash(&all[from as usize..to as usize]).to_hex()[..32].to_owned();
    let key = &format!("{prefix}/segments/{seg}/{from:016x}-{to:016x}-{sum}");
    let mut bytes = weed.read(key);
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    weed.overwrite(key, &bytes);
    let out = cli(&copy).arg("pull").assert().code(4);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let leaf = key.rsplit('/').next().expect("leaf");
    assert!(err.contains(leaf) && err.contains("damaged"), "{err}");
    // Nothing of the damaged piece was written; what the clone had is as it was.
    assert_eq!(copy.snapshot(), before);
    cli(&copy).arg("verify").assert().success();
}

/// A push uploads a segment's pieces in parallel, so one cut off can leave a later piece
/// without the one before it: the remote is incomplete, not damaged. Verify says so without
/// calling it a problem, readers skip the piece, and the next push fills the gap.
#[test]
fn a_gap_left_by_a_cut_off_push_waits_for_the_next() {
    let t = TempStore::new();
    cli(&t).arg("init").arg(t.path()).assert().success();
    // Three raw 8 MiB tensors: a segment of several pieces (16 MiB each at most).
    put_noise_tensors(&t, 3, 40);
    let (dir, url) = add_disk_remote(&t);
    cli(&t).args(["push", "disk"]).assert().success();
    let mut pieces: Vec<std::path::PathBuf> = walkdir(&dir.join("segments"));
    pieces.sort();
    assert!(pieces.len() >= 2, "{pieces:?}");
    // As if the push had been cut off before the first piece (and so the table naming the
    // pieces, written last) went up.
    std::fs::remove_file(&pieces[0]).expect("remove");
    std::fs::remove_dir_all(dir.join("index")).expect("remove the tables");
    let out = stdout_of(cli(&t).args(["verify", "--remote", "disk"]));
    let leaf = pieces[1].file_name().expect("leaf").to_string_lossy();
    assert!(out.contains("WAIT") && out.contains(leaf.as_ref()), "{out}");
    assert!(!out.contains("BAD"), "{out}");
    let c = clone_of(&url, "");
    assert!(hashes(&c).is_empty(), "a reader took bytes past the gap");
    // The next push uploads the missing piece (the other is there already).
    cli(&t).args(["push", "disk"]).assert().success();
    let out = stdout_of(cli(&t).args(["verify", "--remote", "disk"]));
    assert!(!out.contains("WAIT") && out.contains("all good"), "{out}");
    assert_eq!(hashes(&clone_of(&url, "")), hashes(&t));
}

/// Every file under `dir`.
fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The 4th byte of the magic of each lookup table in `dir` (`C`: compact).
fn table_kinds(dir: &std::path::Path) -> Vec<u8> {
    walkdir(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "tbl"))
        .map(|p| std::fs::read(&p).expect("table")[3])
        .collect()
}

/// A store of 70,000 logged records has compact lookup tables (of each object its frame and
/// its hash's first 48 bits, not its pack item); pushed to a directory remote, the remote's
/// table is compact too. Records read back the same by their hash and by a short one, from
/// the store, from the remote without a clone, and from a clone; both verify.
#[test]
fn compact_tables_find_objects_here_on_a_remote_and_in_a_clone() {
    let t = TempStore::new();
    cli(&t).arg("init").arg(t.path()).assert().success();
    let lines: String = (0..70_000)
        .map(|i| format!("{{\"id\": \"c-{i}\", \"label\": {}}}\n", i % 10))
        .collect();
    cli(&t)
        // One batch, however long it takes: one table of 70,000 entries (a logger's smaller
        // tables are merged as they grow).
        .args([
            "log",
            "--tag-field",
            "id",
            "--batch",
            "100000",
            "--interval",
            "3600",
        ])
        .write_stdin(lines)
        .assert()
        .success();
    let all = hashes(&t);
    assert_eq!(all.len(), 70_000);
    let local = table_kinds(&t.path().join("index/lookup"));
    assert!(local.contains(&b'C'), "{local:?}");
    let (dir, url) = add_disk_remote(&t);
    cli(&t).args(["push", "disk"]).assert().success();
    let remote = table_kinds(&dir.join("index"));
    assert_eq!(remote, [b'C']);
    let copy = clone_of(&url, "");
    for h in all.iter().step_by(6_997) {
        let want = get(&t, h, None);
        assert!(String::from_utf8_lossy(&want).contains("c-"), "a record");
        assert_eq!(get(&t, &h[..14], None), want, "short hash {h}");
        assert_eq!(get(&t, h, Some("disk")), want, "remote {h}");
        assert_eq!(get(&t, &h[..14], Some("disk")), want, "remote short {h}");
        assert_eq!(get(&copy, h, None), want, "clone {h}");
    }
    for s in [&t, &copy] {
        cli(s).arg("verify").assert().success();
    }
}
