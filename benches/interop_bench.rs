//! Interop benchmark: what it costs to bring outputs into the archive and back out, against
//! the cheapest thing that could be done with the same bytes.
//!
//! ```sh
//! cargo run --release -p model-archive-bench --bin interop-bench          # in a temporary dir
//! cargo run --release -p model-archive-bench --bin interop-bench -- DIR   # or in DIR (a real disk)
//! ```
//!
//! - **64 MiB float32 `.npy`**: import (read the file, parse it, put it, commit with fsync) and
//!   export (get it, write `.npy`, fsync) against a plain copy of the same file with fsync.
//!   Each import goes into a fresh store, as a first put would (a second put of the same
//!   content is only a hash). The same import with the raw codec separates what compression
//!   costs from what the format path costs. Medians of several runs; the ratios are of
//!   medians taken in this one run.
//! - **msgpack-numpy stream of 10,000 arrays**: each value `{"id": i, "probs": float32[10]}`,
//!   as a service logging predictions writes them; import reads the stream, puts every value
//!   (a record and its array) in one batch and commits: arrays per second.
//!
//! The floats are pseudo-random activations (not zeros), so compression does real work.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use model_archive::document;
use model_archive::interop::{self, Array, Document, Format, msgpack_numpy, npy};
use model_archive::{Archive, Codec, Dtype, PutOptions, Shape, Value};

const BIG_ELEMENTS: usize = 16 << 20; // 64 MiB of f32
const RUNS: usize = 5;
const STREAM_ARRAYS: usize = 10_000;

/// Deterministic floats that look like activations: a smooth part plus noise.
fn activations(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(n * 4);
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let noise = (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        let v = ((i % 1024) as f32 * 0.01).sin() + noise;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn sync_write(path: &Path, bytes: &[u8]) {
    let mut f = File::create(path).expect("create");
    f.write_all(bytes).expect("write");
    f.sync_all().expect("fsync");
}

fn main() {
    let arg = std::env::args().nth(1).map(PathBuf::from);
    let tmp = tempfile::tempdir_in(arg.as_deref().unwrap_or(&std::env::temp_dir()))
        .expect("temporary directory");
    let dir = tmp.path();

    // --- 64 MiB float32 .npy -------------------------------------------------------------
    let shape = Shape::new(vec![(BIG_ELEMENTS / 1024) as u64, 1024]);
    let data = activations(BIG_ELEMENTS, 7);
    let src = dir.join("big.npy");
    sync_write(
        &src,
        &npy::write("big", Dtype::F32, &shape, &data).expect("npy"),
    );
    let size = std::fs::metadata(&src).expect("stat").len();

    let (mut copy, mut import, mut export) = (Vec::new(), Vec::new(), Vec::new());
    let mut import_raw = Vec::new();
    for run in 0..RUNS {
        let dst = dir.join("copy.npy");
        let t = Instant::now();
        std::fs::copy(&src, &dst).expect("copy");
        File::open(&dst).and_then(|f| f.sync_all()).expect("fsync");
        copy.push(t.elapsed());
        std::fs::remove_file(&dst).expect("rm");

        let store = dir.join(format!("store{run}"));
        let archive = Archive::create(&store).expect("store");
        let t = Instant::now();
        let bytes = std::fs::read(&src).expect("read");
        let doc = interop::read(Format::Npy, "big.npy", &bytes).expect("parse");
        let mut w = archive.writer();
        let hash = document::put_document(&mut w, &doc, &[("run", "bench")]).expect("put");
        w.commit().expect("commit");
        import.push(t.elapsed());
        drop(w);
        drop(doc);
        drop(bytes);

        let out = dir.join("out.npy");
        let t = Instant::now();
        let doc = document::get_document(&archive, &hash).expect("get");
        let bytes = interop::write(Format::Npy, "out.npy", &doc).expect("write");
        sync_write(&out, &bytes);
        export.push(t.elapsed());
        assert_eq!(
            std::fs::read(&out).expect("read"),
            std::fs::read(&src).expect("read"),
            "bit-exact"
        );
        drop(archive);
        std::fs::remove_dir_all(&store).expect("rm store");

        // The same import stored raw (no compression): what the format path itself costs.
        let archive = Archive::create(&store).expect("store");
        let t = Instant::now();
        let bytes = std::fs::read(&src).expect("read");
        let doc = interop::read(Format::Npy, "big.npy", &bytes).expect("parse");
        let mut w = archive.writer();
        w.set_options(PutOptions {
            codec: Some(Codec::Raw),
            level: None,
        });
        document::put_document(&mut w, &doc, &[("run", "bench")]).expect("put");
        w.commit().expect("commit");
        import_raw.push(t.elapsed());
        drop(w);
        drop(archive);
        std::fs::remove_dir_all(&store).expect("rm store");
    }
    let (copy, import, export) = (median(copy), median(import), median(export));
    let import_raw = median(import_raw);
    let mib = size as f64 / (1 << 20) as f64;
    let rate = |d: Duration| mib / d.as_secs_f64();
    println!("interop-bench ({RUNS} runs each, medians)\n");
    println!("| workload | time | MiB/s | vs file copy |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| copy 64 MiB f32 .npy (fs::copy + fsync) | {:.1} ms | {:.0} | 1.00x |",
        copy.as_secs_f64() * 1e3,
        rate(copy)
    );
    for (name, d) in [
        ("import 64 MiB f32 .npy (read, parse, put, commit)", import),
        (
            "import, stored raw (--codec raw: no compression)",
            import_raw,
        ),
        ("export 64 MiB f32 .npy (get, write .npy, fsync)", export),
    ] {
        println!(
            "| {name} | {:.1} ms | {:.0} | {:.2}x |",
            d.as_secs_f64() * 1e3,
            rate(d),
            d.as_secs_f64() / copy.as_secs_f64()
        );
    }

    // --- msgpack-numpy stream of 10,000 arrays ------------------------------------------
    let mut stream = Vec::new();
    for i in 0..STREAM_ARRAYS {
        let probs = activations(10, i as u64 + 1);
        let array =
            Array::new("probs", Dtype::F32, Shape::new(vec![10]), probs.into()).expect("array");
        let doc = Document::Map(vec![
            ("id".into(), Document::Scalar(Value::Int(i as i64))),
            ("probs".into(), Document::Tensor(array)),
        ]);
        stream.extend(msgpack_numpy::write("stream", &doc).expect("msgpack"));
    }
    let mut times = Vec::new();
    for run in 0..RUNS {
        let store = dir.join(format!("stream{run}"));
        let archive = Archive::create(&store).expect("store");
        let t = Instant::now();
        let docs = interop::read_all(Format::MsgpackNumpy, "stream", &stream).expect("parse");
        let mut w = archive.writer();
        for doc in &docs {
            document::put_document(&mut w, doc, &[("run", "bench")]).expect("put");
        }
        w.commit().expect("commit");
        times.push(t.elapsed());
        drop(w);
        assert_eq!(docs.len(), STREAM_ARRAYS);
        drop(archive);
        std::fs::remove_dir_all(&store).expect("rm store");
    }
    let d = median(times);
    println!(
        "| import msgpack-numpy stream, {STREAM_ARRAYS} arrays ({:.1} KiB) | {:.1} ms | {:.0} arrays/s | |",
        stream.len() as f64 / 1024.0,
        d.as_secs_f64() * 1e3,
        STREAM_ARRAYS as f64 / d.as_secs_f64()
    );
}
