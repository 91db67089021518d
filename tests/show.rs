//! `archive show` (issue 15): its figures against numpy's on the samples and on arrays of
//! every dtype (bf16 and fp8 included) with NaN, infinities, empty and 0-d ones; its text at
//! 80 columns; text, record and categorical objects.

use predicates::prelude::*;

use crate::interop::python_with;
use crate::util::{TempStore, python_script, sample, stdout_of, store_with_dirs};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/show_check.py");

#[test]
fn show_figures_agree_with_numpy_for_every_dtype() {
    let Some(py) = python_with("numpy, ml_dtypes") else {
        return;
    };
    let (t, d, out) = store_with_dirs("arrays");
    python_script(py, SCRIPT, "write", &[&d]);
    let mut files: Vec<_> = std::fs::read_dir(&d)
        .expect("arrays")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "npy" || x == "raw"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "{files:?}");
    for f in &files {
        let stem = f.file_stem().and_then(|s| s.to_str()).expect("name");
        let args = std::fs::read_to_string(d.join(format!("{stem}.args"))).unwrap_or_default();
        let mut put = t.cmd();
        put.arg("put").args(args.split_whitespace()).arg(f);
        let h = stdout_of(&mut put).trim().to_owned();
        let json = stdout_of(t.cmd().args(["--json", "show", &h]));
        std::fs::write(out.join(format!("{stem}.json")), json).expect("write");
    }
    let report = python_script(py, SCRIPT, "check", &[&d, &out]);
    assert!(report.contains("all figures agree"), "{report}");
}

#[test]
fn show_reads_well_at_80_columns_for_every_kind() {
    let t = TempStore::new();
    t.cmd().arg("init").arg(t.path()).assert().success();
    let put = |args: &[&str]| stdout_of(t.cmd().arg("put").args(args)).trim().to_owned();
    let probs = put(&[sample("digits_test_probs.npy").to_str().expect("path")]);
    let shown = stdout_of(t.cmd().args(["show", &probs]));
    assert!(shown.lines().all(|l| l.chars().count() <= 80), "{shown}");
    for want in [
        "tensor F32 [450, 10]: 4500 values",
        "NaN 0  +inf 0  -inf 0",
        "histogram of the finite values (20 bins)",
        "argmax of the last axis (rows sum to 1), 450 rows",
        "first values",
    ] {
        assert!(shown.contains(want), "{want} not in\n{shown}");
    }
    let text = put(&["--text", "first line\nsecond line"]);
    t.cmd().args(["show", &text]).assert().success().stdout(
        predicate::str::contains("text: 22 characters, 2 lines")
            .and(predicate::str::contains("| second line")),
    );
    let rec = t.dir.path().join("r.json");
    std::fs::write(
        &rec,
        r#"{"id": "img-7", "label": 3, "meta": {"source": "cam2"}}"#,
    )
    .expect("write");
    let r = put(&[rec.to_str().expect("path")]);
    t.cmd().args(["show", &r]).assert().success().stdout(
        predicate::str::contains("record: 3 fields")
            .and(predicate::str::contains("meta.source"))
            .and(predicate::str::contains("\"cam2\"")),
    );
    let labels = sample("labels.json");
    let preds = sample("digits_test_pred.npy");
    let cat = put(&[
        "--labels",
        labels.to_str().expect("path"),
        preds.to_str().expect("path"),
    ]);
    let shown = stdout_of(t.cmd().args(["show", &cat]));
    assert!(shown.contains("categorical: 450 values"), "{shown}");
    t.cmd().args(["show", "ffff"]).assert().code(3);
}

