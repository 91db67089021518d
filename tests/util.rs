//! Shared test helpers: temporary stores, sample files, the CLI under test.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use model_archive::{Archive, Dtype, Shape};

/// A temporary directory holding a store at `<dir>/store`.
pub struct TempStore {
    pub dir: tempfile::TempDir,
}

impl TempStore {
    pub fn new() -> Self {
        TempStore {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn create(&self) -> Archive {
        Archive::create(self.path()).expect("create store")
    }

    pub fn open(&self) -> Archive {
        Archive::open(self.path()).expect("open store")
    }

    /// The segment files, sorted.
    pub fn segments(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.path().join("segments"))
            .expect("segments dir")
            .map(|e| e.expect("entry").path())
            .collect();
        v.sort();
        v
    }

    /// Every byte of every segment, to check a failed command changed nothing.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        self.segments()
            .into_iter()
            .map(|p| (p.clone(), std::fs::read(&p).expect("read")))
            .collect()
    }

    /// The CLI, pointed at this store.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::cargo_bin("archive").expect("archive binary");
        c.arg("--store")
            .arg(self.path())
            .env_remove("ARCHIVE_STORE");
        c
    }
}

/// A committed sample file.
pub fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
}

/// A sample .npy read into (dtype, shape, bytes).
pub fn sample_tensor(name: &str) -> (Dtype, Shape, Vec<u8>) {
    let bytes = std::fs::read(sample(name)).expect("sample");
    let arr = model_archive::interop::npy::read(name, &bytes).expect("npy");
    (arr.dtype, arr.shape, arr.data.into_owned())
}

/// A 4-hex-digit prefix that two of `hashes` share (600 hashes share one with 93 % odds; the
/// deterministic sets the tests use do).
pub fn shared_prefix(hashes: &[model_archive::ObjectHash]) -> String {
    let mut by_prefix = std::collections::HashMap::<String, usize>::new();
    for x in hashes {
        *by_prefix.entry(x.short(4)).or_default() += 1;
    }
    by_prefix
        .into_iter()
        .find(|(_, n)| *n > 1)
        .map(|(p, _)| p)
        .expect("a shared prefix")
}

/// The standard output of a successful run of the CLI.
pub fn stdout_of(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).expect("utf8")
}

/// Deterministic pseudo-random bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

/// Run `script MODE DIRS...` with `py` (the tests' Python interop scripts: `write` to make
/// files, `check` to compare what came back); asserts it succeeded, returns its stdout.
pub fn python_script(py: &str, script: &str, mode: &str, dirs: &[&Path]) -> String {
    let out = std::process::Command::new(py)
        .arg(script)
        .arg(mode)
        .args(dirs)
        .output()
        .expect("python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} {mode}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A new store, with two folders beside it: `name` for the files a script writes (not created:
/// the script makes it) and `out` for what the archive writes back (created).
pub fn store_with_dirs(name: &str) -> (TempStore, PathBuf, PathBuf) {
    let t = TempStore::new();
    t.cmd().arg("init").arg(t.path()).assert().success();
    let d = t.dir.path().join(name);
    let out = t.dir.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    (t, d, out)
}
