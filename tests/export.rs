//! Reading back in bulk: `Archive::stack` and `archive export` give one field of every match as
//! one array, rows in logging order; numpy and safetensors read the files back; mixed shapes,
//! dtypes, missing fields and empty matches are clear errors naming the entry.

use std::process::Command;

use model_archive::query::Query;
use model_archive::{Archive, Dtype, Record, Shape, TensorView, Value};

use crate::util::TempStore;

/// Records `{probs: f32[3], label: i, id: "img-i"}` tagged split = i % 2, through a writer.
fn fill(a: &Archive, n: u32) -> Vec<Vec<u8>> {
    let mut w = a.writer();
    let mut rows = Vec::new();
    for i in 0..n {
        let probs: Vec<u8> = (0..3u32)
            .flat_map(|j| ((i * 3 + j) as f32 / 7.0).to_le_bytes())
            .collect();
        let shape = Shape::new(vec![3]);
        let h = w
            .put_tensor_part(&TensorView::new(Dtype::F32, &shape, &probs).expect("view"))
            .expect("part");
        let r = Record::new()
            .with("probs", Value::Ref(h))
            .and_then(|r| r.with("label", Value::Int(i64::from(i))))
            .and_then(|r| r.with("id", Value::Str(format!("img-{i}"))))
            .expect("record");
        let split = if i % 2 == 0 { "even" } else { "odd" };
        w.put_record(&r, &[("split", split)]).expect("put");
        if i % 2 == 0 {
            rows.push(probs);
        }
        if i % 37 == 0 {
            w.commit().expect("commit");
        }
    }
    w.commit().expect("commit");
    rows
}

#[test]
fn stack_gives_one_row_per_match_in_logging_order() {
    let t = TempStore::new();
    let a = t.create();
    let rows = fill(&a, 300);
    let q = a.parse_query("split = \"even\"").expect("query");
    let done = std::cell::Cell::new(0);
    let s = a
        .stack(&q, Some("probs"), &|d, _| done.set(d))
        .expect("stack");
    assert_eq!(s.dtype, Dtype::F32);
    assert_eq!(s.shape.dims(), &[150, 3]);
    assert_eq!(s.data, rows.concat());
    assert_eq!(done.get(), 150);
    // Entries that are tensors themselves stack without a field.
    let v = [1u8, 2, 3, 4];
    let shape = Shape::new(vec![2, 2]);
    for _ in 0..3 {
        a.put_tensor(
            &TensorView::new(Dtype::U8, &shape, &v).expect("view"),
            &[("k", "t")],
        )
        .expect("put");
    }
    let q = Query::parse("k = t").expect("query");
    let s = a.stack(&q, None, &|_, _| {}).expect("stack");
    assert_eq!(s.shape.dims(), &[3, 2, 2]);
}

#[test]
fn stack_names_the_first_entry_that_does_not_fit() {
    let t = TempStore::new();
    let a = t.create();
    fill(&a, 10);
    // A record whose probs has another shape, logged last.
    let shape = Shape::new(vec![4]);
    let data = [0u8; 16];
    let h = a
        .put_tensor(
            &TensorView::new(Dtype::F32, &shape, &data).expect("view"),
            &[],
        )
        .expect("put");
    let r = Record::new().with("probs", Value::Ref(h)).expect("record");
    let odd = a.put_record(&r, &[("split", "even")]).expect("put");
    let err = |src: &str, field: Option<&str>| {
        let q = a.parse_query(src).expect("query");
        a.stack(&q, field, &|_, _| {})
            .expect_err("refused")
            .to_string()
    };
    let e = err("split = \"even\"", Some("probs"));
    // The entry named is the odd one, logged last; the first row is the oldest.
    let named = format!(
        "({}) field `probs`: is F32 [4], but the first row (entry 0 ",
        odd.short(12)
    );
    assert!(e.contains(&named), "{e}");
    assert!(e.contains("is F32 [3]"), "{e}");
    let e = err("split = \"odd\"", Some("label"));
    assert!(
        e.contains("field `label`") && e.contains("not a tensor"),
        "{e}"
    );
    let e = err("split = \"odd\"", Some("nothing"));
    assert!(e.contains("no such field"), "{e}");
    let e = err("split = \"none\"", Some("probs"));
    assert!(e.contains("no entries match"), "{e}");
    let e = err("split = \"odd\"", None);
    assert!(e.contains("not a tensor"), "{e}");
}

/// Records `{probs: f32[n]}` tagged `k = k`, one per length, in one pack.
fn put_lengths(a: &Archive, k: &str, lengths: &[u64]) -> Vec<model_archive::ObjectHash> {
    let mut w = a.writer();
    let mut out = Vec::new();
    for n in lengths {
        let data = vec![0u8; *n as usize * 4];
        let shape = Shape::new(vec![*n]);
        let view = TensorView::new(Dtype::F32, &shape, &data).expect("view");
        let h = w.put_tensor_part(&view).expect("part");
        let r = Record::new().with("probs", Value::Ref(h)).expect("record");
        out.push(w.put_record(&r, &[("k", k)]).expect("put"));
    }
    w.commit().expect("commit");
    out
}

