//! `archive log`: streams of real predictions in, entries out; bad lines; signals; several
//! processes logging into one store at once.

use std::io::Write;
use std::process::{Command, Stdio};

use model_archive::interop::{Document, Format};
use model_archive::{Archive, Object, Value};
use predicates::prelude::*;

use crate::util::{TempStore, sample};

fn logger(t: &TempStore, args: &[&str]) -> std::process::Child {
    Command::new(assert_cmd::cargo::cargo_bin("archive"))
        .arg("--store")
        .arg(t.path())
        .arg("log")
        .args(args)
        .env_remove("ARCHIVE_STORE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn archive log")
}

#[test]
fn real_predictions_are_logged_with_tensor_fields_and_tags() {
    let t = TempStore::new();
    drop(t.create());
    let ndjson = std::fs::read(sample("predictions.ndjson")).expect("sample");
    t.cmd()
        .args([
            "--json",
            "log",
            "--tag",
            "run=exp1",
            "--tensor-field",
            "probs",
            "--tag-field",
            "label",
        ])
        .write_stdin(ndjson.clone())
        .assert()
        .success()
        .stdout(
            predicate::str::contains("\"records\":450")
                .and(predicate::str::contains("\"indexed\":true")),
        );
    let a = t.open();
    let entries: Vec<_> = a.entries().map(|e| e.expect("entry")).collect();
    assert_eq!(entries.len(), 450);
    // The newest entry is the last line; its probs field is an F32 tensor of the line's numbers.
    let last: serde_json::Value = serde_json::from_slice(
        ndjson
            .split(|b| *b == b'\n')
            .rfind(|l| !l.is_empty())
            .expect("line"),
    )
    .expect("json");
    let e = &entries[0];
    assert!(e.tags.contains(&("run".into(), "exp1".into())));
    assert!(
        e.tags
            .contains(&("label".into(), last["label"].to_string()))
    );
    let Object::Record(r) = a.get(&e.hash).expect("get") else {
        panic!("not a record")
    };
    let Some(Value::Ref(probs)) = r.get("probs") else {
        panic!("probs is not a tensor")
    };
    let Object::Tensor(p) = a.get(probs).expect("probs") else {
        panic!("tensor")
    };
    let expect: Vec<u8> = last["probs"]
        .as_array()
        .expect("list")
        .iter()
        .flat_map(|v| (v.as_f64().expect("number") as f32).to_le_bytes())
        .collect();
    assert_eq!(p.data, expect);
    assert_eq!(
        r.get("id"),
        Some(&Value::Str(last["id"].as_str().expect("id").into()))
    );
}

#[test]
fn a_bad_line_stops_the_run_keeping_what_came_before_unless_skipped() {
    let t = TempStore::new();
    drop(t.create());
    t.cmd()
        .arg("log")
        .write_stdin("{\"a\": 1}\n{\"a\": 2}\nnot json\n{\"a\": 3}\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("stdin line 3"));
    assert_eq!(t.open().stats().expect("stats").entries, 2);
    t.cmd()
        .args(["--json", "log", "--skip-bad"])
        .write_stdin("{\"b\": 1}\n[1, 2\n{\"b\": 2}\n")
        .assert()
        .success()
        .stdout(
            predicate::str::contains("\"records\":2")
                .and(predicate::str::contains("\"skipped\":1")),
        );
    assert_eq!(t.open().stats().expect("stats").entries, 4);
}

#[test]
fn a_msgpack_numpy_stream_is_logged_value_by_value() {
    let t = TempStore::new();
    drop(t.create());
    let (dtype, shape, data) = crate::util::sample_tensor("digits_test_probs.npy");
    let mut stream = Vec::new();
    // Enough values (~300 KiB) that stdin delivers them in several reads, so values arrive
    // cut in two and wait for their rest (`read_one`'s unit test tries every cut).
    for i in 0..3000usize {
        let row = data[(i % 450) * 40..(i % 450 + 1) * 40].to_vec();
        let doc = Document::Map(vec![
            ("id".into(), Document::Scalar(Value::Int(i as i64))),
            (
                "probs".into(),
                Document::Tensor(
                    model_archive::interop::Array::new(
                        "t",
                        dtype,
                        model_archive::Shape::new(vec![10]),
                        row.into(),
                    )
                    .expect("array"),
                ),
            ),
        ]);
        stream
            .extend(model_archive::interop::write(Format::MsgpackNumpy, "s", &doc).expect("write"));
    }
    assert_eq!(shape.dims()[1], 10);
    t.cmd()
        .args(["log", "--format", "msgpack"])
        .write_stdin(stream.clone())
        .assert()
        .success();
    let a = t.open();
    assert_eq!(a.stats().expect("stats").entries, 3000);
    // A stream cut inside a value: the whole values before it are kept, the run fails.
    drop(a);
    t.cmd()
        .args(["log", "--format", "msgpack", "--tag", "cut=yes"])
        .write_stdin(stream[..stream.len() - 5].to_vec())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("record 3000"));
    assert_eq!(t.open().stats().expect("stats").entries, 5999);
}

