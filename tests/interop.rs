//! Interop against the real Python libraries, and bad input in every format.
//!
//! `.npy` against numpy: numpy writes (every numeric dtype, Fortran order, big-endian, 0-d,
//! empty, format 2.0), `archive put`, `archive get -o`, numpy reads back bit for bit; and the
//! content hash is the same whichever layout the same values came in.
//!
//! Every other format (tests/interop/formats_interop.py): numpy, safetensors, msgpack-numpy,
//! json and onnx write; `archive put`; `archive get -o` the same format; the same library reads
//! back and finds the same keys, values and arrays, bit for bit; and each array has the hash it
//! has when put as a plain `.npy`, whichever format and however deep it came in.
//!
//! Bad input: truncated files, wrong magic, lying headers, overlapping offsets, overflowing
//! shapes, a zip bomb, invalid base64, a wrong protobuf wire type, pickles: exit code 2, the
//! file and the problem named, the store unchanged.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use model_archive::interop::{self, Array, Document, Format};
use model_archive::{Archive, Dtype, Object, ObjectHash, Shape, Value};
use predicates::prelude::*;

use crate::util::TempStore;

/// `python3` if it can import `modules`; in CI their absence is a failure.
pub fn python_with(modules: &str) -> Option<&'static str> {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some("python3");
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must install {modules} (tools/requirements.txt)"
    );
    eprintln!("skipping interop: python3 cannot import {modules}");
    None
}

fn python() -> Option<&'static str> {
    python_with("numpy")
}

#[test]
fn numpy_writes_archive_round_trips_numpy_reads_bit_exact() {
    let Some(py) = python() else { return };
    let t = TempStore::new();
    t.cmd().arg("init").arg(t.path()).assert().success();
    let fixtures = t.dir.path().join("fixtures");
    let out = t.dir.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/npy_interop.py");
    let status = Command::new(py)
        .arg(script)
        .arg("write")
        .arg(&fixtures)
        .status()
        .expect("python");
    assert!(status.success());
    let mut names: Vec<String> = std::fs::read_dir(&fixtures)
        .expect("fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".npy") && !n.ends_with(".c.npy"))
        .collect();
    names.sort();
    assert!(names.len() >= 20, "{names:?}");
    for name in &names {
        let stem = name.trim_end_matches(".npy");
        let put = |file: String| {
            let o = t
                .cmd()
                .arg("put")
                .arg(fixtures.join(file))
                .assert()
                .success();
            String::from_utf8(o.get_output().stdout.clone())
                .expect("utf8")
                .trim()
                .to_owned()
        };
        let h = put(name.clone());
        assert_eq!(
            h,
            put(format!("{stem}.c.npy")),
            "{stem}: same values, same hash"
        );
        t.cmd()
            .args(["get", &h, "-o"])
            .arg(out.join(name))
            .assert()
            .success();
    }
    let check = Command::new(py)
        .arg(script)
        .arg("check")
        .arg(&fixtures)
        .arg(&out)
        .output()
        .expect("python");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{report}");
    assert!(
        report.contains(&format!("{} passed, 0 failed", names.len())),
        "{report}"
    );
}

/// `archive --json put FILES...`: (input, hash, kind) per stored object.
fn put_all(t: &TempStore, files: &[std::path::PathBuf]) -> Vec<(String, String, String)> {
    let o = t
        .cmd()
        .arg("--json")
        .arg("put")
        .args(files)
        .assert()
        .success();
    String::from_utf8(o.get_output().stdout.clone())
        .expect("utf8")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            let s = |k: &str| v[k].as_str().expect(k).to_owned();
            (s("input"), s("hash"), s("kind"))
        })
        .collect()
}

