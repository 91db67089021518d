//! The `archive` command line: real outputs in and out, discovery, exit codes, bad input that
//! leaves the store unchanged, and a locked index that names its holder.

use predicates::prelude::*;

use crate::util::{TempStore, sample, stdout_of};

fn put(t: &TempStore, args: &[&str]) -> String {
    stdout_of(t.cmd().arg("put").args(args)).trim().to_owned()
}

#[test]
fn put_get_info_ls_cat_round_trip_real_outputs() {
    let t = TempStore::new();
    t.cmd().arg("init").arg(t.path()).assert().success();
    let probs = sample("digits_test_probs.npy");
    let h = put(
        &t,
        &[
            probs.to_str().expect("path"),
            "--tag",
            "run=exp1",
            "--tag",
            "split=test",
        ],
    );
    assert_eq!(h.len(), 64);
    let out = t.dir.path().join("back.npy");
    t.cmd()
        .args(["get", &h[..6], "-o"])
        .arg(&out)
        .assert()
        .success();
    assert_eq!(
        std::fs::read(&out).expect("out"),
        std::fs::read(&probs).expect("in"),
        "bit-exact .npy"
    );
    let raw = t.dir.path().join("back.bin");
    t.cmd()
        .args(["get", &h[..8], "-o"])
        .arg(&raw)
        .assert()
        .success();
    assert_eq!(std::fs::read(&raw).expect("raw").len(), 450 * 10 * 4);
    t.cmd().args(["info", &h[..8]]).assert().success().stdout(
        predicate::str::contains("F32 [450, 10]")
            .and(predicate::str::contains("run=exp1 split=test")),
    );
    let th = put(
        &t,
        &["--text", "the generated summary", "--tag", "run=exp1"],
    );
    t.cmd()
        .args(["cat", &th[..10]])
        .assert()
        .success()
        .stdout("the generated summary");
    t.cmd()
        .arg("ls")
        .assert()
        .success()
        .stdout(predicate::str::contains(&h[..12]).and(predicate::str::contains(&th[..12])));
    t.cmd()
        .args(["--json", "ls"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"split\":\"test\""));
    t.cmd()
        .arg("verify")
        .assert()
        .success()
        .stdout(predicate::str::contains("all good"));
    t.cmd()
        .arg("stats")
        .assert()
        .success()
        .stdout(predicate::str::contains("entries"));
}

#[test]
fn raw_bytes_need_dtype_and_shape_and_must_agree() {
    let t = TempStore::new();
    t.cmd().arg("init").arg(t.path()).assert().success();
    let f = t.dir.path().join("logits.bin");
    std::fs::write(&f, vec![0u8; 128 * 10 * 4]).expect("write");
    let path = f.to_str().expect("path");
    t.cmd()
        .args(["put", path])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--dtype"));
    let before = t.snapshot();
    t.cmd()
        .args(["put", path, "--dtype", "F32", "--shape", "128,11"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("logits.bin")
                .and(predicate::str::contains("needs 5632 bytes")),
        );
    t.cmd()
        .args([
            "put",
            path,
            "--dtype",
            "F32",
            "--shape",
            "18446744073709551615,2",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("overflows"));
    let bad_text = t.dir.path().join("bad.txt");
    std::fs::write(&bad_text, b"ok \xff\xfe").expect("write");
    t.cmd()
        .arg("put")
        .arg(&bad_text)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("UTF-8"));
    let bad_npy = t.dir.path().join("bad.npy");
    std::fs::write(&bad_npy, b"\x93NUMPY\x01\x00\xff\xff{'descr'").expect("write");
    t.cmd()
        .arg("put")
        .arg(&bad_npy)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.npy"));
    assert_eq!(
        t.snapshot(),
        before,
        "refused puts leave the store unchanged"
    );
    let h = put(&t, &[path, "--dtype", "float32", "--shape", "128,10"]);
    assert_eq!(h.len(), 64);
}

#[test]
fn categorical_outputs_show_their_labels() {
    let t = TempStore::new();
    t.cmd().arg("init").arg(t.path()).assert().success();
    let pred = sample("digits_test_pred.npy");
    let labels = sample("labels.json");
    let h = put(
        &t,
        &[
            pred.to_str().expect("p"),
            "--labels",
            labels.to_str().expect("l"),
        ],
    );
    t.cmd()
        .args(["info", &h[..8]])
        .assert()
        .success()
        .stdout(predicate::str::contains("zero, one, two"));
    let out = t
        .cmd()
        .args(["cat", &h[..8]])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let lines: Vec<String> = String::from_utf8(out)
        .expect("utf8")
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 450);
    assert!(lines.iter().all(|l| {
        [
            "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
        ]
        .contains(&l.as_str())
    }));
    let back = t.dir.path().join("codes.npy");
    t.cmd()
        .args(["get", &h[..8], "-o"])
        .arg(&back)
        .assert()
        .success();
    assert_eq!(
        std::fs::read(back).expect("codes"),
        std::fs::read(&pred).expect("pred")
    );
}

