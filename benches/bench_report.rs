//! Workload figures for model-archive in one markdown table: each figure next to a baseline
//! measured in the same run on the same bytes, as a ratio of medians.
//!
//! ```text
//! cargo build --release --bin archive                # for the whole-process `get` row
//! cargo run --release -p model-archive-bench --bin bench-report              # everything
//! cargo run --release -p model-archive-bench --bin bench-report -- --quick   # no 1M-entry store
//! cargo run --release -p model-archive-bench --bin bench-report -- --only put,get --runs 9
//! ```
//!
//! What it measures (sections for `--only`):
//! - `put`: `put_tensor` of each 64 MiB float32 file of real model outputs with the default
//!   codec, against blake3 (`update_rayon`) + byte shuffle + zstd level 1 on 1 MiB chunks on
//!   every core, written to a file with one fsync; and the stored/raw size of both.
//! - `get`: `get` (decode + verify) of the same, against decompress + unshuffle + blake3.
//! - `map`: `map_unchecked` of raw 1 MiB, 64 MiB and 1 GiB tensors; `map` (verified) of 64 MiB
//!   against blake3 of the same bytes.
//! - `records`: 100,000 small records through the batch writer (commit every 10,000), against
//!   the same records as a msgpack stream on a `BufWriter` (fsync every 10,000); bytes on disk.
//! - `store`: a 1,000,000-entry store (built once, kept in target/bench-store-1m): time to open
//!   the index (`Archive::open`), to open the lookup tables and get (`ArchiveReader`), and the
//!   wall time of `archive --store S get HASH -o x.npy` as a whole process, each against the
//!   same on a store holding only that tensor. Falls back to the in-process equivalent (and
//!   says so) when the `archive` binary is missing or fails (`$ARCHIVE_BIN`, else
//!   `$CARGO_TARGET_DIR/release/archive`, target/ by default).
//!
//! Data: target/bench-data/*.npy, written by `python3 benches/make_bench_data.py` (run here if
//! missing; needs `pip install -r tools/requirements-samples.txt`), and samples/.
//! Scratch stores go in target/tmp (a real disk: fsync must cost what it costs).

use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use model_archive::interop::npy;
use model_archive::{
    Archive, ArchiveReader, Codec, Dtype, Object, ObjectHash, PutOptions, Record, Value,
};

const RECORDS: usize = 100_000;
const COMMIT_EVERY: usize = 10_000;
const STORE_ENTRIES: usize = 1_000_000;
const MIB: f64 = (1 << 20) as f64;

mod bench_common;
use bench_common::*;

fn main() {
    let opts = Opts::parse();
    let root = workspace_root();
    let scratch_parent = root.join("target").join("tmp");
    std::fs::create_dir_all(&scratch_parent).expect("create target/tmp");
    let scratch = tempfile::Builder::new()
        .prefix("bench-report-")
        .tempdir_in(&scratch_parent)
        .expect("create a scratch directory in target/tmp");
    let mut table = Table::default();
    let mut notes = Vec::new();
    let started = Instant::now();
    let load_before = load_average();

    if opts.wants("put") || opts.wants("get") || opts.wants("map") {
        let dir = root.join("target").join("bench-data");
        ensure_bench_data(root, &dir);
        let data: Vec<(&str, F32Tensor)> = BENCH_FILES
            .iter()
            .map(|(short, file)| (*short, F32Tensor::load(&dir.join(file))))
            .collect();
        if opts.wants("put") {
            for (name, t) in &data {
                measure_put(&mut table, scratch.path(), name, t, opts.runs);
            }
        }
        if opts.wants("get") {
            for (name, t) in &data {
                measure_get(&mut table, scratch.path(), name, t, opts.runs);
            }
        }
        if opts.wants("map") {
            let relu = data
                .iter()
                .find(|(n, _)| *n == "hidden_relu")
                .map(|(_, t)| t);
            measure_map(
                &mut table,
                scratch.path(),
                relu.expect("hidden_relu is loaded"),
            );
        }
    }
    if opts.wants("records") {
        measure_records(
            &mut table,
            &mut notes,
            root,
            scratch.path(),
            opts.runs.min(5),
        );
    }
    if opts.wants("store") && !opts.quick {
        measure_store(&mut table, &mut notes, root, scratch.path());
    }

    println!("{}", table.render());
    notes.push(format!(
        "{} cores; medians of {} runs for put and get, {} for records, 15 for map, 201 for \
         map_unchecked, 20 for the store rows; load average {} before, {} after; {:.0} s in all",
        rayon::current_num_threads(),
        opts.runs,
        opts.runs.min(5),
        load_before,
        load_average(),
        started.elapsed().as_secs_f64()
    ));
    for n in notes {
        println!("- {n}");
    }
}