#[test]
fn sigint_commits_what_was_read_and_exits_non_zero() {
    let t = TempStore::new();
    drop(t.create());
    let mut child = logger(&t, &["--interval", "60", "--batch", "100000"]);
    let mut stdin = child.stdin.take().expect("stdin");
    for i in 0..10 {
        writeln!(stdin, "{{\"i\": {i}}}").expect("write");
    }
    stdin.flush().expect("flush");
    std::thread::sleep(std::time::Duration::from_millis(700));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    drop(stdin);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        Archive::open(t.path())
            .expect("open")
            .stats()
            .expect("stats")
            .entries,
        10
    );
}

#[test]
fn four_loggers_write_into_one_store_at_once() {
    let t = TempStore::new();
    drop(t.create());
    let children: Vec<_> = (0..4)
        .map(|n| {
            let mut child = logger(&t, &["--tag", &format!("worker={n}"), "--batch", "50"]);
            let mut stdin = child.stdin.take().expect("stdin");
            std::thread::spawn(move || {
                for i in 0..300 {
                    writeln!(stdin, "{{\"worker\": {n}, \"i\": {i}}}").expect("write");
                }
            });
            child
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let a = t.open();
    let s = a.stats().expect("stats");
    assert_eq!((s.entries, s.objects), (1200, 1200));
    // Each logger appends to a segment no other process holds: one it starts, or a small one
    // a logger that ended left behind.
    assert!((1..=4).contains(&s.segments), "{} segments", s.segments);
    assert!(a.verify(&|_, _| {}).expect("verify").is_ok());
}

#[test]
fn logged_predictions_are_found_by_query_and_ls_filters() {
    let t = TempStore::new();
    drop(t.create());
    let ndjson = std::fs::read(sample("predictions.ndjson")).expect("sample");
    let labels: Vec<i64> = ndjson
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice::<serde_json::Value>(l).expect("json")["label"]
                .as_i64()
                .expect("label")
        })
        .collect();
    t.cmd()
        .args([
            "log",
            "--tag",
            "run=exp1",
            "--tensor-field",
            "probs",
            "--tag-field",
            "label",
        ])
        .write_stdin(ndjson)
        .assert()
        .success();
    t.cmd()
        .args(["put", "--text", "a note", "--tag", "run=exp2"])
        .assert()
        .success();
    let count = |args: &[&str]| crate::util::stdout_of(t.cmd().args(args)).lines().count();
    let sevens = labels.iter().filter(|l| **l == 7).count();
    let high = labels.iter().filter(|l| **l >= 8).count();
    assert_eq!(
        count(&["query", "label = 7 and run = exp1", "--hashes"]),
        sevens
    );
    assert_eq!(
        count(&["query", "label >= 8 and kind = record", "--hashes"]),
        high
    );
    assert_eq!(count(&["query", "not has label", "--hashes"]), 1);
    assert_eq!(
        count(&["query", "run ~ \"exp*\" and time > 2020-01-01", "--hashes"]),
        451
    );
    assert_eq!(
        count(&["query", "kind = text or size > 1000000", "--hashes"]),
        1
    );
    assert_eq!(
        count(&["--json", "ls", "--tag", "label=7", "--all"]),
        sevens
    );
    assert_eq!(count(&["--json", "ls", "--until", "2020-01-01"]), 0);
    t.cmd()
        .args(["query", "label = 7 and"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("column 14"));
}

/// Issue 10: a disk-full failure said "No space left on device" but not how many records had
/// been made durable.
#[test]
fn a_full_disk_stops_log_saying_how_many_records_are_durable() {
    let fs = match crate::reliability_common::SmallFs::mount("8m") {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIPPED: cannot mount a small tmpfs ({why})");
            return;
        }
    };
    let store = fs.path().join("store");
    let ballast = fs.path().join("ballast");
    std::fs::write(&ballast, vec![1u8; 3 << 20]).expect("ballast");
    drop(Archive::create(&store).expect("create"));
    // 200 records of 64 KiB of noise each: more than the disk holds.
    let mut stream = Vec::new();
    for i in 0..200u64 {
        let data = crate::util::noise(64 << 10, i);
        let array = model_archive::interop::Array::new(
            "x",
            model_archive::Dtype::U8,
            model_archive::Shape::new(vec![data.len() as u64]),
            data.into(),
        )
        .expect("array");
        let doc = Document::Map(vec![("x".into(), Document::Tensor(array))]);
        stream.extend(model_archive::interop::write(Format::MsgpackNumpy, "r", &doc).expect("w"));
    }
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("archive"))
        .arg("--store")
        .arg(&store)
        .args(["log", "--format", "msgpack", "--batch", "10"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    // The logger stops reading when the disk fills: a broken pipe here is expected.
    let _ = stdin.write_all(&stream);
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("No space left"), "{stderr}");
    let durable: u64 = stderr
        .split("stopped: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no durable count in: {stderr}"));
    assert!(durable > 0 && durable < 200, "{stderr}");
    std::fs::remove_file(&ballast).expect("free the ballast");
    let a = Archive::open(&store).expect("open");
    let entries = a.entries().count() as u64;
    assert!(
        entries >= durable,
        "{entries} entries, {durable} said durable"
    );
}

