//! What the benchmarks share (a module of each: `core.rs`, `bench_report.rs`, `log_bench.rs`):
//! where the repository, its target directory and the `archive` binary are, the real-output
//! data files, the float32 tensor loader, a fresh store, and the baselines that do by hand what
//! a put or get does, on the same bytes.

#![allow(dead_code)]

use std::fs::File;
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use model_archive::codec::CHUNK_SIZE;
use model_archive::codec::shuffle::{shuffle, unshuffle};
use model_archive::interop::npy;
use model_archive::{Archive, Dtype, Shape, TensorView};
use rayon::prelude::*;

/// The 64 MiB files of real outputs and the short names the results use.
pub const BENCH_FILES: [(&str, &str); 3] = [
    ("probs", "probs_64mib.npy"),
    ("hidden_relu", "hidden_relu_64mib.npy"),
    ("hidden_pre", "hidden_pre_64mib.npy"),
];

/// The repository (the workspace root): samples/, and target/ for data and scratch stores.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ sits in the workspace root")
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` if set, else target/ in the workspace root.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Where the `archive` binary is looked for: `$ARCHIVE_BIN` if set, else release/archive in
/// [`target_dir`]. This package does not build it: `cargo build --release --bin archive`.
pub fn archive_bin_path() -> PathBuf {
    std::env::var_os("ARCHIVE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            target_dir()
                .join("release")
                .join(format!("archive{}", std::env::consts::EXE_SUFFIX))
        })
}

/// [`archive_bin_path`], or exit 2 naming the path and how to make it.
pub fn archive_bin() -> PathBuf {
    let bin = archive_bin_path();
    if !bin.is_file() {
        eprintln!(
            "bench: no `archive` binary at {}: build it with `cargo build --release --bin \
             archive` (with the same CARGO_TARGET_DIR), or point ARCHIVE_BIN at one",
            bin.display()
        );
        std::process::exit(2);
    }
    bin
}

/// Write target/bench-data with benches/make_bench_data.py unless every file is there.
pub fn ensure_bench_data(root: &Path, dir: &Path) {
    if BENCH_FILES.iter().all(|(_, f)| dir.join(f).is_file()) {
        return;
    }
    let fix = "install them with `pip install -r tools/requirements-samples.txt`, or write the \
               files with `python3 benches/make_bench_data.py target/bench-data`";
    let check = Command::new("python3")
        .args(["-c", "import numpy, sklearn, threadpoolctl"])
        .output();
    match check {
        Err(e) => {
            eprintln!(
                "bench: the benchmark data is missing and python3 cannot be run ({e}); {fix}"
            );
            std::process::exit(2);
        }
        Ok(out) if !out.status.success() => {
            eprintln!(
                "bench: the benchmark data is missing and python3 lacks numpy/scikit-learn ({}); \
                 {fix}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("import failed")
            );
            std::process::exit(2);
        }
        Ok(_) => {}
    }
    let script = root.join("benches").join("make_bench_data.py");
    eprintln!(
        "writing {} with {} (about 20 s) ...",
        dir.display(),
        script.display()
    );
    if !Command::new("python3")
        .arg(&script)
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("bench: {} failed; {fix}", script.display());
        std::process::exit(2);
    }
}

/// A float32 tensor read from a .npy file.
pub struct F32Tensor {
    pub shape: Shape,
    pub data: Vec<u8>,
}

impl F32Tensor {
    pub fn load(path: &Path) -> F32Tensor {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let arr = npy::read(&path.display().to_string(), &bytes).expect("a valid .npy file");
        assert_eq!(
            arr.dtype,
            Dtype::F32,
            "{}: expected float32",
            path.display()
        );
        F32Tensor {
            shape: arr.shape,
            data: arr.data.into_owned(),
        }
    }

    pub fn view(&self) -> TensorView<'_> {
        TensorView::new(Dtype::F32, &self.shape, &self.data).expect("shape matches the bytes")
    }
}

/// A new store in `parent` whose segment already exists, as in a store in use.
pub fn fresh_store(parent: &Path) -> (tempfile::TempDir, Archive) {
    let dir = tempfile::Builder::new()
        .prefix("store-")
        .tempdir_in(parent)
        .expect("scratch dir");
    let archive = Archive::create(dir.path()).expect("create a store");
    archive.put_text("warm-up", &[]).expect("warm-up put");
    (dir, archive)
}

/// Baseline put: blake3 on every core, then byte shuffle + zstd level 1 of each 1 MiB chunk
/// on every core (what Blosc2 does), written to `path` with one fsync.
pub fn baseline_put(data: &[u8], path: &Path) -> usize {
    let (hash, chunks) = baseline_encode(data);
    black_box(hash);
    let mut f = File::create(path).expect("create the baseline file");
    for c in &chunks {
        f.write_all(c).expect("write the baseline file");
    }
    f.sync_data().expect("fsync the baseline file");
    chunks.iter().map(Vec::len).sum()
}

pub fn baseline_encode(data: &[u8]) -> (blake3::Hash, Vec<Vec<u8>>) {
    let mut h = blake3::Hasher::new();
    h.update_rayon(data);
    let chunks = data
        .par_chunks(CHUNK_SIZE)
        .map(|c| {
            let mut s = vec![0u8; c.len()];
            shuffle(c, &mut s, 4);
            zstd::bulk::compress(&s, 1).expect("zstd compresses")
        })
        .collect();
    (h.finalize(), chunks)
}

/// Baseline get: decompress + unshuffle each chunk on every core, then blake3 on every core.
pub fn baseline_get(chunks: &[Vec<u8>], raw_len: usize) -> Vec<u8> {
    let mut out = vec![0u8; raw_len];
    out.par_chunks_mut(CHUNK_SIZE)
        .zip(chunks.par_iter())
        .for_each(|(dst, src)| {
            let mut tmp = vec![0u8; dst.len()];
            let n = zstd::bulk::decompress_to_buffer(src, &mut tmp[..]).expect("zstd decompresses");
            assert_eq!(n, dst.len());
            unshuffle(&tmp, dst, 4);
        });
    let mut h = blake3::Hasher::new();
    h.update_rayon(&out);
    black_box(h.finalize());
    out
}

/// Raw-stored f32 tensors of 1 MiB, 64 MiB and 1 GiB (the 64 MiB `relu` repeated 16 times,
/// each copy's first element made distinct so nothing is deduplicated), for `map` timings.
pub fn put_raw_sizes(archive: &Archive, relu: &F32Tensor) -> [model_archive::ObjectHash; 3] {
    let raw = model_archive::PutOptions {
        codec: Some(model_archive::Codec::Raw),
        level: None,
    };
    let put = |shape: Shape, data: &[u8]| {
        let view = TensorView::new(Dtype::F32, &shape, data).expect("shape matches the bytes");
        archive.put_tensor_with(&view, &[], &raw).expect("put raw")
    };
    let one = put(Shape::new(vec![1024, 256]), &relu.data[..1 << 20]);
    let sixty_four = put(relu.shape.clone(), &relu.data);
    let mut gib = Vec::with_capacity(16 * relu.data.len());
    for i in 0..16u32 {
        let at = gib.len();
        gib.extend_from_slice(&relu.data);
        gib[at..at + 4].copy_from_slice(&(i as f32).to_le_bytes());
    }
    let gib = put(Shape::new(vec![16 * 65536, 256]), &gib);
    [one, sixty_four, gib]
}

/// blake3 on every core.
pub fn blake3_all_cores(data: &[u8]) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update_rayon(data);
    h.finalize()
}

/// Bytes of the files under `p`, recursively.
pub fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p).map_or(0, |d| {
        d.filter_map(|e| e.ok())
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => dir_size(&e.path()),
                _ => e.metadata().map_or(0, |m| m.len()),
            })
            .sum()
    })
}

/// `n` records with ids from `offset`, in 1000 runs: one after another (as 1000 jobs of one
/// run each would log them), or `interleaved`, record i in run i % 1000 (the worst case for
/// the tag keys: every pack holds every run). A msgpack stream for `archive log --format
/// msgpack`.
pub fn record_stream(n: usize, offset: usize, interleaved: bool) -> Vec<u8> {
    let per_run = n.div_ceil(1000).max(1);
    let mut out = Vec::with_capacity(n * 120);
    for i in offset..offset + n {
        let run = if interleaved {
            i % 1000
        } else {
            (i - offset) / per_run
        };
        // {"id": str, "label": int, "run": str, "probs": float32[10]}, the array as msgpack-numpy
        // writes it (bin keys).
        rmp::encode::write_map_len(&mut out, 4).expect("vec");
        rmp::encode::write_str(&mut out, "id").expect("vec");
        rmp::encode::write_str(&mut out, &format!("digits-test-{i:08}")).expect("vec");
        rmp::encode::write_str(&mut out, "label").expect("vec");
        rmp::encode::write_uint(&mut out, (i % 10) as u64).expect("vec");
        rmp::encode::write_str(&mut out, "run").expect("vec");
        rmp::encode::write_str(&mut out, &format!("r{run}")).expect("vec");
        rmp::encode::write_str(&mut out, "probs").expect("vec");
        rmp::encode::write_map_len(&mut out, 5).expect("vec");
        rmp::encode::write_bin(&mut out, b"nd").expect("vec");
        rmp::encode::write_bool(&mut out, true).expect("vec");
        rmp::encode::write_bin(&mut out, b"type").expect("vec");
        rmp::encode::write_str(&mut out, "<f4").expect("vec");
        rmp::encode::write_bin(&mut out, b"kind").expect("vec");
        rmp::encode::write_bin(&mut out, b"").expect("vec");
        rmp::encode::write_bin(&mut out, b"shape").expect("vec");
        rmp::encode::write_array_len(&mut out, 1).expect("vec");
        rmp::encode::write_uint(&mut out, 10).expect("vec");
        rmp::encode::write_bin(&mut out, b"data").expect("vec");
        let data: Vec<u8> = (0..10u32)
            .flat_map(|j| {
                (((i as u32).wrapping_mul(2_654_435_761) ^ j) as f32 / u32::MAX as f32)
                    .to_le_bytes()
            })
            .collect();
        rmp::encode::write_bin(&mut out, &data).expect("vec");
    }
    out
}