/// Command-line options.
struct Opts {
    quick: bool,
    runs: usize,
    only: Option<Vec<String>>,
}

impl Opts {
    fn parse() -> Opts {
        let mut opts = Opts {
            quick: false,
            runs: 7,
            only: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--quick" => opts.quick = true,
                "--runs" => {
                    opts.runs = args
                        .next()
                        .and_then(|n| n.parse().ok())
                        .filter(|n| *n >= 1)
                        .unwrap_or_else(|| usage("--runs takes a number of runs, at least 1"));
                }
                "--only" => {
                    let list = args.next().unwrap_or_else(|| usage("--only takes a list"));
                    let names: Vec<String> = list.split(',').map(str::to_owned).collect();
                    let known = ["put", "get", "map", "records", "store"];
                    if let Some(bad) = names.iter().find(|n| !known.contains(&n.as_str())) {
                        usage(&format!(
                            "unknown section `{bad}`; sections: {}",
                            known.join(",")
                        ));
                    }
                    opts.only = Some(names);
                }
                "-h" | "--help" => usage(""),
                other => usage(&format!("unknown argument `{other}`")),
            }
        }
        opts
    }

    fn wants(&self, section: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|s| s == section))
    }
}

fn usage(msg: &str) -> ! {
    if !msg.is_empty() {
        eprintln!("bench-report: {msg}");
    }
    eprintln!(
        "usage: cargo run --release -p model-archive-bench --bin bench-report -- [--quick] \
         [--runs N] [--only put,get,map,records,store]\n  \
         --quick  skip the 1,000,000-entry store"
    );
    std::process::exit(if msg.is_empty() { 0 } else { 2 });
}

// ---------------------------------------------------------------------------------------------
// Measurements.

fn measure_put(table: &mut Table, scratch: &Path, name: &str, t: &F32Tensor, runs: usize) {
    eprintln!("put 64 MiB f32 ({name}) ...");
    let raw = t.data.len();
    let base_file = scratch.join("baseline.bin");
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    let (mut stored, mut codec, mut base_stored) = (0, Codec::Raw, 0);
    // One untimed round first: page faults, thread start-up.
    for run in 0..=runs {
        let (dir, archive) = fresh_store(scratch);
        let start = Instant::now();
        let hash = archive.put_tensor(&t.view(), &[]).expect("put_tensor");
        let took = start.elapsed();
        let info = archive.info(&hash).expect("info");
        (stored, codec) = (info.stored_len as usize, info.codec);
        drop(archive);
        drop(dir);

        let start = Instant::now();
        base_stored = baseline_put(&t.data, &base_file);
        let base_took = start.elapsed();
        std::fs::remove_file(&base_file).expect("remove the baseline file");
        if run > 0 {
            ours.push(took);
            base.push(base_took);
        }
    }
    let (ours, base) = (median(ours), median(base));
    table.row(
        format!("put 64 MiB f32 ({name}), default codec"),
        mib_s(raw, ours),
        format!(
            "{} (blake3 + shuffle+zstd-1 + write + fsync)",
            mib_s(raw, base)
        ),
        Ratio::Speed(base.as_secs_f64() / ours.as_secs_f64()),
        Goal::SpeedAtLeast(0.8),
    );
    table.row(
        format!("stored/raw 64 MiB f32 ({name})"),
        format!("{:.3} ({codec})", stored as f64 / raw as f64),
        format!(
            "{:.3} (shuffle+zstd-1, Blosc2-like)",
            base_stored as f64 / raw as f64
        ),
        Ratio::Size(stored as f64 / base_stored as f64),
        Goal::None,
    );
}