/// Issue 10: a job that died at 40 % and is run again from the start logged its first 40 %
/// twice. `--resume-by` skips the records whose key already has an entry of this run.
#[test]
fn a_rerun_with_resume_by_logs_each_record_once() {
    let t = TempStore::new();
    drop(t.create());
    let lines: Vec<String> = (0..300)
        .map(|i| format!("{{\"id\": \"r{i:03}\", \"x\": {i}}}"))
        .collect();
    let first: String = lines[..120].iter().map(|l| format!("{l}\n")).collect();
    let all: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let log = ["log", "--tag", "run=a", "--tag-field", "id"];
    t.cmd().args(log).write_stdin(first).assert().success();
    // Another run's entries with the same ids are not this run's.
    t.cmd()
        .args(["log", "--tag", "run=b", "--tag-field", "id"])
        .write_stdin(all.clone())
        .assert()
        .success();
    let out = t
        .cmd()
        .args(log)
        .args(["--resume-by", "id"])
        .write_stdin(all)
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("logged 180 records") && stderr.contains("120 logged before and skipped"),
        "{stderr}"
    );
    let a = t.open();
    let q = model_archive::query::Query::parse(r#"run = "a""#).expect("query");
    let mut ids: Vec<String> = a
        .query(&q)
        .map(|e| {
            let e = e.expect("entry");
            e.tags
                .iter()
                .find(|(k, _)| k == "id")
                .map(|(_, v)| v.clone())
                .expect("id tag")
        })
        .collect();
    assert_eq!(ids.len(), 300);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 300, "every record once");
    // It needs the run's tags, and a key that is a tag of every entry.
    t.cmd()
        .args(["log", "--tag-field", "id", "--resume-by", "id"])
        .write_stdin("{}\n")
        .assert()
        .code(2);
    t.cmd()
        .args(["log", "--tag", "run=a", "--resume-by", "id"])
        .write_stdin("{}\n")
        .assert()
        .code(2);
}