/// Follow a manifest path (keys and indices) through a stored record to a reference.
fn ref_at(record: &model_archive::Record, path: &[serde_json::Value]) -> Option<ObjectHash> {
    let mut v = record.get(path.first()?.as_str()?)?;
    for step in path.get(1..)? {
        v = match (v, step) {
            (Value::Record(r), serde_json::Value::String(k)) => r.get(k)?,
            (Value::List(items), serde_json::Value::Number(i)) => {
                items.get(usize::try_from(i.as_u64()?).ok()?)?
            }
            _ => return None,
        };
    }
    match v {
        Value::Ref(h) => Some(*h),
        _ => None,
    }
}

#[test]
fn real_libraries_write_archive_round_trips_real_libraries_read_bit_exact() {
    let Some(py) = python_with("numpy, safetensors, msgpack, msgpack_numpy, onnx, ml_dtypes")
    else {
        return;
    };
    let t = TempStore::new();
    t.cmd().arg("init").arg(t.path()).assert().success();
    let fixtures = t.dir.path().join("fixtures");
    let out = t.dir.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/formats_interop.py"
    );
    let status = Command::new(py)
        .arg(script)
        .arg("write")
        .arg(&fixtures)
        .status()
        .expect("python");
    assert!(status.success());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("manifest.json")).expect("manifest"))
            .expect("json");
    let cases = manifest["cases"].as_array().expect("cases");
    assert!(cases.len() >= 50, "{}", cases.len());

    // Every array alone, as the archive lays it out: the hash each must have wherever it sits.
    let mut arrays: Vec<_> = std::fs::read_dir(fixtures.join("arrays"))
        .expect("arrays")
        .map(|e| e.expect("entry").path())
        .collect();
    arrays.sort();
    let array_hash: HashMap<String, String> = put_all(&t, &arrays)
        .into_iter()
        .map(|(input, hash, _)| {
            let stem = Path::new(&input).file_stem().expect("stem");
            (stem.to_string_lossy().into_owned(), hash)
        })
        .collect();
    assert_eq!(array_hash.len(), arrays.len());

    let files: Vec<_> = cases
        .iter()
        .map(|c| fixtures.join(c["file"].as_str().expect("file")))
        .collect();
    let stored = put_all(&t, &files);
    let hash_of = |file: &str| -> Vec<(String, String)> {
        let path = fixtures.join(file).display().to_string();
        stored
            .iter()
            .filter(|(input, _, _)| *input == path || input.starts_with(&format!("{path}[")))
            .map(|(_, h, k)| (h.clone(), k.clone()))
            .collect()
    };

    // Same array, same hash: lone tensors directly, records through their references.
    {
        let archive = Archive::open(t.path()).expect("open");
        for c in cases {
            let file = c["file"].as_str().expect("file");
            let puts = hash_of(file);
            let n = c["stream"].as_u64().unwrap_or(1) as usize;
            assert_eq!(puts.len(), n, "{file}: one entry per stream value");
            let (hash, kind) = &puts[0];
            for pair in c["arrays"].as_array().expect("arrays") {
                let path = pair[0].as_array().expect("path");
                let want = &array_hash[pair[1].as_str().expect("name")];
                if path.is_empty() {
                    assert_eq!((hash, kind.as_str()), (want, "tensor"), "{file}");
                    continue;
                }
                let Object::Record(r) = archive.get(&hash.parse().expect("hash")).expect("get")
                else {
                    panic!("{file}: not a record")
                };
                let found = ref_at(&r, path).map(|h| h.to_string());
                assert_eq!(found.as_ref(), Some(want), "{file}: {path:?}");
            }
        }
    }

    // Back out in the same format, by extension.
    for c in cases {
        let file = c["file"].as_str().expect("file");
        let puts = hash_of(file);
        let (stem, ext) = file.rsplit_once('.').expect("ext");
        for (i, (hash, _)) in puts.iter().enumerate() {
            let name = if c.get("stream").is_some() {
                format!("{stem}.{i}.{ext}")
            } else {
                file.to_owned()
            };
            t.cmd()
                .args(["get", hash, "-o"])
                .arg(out.join(name))
                .assert()
                .success();
        }
    }
    let check = Command::new(py)
        .arg(script)
        .arg("check")
        .arg(&fixtures)
        .arg(&out)
        .output()
        .expect("python");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{report}");
    assert!(
        report.contains(&format!("{} passed, 0 failed", cases.len())),
        "{report}"
    );

    // What the real libraries write that must never be loaded, or cannot be held.
    let before = t.snapshot();
    for (file, why) in [
        ("model.pkl", "`__main__.Model`"),
        ("object.npy", "pickle"),
        ("object.npz", "member `obj.npy`: holds Python objects"),
        ("object.msgpack", "pickle"),
        ("void_bf16.msgpack", "kind 'V'"),
        ("void_bf16.npy", "void"),
        ("strings.pb", "ends in a zero byte"),
    ] {
        let path = fixtures.join("bad").join(file);
        t.cmd()
            .arg("put")
            .arg(&path)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(file).and(predicate::str::contains(why)));
    }
    assert_eq!(
        t.snapshot(),
        before,
        "refused puts leave the store unchanged"
    );
}