fn measure_get(table: &mut Table, scratch: &Path, name: &str, t: &F32Tensor, runs: usize) {
    eprintln!("get 64 MiB f32 ({name}) ...");
    let (_dir, archive) = fresh_store(scratch);
    let hash = archive.put_tensor(&t.view(), &[]).expect("put_tensor");
    let codec = archive.info(&hash).expect("info").codec;
    let (_, chunks) = baseline_encode(&t.data);
    let raw = t.data.len();
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for run in 0..=runs {
        let start = Instant::now();
        let obj = archive.get(&hash).expect("get");
        let took = start.elapsed();
        let Object::Tensor(got) = obj else {
            panic!("{hash} is not a tensor")
        };
        assert!(got.data == t.data, "get returned other bytes");
        drop(got);

        let start = Instant::now();
        let out = baseline_get(&chunks, raw);
        let base_took = start.elapsed();
        drop(black_box(out));
        if run > 0 {
            ours.push(took);
            base.push(base_took);
        }
    }
    let (ours, base) = (median(ours), median(base));
    table.row(
        format!("get 64 MiB f32 ({name}), decode + verify ({codec})"),
        mib_s(raw, ours),
        format!("{} (unzstd + unshuffle + blake3)", mib_s(raw, base)),
        Ratio::Speed(base.as_secs_f64() / ours.as_secs_f64()),
        Goal::SpeedAtLeast(0.8),
    );
}

fn measure_map(table: &mut Table, scratch: &Path, relu: &F32Tensor) {
    eprintln!("map_unchecked of raw 1 MiB, 64 MiB, 1 GiB (writes 1 GiB) ...");
    let (_dir, archive) = fresh_store(scratch);
    let [one_mib, mib64, gib_hash] = put_raw_sizes(&archive, relu);

    let sizes = [(one_mib, "1 MiB"), (mib64, "64 MiB"), (gib_hash, "1 GiB")];
    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    for run in 0..=201 {
        for ((hash, _), ts) in sizes.iter().zip(times.iter_mut()) {
            let start = Instant::now();
            let m = archive.map_unchecked(hash).expect("map_unchecked");
            black_box(m.bytes().len());
            let took = start.elapsed();
            assert!(m.is_zero_copy(), "a raw tensor maps without a copy");
            if run > 0 {
                ts.push(took);
            }
        }
    }
    let [t1, t64, t1g] = times.map(median);
    table.row(
        "map_unchecked raw 1 MiB (reference)".into(),
        micros(t1),
        "—".into(),
        Ratio::None,
        Goal::None,
    );
    for (label, t) in [("64 MiB", t64), ("1 GiB", t1g)] {
        table.row(
            format!("map_unchecked raw {label}"),
            micros(t),
            format!("{} (same, 1 MiB)", micros(t1)),
            Ratio::Time(t.as_secs_f64() / t1.as_secs_f64()),
            Goal::TimeAtMost(2.0),
        );
    }

    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for run in 0..=15 {
        let start = Instant::now();
        let m = archive.map(&mib64).expect("map");
        black_box(m.bytes().len());
        let took = start.elapsed();
        let start = Instant::now();
        black_box(blake3_all_cores(&relu.data));
        let base_took = start.elapsed();
        if run > 0 {
            ours.push(took);
            base.push(base_took);
        }
    }
    let (ours, base) = (median(ours), median(base));
    table.row(
        "map (verified) raw 64 MiB".into(),
        format!("{} ({})", mib_s(relu.data.len(), ours), millis(ours)),
        format!(
            "{} (blake3 of the bytes in memory)",
            mib_s(relu.data.len(), base)
        ),
        Ratio::Speed(base.as_secs_f64() / ours.as_secs_f64()),
        Goal::None,
    );
}

/// Rows of samples/predictions.ndjson: id, label, probabilities as float32.
fn load_predictions(root: &Path) -> Vec<(String, i64, [f32; 10])> {
    let path = root.join("samples").join("predictions.ndjson");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let id = v["id"].as_str().expect("id is a string").to_owned();
            let label = v["label"].as_i64().expect("label is an integer");
            let probs = v["probs"].as_array().expect("probs is a list");
            let mut p = [0f32; 10];
            assert_eq!(probs.len(), 10, "10 probabilities");
            for (d, s) in p.iter_mut().zip(probs) {
                *d = s.as_f64().expect("a probability") as f32;
            }
            (id, label, p)
        })
        .collect()
}

