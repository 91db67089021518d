//! Criterion benches of the core paths: put, get and map of 64 MiB of real float32 model
//! outputs, map of raw tensors from 1 MiB to 1 GiB, and small records through the batch
//! writer. Every group holds its baseline on the same bytes (STYLE.md section 6), so what
//! matters is the ratio of the two medians in one run.
//!
//! ```text
//! cargo bench -p model-archive-bench --bench core                 # a few minutes on 2 cores
//! cargo bench -p model-archive-bench --bench core -- 'get 64 MiB' # one group
//! ```
//!
//! Data: target/bench-data/*.npy, written by `python3 benches/make_bench_data.py` when missing
//! (needs `pip install -r tools/requirements-samples.txt`), and samples/predictions.ndjson.
//! Stores go in target/tmp, on a real disk, so that fsync costs what it costs. The goals and
//! the workload figures (100k records, a 1,000,000-entry store) are in
//! `cargo run --release -p model-archive-bench --bin bench-report`.

use std::cell::OnceCell;
use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput};
use model_archive::{Archive, ObjectHash, Record, Value};

/// Records per iteration of the records group: one commit's worth.
const RECORDS: usize = 10_000;

mod bench_common;
use bench_common::*;

fn main() {
    let root = workspace_root();
    let data_dir = root.join("target").join("bench-data");
    ensure_bench_data(root, &data_dir);
    let scratch_parent = root.join("target").join("tmp");
    std::fs::create_dir_all(&scratch_parent).expect("create target/tmp");
    let scratch = tempfile::Builder::new()
        .prefix("bench-core-")
        .tempdir_in(&scratch_parent)
        .expect("create a scratch directory in target/tmp");
    let data: Vec<(&str, F32Tensor)> = BENCH_FILES
        .iter()
        .map(|(name, file)| (*name, F32Tensor::load(&data_dir.join(file))))
        .collect();

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    for (name, t) in &data {
        bench_put(&mut c, scratch.path(), name, t);
    }
    for (name, t) in &data {
        bench_get(&mut c, scratch.path(), name, t);
    }
    let relu = data
        .iter()
        .find(|(n, _)| *n == "hidden_relu")
        .map(|(_, t)| t);
    bench_map(&mut c, scratch.path(), relu.expect("hidden_relu is loaded"));
    bench_records(&mut c, root, scratch.path());
    c.final_summary();
}

fn bench_put(c: &mut Criterion, scratch: &Path, name: &str, t: &F32Tensor) {
    let mut g = c.benchmark_group(format!("put 64 MiB f32 ({name})"));
    g.throughput(Throughput::Bytes(t.data.len() as u64))
        .sampling_mode(SamplingMode::Flat);
    let view = t.view();
    g.bench_function("archive put_tensor (auto codec)", |b| {
        b.iter_batched(
            || fresh_store(scratch),
            |(dir, archive)| {
                black_box(archive.put_tensor(&view, &[]).expect("put_tensor"));
                (dir, archive) // dropped (and deleted) untimed
            },
            BatchSize::PerIteration,
        );
    });
    let path = scratch.join("baseline-put.bin");
    g.bench_function("baseline blake3 + shuffle+zstd-1 + write + fsync", |b| {
        b.iter(|| baseline_put(black_box(&t.data), &path));
    });
    g.finish();
    let _ = std::fs::remove_file(&path);
}

fn bench_get(c: &mut Criterion, scratch: &Path, name: &str, t: &F32Tensor) {
    let mut g = c.benchmark_group(format!("get 64 MiB f32 ({name})"));
    g.throughput(Throughput::Bytes(t.data.len() as u64))
        .sampling_mode(SamplingMode::Flat);
    let store: OnceCell<(tempfile::TempDir, Archive, ObjectHash)> = OnceCell::new();
    g.bench_function("archive get (decode + verify)", |b| {
        let (_, archive, hash) = store.get_or_init(|| {
            let (dir, archive) = fresh_store(scratch);
            let hash = archive.put_tensor(&t.view(), &[]).expect("put_tensor");
            (dir, archive, hash)
        });
        b.iter(|| archive.get(black_box(hash)).expect("get"));
    });
    let chunks: OnceCell<Vec<Vec<u8>>> = OnceCell::new();
    g.bench_function("baseline unzstd + unshuffle + blake3", |b| {
        let chunks = chunks.get_or_init(|| baseline_encode(&t.data).1);
        b.iter(|| baseline_get(black_box(chunks), t.data.len()));
    });
    g.finish();
}