fn f32s(shape: &[u64], vals: &[f32]) -> Array<'static> {
    let data: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    Array::new("t", Dtype::F32, Shape::new(shape.to_vec()), data.into()).expect("array")
}

/// A small record with tensors in it, written in `format`.
fn good(format: Format) -> Vec<u8> {
    let doc = match format {
        Format::Npy | Format::Onnx => Document::Tensor(f32s(&[2, 2], &[1.0, 2.0, 3.0, 4.0])),
        _ => Document::Map(vec![
            ("a".into(), Document::Tensor(f32s(&[2], &[1.0, 2.0]))),
            ("b".into(), Document::Tensor(f32s(&[3], &[3.0, 4.0, 5.0]))),
        ]),
    };
    interop::write(format, "fixture", &doc).expect("write")
}

fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern");
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(to);
    out.extend_from_slice(&bytes[at + from.len()..]);
    out
}

fn safetensors_with(header: &str, data: usize) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend(std::iter::repeat_n(0u8, data));
    out
}

/// An .npz holding one stored member, `a.npy`, of these bytes.
fn npz_with_member(npy: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("a.npy", opts).expect("start");
    zip.write_all(npy).expect("write");
    zip.finish().expect("finish").into_inner()
}

/// An .npz whose one member declares `declared` bytes but inflates to 8 MiB of zeros.
fn lying_npz(declared: u32) -> Vec<u8> {
    use std::io::Write;
    let npy = model_archive::interop::npy::write(
        "z",
        Dtype::U8,
        &Shape::new(vec![8 << 20]),
        &vec![0; 8 << 20],
    )
    .expect("npy");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("zeros.npy", opts).expect("start");
    zip.write_all(&npy).expect("write");
    let mut bytes = zip.finish().expect("finish").into_inner();
    bytes[22..26].copy_from_slice(&declared.to_le_bytes());
    let cd = bytes
        .windows(4)
        .rposition(|w| w == b"PK\x01\x02")
        .expect("central directory");
    bytes[cd + 24..cd + 28].copy_from_slice(&declared.to_le_bytes());
    bytes
}