/// `archive diff`'s counts and maxima against numpy (`isclose` with the same tolerances,
/// `argmax`), and records, text and bad input with `diff`'s exit codes.
#[test]
fn diff_agrees_with_numpy_and_exits_as_diff_does() {
    let Some(py) = python_with("numpy, ml_dtypes") else {
        return;
    };
    let (t, d, out) = store_with_dirs("pairs");
    python_script(py, SCRIPT, "pairs", &[&d]);
    let put = |args: &[&str]| stdout_of(t.cmd().arg("put").args(args)).trim().to_owned();
    for (name, code) in [
        ("probs", 1),
        ("noisy", 1),
        ("f64", 0),
        ("ints", 1),
        ("f16", 1),
    ] {
        let a = put(&[d.join(format!("a_{name}.npy")).to_str().expect("path")]);
        let b = put(&[d.join(format!("b_{name}.npy")).to_str().expect("path")]);
        let o = t
            .cmd()
            .args(["--json", "diff", &a, &b])
            .output()
            .expect("diff");
        assert_eq!(o.status.code(), Some(code), "{name}");
        std::fs::write(out.join(format!("{name}.json")), &o.stdout).expect("write");
    }
    let report = python_script(py, SCRIPT, "check_diff", &[&d, &out]);
    assert!(report.contains("all figures agree"), "{report}");

    // Records field by field, the tensors they refer to compared too.
    let probs = put(&[sample("digits_test_probs.npy").to_str().expect("path")]);
    let other = put(&[d.join("a_probs.npy").to_str().expect("path")]);
    let rec = |label: u32, tensor: &str, extra: &str| {
        let f = t.dir.path().join(format!("r{label}{extra}.json"));
        std::fs::write(
            &f,
            format!(r#"{{"label": {label}, "probs": {{"$ref": "{tensor}"}}{extra}}}"#),
        )
        .expect("write");
        put(&[f.to_str().expect("path")])
    };
    let (r1, r2) = (rec(3, &probs, ""), rec(4, &other, r#", "note": "x""#));
    t.cmd().args(["diff", &r1, &r2]).assert().code(1).stdout(
        predicate::str::contains("label: 3 -> 4")
            .and(predicate::str::contains("note: only in b"))
            .and(predicate::str::contains("probs: different"))
            .and(predicate::str::contains(
                "argmax of the last axis flipped in 11 of 450 rows",
            )),
    );
    t.cmd()
        .args(["diff", &r1, &r1])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("identical"));
    let (x, y) = (put(&["--text", "a\nb\nc"]), put(&["--text", "a\nB\nc"]));
    t.cmd().args(["diff", &x, &y]).assert().code(1).stdout(
        predicate::str::contains("first difference at line 2")
            .and(predicate::str::contains("@@ -1,3 +1,3 @@"))
            .and(predicate::str::contains("-b\n"))
            .and(predicate::str::contains("+B")),
    );
    // Trouble is exit 2: an unknown hash, a bad tolerance.
    t.cmd().args(["diff", &x, "ffff"]).assert().code(2);
    t.cmd()
        .args(["diff", &x, &y, "--rtol", "-1"])
        .assert()
        .code(2);
    // Tensors of other shapes are different, saying how.
    let small = put(&[sample("digits_test_labels.npy").to_str().expect("path")]);
    t.cmd()
        .args(["diff", &probs, &small])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("F32 [450, 10] vs"));
}

/// Two logged runs compared `--by id`: pairs, entries on one side only, identical pairs
/// (same hash), different ones, a duplicate key, and argmax flips, all counted as a direct
/// computation over the same records says.
#[test]
fn diff_by_key_pairs_two_runs() {
    let t = TempStore::new();
    t.cmd().arg("init").arg(t.path()).assert().success();
    let probs = |i: usize, reversed: bool| {
        let mut p: Vec<f64> = (0..4).map(|c| ((i * 7 + c * 3) % 11 + 1) as f64).collect();
        let s: f64 = p.iter().sum();
        p.iter_mut().for_each(|x| *x /= s);
        if reversed {
            p.reverse();
        }
        p
    };
    let argmax = |p: &[f64]| (0..p.len()).fold(0, |b, i| if p[i] > p[b] { i } else { b });
    let line = |id: &str, p: &[f64]| format!("{}\n", serde_json::json!({"id": id, "probs": p}));
    let (mut a, mut b, mut flips, mut changed) = (String::new(), String::new(), 0, 0);
    for i in 0..120 {
        let id = format!("img-{i}");
        a.push_str(&line(&id, &probs(i, false)));
        if i == 5 {
            continue; // only in a
        }
        let rev = i % 10 == 0;
        changed += usize::from(rev);
        flips += usize::from(rev && argmax(&probs(i, true)) != argmax(&probs(i, false)));
        b.push_str(&line(&id, &probs(i, rev)));
    }
    b.push_str(&line("img-extra", &probs(1, false)));
    b.push_str(&line("img-3", &probs(3, false))); // a duplicate key, the same values
    for (run, text) in [("a", a), ("b", b)] {
        t.cmd()
            .args([
                "log",
                "--tag",
                &format!("run={run}"),
                "--tag-field",
                "id",
                "--tensor-field",
                "probs",
            ])
            .write_stdin(text)
            .assert()
            .success();
    }
    let o = t
        .cmd()
        .args(["--json", "diff", "run = \"a\"", "run = \"b\"", "--by", "id"])
        .output()
        .expect("diff");
    assert_eq!(o.status.code(), Some(1));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(r["pairs"], 119);
    assert_eq!(
        (r["only_in_a"].clone(), r["only_in_b"].clone()),
        (1.into(), 1.into())
    );
    assert_eq!(r["different"], changed);
    assert_eq!(r["identical"], 119 - changed);
    assert_eq!(r["b"]["duplicate_keys"], 1);
    assert_eq!(r["argmax"]["flipped"], flips);
    assert_eq!(
        r["most_different"].as_array().map(Vec::len),
        Some(changed.min(10))
    );
    // The library gives a row per key as well: the same counts, row by row.
    let archive = t.open();
    let tol = model_archive::Tolerance::default();
    let (same, rows) = archive
        .compare_runs_pairs("run = \"a\"", "run = \"b\"", "id", &tol, 10)
        .expect("pairs");
    assert_eq!(same, r);
    assert_eq!(rows.len(), 121);
    let count = |s: &str| rows.iter().filter(|p| p.status == s).count();
    assert_eq!(
        [
            count("identical"),
            count("different"),
            count("within_tolerance")
        ],
        [119 - changed, changed, 0]
    );
    let one_side: Vec<(&str, &str, bool, bool)> = rows
        .iter()
        .filter(|p| p.status.starts_with("only"))
        .map(|p| (p.key.as_str(), p.status, p.a.is_some(), p.b.is_some()))
        .collect();
    assert_eq!(
        one_side,
        [
            ("img-5", "only_in_a", true, false),
            ("img-extra", "only_in_b", false, true)
        ]
    );
    let flipped: u64 = rows.iter().map(|p| p.argmax_flipped).sum();
    assert_eq!(flipped, flips as u64);
    assert!(
        rows.iter()
            .filter(|p| p.status == "different")
            .all(|p| p.max_abs.is_some_and(|m| m > 0.0) && p.mismatched > 0)
    );
    drop(archive);
    let o = t
        .cmd()
        .args(["diff", "run = \"a\"", "run = \"b\"", "--by", "id"])
        .env("NO_COLOR", "1")
        .output()
        .expect("diff");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
    // A run against itself: every pair identical, exit 0. A query matching nothing: exit 2.
    t.cmd()
        .args(["diff", "run = \"a\"", "run = \"a\"", "--by", "id"])
        .assert()
        .code(0);
    t.cmd()
        .args(["diff", "run = \"a\"", "run = \"zzz\"", "--by", "id"])
        .assert()
        .code(2);
}

/// A slice of rows decodes only the chunks that hold them, and is the slice of the tensor;
/// `show --rows` shows its figures.
#[test]
fn rows_decode_only_the_chunks_that_hold_them() {
    use model_archive::{Codec, Dtype, PutOptions, Shape, TensorView};
    let t = TempStore::new();
    let a = t.create();
    // 3,000 rows of 256 float32 (1 KiB each): about 2.9 MiB, three chunks of 1 MiB.
    let (rows, cols) = (3000u64, 256u64);
    let shape = Shape::new(vec![rows, cols]);
    for (k, codec) in [Codec::ShuffleZstd, Codec::Zstd, Codec::Raw]
        .into_iter()
        .enumerate()
    {
        // Other values for each codec: the same content would be the object stored first.
        let data: Vec<u8> = (0..rows * cols)
            .flat_map(|i| ((i % 977) as f32 * 0.5 + k as f32).to_le_bytes())
            .collect();
        let view = TensorView::new(Dtype::F32, &shape, &data).expect("view");
        let row = |r: u64| &data[(r * cols * 4) as usize..((r + 1) * cols * 4) as usize];
        let opts = PutOptions {
            codec: Some(codec),
            level: None,
        };
        let h = a.put_tensor_with(&view, &[], &opts).expect("put");
        // Rows 10..20 sit in the first chunk; 1020..1030 straddle the first two.
        for (range, chunks) in [(10..20, 1), (1020..1030, 2), (2990..4000, 1)] {
            let (slice, (decoded, of)) = a.get_rows(&h, range.clone()).expect("rows");
            let end = range.end.min(rows);
            assert_eq!(slice.shape.dims(), &[end - range.start, cols][..]);
            let want: Vec<u8> = (range.start..end).flat_map(|r| row(r).to_vec()).collect();
            assert_eq!(slice.data, want, "{codec:?} {range:?}");
            if codec == Codec::Raw {
                assert_eq!((decoded, of), (0, 0), "raw: a slice of the map");
            } else {
                assert_eq!((decoded, of), (chunks, 3), "{codec:?} {range:?}");
            }
        }
    }
    // A small tensor sits in a pack: decoded whole and cut.
    let small: Vec<u8> = (0..8u32).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let small_shape = Shape::new(vec![4, 2]);
    let h = a
        .put_tensor(
            &TensorView::new(Dtype::F32, &small_shape, &small).expect("view"),
            &[],
        )
        .expect("put");
    let (slice, counts) = a.get_rows(&h, 1..3).expect("rows");
    assert_eq!(
        (slice.shape.dims(), &slice.data[..], counts),
        (&[2u64, 2][..], &small[8..24], (0, 0))
    );
    let text = a.put_text("not a tensor", &[]).expect("put");
    assert!(a.get_rows(&text, 0..1).is_err());
    drop(a);
    let h = stdout_of(t.cmd().args(["put", "--text", "x"]))
        .trim()
        .to_owned();
    t.cmd()
        .args(["show", &h, "--rows", "0:1"])
        .assert()
        .failure();
    t.cmd().args(["show", &h, "--rows", "5:1"]).assert().code(2);
}

/// Two tensors over 64 MiB are compared a block of rows at a time: the figures are those of
/// the whole (mismatches counted, the largest difference and its index in a later block,
/// argmax flips of probability rows across blocks), and progress comes block by block.
/// `show` of one reads it in blocks too, and gives the figures of the whole.
#[test]
fn big_tensors_are_diffed_and_shown_a_block_at_a_time_with_the_whole_figures() {
    use model_archive::{Codec, Dtype, PutOptions, Shape, TensorView};
    let (rows, classes) = (900_000usize, 10usize);
    // Probability rows: row r puts its largest share on class r % 10.
    let mut a = vec![0f64; rows * classes];
    for (r, row) in a.chunks_mut(classes).enumerate() {
        for (c, x) in row.iter_mut().enumerate() {
            *x = if c == r % classes { 0.55 } else { 0.05 };
        }
    }
    let mut b = a.clone();
    // Two rows change: their top class swaps with another (the rows stay distributions).
    for r in [1_000usize, 850_123] {
        let top = r % classes;
        b.swap(r * classes + top, r * classes + (top + 3) % classes);
    }
    let t = TempStore::new();
    let archive = t.create();
    let put = |data: &[f64]| {
        let bytes: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        let shape = Shape::new(vec![rows as u64, classes as u64]);
        let view = TensorView::new(Dtype::F64, &shape, &bytes).expect("view");
        let opts = PutOptions {
            codec: Some(Codec::Raw),
            level: None,
        };
        archive.put_tensor_with(&view, &[], &opts).expect("put")
    };
    let (ha, hb) = (put(&a), put(&b));
    let calls = std::sync::Mutex::new(Vec::new());
    let tol = model_archive::Tolerance::default();
    let r = archive
        .compare_with_progress(&ha, &hb, &tol, &|done, total| {
            calls.lock().expect("calls").push((done, total));
        })
        .expect("diff");
    let calls = calls.into_inner().expect("calls");
    assert!(calls.len() >= 4, "{calls:?}");
    assert_eq!(calls.last(), Some(&(rows as u64, rows as u64)));
    assert!(calls.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(r["equal"], false);
    assert_eq!(r["count"], (rows * classes) as u64);
    assert_eq!(r["mismatched"], 4);
    assert_eq!(r["max_abs"]["value"], 0.5);
    // The first largest difference, as numpy's argmax finds it: row 1000, at its top class.
    assert_eq!(r["max_abs"]["index"], serde_json::json!([1000, 0]));
    assert_eq!(r["argmax"], serde_json::json!({"rows": rows, "flipped": 2}));
    // The whole tensors compared in memory at once give the same figures.
    let bytes = |d: &[f64]| d.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let (ba, bb) = (bytes(&a), bytes(&b));
    let shape = Shape::new(vec![rows as u64, classes as u64]);
    let (va, vb) = (
        TensorView::new(Dtype::F64, &shape, &ba).expect("view"),
        TensorView::new(Dtype::F64, &shape, &bb).expect("view"),
    );
    let (rtol, atol) = model_archive::summary::default_tolerance(Dtype::F64);
    let whole = model_archive::summary::compare(&va, &vb, rtol, atol);
    assert_eq!(
        (whole.mismatched, whole.max_abs, whole.argmax_flips),
        (
            4,
            Some((0.5, 1000 * classes as u64)),
            Some((rows as u64, 2))
        )
    );
    // `show` of one of them reads it in blocks too, with the figures of the whole.
    drop(archive);
    let o = t
        .cmd()
        .args(["--json", "show", &ha.to_string()])
        .output()
        .expect("show");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let s = model_archive::summary::summarise(&va);
    assert_eq!(shown["count"], s.count);
    assert_eq!(shown["mean"].as_f64(), s.mean);
    assert_eq!(shown["std"].as_f64(), s.std);
    assert_eq!(shown["histogram"]["counts"], serde_json::json!(s.histogram));
    let quantiles: Vec<f64> = s.quantiles.iter().map(|(_, v)| *v).collect();
    let shown_q: Vec<f64> = shown["quantiles"]
        .as_array()
        .expect("quantiles")
        .iter()
        .filter_map(|q| q["value"].as_f64())
        .collect();
    assert_eq!(shown_q, quantiles);
    assert_eq!(shown["argmax"], serde_json::json!(s.argmax));
}
