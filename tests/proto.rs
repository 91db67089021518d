//! Protobuf messages of a user's own schema (issue 13): written by protobuf's Python runtime,
//! `put --proto demo.proto --message M` stores each as a record (repeated numbers as tensors),
//! and `get --proto ... --message M` writes it back byte for byte, with the `.proto` file or a
//! descriptor set alike; bad schemas, names and messages are refused with exit 2, the store
//! unchanged.

use predicates::prelude::*;

use crate::interop::python_with;
use crate::util::{python_script, stdout_of, store_with_dirs};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/proto_interop.py"
);
const PROTO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/demo.proto");

fn message_of(name: &str) -> &'static str {
    if name == "myarray" {
        "MyArray"
    } else {
        "demo.Prediction"
    }
}

#[test]
fn user_messages_round_trip_byte_for_byte_and_bad_input_is_refused() {
    let Some(py) = python_with("google.protobuf, numpy") else {
        return;
    };
    let (t, d, out) = store_with_dirs("proto");
    std::fs::create_dir_all(&d).expect("mkdir");
    python_script(py, SCRIPT, "write", &[&d]);
    let names = std::fs::read_to_string(d.join("names.txt")).expect("names");
    let set = d.join("demo.binpb");
    for name in names.lines() {
        let file = d.join(format!("{name}.pb"));
        let h = stdout_of(t.cmd().arg("put").arg(&file).args([
            "--proto",
            PROTO,
            "--message",
            message_of(name),
        ]));
        let h = h.trim();
        // The descriptor set Python wrote reads the message as the same record.
        let again = stdout_of(
            t.cmd()
                .arg("put")
                .arg(&file)
                .arg("--proto")
                .arg(&set)
                .args(["--message", message_of(name)]),
        );
        assert_eq!(again.trim(), h, "{name}");
        let back = out.join(format!("{name}.pb"));
        t.cmd()
            .args(["get", h, "-o"])
            .arg(&back)
            .args(["--proto", PROTO, "--message", message_of(name)])
            .assert()
            .success();
        let (a, b) = (
            std::fs::read(&file).expect("in"),
            std::fs::read(&back).expect("out"),
        );
        assert_eq!(a, b, "{name}: not the same bytes");
    }
    let report = python_script(py, SCRIPT, "check", &[&d, &out]);
    assert!(report.contains("7 messages equal"), "{report}");
    // Records are queried by their fields; repeated numbers are tensors.
    let found =
        stdout_of(
            t.cmd()
                .args(["query", "label = 1 and meta.source = \"cam2\"", "--hashes"]),
        );
    // Two entries (put from the .proto and from the descriptor set), one object.
    let hashes: std::collections::BTreeSet<&str> = found.lines().collect();
    assert_eq!((found.lines().count(), hashes.len()), (2, 1), "{found}");
    let first = hashes.first().copied().unwrap_or_default();
    let info = stdout_of(t.cmd().args(["get", first]));
    assert!(
        info.contains(
            "\"probs\": {\n    \"shape\": [\n      10\n    ],\n    \"dtype\": \"float32\""
        ),
        "{info}"
    );

    let before = t.snapshot();
    let pred = d.join("pred1.pb");
    let bad_proto = d.join("bad.proto");
    std::fs::write(
        &bad_proto,
        "syntax = \"proto3\"; message X { repeated floot a = 1; }",
    )
    .expect("write");
    let cases: [(Vec<std::ffi::OsString>, &str); 4] = [
        (
            vec![PROTO.into(), "--message".into(), "Nope".into()],
            "has no message `Nope`",
        ),
        (
            vec![PROTO.into(), "--message".into(), "MyArray".into()],
            "not a demo.MyArray message",
        ),
        (
            vec![bad_proto.into(), "--message".into(), "X".into()],
            "cannot compile",
        ),
        (
            vec![d.join("names.txt").into(), "--message".into(), "X".into()],
            "neither a .proto file nor a descriptor set",
        ),
    ];
    for (args, why) in cases {
        t.cmd()
            .arg("put")
            .arg(&pred)
            .arg("--proto")
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(why));
    }
    assert_eq!(t.snapshot(), before, "a refused message stored something");
}