#[test]
fn bad_input_in_every_format_is_refused_naming_the_file_and_problem() {
    let t = TempStore::new();
    t.cmd().arg("init").arg(t.path()).assert().success();
    // Something in the store, so "unchanged" means more than "still empty".
    let seed = t.dir.path().join("seed.npy");
    std::fs::write(&seed, good(Format::Npy)).expect("write");
    t.cmd().arg("put").arg(&seed).assert().success();

    let npz = good(Format::Npz);
    let st = good(Format::Safetensors);
    let mp = good(Format::MsgpackNumpy);
    let json = String::from_utf8(good(Format::JsonB64)).expect("utf8");
    let pb = good(Format::Onnx);
    let cut = |b: &[u8]| b[..b.len() * 2 / 3].to_vec();
    let lying_npy = replace(&good(Format::Npy), b"'shape': (2, 2)", b"'shape': (2, 3)");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        // Truncated files.
        ("cut.npz", cut(&npz), "not a valid .npz"),
        ("cut.safetensors", cut(&st), "not a valid .safetensors"),
        ("cut.msgpack", cut(&mp), "truncated"),
        ("cut.json", cut(json.as_bytes()), "not valid JSON"),
        ("cut.pb", cut(&pb), "not a valid ONNX TensorProto"),
        // Wrong magic.
        ("magic.npz", replace(&npz, b"PK", b"XK"), "wrong magic"),
        // Headers that lie about shapes or offsets.
        (
            "shape.npz",
            npz_with_member(&lying_npy),
            "needs 24 bytes, but 16",
        ),
        (
            "shape.safetensors",
            safetensors_with(
                r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                8,
            ),
            "invalid shape",
        ),
        (
            "overlap.safetensors",
            safetensors_with(
                r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#,
                6,
            ),
            "invalid offset",
        ),
        (
            "header.safetensors",
            replace(&st, &st[..8], &(1u64 << 40).to_le_bytes()),
            "header claims 1099511627776 bytes",
        ),
        (
            "shape.msgpack",
            replace(&mp, b"\x91\x03", b"\x91\x04"),
            "needs 16 bytes",
        ),
        (
            "shape.json",
            br#"{"x": {"shape": [7], "dtype": "float32", "data_b64": "AACAPwAAAEAAAEBA"}}"#
                .to_vec(),
            "needs 28 bytes",
        ),
        (
            "dims.pb",
            replace(&pb, &[0x08, 0x02, 0x08, 0x02], &[0x08, 0x02, 0x08, 0x03]),
            "needs 24 bytes",
        ),
        // Shapes whose element count overflows 64 bits.
        (
            "overflow.json",
            br#"{"x": {"shape": [4294967296, 4294967296, 2], "dtype": "float32", "data_b64": ""}}"#
                .to_vec(),
            "overflows",
        ),
        (
            "overflow.safetensors",
            safetensors_with(
                r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}}"#,
                8,
            ),
            "overflow",
        ),
        (
            "overflow.pb",
            replace(&pb, &[0x08, 0x02, 0x08, 0x02], &{
                let mut v = vec![0x08];
                v.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
                v.push(0x08);
                v.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
                v
            }),
            "overflows",
        ),
        // A zip bomb: declares 1000 bytes, inflates to 8 MiB; refused after 1001.
        ("bomb.npz", lying_npz(1000), "declare"),
        // Invalid base64.
        (
            "base64.json",
            br#"{"x": {"shape": [1], "dtype": "float32", "data_b64": "AA!A"}}"#.to_vec(),
            "not valid base64",
        ),
        // Keys twice in one map; a reference to nothing, beside a tensor.
        ("dup.msgpack", vec![0x82, 0xa1, b'a', 1, 0xa1, b'a', 2], "appears twice"),
        (
            "ref.json",
            format!(
                r#"{{"x": {{"shape": [1], "dtype": "uint8", "data_b64": "AQ=="}}, "r": {{"$ref": "{}"}}}}"#,
                "ab".repeat(32)
            )
            .into_bytes(),
            "not in the archive",
        ),
        // Field 1 (dims, an int64) sent with wire type 5 (32-bit).
        ("wire.pb", vec![0x0d, 1, 0, 0, 0, 0x10, 0x01], "wire type"),
    ];
    let before = t.snapshot();
    for (name, bytes, why) in &cases {
        let path = t.dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let o = t.cmd().arg("put").arg(&path).assert().code(2);
        let err = String::from_utf8_lossy(&o.get_output().stderr).into_owned();
        assert!(err.contains(name) && err.contains(why), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    // A good file beside a bad one stores nothing either.
    let good_json = t.dir.path().join("good.json");
    std::fs::write(&good_json, &json).expect("write");
    t.cmd()
        .arg("put")
        .arg(&good_json)
        .arg(t.dir.path().join("base64.json"))
        .assert()
        .code(2);
    assert_eq!(
        t.snapshot(),
        before,
        "refused puts leave the store unchanged"
    );
}

#[test]
fn formats_are_chosen_by_extension_or_flag_and_say_what_they_cannot_hold() {
    let t = TempStore::new();
    t.cmd().arg("init").arg(t.path()).assert().success();
    let dir = t.dir.path();
    // A record of tensors from a file with no telling extension, by --format.
    let st = dir.join("weights.bin.st");
    std::fs::write(&st, good(Format::Safetensors)).expect("write");
    let o = t
        .cmd()
        .args(["put", "--format", "safetensors"])
        .arg(&st)
        .assert()
        .success();
    let h = String::from_utf8(o.get_output().stdout.clone())
        .expect("utf8")
        .trim()
        .to_owned();
    // Out as every record format; msgpack to stdout with -o - and --format.
    for ext in ["npz", "safetensors", "json", "msgpack"] {
        let out = dir.join(format!("back.{ext}"));
        t.cmd().args(["get", &h, "-o"]).arg(&out).assert().success();
        let format = Format::from_extension(ext).expect("format");
        let bytes = std::fs::read(&out).expect("read");
        let doc = interop::read(format, ext, &bytes).expect("read back");
        assert_eq!(
            doc,
            interop::read(Format::Safetensors, "st", &good(Format::Safetensors)).expect("doc")
        );
    }
    let o = t
        .cmd()
        .args(["get", &h, "-o", "-", "--format", "msgpack"])
        .assert()
        .success();
    assert_eq!(
        o.get_output().stdout,
        std::fs::read(dir.join("back.msgpack")).expect("read")
    );
    // A record is not one tensor: .npy, .pb and raw say so.
    for ext in ["npy", "pb", "bin"] {
        t.cmd()
            .args(["get", &h, "-o"])
            .arg(dir.join(format!("x.{ext}")))
            .assert()
            .code(2)
            .stderr(predicate::str::contains("record").or(predicate::str::contains("one tensor")));
    }
    // C128 has no safetensors dtype.
    let c = dir.join("c.json");
    std::fs::write(
        &c,
        br#"{"shape": [1], "dtype": "complex128", "data_b64": "AAAAAAAA8D8AAAAAAAAAAA=="}"#,
    )
    .expect("write");
    let o = t.cmd().arg("put").arg(&c).assert().success();
    let ch = String::from_utf8(o.get_output().stdout.clone())
        .expect("utf8")
        .trim()
        .to_owned();
    t.cmd()
        .args(["get", &ch, "-o"])
        .arg(dir.join("c.safetensors"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("C128")
                .and(predicate::str::contains("safetensors cannot hold")),
        );
    // The lone tensor came in as JSON and goes out as .npy: numpy's own layout.
    let back = dir.join("c.npy");
    t.cmd()
        .args(["get", &ch, "-o"])
        .arg(&back)
        .assert()
        .success();
    let npy = std::fs::read(&back).expect("read");
    let arr = interop::npy::read("c.npy", &npy).expect("npy");
    assert_eq!((arr.dtype, arr.shape.dims()), (Dtype::C128, &[1u64][..]));
    // An ONNX tensor's name survives as its entry's `name` tag.
    let pb = dir.join("input_0.pb");
    std::fs::write(
        &pb,
        interop::onnx::write("t", "input_0", &f32s(&[1], &[1.0])).expect("pb"),
    )
    .expect("write");
    let o = t.cmd().arg("put").arg(&pb).assert().success();
    let ph = String::from_utf8(o.get_output().stdout.clone())
        .expect("utf8")
        .trim()
        .to_owned();
    t.cmd()
        .args(["info", &ph])
        .assert()
        .success()
        .stdout(predicate::str::contains("name=input_0"));
    let back = dir.join("back.pb");
    t.cmd()
        .args(["get", &ph, "-o"])
        .arg(&back)
        .assert()
        .success();
    let got = interop::onnx::read("back.pb", &std::fs::read(&back).expect("read")).expect("pb");
    assert_eq!(got.name, "input_0");
}