/// Record `i`: prediction `i` (cycling) with `i` in its id, so every record is distinct.
/// Also returns its raw bytes: 10 float32 + an 8-byte label + the id.
fn make_record(preds: &[(String, i64, [f32; 10])], i: usize) -> (Record, usize) {
    let (id, label, probs) = &preds[i % preds.len()];
    let id = format!("{id}-{i:07}");
    let raw = 40 + 8 + id.len();
    let probs = Value::List(probs.iter().map(|p| Value::Float(f64::from(*p))).collect());
    let rec = Record::new()
        .with("id", Value::Str(id))
        .and_then(|r| r.with("label", Value::Int(*label)))
        .and_then(|r| r.with("probs", probs))
        .expect("distinct field names");
    (rec, raw)
}

/// Put `records` through one batch writer into a new store (commit every `COMMIT_EVERY`).
/// Returns the time to the last commit and the bytes of the segments and of the index.
fn write_records(scratch: &Path, records: &[Record], opts: &PutOptions) -> (Duration, u64, u64) {
    let dir = tempfile::Builder::new()
        .prefix("records-")
        .tempdir_in(scratch)
        .expect("scratch");
    let archive = Archive::create(dir.path()).expect("create a store");
    let start = Instant::now();
    let mut w = archive.writer();
    w.set_options(opts.clone());
    for (i, r) in records.iter().enumerate() {
        w.put_record(r, &[]).expect("put_record");
        if (i + 1) % COMMIT_EVERY == 0 {
            w.commit().expect("commit");
        }
    }
    w.commit().expect("commit");
    drop(w);
    let took = start.elapsed();
    drop(archive); // flushes the index, so its size on disk is complete
    let segments = dir_size(&dir.path().join("segments"));
    let index = dir_size(&dir.path().join("index"));
    (took, segments, index)
}

/// The baseline: the same records as one msgpack stream, fsync every `COMMIT_EVERY`.
/// Returns the time and the stream's size.
fn write_msgpack_stream(path: &Path, records: &[Record]) -> (Duration, u64) {
    let start = Instant::now();
    let mut out = BufWriter::new(File::create(path).expect("create the msgpack stream"));
    for (i, r) in records.iter().enumerate() {
        out.write_all(&r.to_msgpack()).expect("msgpack");
        if (i + 1) % COMMIT_EVERY == 0 {
            out.flush()
                .and_then(|()| out.get_ref().sync_data())
                .expect("fsync");
        }
    }
    out.flush()
        .and_then(|()| out.get_ref().sync_data())
        .expect("fsync");
    let took = start.elapsed();
    let len = out.get_ref().metadata().expect("stat").len();
    drop(out);
    std::fs::remove_file(path).expect("remove the msgpack stream");
    (took, len)
}