/// An entry can be read before the content it logs (logged again by a logger into its own
/// segment, which a reindex may read before the segment holding the content): the totals
/// count its bytes once the content is indexed, so they are the same whatever order the
/// segments are read in, and what a walk of the store finds.
#[test]
fn totals_count_an_entry_read_before_its_content() {
    let text = "logged twice, stored once";
    for _ in 0..40 {
        let t = TempStore::new();
        let first = t.create();
        first.put_text(text, &[("run", "a")]).expect("put");
        first.release_index();
        // The first archive keeps its segment: the logger writes into one of its own.
        let logger = Archive::builder().open_logger(t.path()).expect("logger");
        logger.put_text(text, &[("run", "b")]).expect("log again");
        drop(logger);
        drop(first);
        let segs = t.segments();
        assert_eq!(segs.len(), 2, "{segs:?}");
        let mut a = t.open();
        let stats = a.stats().expect("stats");
        assert_eq!((stats.objects, stats.entries), (1, 2));
        assert_eq!(stats.logical_bytes, 2 * text.len() as u64);
        // Read in name order: the entry comes first when the logger's segment sorts first.
        let entry_first = {
            let q = a.parse_query("run = \"b\"").expect("query");
            let e = a.query(&q).next().expect("entry").expect("entry");
            a.info(&e.hash).expect("info").segment
                != segs[0].file_name().expect("name").to_string_lossy()
        };
        a.reindex(&|_, _| {}).expect("reindex");
        let counts = |mut s: model_archive::Stats| {
            s.index_bytes = 0;
            s
        };
        let after = counts(a.stats().expect("stats"));
        assert_eq!(after.logical_bytes, 2 * text.len() as u64);
        assert_eq!(after, counts(a.recount().expect("recount")));
        if entry_first {
            return;
        }
    }
    panic!("no logger segment sorted before the first writer's in 40 stores");
}

#[test]
fn the_index_catches_up_while_logging_goes_on_and_is_not_kept_while_idle() {
    use std::time::{Duration, Instant};
    let t = TempStore::new();
    drop(t.create());
    let tables = t.path().join("index/lookup");
    let table_count = || {
        std::fs::read_dir(&tables)
            .map(|d| d.filter(|e| e.is_ok()).count())
            .unwrap_or(0)
    };
    let before = table_count();
    let mut child = logger(&t, &["--batch", "5", "--interval", "60"]);
    let mut stdin = child.stdin.take().expect("stdin");
    for i in 0..10 {
        writeln!(stdin, "{{\"i\": {i}}}").expect("write");
    }
    stdin.flush().expect("flush");
    // Nobody else opens the store: a new lookup table can only be the logger's catch-up.
    let start = Instant::now();
    while table_count() == before {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no catch-up while logging"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the logger ended early"
    );
    // Idle, the logger does not keep the index: an open that does not wait gets it.
    let start = Instant::now();
    let a = loop {
        match Archive::builder()
            .lock_timeout(Duration::ZERO)
            .open(t.path())
        {
            Ok(a) => break a,
            Err(e) => assert!(
                start.elapsed() < Duration::from_secs(30),
                "the idle logger keeps the index: {e}"
            ),
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(a.stats().expect("stats").entries, 10);
    drop(a);
    for i in 10..20 {
        writeln!(stdin, "{{\"i\": {i}}}").expect("write");
    }
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("logged 20 records"), "{err}");
    assert!(
        !err.contains("indexed when the store is next opened"),
        "{err}"
    );
    assert_eq!(t.open().stats().expect("stats").entries, 20);
}
