//! Files other people's tools wrote long ago or in odd ways (issue 13): msgpack-numpy written
//! through msgpack's packer before 1.0, numpy's own test data (a Python 2 header, object
//! arrays), a structured `.npy`, ONNX sequences and optionals (lists of tensors). Each is read as its tool reads it, with one hash per value
//! whatever the encoding, or refused naming the real reason.

use predicates::prelude::*;

use crate::interop::python_with;
use std::path::{Path, PathBuf};

use crate::util::{TempStore, python_script, stdout_of, store_with_dirs};

/// The files `script` writes (`script write DIR`) in a new store's directory, for a test: the
/// Python that wrote them, the store, the files' directory, a directory for what comes back,
/// and what the script printed. `None` when Python lacks `modules` (outside CI).
fn files_from(
    script: &str,
    modules: &str,
    name: &str,
) -> Option<(&'static str, TempStore, PathBuf, PathBuf, String)> {
    let py = python_with(modules)?;
    let (t, d, out) = store_with_dirs(name);
    let printed = python_script(py, script, "write", &[&d]);
    Some((py, t, d, out, printed))
}

/// `archive put` of `name` under `d`: its hash.
fn put_in(t: &TempStore, d: &Path, name: &str) -> String {
    stdout_of(t.cmd().arg("put").arg(d.join(name)))
        .trim()
        .to_owned()
}

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/legacy_interop.py"
);

#[test]
fn old_msgpack_numpy_and_numpy_own_test_files_read_as_their_tools_read_them() {
    let Some((py, t, d, out, _)) =
        files_from(SCRIPT, "numpy, msgpack, msgpack_numpy, onnx", "files")
    else {
        return;
    };
    let put = |name: &str| put_in(&t, &d, name);
    for name in ["f32", "u8", "i64_be", "f64_scalar", "complex", "record"] {
        let h = put(&format!("{name}.old.msgpack"));
        // The old encoding and the new one of the same value: one object.
        assert_eq!(h, put(&format!("{name}.new.msgpack")), "{name}");
        t.cmd()
            .args(["get", &h, "-o"])
            .arg(out.join(format!("{name}.msgpack")))
            .assert()
            .success();
    }
    // Arrays, not records of strings.
    let u8_hash = put("u8.old.msgpack");
    t.cmd()
        .args(["info", &u8_hash])
        .assert()
        .success()
        .stdout(predicate::str::contains("tensor"));
    // numpy's own files: `(2L,)` in a Python 2 header reads as `(2,)`.
    let h = put("win64python2.npy");
    assert_eq!(h, put("python3.npy"), "the same array, one hash");
    for f in ["python3.npy", "win64python2.npy"] {
        t.cmd()
            .args(["get", &h, "-o"])
            .arg(out.join(f))
            .assert()
            .success();
    }
    for (f, why) in [
        ("py2-objarr.npy", "pickle"),
        ("py3-objarr.npy", "pickle"),
        ("structured.npy", "structured array"),
    ] {
        t.cmd()
            .arg("put")
            .arg(d.join(f))
            .assert()
            .code(2)
            .stderr(predicate::str::contains(f).and(predicate::str::contains(why)));
    }
    // ONNX sequences (and an optional, which has a one-tensor sequence's bytes) are lists of
    // tensors, named by the `name` tag, and come back byte for byte.
    for (f, name) in [("sequence.pb", "outputs"), ("optional.pb", "maybe")] {
        let h = put(f);
        let listed = stdout_of(
            t.cmd()
                .args(["query", &format!("name = \"{name}\""), "--hashes"]),
        );
        assert_eq!(listed.trim(), h, "{f}");
        let back = out.join(f);
        t.cmd()
            .args(["get", &h, "-o"])
            .arg(&back)
            .assert()
            .success();
        let (a, b) = (
            std::fs::read(d.join(f)).expect("in"),
            std::fs::read(&back).expect("out"),
        );
        assert_eq!(a, b, "{f}: not the same bytes");
    }
    let seq = stdout_of(
        t.cmd()
            .args(["get", &put("sequence.pb"), "--format", "json"]),
    );
    let json: serde_json::Value = serde_json::from_str(&seq).expect("json");
    let dtypes: Vec<_> = json
        .as_array()
        .expect("list")
        .iter()
        .map(|t| t["dtype"].clone())
        .collect();
    assert_eq!(dtypes, ["float32", "int64", "float32"], "{seq}");
    // The same files gzip-, zstd- and zlib-compressed, named with and without the suffix.
    for plain in ["python3.npy", "record.new.msgpack", "u8.old.msgpack"] {
        let h = put(plain);
        let bytes = std::fs::read(d.join(plain)).expect("read");
        for (suffix, packed) in compressed_three_ways(&bytes) {
            std::fs::write(d.join(format!("{plain}.{suffix}")), &packed).expect("write");
            assert_eq!(put(&format!("{plain}.{suffix}")), h, "{plain}.{suffix}");
        }
    }
    base64_in_and_out(&t, &d, &out);
    let report = python_script(py, SCRIPT, "check", &[&d, &out]);
    assert!(report.contains("all equal"), "{report}");
}