fn measure_records(
    table: &mut Table,
    notes: &mut Vec<String>,
    root: &Path,
    scratch: &Path,
    runs: usize,
) {
    eprintln!("{RECORDS} records through the batch writer ...");
    let preds = load_predictions(root);
    let (records, raw): (Vec<Record>, Vec<usize>) =
        (0..RECORDS).map(|i| make_record(&preds, i)).unzip();
    let raw_per = raw.iter().sum::<usize>() as f64 / RECORDS as f64;
    let stream = scratch.join("records.msgpack");
    let no_zstd = PutOptions {
        codec: Some(Codec::Raw),
        level: None,
    };
    let (mut ours, mut base, mut raw_codec) = (Vec::new(), Vec::new(), Vec::new());
    let (mut seg_bytes, mut index_bytes, mut stream_bytes) = (0, 0, 0);
    for run in 0..=runs {
        let (took, segments, index) = write_records(scratch, &records, &PutOptions::default());
        let (base_took, len) = write_msgpack_stream(&stream, &records);
        let (raw_took, _, _) = write_records(scratch, &records, &no_zstd);
        (seg_bytes, index_bytes, stream_bytes) = (segments, index, len);
        if run > 0 {
            ours.push(took);
            base.push(base_took);
            raw_codec.push(raw_took);
        }
    }
    let (ours, base, raw_codec) = (median(ours), median(base), median(raw_codec));
    let rate = |d: Duration| RECORDS as f64 / d.as_secs_f64();
    table.row(
        format!(
            "{}k records, batch writer, commit every {}k",
            RECORDS / 1000,
            COMMIT_EVERY / 1000
        ),
        format!("{} rec/s", thousands(rate(ours))),
        format!(
            "{} rec/s (msgpack stream + fsync/10k)",
            thousands(rate(base))
        ),
        Ratio::Speed(rate(ours) / rate(base)),
        Goal::RateAtLeast(rate(ours), 100_000.0, "rec/s"),
    );
    let per = |b: u64| b as f64 / RECORDS as f64;
    table.row(
        "disk bytes per record (segments + index dir)".into(),
        format!(
            "{:.0} B ({:.0} + {:.0})",
            per(seg_bytes + index_bytes),
            per(seg_bytes),
            per(index_bytes)
        ),
        format!(
            "{raw_per:.0} B raw (msgpack stream {:.0} B)",
            per(stream_bytes)
        ),
        Ratio::Size(per(seg_bytes + index_bytes) / raw_per),
        Goal::None,
    );
    notes.push(format!(
        "records: id (\"digits-test-NNNNN-CCCCCCC\", {:.0} B), label (int), probs (10 float32, \
         held as float64 in the record); raw bytes count 4 B per probability",
        raw_per - 48.0
    ));
    notes.push(format!(
        "records, diagnostic: with `Writer::set_options(codec: raw)` (no zstd attempt per \
         record) the same batch writer does {} rec/s",
        thousands(rate(raw_codec))
    ));
}

/// Marker written next to the 1M-entry store once it is complete.
fn store_marker(store: &Path) -> PathBuf {
    store.with_extension("json")
}

/// The 1,000,000-entry store: built once (the get target is samples/digits_test_probs.npy,
/// put first), then reused. Returns the target's hash and the build time if built now.
fn store_1m(
    root: &Path,
    store: &Path,
    target: &F32Tensor,
) -> (ObjectHash, Option<(Duration, usize)>) {
    let marker = store_marker(store);
    if let Ok(text) = std::fs::read_to_string(&marker)
        && store.is_dir()
    {
        let v: serde_json::Value = serde_json::from_str(&text).expect("marker is JSON");
        let hash = v["hash"]
            .as_str()
            .and_then(|h| h.parse().ok())
            .expect("marker has a hash");
        return (hash, None);
    }
    if store.exists() {
        eprintln!("removing the incomplete {}", store.display());
        std::fs::remove_dir_all(store).expect("remove the incomplete store");
    }
    eprintln!(
        "building {} ({STORE_ENTRIES} entries; once, then reused) ...",
        store.display()
    );
    let preds = load_predictions(root);
    let archive = Archive::create(store).expect("create the 1M store");
    let start = Instant::now();
    let hash = archive
        .put_tensor(&target.view(), &[("role", "get-target")])
        .expect("put");
    let mut w = archive.writer();
    for i in 0..STORE_ENTRIES {
        w.put_record(&make_record(&preds, i).0, &[])
            .expect("put_record");
        if (i + 1) % COMMIT_EVERY == 0 {
            w.commit().expect("commit");
        }
        if (i + 1) % 100_000 == 0 {
            eprintln!(
                "  {} entries, {:.0} s",
                i + 1,
                start.elapsed().as_secs_f64()
            );
        }
    }
    w.commit().expect("commit");
    drop(w);
    let took = start.elapsed();
    let entries = archive.stats().expect("stats").entries as usize;
    drop(archive);
    let marker_json = serde_json::json!({
        "hash": hash.to_string(),
        "entries": entries,
        "build_secs": took.as_secs_f64(),
    });
    std::fs::write(&marker, marker_json.to_string()).expect("write the marker");
    (hash, Some((took, entries)))
}