#[test]
fn stack_names_the_first_row_that_differs_whichever_core_read_it() {
    // Runs are read on every core: the first row that differs is named, in logging order,
    // whether it starts its pack or comes inside one, before later rows that differ or fail.
    let t = TempStore::new();
    let a = t.create();
    put_lengths(&a, "a", &[3; 50]);
    let inside = put_lengths(&a, "b", &[3, 3, 4, 4, 3]);
    let starts = put_lengths(&a, "c", &[2, 3]);
    let mut w = a.writer();
    let r = Record::new().with("probs", Value::Int(1)).expect("record");
    w.put_record(&r, &[("k", "d")]).expect("put");
    w.commit().expect("commit");
    let stack = |src: &str| {
        let q = a.parse_query(src).expect("query");
        a.stack(&q, Some("probs"), &|_, _| {})
            .expect_err("refused")
            .to_string()
    };
    let e = stack("k = a or k = b or k = c or k = d");
    assert!(e.contains(&inside[2].short(12)), "{e}");
    assert!(e.contains("is F32 [4], but the first row (entry 0 "), "{e}");
    // A pack whose first row differs is named by that row.
    let e = stack("k = a or k = c or k = d");
    assert!(
        e.contains(&starts[0].short(12)) && e.contains("is F32 [2]"),
        "{e}"
    );
    // The record whose probs is no tensor is the error once the rows before it agree.
    let e = stack("k = a or k = d");
    assert!(e.contains("not a tensor"), "{e}");
}

#[test]
fn a_stack_that_fails_early_lets_go_of_the_runs_read_ahead() {
    // Runs are read a few ahead of the one taken; when an early one fails, those waiting to
    // hand theirs over are let go (the call returns, naming it), many runs or not.
    let t = TempStore::new();
    let a = t.create();
    let mut second = Vec::new();
    for i in 0..64 {
        let len = if i == 1 { 4 } else { 3 };
        let h = put_lengths(&a, &format!("r{i}"), &[len; 20]);
        if i == 1 {
            second = h;
        }
    }
    let q = a.parse_query("").expect("query");
    let e = a
        .stack(&q, Some("probs"), &|_, _| {})
        .expect_err("refused")
        .to_string();
    assert!(
        e.contains(&second[0].short(12)) && e.contains("is F32 [4]"),
        "{e}"
    );
}

#[test]
fn exported_files_are_read_back_by_numpy_and_safetensors() {
    let t = TempStore::new();
    let a = t.create();
    let rows = fill(&a, 200);
    drop(a);
    let dir = tempfile::tempdir().expect("tmp");
    for name in ["probs.npy", "probs.npz", "probs.safetensors"] {
        let out = dir.path().join(name);
        t.cmd()
            .args(["export", "split = \"even\"", "--field", "probs", "-o"])
            .arg(&out)
            .assert()
            .success()
            .stdout(predicates::str::contains("100 rows, F32 [100, 3]"));
        assert!(out.is_file(), "{name}");
    }
    // To stdout: the same bytes as the file (the header, then the rows as they are).
    let piped = t
        .cmd()
        .args(["export", "split = \"even\"", "--field", "probs", "-o", "-"])
        .output()
        .expect("export to stdout");
    assert!(piped.status.success());
    let file = std::fs::read(dir.path().join("probs.npy")).expect("npy");
    assert_eq!(piped.stdout, file);
    assert_eq!(
        file.len() % 64,
        100 * 3 * 4 % 64,
        "data after a 64-byte aligned header"
    );
    // To a named pipe (as to /dev/null): written through, the pipe left a pipe, not
    // replaced by a file renamed over it.
    let fifo = dir.path().join("pipe.npy");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).expect("read the pipe"))
        };
        t.cmd()
            .args(["export", "split = \"even\"", "--field", "probs", "-o"])
            .arg(&fifo)
            .assert()
            .success();
        // Checked first: were it replaced, the reader would wait on it for ever.
        use std::os::unix::fs::FileTypeExt;
        let kind = std::fs::symlink_metadata(&fifo)
            .expect("still there")
            .file_type();
        assert!(kind.is_fifo(), "the pipe is still a pipe");
        assert_eq!(reader.join().expect("reader"), file);
    }
    // Bad input: exit 2, the reason named, no file left behind.
    let bad = dir.path().join("bad.npy");
    t.cmd()
        .args(["export", "split = \"odd\"", "--field", "id", "-o"])
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("field `id`"));
    assert!(!bad.exists());
    let Some(python) = crate::interop::python_with("numpy, safetensors.numpy") else {
        return;
    };
    let want: Vec<f32> = rows
        .concat()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let script = format!(
        "import numpy as np, safetensors.numpy as st, sys\n\
         d = sys.argv[1]\n\
         a = np.load(d + '/probs.npy')\n\
         z = np.load(d + '/probs.npz')\n\
         s = st.load_file(d + '/probs.safetensors')\n\
         arrs = [a] + [z[k] for k in z.files] + list(s.values())\n\
         want = np.array({want:?}, dtype=np.float32).reshape(100, 3)\n\
         for x in arrs:\n\
         \x20   assert x.dtype == np.float32 and x.shape == (100, 3), (x.dtype, x.shape)\n\
         \x20   assert np.array_equal(x, want)\n\
         print(len(arrs))\n"
    );
    let out = Command::new(python)
        .args(["-c", &script])
        .arg(dir.path())
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");
}