#[test]
fn unknown_hashes_missing_stores_and_usage_errors_have_exit_codes() {
    let t = TempStore::new();
    t.cmd().arg("init").arg(t.path()).assert().success();
    t.cmd()
        .args(["get", "abcdef"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("abcdef"));
    t.cmd().args(["get", "xyz!"]).assert().code(2);
    let mut c = assert_cmd::Command::cargo_bin("archive").expect("bin");
    c.current_dir(t.dir.path())
        .env_remove("ARCHIVE_STORE")
        .arg("ls")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("archive init"));
    t.cmd().arg("frobnicate").assert().code(2);
    t.cmd()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes"));
}

#[test]
fn the_store_is_found_upward_and_through_the_environment() {
    let t = TempStore::new();
    let root = t.dir.path();
    let mut c = assert_cmd::Command::cargo_bin("archive").expect("bin");
    c.current_dir(root)
        .env_remove("ARCHIVE_STORE")
        .arg("init")
        .assert()
        .success();
    let deep = root.join("a/b/c");
    std::fs::create_dir_all(&deep).expect("mkdir");
    let mut c = assert_cmd::Command::cargo_bin("archive").expect("bin");
    let out = c
        .current_dir(&deep)
        .env_remove("ARCHIVE_STORE")
        .args(["put", "--text", "found"])
        .assert()
        .success();
    let h = String::from_utf8(out.get_output().stdout.clone()).expect("utf8");
    let mut c = assert_cmd::Command::cargo_bin("archive").expect("bin");
    c.current_dir("/")
        .env("ARCHIVE_STORE", root.join(".archive"))
        .args(["cat", &h.trim()[..8]])
        .assert()
        .success()
        .stdout("found");
}

#[test]
fn a_held_index_names_its_holder_after_a_bounded_wait() {
    let t = TempStore::new();
    let a = t.create();
    let started = std::time::Instant::now();
    t.cmd()
        .args(["--wait", "0.3", "ls"])
        .assert()
        .code(5)
        .stderr(
            predicate::str::contains(format!("pid {}", std::process::id()))
                .and(predicate::str::contains("in use")),
        );
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    drop(a);
    t.cmd().args(["--wait", "0.3", "ls"]).assert().success();
}