fn measure_store(table: &mut Table, notes: &mut Vec<String>, root: &Path, scratch: &Path) {
    let target = F32Tensor::load(&root.join("samples").join("digits_test_probs.npy"));
    let store = root.join("target").join("bench-store-1m");
    let (hash, built) = store_1m(root, &store, &target);
    match built {
        Some((took, entries)) => table.row(
            format!(
                "build the {}-entry store (batch writer, commit/10k)",
                thousands(entries as f64)
            ),
            format!(
                "{:.1} s ({} rec/s)",
                took.as_secs_f64(),
                thousands(entries as f64 / took.as_secs_f64())
            ),
            "—".into(),
            Ratio::None,
            Goal::None,
        ),
        None => notes.push(format!(
            "the 1M-entry store was reused from {} (built {}; delete it and {} to rebuild)",
            store.display(),
            std::fs::read_to_string(store_marker(&store))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v["build_secs"].as_f64())
                .map_or("earlier".into(), |s| format!("in {s:.0} s")),
            store_marker(&store).display()
        )),
    }
    // The baseline store: only the target tensor.
    let small_dir = tempfile::Builder::new()
        .prefix("small-")
        .tempdir_in(scratch)
        .expect("scratch");
    let small = small_dir.path();
    Archive::create(small)
        .and_then(|a| a.put_tensor(&target.view(), &[]))
        .expect("small store");

    eprintln!("Archive::open of the 1M-entry store ...");
    let open_time = |path: &Path| {
        let times: Vec<Duration> = (0..=20)
            .map(|_| {
                let start = Instant::now();
                let a = Archive::open(path).expect("open");
                let took = start.elapsed();
                drop(a);
                took
            })
            .skip(1)
            .collect();
        median(times)
    };
    let (big_open, small_open) = (open_time(&store), open_time(small));
    table.row(
        "1M-entry store: Archive::open (index open + catch-up)".into(),
        millis(big_open),
        format!("{} (store of 1 object)", millis(small_open)),
        Ratio::Time(big_open.as_secs_f64() / small_open.as_secs_f64()),
        Goal::None,
    );
    // What `archive get` opens first: the lookup tables, without sled or the index lock.
    let reader_time = |path: &Path| {
        let times: Vec<Duration> = (0..=20)
            .map(|_| {
                let start = Instant::now();
                let r = ArchiveReader::open(path).expect("open a reader");
                let found = r.map(|r| r.get(&hash).expect("get").is_some());
                let took = start.elapsed();
                assert_eq!(found, Some(true), "the lookup tables find the target");
                took
            })
            .skip(1)
            .collect();
        median(times)
    };
    let (big_reader, small_reader) = (reader_time(&store), reader_time(small));
    table.row(
        "1M-entry store: ArchiveReader::open + get (lookup tables, no sled)".into(),
        millis(big_reader),
        format!("{} (store of 1 object)", millis(small_reader)),
        Ratio::Time(big_reader.as_secs_f64() / small_reader.as_secs_f64()),
        Goal::None,
    );

    eprintln!("whole-process get on the 1M-entry store ...");
    let expected = npy::write("target", Dtype::F32, &target.shape, &target.data).expect("npy");
    let out = scratch.join("x.npy");
    let bin = archive_bin_path();
    let cli = Some(bin.clone()).filter(|b| b.is_file()).filter(|b| {
        let ok = Command::new(b)
            .arg("--store")
            .arg(small)
            .args(["get", &hash.to_string(), "-o"])
            .arg(&out)
            .output()
            .is_ok_and(|o| o.status.success());
        ok && std::fs::read(&out).is_ok_and(|b| b == expected)
    });
    let get_time = |path: &Path| -> Duration {
        let times: Vec<Duration> = (0..=20)
            .map(|_| {
                let start = Instant::now();
                match &cli {
                    Some(bin) => {
                        let o = Command::new(bin)
                            .arg("--store")
                            .arg(path)
                            .args(["get", &hash.to_string(), "-o"])
                            .arg(&out)
                            .output()
                            .expect("run archive");
                        assert!(
                            o.status.success(),
                            "archive get: {}",
                            String::from_utf8_lossy(&o.stderr)
                        );
                    }
                    None => {
                        // As the CLI does: the lock-free reader first, the index if it misses.
                        let from_reader = ArchiveReader::open(path)
                            .expect("open a reader")
                            .and_then(|r| r.get(&hash).expect("get"));
                        let got = match from_reader {
                            Some(o) => o,
                            None => Archive::open(path).and_then(|a| a.get(&hash)).expect("get"),
                        };
                        let Object::Tensor(t) = got else {
                            panic!("{hash} is not a tensor")
                        };
                        let bytes = npy::write("x", t.dtype, &t.shape, &t.data).expect("npy");
                        std::fs::write(&out, bytes).expect("write x.npy");
                    }
                }
                start.elapsed()
            })
            .skip(1)
            .collect();
        assert!(
            std::fs::read(&out).is_ok_and(|b| b == expected),
            "x.npy holds other bytes"
        );
        median(times)
    };
    let (big_get, small_get) = (get_time(&store), get_time(small));
    let what = match &cli {
        Some(_) => "`archive --store S get HASH -o x.npy`, whole process".to_owned(),
        None => format!(
            "in-process reader/open + get + npy write (no working {})",
            bin.display()
        ),
    };
    table.row(
        format!("1M-entry store: {what}"),
        millis(big_get),
        format!("{} (store of 1 object)", millis(small_get)),
        Ratio::Time(big_get.as_secs_f64() / small_get.as_secs_f64()),
        Goal::None,
    );
    if cli.is_some() {
        let spawn = median(
            (0..=20)
                .map(|_| {
                    let start = Instant::now();
                    let _ = Command::new("true").status();
                    start.elapsed()
                })
                .skip(1)
                .collect(),
        );
        notes.push(format!(
            "get target: samples/digits_test_probs.npy (float32 [450, 10], 18 KB); spawning \
             `true` takes {} here",
            millis(spawn)
        ));
    }
    let index = dir_size(&store.join("index"));
    let segs = dir_size(&store.join("segments"));
    notes.push(format!(
        "1M-entry store on disk: segments {:.0} MiB, index {:.0} MiB",
        segs as f64 / MIB,
        index as f64 / MIB
    ));
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// The 1-minute load average, to tell a quiet machine from a busy one.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().expect("at least one run")
}