/// Pickles from Python's own pickle at every protocol (0 to 5), zlib- and gzip-compressed:
/// read without running them, one hash per value whatever the protocol and the same as the
/// value's msgpack-numpy encoding, and back out equal to what `pickle.load` gives. Malicious
/// pickles (os.system, eval, exec, getattr, numpy.load, nested, object arrays) are refused
/// with exit 2, naming what they would call, and store nothing.
#[test]
fn pickles_of_every_protocol_are_read_without_running_them_and_malicious_ones_refused() {
    const PICKLES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/pickle_interop.py"
    );
    let Some((py, t, d, out, _)) = files_from(PICKLES, "numpy, msgpack, msgpack_numpy", "pickles")
    else {
        return;
    };
    let put = |name: &str| put_in(&t, &d, name);
    let names = [
        "probs",
        "fortran",
        "big_endian",
        "scalar",
        "bools",
        "u8",
        "categories",
        "batch",
        "labels",
        "raw_labels",
    ];
    for name in names {
        let h = put(&format!("{name}.msgpack"));
        for how in ["p0", "p1", "p2", "p3", "p4", "p5", "zlib", "gz"] {
            assert_eq!(put(&format!("{name}.{how}.pkl")), h, "{name}.{how}.pkl");
        }
        t.cmd()
            .args(["get", &h, "-o"])
            .arg(out.join(format!("{name}.msgpack")))
            .assert()
            .success();
    }
    let before = t.snapshot();
    let evil = std::fs::read_to_string(d.join("evil.txt")).expect("evil.txt");
    for line in evil.lines() {
        let (file, why) = line.split_once('\t').expect("name, reason");
        t.cmd()
            .arg("put")
            .arg(d.join("evil").join(file))
            .assert()
            .code(2)
            .stderr(predicate::str::contains(file).and(predicate::str::contains(why)));
    }
    assert_eq!(t.snapshot(), before, "a refused pickle stored something");
    let report = python_script(py, PICKLES, "check", &[&d, &out]);
    assert!(report.contains("all equal"), "{report}");
}

/// `bytes` gzip-, zstd- and zlib-compressed, with the suffix a file of each would have.
fn compressed_three_ways(bytes: &[u8]) -> [(&'static str, Vec<u8>); 3] {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).expect("gzip");
    let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zl.write_all(bytes).expect("zlib");
    [
        ("gz", gz.finish().expect("gzip")),
        ("zst", zstd::encode_all(bytes, 3).expect("zstd")),
        ("zlib", zl.finish().expect("zlib")),
    ]
}

/// `--base64` around a whole file and around an array's raw bytes on the way in, and around
/// any output on the way out; text that is not base64 is refused.
fn base64_in_and_out(t: &TempStore, d: &std::path::Path, out: &std::path::Path) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let put = |args: &[&str]| stdout_of(t.cmd().arg("put").args(args)).trim().to_owned();
    let npy = d.join("python3.npy");
    let h = put(&[npy.to_str().expect("path")]);
    // Wrapped at 76 columns, as `base64` the command writes it.
    let text = b64.encode(std::fs::read(&npy).expect("read"));
    let wrapped: Vec<&str> = text
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    let file = d.join("python3.npy.b64");
    std::fs::write(&file, wrapped.join("\n")).expect("write");
    let f = file.to_str().expect("path");
    assert_eq!(put(&["--base64", "--format", "npy", f]), h);
    // `base64.b64encode(arr.tobytes())` of np.array([1., 1.]).
    let raw = d.join("raw.b64");
    std::fs::write(
        &raw,
        b64.encode([1.0f64.to_le_bytes(), 1.0f64.to_le_bytes()].concat()),
    )
    .expect("write");
    let r = raw.to_str().expect("path");
    assert_eq!(
        put(&["--base64", "--dtype", "float64", "--shape", "2", r]),
        h
    );
    // Out: the same bytes as without --base64, encoded.
    t.cmd()
        .args(["get", &h, "-o"])
        .arg(out.join("plain.npy"))
        .assert()
        .success();
    t.cmd()
        .args(["get", &h, "--base64", "--format", "npy", "-o"])
        .arg(out.join("encoded.b64"))
        .assert()
        .success();
    let encoded = std::fs::read_to_string(out.join("encoded.b64")).expect("read");
    assert_eq!(
        b64.decode(encoded.trim()).expect("base64"),
        std::fs::read(out.join("plain.npy")).expect("read")
    );
    t.cmd()
        .args(["put", "--base64", "--format", "npy"])
        .arg(&npy)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not base64"));
}