#[test]
fn put_never_waits_for_a_held_index_and_its_entries_are_indexed_next() {
    let t = TempStore::new();
    let a = t.create();
    let first = a.put_text("put while free", &[]).expect("put");
    // `a` holds the index: `put` writes without it, into a segment it adopts or starts.
    let mut puts = Vec::new();
    for i in 0..3 {
        let out = t
            .cmd()
            .args([
                "--wait",
                "0",
                "put",
                "--text",
                &format!("put while held {i}"),
            ])
            .args(["--tag", "run=held"])
            .assert()
            .success();
        puts.push(
            String::from_utf8_lossy(&out.get_output().stdout)
                .trim()
                .to_owned(),
        );
    }
    // A record that refers to an object needs the index to check the reference: it waits.
    let rec = t.dir.path().join("r.json");
    std::fs::write(&rec, format!(r#"{{"x": {{"$ref": "{first}"}}}}"#)).expect("write");
    t.cmd()
        .args(["--wait", "0.1", "put"])
        .arg(&rec)
        .assert()
        .code(5);
    // The holder that hands the index over and takes it again sees them: taking it again
    // catches it up.
    let q = model_archive::query::Query::parse("run = \"held\"").expect("query");
    assert_eq!(a.query(&q).count(), 0, "not indexed yet");
    a.release_index();
    assert_eq!(a.query(&q).filter(|e| e.is_ok()).count(), 3);
    drop(a);
    // The next command to open the store indexes them.
    let listed = stdout_of(t.cmd().args(["query", "run = \"held\"", "--hashes"]));
    let mut listed: Vec<&str> = listed.lines().collect();
    listed.reverse();
    assert_eq!(listed, puts.iter().map(String::as_str).collect::<Vec<_>>());
    for (i, h) in puts.iter().enumerate() {
        t.cmd()
            .args(["cat", h])
            .assert()
            .success()
            .stdout(format!("put while held {i}"));
    }
    // Three puts without the index appended to one segment, not one each.
    let a = t.open();
    assert!(a.verify(&|_, _| {}).expect("verify").is_ok());
    assert!(t.segments().len() <= 2, "{:?}", t.segments());
}

#[test]
fn info_lists_the_fields_of_a_record() {
    let t = TempStore::new();
    t.cmd().arg("init").arg(t.path()).assert().success();
    let probs = sample("digits_test_probs.npy");
    let h = put(&t, &[probs.to_str().expect("path")]);
    let rec = t.dir.path().join("pred.json");
    let json = format!(r#"{{"id": "digits-test-00017", "label": 3, "probs": {{"$ref": "{h}"}}}}"#);
    std::fs::write(&rec, json).expect("write");
    let r = put(&t, &[rec.to_str().expect("path")]);
    t.cmd().args(["info", &r[..10]]).assert().success().stdout(
        predicate::str::contains("fields   3")
            .and(predicate::str::contains("\"digits-test-00017\""))
            .and(predicate::str::contains(format!(
                "tensor F32 [450, 10] ({})",
                &h[..12]
            ))),
    );
}

#[test]
fn get_and_cat_need_no_index_lock() {
    let t = TempStore::new();
    let a = t.create();
    let (dtype, shape, data) = crate::util::sample_tensor("digits_test_probs.npy");
    let h = a
        .put_tensor(
            &model_archive::TensorView::new(dtype, &shape, &data).expect("v"),
            &[],
        )
        .expect("put");
    let th = a.put_text("read while locked", &[]).expect("put");
    let record = model_archive::Record::new()
        .with("probs", model_archive::Value::Ref(h))
        .and_then(|r| r.with("label", model_archive::Value::Int(7)))
        .expect("record");
    let rh = a.put_record(&record, &[]).expect("put");
    // `a` holds the index: commands that need it wait and fail, get and cat do not.
    t.cmd().args(["--wait", "0.1", "ls"]).assert().code(5);
    let out = t.dir.path().join("x.npy");
    t.cmd()
        .args(["--wait", "0.1", "get", &h.to_string()[..8], "-o"])
        .arg(&out)
        .assert()
        .success();
    assert_eq!(
        std::fs::read(&out).expect("out"),
        std::fs::read(sample("digits_test_probs.npy")).expect("in")
    );
    t.cmd()
        .args(["--wait", "0.1", "cat", &th.to_string()[..8]])
        .assert()
        .success()
        .stdout("read while locked");
    t.cmd()
        .args(["--wait", "0.1", "cat", &rh.to_string()[..8]])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("\"label\": 7").and(predicate::str::contains(h.to_string())),
        );
    drop(a);
    // Without lookup tables, get falls back to the index, and opening it rebuilds them.
    std::fs::remove_dir_all(t.path().join("index/lookup")).expect("drop tables");
    t.cmd()
        .args(["cat", &th.to_string()[..8]])
        .assert()
        .success()
        .stdout("read while locked");
    assert!(t.path().join("index/lookup").is_dir());
}

#[test]
fn migrate_reports_a_current_store_and_refuses_a_newer_one() {
    let t = TempStore::new();
    t.cmd().arg("init").arg(t.path()).assert().success();
    t.cmd()
        .arg("migrate")
        .assert()
        .success()
        .stdout(predicate::str::contains("v8 is current"));
    let header = t.path().join("ARCHIVE");
    let mut bytes = std::fs::read(&header).expect("read");
    bytes[8] = model_archive::format::version::SCHEMA_VERSION as u8 + 1;
    std::fs::write(&header, bytes).expect("write");
    t.cmd()
        .arg("migrate")
        .assert()
        .code(6)
        .stderr(predicate::str::contains("newer"));
    t.cmd().arg("ls").assert().code(6);
}

/// `archive query --hashes | head -1`: the reader going away ends the listing quietly, with
/// exit 0, as for any Unix filter (it used to panic on the broken pipe).
#[test]
fn a_listing_into_a_closed_pipe_ends_quietly() {
    use std::io::{BufRead, BufReader};
    let t = TempStore::new();
    let a = t.create();
    let mut w = a.writer();
    for i in 0..3000 {
        w.put_text(&format!("line {i}"), &[("run", "a")])
            .expect("put");
    }
    w.commit().expect("commit");
    drop(w);
    drop(a);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("archive"))
        .arg("--store")
        .arg(t.path())
        .args(["query", "run = \"a\"", "--hashes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("one line");
    assert_eq!(first.trim().len(), 64, "a hash per line");
    // The reader is gone now (dropped above); the rest of the listing hits a closed pipe.
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Run the CLI on `t` with its stdout a pipe whose reading end is closed before it starts
/// (`archive info HASH | head -c 10` once head has gone): every write to stdout fails with
/// EPIPE, however little is written and whenever. `stdin` is a file to read, else empty.
fn into_closed_pipe(
    t: &TempStore,
    args: &[&str],
    stdin: Option<&std::path::Path>,
) -> std::process::Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let stdin = match stdin {
        Some(p) => std::process::Stdio::from(std::fs::File::open(p).expect("stdin file")),
        None => std::process::Stdio::null(),
    };
    std::process::Command::new(env!("CARGO_BIN_EXE_archive"))
        .arg("--store")
        .arg(t.path())
        .env_remove("ARCHIVE_STORE")
        .args(args)
        .stdin(stdin)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn")
        .wait_with_output()
        .expect("wait")
}

/// Every command that prints, in every output mode, into a closed pipe: the reader going away
/// ends the command with exit 0 and nothing on stderr, as for any Unix filter (they used to
/// panic on the broken pipe, exit 101).
#[test]
fn every_command_into_a_closed_pipe_ends_quietly() {
    let t = TempStore::new();
    t.cmd().arg("init").arg(t.path()).assert().success();
    let predictions = sample("predictions.ndjson");
    t.cmd()
        .args(["log", "--tensor-field", "probs", "--tag", "run=a"])
        .write_stdin(std::fs::read(&predictions).expect("sample"))
        .assert()
        .success();
    let probs = sample("digits_test_probs.npy");
    let tensor = put(&t, &[probs.to_str().expect("path"), "--tag", "run=a"]);
    let rec = t.dir.path().join("pred.json");
    let json =
        format!(r#"{{"id": "digits-test-00017", "label": 3, "probs": {{"$ref": "{tensor}"}}}}"#);
    std::fs::write(&rec, json).expect("write");
    let record = put(&t, &[rec.to_str().expect("path")]);
    let pred = sample("digits_test_pred.npy");
    let labels = sample("labels.json");
    let categorical = put(
        &t,
        &[
            pred.to_str().expect("path"),
            "--labels",
            labels.to_str().expect("path"),
        ],
    );
    let text = put(&t, &["--text", "no newline at the end"]);
    let other = TempStore::new();
    other.cmd().arg("init").arg(other.path()).assert().success();
    other
        .cmd()
        .args(["log", "--tag", "run=b"])
        .write_stdin(std::fs::read(&predictions).expect("sample"))
        .assert()
        .success();
    let other_store = other.path();
    let other_store = other_store.to_str().expect("path");
    let new_store = |name: &str| t.dir.path().join(name).to_str().expect("path").to_owned();
    let (init_a, init_b) = (new_store("init-a"), new_store("init-b"));

    let probs = probs.to_str().expect("path");
    let mut runs: Vec<(Vec<&str>, Option<&std::path::Path>)> = Vec::new();
    for json in [false, true] {
        let init = if json { &init_b } else { &init_a };
        let cases: Vec<(Vec<&str>, Option<&std::path::Path>)> = vec![
            (vec!["ls"], None),
            (vec!["ls", "--all"], None),
            (vec!["ls", "--tag", "run=a"], None),
            (vec!["query", "run = \"a\""], None),
            (vec!["query", "run = \"a\"", "--reverse", "-n", "300"], None),
            (vec!["info", &tensor], None),
            (vec!["info", &record], None),
            (vec!["info", &categorical], None),
            (vec!["info", &text], None),
            (vec!["stats"], None),
            (vec!["verify"], None),
            (vec!["reindex"], None),
            (vec!["migrate"], None),
            (vec!["put", "--text", "into a closed pipe"], None),
            (vec!["put", "-", "--kind", "text"], Some(rec.as_path())),
            (vec!["put", probs, rec.to_str().expect("path")], None),
            (
                vec!["log", "--tensor-field", "probs"],
                Some(predictions.as_path()),
            ),
            (vec!["merge", other_store], None),
            (vec!["init", init], None),
        ];
        for (args, stdin) in cases {
            let mode = if json { vec!["--json"] } else { Vec::new() };
            runs.push(([mode, args].concat(), stdin));
        }
    }
    for args in [
        vec!["query", "run = \"a\"", "--hashes"],
        vec!["cat", &text],
        vec!["cat", &record],
        vec!["cat", &categorical],
        vec!["get", &text],
        vec!["get", &record],
        vec!["get", &tensor, "-o", "-"],
        vec!["get", &tensor, "-o", "-", "--format", "raw"],
        vec!["get", &tensor, "-o", "-", "--no-verify"],
        vec!["get", &record, "-o", "-", "--format", "msgpack"],
        vec!["get", &categorical, "-o", "-"],
        vec!["--help"],
        vec!["ls", "--help"],
        vec!["--version"],
    ] {
        runs.push((args, None));
    }

    let mut failures = Vec::new();
    for (args, stdin) in &runs {
        let out = into_closed_pipe(&t, args, *stdin);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // `log` reports on stderr; nothing else may say anything there.
        let quiet = if args.contains(&"log") && !args.contains(&"--json") {
            !stderr.contains("panicked") && !stderr.contains("archive:")
        } else {
            stderr.is_empty()
        };
        if out.status.code() != Some(0) || !quiet {
            failures.push(format!(
                "archive {}: {}: {stderr}",
                args.join(" "),
                out.status
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `get -o x.npy.gz` (and `.zst`, `.zlib`) writes the format of `x.npy`, compressed: Python's
/// gzip and zlib read it back to the same array, and `put` of any of them is the same object.
#[test]
fn get_to_a_compressed_name_writes_the_format_compressed() {
    let t = TempStore::new();
    let dir = tempfile::tempdir().expect("tempdir");
    t.cmd().arg("init").arg(t.path()).assert().success();
    let npy = sample("digits_test_probs.npy");
    let hash = stdout_of(t.cmd().arg("put").arg(&npy));
    let hash = hash.split_whitespace().next().expect("hash").to_owned();
    for name in ["back.npy.gz", "back.npy.zst", "back.npy.zlib"] {
        let out = dir.path().join(name);
        t.cmd()
            .args(["get", &hash, "-o"])
            .arg(&out)
            .assert()
            .success();
        let bytes = std::fs::read(&out).expect("read");
        let magic: &[u8] = match name {
            n if n.ends_with(".gz") => &[0x1f, 0x8b],
            n if n.ends_with(".zst") => &[0x28, 0xb5, 0x2f, 0xfd],
            _ => &[0x78],
        };
        assert!(bytes.starts_with(magic), "{name}");
        let again = stdout_of(t.cmd().arg("put").arg(&out));
        assert_eq!(
            again.split_whitespace().next(),
            Some(hash.as_str()),
            "{name}"
        );
    }
    let script = format!(
        "import gzip, io, zlib, numpy as np\n\
         a = np.load({npy:?})\n\
         g = np.load(gzip.open({gz:?}))\n\
         z = np.load(io.BytesIO(zlib.decompress(open({zl:?}, 'rb').read())))\n\
         assert (a == g).all() and (a == z).all() and a.dtype == g.dtype == z.dtype\n\
         print('ok')\n",
        npy = npy.display().to_string(),
        gz = dir.path().join("back.npy.gz").display().to_string(),
        zl = dir.path().join("back.npy.zlib").display().to_string(),
    );
    let o = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