/// Apparent size of every file under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display())) {
        let e = e.expect("directory entry");
        let meta = e.metadata().expect("stat");
        total += if meta.is_dir() {
            dir_size(&e.path())
        } else {
            meta.len()
        };
    }
    total
}

fn mib_s(bytes: usize, d: Duration) -> String {
    format!("{:.0} MiB/s", bytes as f64 / MIB / d.as_secs_f64())
}

/// A duration in ms, or in µs below a millisecond.
fn millis(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        micros(d)
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// How ours compares with the baseline.
enum Ratio {
    /// Ours per second over baseline per second (higher is better).
    Speed(f64),
    /// Our time over the baseline's (lower is better).
    Time(f64),
    /// Our size over the baseline's (lower is better).
    Size(f64),
    None,
}

/// The goal of a row.
enum Goal {
    SpeedAtLeast(f64),
    TimeAtMost(f64),
    /// An absolute rate: ours, the goal, the unit.
    RateAtLeast(f64, f64, &'static str),
    None,
}

#[derive(Default)]
struct Table {
    rows: Vec<[String; 6]>,
}

impl Table {
    fn row(&mut self, measure: String, ours: String, baseline: String, ratio: Ratio, goal: Goal) {
        let (ratio_s, value) = match ratio {
            Ratio::Speed(r) => (format!("{r:.2}× speed"), Some(r)),
            Ratio::Time(r) => (format!("{r:.2}× time"), Some(r)),
            Ratio::Size(r) => (format!("{r:.2}× size"), Some(r)),
            Ratio::None => ("—".into(), None),
        };
        let (goal_s, met) = match (goal, value) {
            (Goal::SpeedAtLeast(g), Some(r)) => (format!("≥ {g}× speed"), Some(r >= g)),
            (Goal::TimeAtMost(g), Some(r)) => (format!("≤ {g}× time"), Some(r <= g)),
            (Goal::RateAtLeast(ours, g, unit), _) => {
                (format!("≥ {} {unit}", thousands(g)), Some(ours >= g))
            }
            _ => ("—".into(), None),
        };
        let met = match met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "—",
        };
        self.rows
            .push([measure, ours, baseline, ratio_s, goal_s, met.into()]);
    }

    fn render(&self) -> String {
        let mut out = String::from("| measure | ours | baseline | ratio | goal | met? |\n");
        out.push_str("|---|---:|---|---:|---|---|\n");
        for r in &self.rows {
            out.push_str(&format!("| {} |\n", r.join(" | ")));
        }
        out
    }
}