/// A store holding `hidden_relu` raw as 1 MiB, 64 MiB and 1 GiB tensors (the 1 GiB one is the
/// 64 MiB repeated, each copy's first element made distinct).
struct RawStore {
    _dir: tempfile::TempDir,
    archive: Archive,
    hashes: [ObjectHash; 3],
}

impl RawStore {
    fn new(scratch: &Path, relu: &F32Tensor) -> RawStore {
        eprintln!("writing raw tensors of 1 MiB, 64 MiB and 1 GiB ...");
        let (dir, archive) = fresh_store(scratch);
        let hashes = put_raw_sizes(&archive, relu);
        RawStore {
            _dir: dir,
            archive,
            hashes,
        }
    }
}

fn bench_map(c: &mut Criterion, scratch: &Path, relu: &F32Tensor) {
    let store: OnceCell<RawStore> = OnceCell::new();
    let get_store = || store.get_or_init(|| RawStore::new(scratch, relu));
    {
        // O(1) in the size: no throughput, the 1 MiB case is the baseline of the others.
        let mut g = c.benchmark_group("map_unchecked raw f32 (1 MiB, 64 MiB, 1 GiB)");
        g.measurement_time(Duration::from_secs(1));
        for (i, label) in ["1 MiB", "64 MiB", "1 GiB"].into_iter().enumerate() {
            g.bench_function(label, |b| {
                let s = get_store();
                let hash = &s.hashes[i];
                b.iter(|| {
                    s.archive
                        .map_unchecked(black_box(hash))
                        .expect("map")
                        .bytes()
                        .len()
                });
            });
        }
        g.finish();
    }
    let mut g = c.benchmark_group("map 64 MiB f32 raw (verified)");
    g.throughput(Throughput::Bytes(relu.data.len() as u64))
        .sampling_mode(SamplingMode::Flat);
    g.bench_function("archive map", |b| {
        let s = get_store();
        b.iter(|| {
            s.archive
                .map(black_box(&s.hashes[1]))
                .expect("map")
                .bytes()
                .len()
        });
    });
    g.bench_function("baseline blake3 of the bytes in memory", |b| {
        b.iter(|| {
            let mut h = blake3::Hasher::new();
            h.update_rayon(black_box(&relu.data));
            h.finalize()
        });
    });
    g.finish();
}

/// Small records from samples/predictions.ndjson (cycling, a counter in each id so all are
/// distinct): id, label, 10 probabilities.
fn load_records(root: &Path, n: usize) -> Vec<Record> {
    let path = root.join("samples").join("predictions.ndjson");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    (0..n)
        .map(|i| {
            let row = &rows[i % rows.len()];
            let id = format!("{}-{i:07}", row["id"].as_str().expect("id is a string"));
            let label = row["label"].as_i64().expect("label is an integer");
            let probs = row["probs"].as_array().expect("probs is a list");
            let probs = probs
                .iter()
                .map(|p| Value::Float(f64::from(p.as_f64().expect("float") as f32)));
            Record::new()
                .with("id", Value::Str(id))
                .and_then(|r| r.with("label", Value::Int(label)))
                .and_then(|r| r.with("probs", Value::List(probs.collect())))
                .expect("distinct field names")
        })
        .collect()
}

fn bench_records(c: &mut Criterion, root: &Path, scratch: &Path) {
    let records = load_records(root, RECORDS);
    let mut g = c.benchmark_group("put_record 10k small records (one commit)");
    g.throughput(Throughput::Elements(RECORDS as u64))
        .sampling_mode(SamplingMode::Flat);
    g.bench_function("archive writer put_record + commit", |b| {
        b.iter_batched(
            || fresh_store(scratch),
            |(dir, archive)| {
                let mut w = archive.writer();
                for r in &records {
                    w.put_record(black_box(r), &[]).expect("put_record");
                }
                w.commit().expect("commit");
                drop(w);
                (dir, archive)
            },
            BatchSize::PerIteration,
        );
    });
    let path: PathBuf = scratch.join("records.msgpack");
    g.bench_function("baseline msgpack stream + fsync", |b| {
        b.iter(|| {
            let mut out = BufWriter::new(File::create(&path).expect("create the msgpack stream"));
            for r in &records {
                out.write_all(&black_box(r).to_msgpack()).expect("msgpack");
            }
            out.flush()
                .and_then(|()| out.get_ref().sync_data())
                .expect("fsync");
        });
    });
    g.finish();
    let _ = std::fs::remove_file(&path);
}