/// Baseten's truss: a pydantic model of NumpyArrayField arrays (six dtypes) and datetime,
/// date, time, timedelta, UUID and Decimal values, as truss's msgpack serializer writes it
/// (binary-keyed markers such as `b"__uuid__"`) and as its JSON mode writes it. Beside it,
/// plain msgpack with binary values and keys, extension types, float32s and integer keys. The
/// msgpack files come back byte for byte, truss's own decoders give the model back, and an
/// array is one object whichever mode carried it.
#[test]
fn truss_payloads_and_msgpack_value_trees_come_back_exactly() {
    const TRUSS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/truss_interop.py"
    );
    let modules = "numpy, msgpack, msgpack_numpy, pydantic, truss_chains";
    let Some((py, t, d, out, _)) = files_from(TRUSS, modules, "truss") else {
        return;
    };
    let mut refs = Vec::new();
    for f in ["truss_binary.msgpack", "truss.json", "plain.msgpack"] {
        let h = put_in(&t, &d, f);
        let h = h.as_str();
        t.cmd()
            .args(["get", h, "-o"])
            .arg(out.join(f))
            .assert()
            .success();
        let record: serde_json::Value =
            serde_json::from_str(&stdout_of(t.cmd().args(["cat", h]))).expect("json");
        refs.push(record["probs"]["$ref"].clone());
        if f == "truss_binary.msgpack" {
            // truss's markers keep their binary keys; `cat` shows them readably.
            assert_eq!(
                record["request"]["$map"][0][0],
                serde_json::json!({ "$bin": "__uuid__" }),
                "{record}"
            );
        }
        if f == "plain.msgpack" {
            assert_eq!(
                record["ext"],
                serde_json::json!({ "$ext": 5, "$data": "AQID" })
            );
            assert_eq!(record["alpha"]["$bin_b64"], "AP9yYXcgYnl0ZXM=");
            // A float32 is kept at its width: 0.1f32, not 0.1.
            assert_eq!(record["f32"], serde_json::json!(f64::from(0.1f32)));
        }
    }
    assert!(refs[0].is_string(), "{refs:?}");
    assert_eq!(
        refs[0], refs[1],
        "the same array in binary and JSON mode: one object"
    );
    // Record fields beside the kept values are still queried.
    let hits = stdout_of(t.cmd().args(["query", "label = \"cat\"", "--hashes"]));
    assert_eq!(hits.lines().count(), 2, "{hits}");
    let report = python_script(py, TRUSS, "check", &[&d, &out]);
    assert!(report.contains("3 passed, 0 failed"), "{report}");
}

/// String tensors (issue 13, item 4): numpy's `<U` and `S` arrays, big-endian and Fortran
/// order, in `.npy`, `.npz`, msgpack-numpy and the JSON form, and ONNX STRING tensors (onnx's
/// own test data, and `numpy_helper.from_array`). One hash per array whatever the format;
/// back out as numpy, msgpack-numpy and onnx read them, `.npy` and `.pb` byte for byte.
/// datetime64 and timedelta64 are refused, saying so, with the store unchanged.
#[test]
fn string_tensors_round_trip_in_every_format_that_has_them() {
    const STRINGS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/strings_interop.py"
    );
    let modules = "numpy, msgpack, msgpack_numpy, onnx";
    let Some((py, t, d, out, onnx_files)) = files_from(STRINGS, modules, "strings") else {
        return;
    };
    let onnx_files: Vec<&str> = onnx_files.lines().filter(|l| !l.is_empty()).collect();
    assert!(
        onnx_files.len() >= 10,
        "onnx's STRING test files: {onnx_files:?}"
    );
    let put = |name: &str| put_in(&t, &d, name);
    let text = put("text.npy");
    for same in ["text_be.npy", "text_f.npy", "text.msgpack", "text.json"] {
        assert_eq!(put(same), text, "{same}: one array, one hash");
    }
    t.cmd()
        .args(["info", &text])
        .assert()
        .success()
        .stdout(predicate::str::contains("tensor STR4 [2, 3]"));
    t.cmd()
        .args(["show", &text])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"é🙂\""));
    let bytes = put("bytes.npy");
    assert_eq!(put("bytes.msgpack"), bytes);
    let mut files: Vec<&str> = vec![
        "text.npy",
        "text_be.npy",
        "text_f.npy",
        "bytes.npy",
        "empty.npy",
        "mixed.npz",
        "text.msgpack",
        "bytes.msgpack",
        "text.json",
        "from_array.pb",
    ];
    files.extend(&onnx_files);
    for f in files {
        let h = put(f);
        t.cmd()
            .args(["get", &h, "-o"])
            .arg(out.join(f))
            .assert()
            .success();
    }
    let report = python_script(py, STRINGS, "check", &[&d, &out]);
    assert!(
        report.contains(&format!("{} passed", 9 + 1 + onnx_files.len())),
        "{report}"
    );
    // safetensors has no strings; datetime64 and timedelta64 are not stored.
    let before = t.snapshot();
    t.cmd()
        .args(["get", &text, "-o"])
        .arg(out.join("x.safetensors"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "STR4, which safetensors cannot hold",
        ));
    for (f, why) in [("when.npy", "datetime64"), ("took.npy", "timedelta64")] {
        t.cmd()
            .arg("put")
            .arg(d.join(f))
            .assert()
            .code(2)
            .stderr(predicate::str::contains(f).and(predicate::str::contains(why)));
    }
    assert_eq!(
        t.snapshot(),
        before,
        "refused puts leave the store unchanged"
    );
}
