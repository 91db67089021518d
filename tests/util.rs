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

/// Deterministic pseudo-random bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}
