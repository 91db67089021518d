//! `archive log`: a stream of records on stdin, one entry each, committed in batches (by count
//! and by time). It opens the store for logging only (`ArchiveBuilder::open_logger`), so any
//! number of `archive log` processes write into one store at once, each into its own segment.
//!
//! A thread reads stdin and hands records over a bounded channel, so the main loop can commit
//! on time while no input arrives, and notice Ctrl-C (SIGINT) or SIGTERM between records.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Read};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use model_archive::document::put_prepared_document;
use model_archive::interop::{
    Array, Document, PreparedDocument, json_b64, msgpack_numpy, msgpack_record, prepare_document,
    tag_text,
};
use model_archive::query::{Field, Op, Query};
use model_archive::{Archive, Dtype, Error, LoggedBatch, Shape, Value, Writer, WriterTotals};

use super::put::parse_tags;
use super::{Ctx, UsageError};
use crate::args::LogArgs;
use crate::output::size;

/// A record as the reading thread hands it over: its number in the stream (a line number
/// for NDJSON), its size in bytes, and the document with its tags from `--tag-field`, or why
/// it could not be read. Parsing and shaping happen on the reading thread, so they run on
/// another core than the puts.
struct Parsed {
    no: usize,
    bytes: usize,
    doc: std::result::Result<(PreparedDocument<'static>, Vec<(String, String)>), String>,
}

/// What the reading thread hands over.
enum Input {
    /// Records, in groups, so a fast stream costs one hand-over per group, not per record.
    Records(Vec<Parsed>),
    /// A record that could not be read (msgpack that does not parse), with its number.
    Bad(usize, String),
    /// Standard input could not be read.
    Failed(std::io::Error),
}

/// Documents the writing thread has stored, sent back to be freed where they were allocated:
/// freeing on the writing thread took ~6 % of its time, and it is the busier of the two.
type Done = Vec<PreparedDocument<'static>>;

/// Free what the writing thread has handed back.
fn free(done: &Receiver<Done>) {
    while let Ok(docs) = done.try_recv() {
        drop(docs);
    }
}

/// Most records in one hand-over.
const GROUP: usize = 256;

/// Most hand-overs waiting for the writing thread: enough to keep it busy through a commit,
/// few enough that a fast reader does not hold the stream in memory.
const WAITING_GROUPS: usize = 64;

/// The most committed batches kept for one catch-up (`Writer::hand_over`), and waiting for
/// it: a few MB each.
const LOGGED_BATCHES: usize = 32;

/// The least time between two catch-ups of the index while logging: each one writes a lookup
/// table (merged with the others) and reopens the index.
const INDEX_EVERY: Duration = Duration::from_millis(250);

/// Catches the index up with this run's commits on a thread of its own while the run goes on,
/// so the catch-up at its end (which `ls` and `get` need to see the records) is that of the
/// last second's commits, not of the whole run. The index is taken only when no other process
/// holds it, and handed back after each catch-up, so logging never waits for it and other
/// commands wait at most for one catch-up.
///
/// What the writer would have told the index is handed over with each commit
/// (`Writer::hand_over`), so the catch-up applies it instead of reading the packs back.
struct Indexer {
    commits: Option<SyncSender<Vec<LoggedBatch>>>,
    thread: std::thread::JoinHandle<bool>,
}

impl Indexer {
    fn start(store: std::path::PathBuf) -> Indexer {
        let (commits, rx) = sync_channel::<Vec<LoggedBatch>>(LOGGED_BATCHES);
        let thread = std::thread::spawn(move || {
            // Batches not taken (the index was busy) are read back by a later catch-up.
            let catch_up = |logged: Vec<LoggedBatch>| {
                Archive::builder()
                    .lock_timeout(Duration::ZERO)
                    .open_with_logged(&store, logged)
                    .is_ok()
            };
            let mut last = Instant::now();
            loop {
                // A commit, then no more than one catch-up per INDEX_EVERY; the channel
                // closes when the run has ended and committed all it read.
                let (mut logged, mut ended) = match rx.recv() {
                    Ok(l) => (l, false),
                    Err(_) => (Vec::new(), true),
                };
                while !ended {
                    match rx.recv_timeout(INDEX_EVERY.saturating_sub(last.elapsed())) {
                        // Past the cap (the index held elsewhere a while), later batches
                        // are read back instead of kept.
                        Ok(l) if logged.len() < LOGGED_BATCHES => logged.extend(l),
                        Ok(_) => {}
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => ended = true,
                    }
                }
                let indexed = catch_up(logged);
                last = Instant::now();
                if ended {
                    return indexed;
                }
            }
        });
        Indexer {
            commits: Some(commits),
            thread,
        }
    }

    /// A commit was made; `logged` is what the index learns of it.
    /// Never waits: while a catch-up runs long (a big merge of lookup tables), commits past
    /// `LOGGED_BATCHES` are not kept (their frames are read back), so memory stays bounded.
    fn committed(&self, logged: Vec<LoggedBatch>) {
        if let Some(c) = &self.commits {
            let _ = c.try_send(logged);
        }
    }

    /// After the run's last commit: catch up with it; true if the index has every record.
    fn finish(mut self) -> bool {
        drop(self.commits.take());
        self.thread.join().unwrap_or(false)
    }
}

fn read_ndjson(tx: SyncSender<Input>, shaping: &Shaping, done: &Receiver<Done>) {
    let mut lock = std::io::BufReader::with_capacity(1 << 16, std::io::stdin().lock());
    let mut line = Vec::new();
    let mut no = 0;
    let mut group = Vec::new();
    loop {
        free(done);
        line.clear();
        match lock.read_until(b'\n', &mut line) {
            Ok(0) => {
                let _ = tx.send(Input::Records(group));
                return;
            }
            Ok(_) => {
                no += 1;
                let trimmed = line.trim_ascii();
                if !trimmed.is_empty() {
                    let input = || format!("stdin line {no}");
                    let doc = json_b64::read("stdin", trimmed)
                        .map_err(|e| e.to_string().replacen("stdin", &input(), 1))
                        .and_then(|d| shaping.prepare(d, &input));
                    group.push(Parsed {
                        no,
                        bytes: trimmed.len(),
                        doc,
                    });
                }
                // Hand over when the group is full, or before a read that may wait for input.
                if (group.len() >= GROUP || lock.buffer().is_empty())
                    && tx.send(Input::Records(std::mem::take(&mut group))).is_err()
                {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Input::Records(std::mem::take(&mut group)));
                let _ = tx.send(Input::Failed(e));
                return;
            }
        }
    }
}

fn read_msgpack(tx: SyncSender<Input>, shaping: &Shaping, done: &Receiver<Done>) {
    let mut stdin = std::io::stdin().lock();
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    let mut no = 0;
    let mut eof = false;
    let mut group = Vec::new();
    loop {
        free(done);
        // Hand over every whole value in the buffer (in groups), then read more. Values are
        // found by offset and the buffer is compacted once per read, not once per value.
        let mut pos = 0;
        while let Some(rest) = buf.get(pos..).filter(|r| !r.is_empty()) {
            // A record of the usual shape is read in one pass; anything else, the general
            // way (which reads it alike, or says what is wrong with it).
            if let Some(r) = shaping.fast(rest) {
                no += 1;
                group.push(Parsed {
                    no,
                    bytes: r.used,
                    doc: Ok((r.prepared, r.tags)),
                });
                pos += r.used;
                if group.len() >= GROUP
                    && tx.send(Input::Records(std::mem::take(&mut group))).is_err()
                {
                    return;
                }
                continue;
            }
            match msgpack_numpy::read_one("stdin", rest) {
                Ok(Some((doc, used))) => {
                    no += 1;
                    group.push(Parsed {
                        no,
                        bytes: used,
                        doc: shaping.prepare(doc, &|| format!("stdin record {no}")),
                    });
                    pos += used;
                    if group.len() >= GROUP
                        && tx.send(Input::Records(std::mem::take(&mut group))).is_err()
                    {
                        return;
                    }
                }
                Ok(None) if !eof => break,
                Ok(None) => {
                    let _ = tx.send(Input::Records(std::mem::take(&mut group)));
                    let _ = tx.send(Input::Bad(no + 1, "the stream ends inside a value".into()));
                    return;
                }
                Err(e) => {
                    // A malformed value cannot be skipped: its length is unknown.
                    let _ = tx.send(Input::Records(std::mem::take(&mut group)));
                    let _ = tx.send(Input::Bad(no + 1, format!("{e}; the rest is not read")));
                    return;
                }
            }
        }
        buf.drain(..pos.min(buf.len()));
        // Before a read that may wait for input, hand over what is here.
        if !group.is_empty() && tx.send(Input::Records(std::mem::take(&mut group))).is_err() {
            return;
        }
        if eof {
            return;
        }
        match stdin.read(&mut chunk) {
            Ok(0) => eof = true,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.send(Input::Failed(e));
                return;
            }
        }
    }
}

/// A nested list of numbers as a tensor of `dtype`; `None` if it is not one (ragged, empty,
/// or holding anything but numbers).
fn list_to_tensor(doc: &Document<'_>, dtype: Dtype) -> Option<Array<'static>> {
    fn walk(doc: &Document<'_>, depth: usize, dims: &mut Vec<u64>, out: &mut Vec<f64>) -> bool {
        match doc {
            Document::List(items) => {
                match dims.get(depth) {
                    Some(&d) if d != items.len() as u64 => return false,
                    Some(_) => {}
                    None => dims.push(items.len() as u64),
                }
                !items.is_empty() && items.iter().all(|i| walk(i, depth + 1, dims, out))
            }
            Document::Scalar(Value::Int(i)) if depth == dims.len() => {
                out.push(*i as f64);
                true
            }
            Document::Scalar(Value::Float(f)) if depth == dims.len() => {
                out.push(*f);
                true
            }
            _ => false,
        }
    }
    let mut dims = Vec::new();
    let mut values = Vec::new();
    if !matches!(doc, Document::List(_)) || !walk(doc, 0, &mut dims, &mut values) {
        return None;
    }
    let data: Vec<u8> = match dtype {
        Dtype::F32 => values
            .iter()
            .flat_map(|v| (*v as f32).to_le_bytes())
            .collect(),
        Dtype::F64 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Dtype::I32 => values
            .iter()
            .flat_map(|v| (*v as i32).to_le_bytes())
            .collect(),
        _ => values
            .iter()
            .flat_map(|v| (*v as i64).to_le_bytes())
            .collect(),
    };
    Array::new("field", dtype, Shape::new(dims), Cow::Owned(data)).ok()
}

/// How each record is turned into a document and tags.
struct Shaping {
    tensor_fields: Vec<String>,
    infer: bool,
    dtype: Dtype,
    tag_fields: Vec<String>,
}

impl Shaping {
    /// The document shaped and prepared to be stored, with its tags; `input` names it in
    /// errors.
    fn prepare(
        &self,
        mut doc: Document<'_>,
        input: &dyn Fn() -> String,
    ) -> std::result::Result<(PreparedDocument<'static>, Vec<(String, String)>), String> {
        let tags = self.apply(&mut doc);
        let prepared = prepare_document(doc).map_err(|e| format!("{}: {e}", input()))?;
        Ok((prepared, tags))
    }

    /// The msgpack record at the start of `bytes` read in one pass
    /// (`msgpack_record::read_record`), where no field is turned into a tensor.
    fn fast(&self, bytes: &[u8]) -> Option<msgpack_record::FastRecord> {
        if self.infer || !self.tensor_fields.is_empty() {
            return None;
        }
        msgpack_record::read_record(bytes, &self.tag_fields)
    }

    /// Turn the chosen fields into tensors; collect the tag fields' values.
    fn apply(&self, doc: &mut Document<'_>) -> Vec<(String, String)> {
        let mut tags = Vec::new();
        let Document::Map(fields) = doc else {
            return tags;
        };
        for (name, value) in fields.iter_mut() {
            if (self.infer || self.tensor_fields.contains(name))
                && let Some(t) = list_to_tensor(value, self.dtype)
            {
                *value = Document::Tensor(t);
            }
            if self.tag_fields.contains(name) {
                let v = match value {
                    Document::Scalar(v) => tag_text(v.clone()),
                    _ => None,
                };
                if let Some(v) = v {
                    tags.push((name.clone(), v));
                }
            }
        }
        tags
    }
}

/// Counts for the summary.
#[derive(Default)]
struct Counts {
    records: u64,
    bad: u64,
    bytes_in: u64,
    /// Records made durable by the commits so far.
    durable: u64,
    /// Records skipped as logged before (`--resume-by`).
    resumed: u64,
}

fn progress_line(c: &Counts, w: &Writer<'_>, started: Instant) {
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    eprint!(
        "\r{} records ({:.0}/s), {} in, {} stored   ",
        c.records,
        c.records as f64 / secs,
        size(c.bytes_in),
        size(w.totals().stored_bytes)
    );
}

/// How records are shaped, from the options, checked.
fn shaping(args: &LogArgs) -> Result<Shaping> {
    let dtype: Dtype = args.tensor_dtype.parse()?;
    if !matches!(dtype, Dtype::F32 | Dtype::F64 | Dtype::I32 | Dtype::I64) {
        return Err(UsageError(format!(
            "--tensor-dtype {dtype}: expected F32, F64, I32 or I64"
        ))
        .into());
    }
    if args.batch == 0 || !(args.interval.is_finite() && args.interval > 0.0) {
        return Err(UsageError("--batch and --interval must be positive".into()).into());
    }
    Ok(Shaping {
        tensor_fields: args.tensor_fields.clone(),
        infer: args.infer_tensors,
        dtype,
        tag_fields: args.tag_fields.clone(),
    })
}

/// The writing side of a run: the batch writer and what it has done.
struct Logging<'a> {
    w: Writer<'a>,
    counts: Counts,
    tags: Vec<(String, String)>,
    /// `--resume-by`: the field, and its values already logged with `tags`.
    logged: Option<(String, HashSet<String>)>,
    /// "record" (msgpack) or "line" (NDJSON), for messages.
    unit: &'static str,
    skip_bad: bool,
    batch: usize,
    interval: Duration,
    last_commit: Instant,
    indexer: &'a Indexer,
}

impl Logging<'_> {
    /// Store what the reading thread handed over; the documents stored go into `stored` (to
    /// be freed on the reading thread). `Some` error ends the run.
    fn store(&mut self, input: Option<Input>, stored: &mut Done) -> Result<Option<anyhow::Error>> {
        let unit = self.unit;
        let items: Vec<(usize, std::result::Result<Parsed, String>)> = match input {
            None => Vec::new(),
            Some(Input::Failed(e)) => {
                return Ok(Some(anyhow::Error::new(e).context("cannot read stdin")));
            }
            Some(Input::Bad(no, why)) => vec![(no, Err(format!("stdin {unit} {no}: {why}")))],
            Some(Input::Records(records)) => records.into_iter().map(|p| (p.no, Ok(p))).collect(),
        };
        stored.reserve(items.len());
        for (no, item) in items {
            let outcome = match item {
                Ok(p) => self.put(no, p, stored)?,
                Err(why) => Err(why),
            };
            if let Err(why) = outcome {
                if !self.skip_bad {
                    return Ok(Some(UsageError(why).into()));
                }
                self.counts.bad += 1;
                eprintln!("archive log: skipped {unit} {no}: {why}");
            }
            if self.w.pending() >= self.batch {
                self.commit()?;
            }
        }
        Ok(None)
    }

    /// Put one record with the run's tags and its own. The inner error is a bad record (its
    /// reason); the outer one a failure of the store (a full disk, say), which ends the run.
    fn put(
        &mut self,
        no: usize,
        p: Parsed,
        stored: &mut Done,
    ) -> Result<std::result::Result<(), String>> {
        self.counts.bytes_in += p.bytes as u64;
        let (doc, fields) = match p.doc {
            Ok(d) => d,
            Err(why) => return Ok(Err(why)),
        };
        if let Some((field, seen)) = &self.logged
            && fields.iter().any(|(k, v)| k == field && seen.contains(v))
        {
            self.counts.resumed += 1;
            stored.push(doc);
            return Ok(Ok(()));
        }
        let mut entry_tags: Vec<(&str, &str)> = self
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        entry_tags.extend(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        match put_prepared_document(&mut self.w, &doc, &entry_tags) {
            Ok(_) => {}
            // The record's own fault: the tags, a reference, a shape.
            Err(e @ (Error::InvalidInput { .. } | Error::NotFound(_))) => {
                return Ok(Err(format!("stdin {} {no}: {e}", self.unit)));
            }
            Err(e) => return Err(self.failed(e.into())),
        }
        stored.push(doc);
        self.counts.records += 1;
        Ok(Ok(()))
    }

    fn commit(&mut self) -> Result<()> {
        if let Err(e) = self.w.commit() {
            return Err(self.failed(e.into()));
        }
        self.counts.durable = self.counts.records;
        self.last_commit = Instant::now();
        self.indexer.committed(self.w.take_logged());
        Ok(())
    }

    /// A failure of the store, saying how much of the stream is safe.
    fn failed(&self, e: anyhow::Error) -> anyhow::Error {
        e.context(format!(
            "stopped: {} records of this run were made durable, the {} after them were not \
             stored",
            self.counts.durable,
            self.counts.records - self.counts.durable
        ))
    }

    /// How long to wait for input before the next timed commit is due.
    fn wait(&self) -> Duration {
        self.interval
            .saturating_sub(self.last_commit.elapsed())
            .max(Duration::from_millis(10))
            .min(Duration::from_millis(200))
    }

    /// Commit if the interval has passed since the last commit.
    fn commit_on_time(&mut self) -> Result<()> {
        if self.w.pending() > 0 && self.last_commit.elapsed() >= self.interval {
            self.commit()?;
        }
        Ok(())
    }
}

/// The values of `field` already logged with every one of `tags` (`--resume-by`). Reads the
/// index once, before logging starts; the index lock is released at once.
fn logged_values(ctx: &Ctx, field: &str, tags: &[(String, String)]) -> Result<HashSet<String>> {
    if tags.is_empty() {
        return Err(UsageError(
            "--resume-by needs the run's --tag tags, to tell this run's entries from others'"
                .into(),
        )
        .into());
    }
    let query = tags
        .iter()
        .map(|(k, v)| Query::Cmp(Field::Tag(k.clone()), Op::Eq, v.clone()))
        .reduce(|a, b| Query::And(Box::new(a), Box::new(b)))
        .unwrap_or(Query::All);
    let archive = ctx.open()?;
    let mut seen = HashSet::new();
    for e in archive.query(&query) {
        let e = e?;
        seen.extend(
            e.tags
                .into_iter()
                .filter(|(k, _)| k == field)
                .map(|(_, v)| v),
        );
    }
    Ok(seen)
}

pub fn run(ctx: &Ctx, args: LogArgs) -> Result<ExitCode> {
    let tags = parse_tags(&args.tags)?;
    let shaping = shaping(&args)?;
    let logged = match &args.resume_by {
        Some(field) if !args.tag_fields.contains(field) => {
            return Err(UsageError(format!(
                "--resume-by {field}: name one of the --tag-field fields (it must be a tag of \
                 every entry)"
            ))
            .into());
        }
        Some(field) => Some((field.clone(), logged_values(ctx, field, &tags)?)),
        None => None,
    };
    let store = ctx.store_path()?;
    let archive = Archive::builder().open_logger(&store)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
    }
    let (tx, rx): (SyncSender<Input>, Receiver<Input>) = sync_channel(WAITING_GROUPS);
    let msgpack = args.format == "msgpack";
    let (done_tx, done_rx) = std::sync::mpsc::channel::<Done>();
    std::thread::spawn(move || {
        if msgpack {
            read_msgpack(tx, &shaping, &done_rx)
        } else {
            read_ndjson(tx, &shaping, &done_rx)
        }
    });

    let show = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let indexer = Indexer::start(store.clone());
    let mut run = Logging {
        w: {
            let mut w = archive.writer();
            w.hand_over();
            w
        },
        counts: Counts::default(),
        tags,
        logged,
        unit: if msgpack { "record" } else { "line" },
        skip_bad: args.skip_bad,
        batch: args.batch,
        interval: Duration::from_secs_f64(args.interval),
        last_commit: Instant::now(),
        indexer: &indexer,
    };
    let mut failure: Option<anyhow::Error> = None;
    while !stop.load(Ordering::Relaxed) {
        let input = match rx.recv_timeout(run.wait()) {
            Ok(input) => Some(input),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut stored: Done = Vec::new();
        failure = run.store(input, &mut stored)?;
        // If the reading thread has ended, they are freed here.
        let _ = done_tx.send(stored);
        if failure.is_some() {
            break;
        }
        run.commit_on_time()?;
        if show && last_progress.elapsed() >= Duration::from_millis(250) {
            progress_line(&run.counts, &run.w, started);
            last_progress = Instant::now();
        }
    }
    // Everything read so far is kept, whatever ended the run.
    run.commit()?;
    let totals = run.w.totals();
    let counts = std::mem::take(&mut run.counts);
    drop(run);
    drop(archive);
    if show {
        eprint!("\r\x1b[K");
    }
    // The index catches up with the last commits now if nobody holds it, so `ls` and `get`
    // see the records at once.
    let indexed = indexer.finish();
    let signalled = stop.load(Ordering::Relaxed);
    summary(ctx, &counts, &totals, started, indexed, signalled)?;
    if let Some(e) = failure {
        return Err(e);
    }
    if signalled {
        eprintln!("archive log: interrupted; every record read was committed");
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

/// What a run did: JSON on stdout with `--json`, a line on stderr otherwise.
fn summary(
    ctx: &Ctx,
    counts: &Counts,
    totals: &WriterTotals,
    started: Instant,
    indexed: bool,
    signalled: bool,
) -> Result<()> {
    let secs = started.elapsed().as_secs_f64();
    if ctx.json {
        return crate::output::json_line(&serde_json::json!({
            "records": counts.records,
            "new_objects": totals.new_objects,
            "duplicates": totals.duplicates,
            "skipped": counts.bad,
            "already_logged": counts.resumed,
            "bytes_in": counts.bytes_in,
            "bytes_stored": totals.stored_bytes,
            "seconds": secs,
            "indexed": indexed,
            "interrupted": signalled,
        }));
    }
    eprintln!(
        "logged {} records ({} new objects, {} already stored{}) in {:.2} s: {} in, {} stored{}",
        counts.records,
        totals.new_objects,
        totals.duplicates,
        match (counts.bad, counts.resumed) {
            (0, 0) => String::new(),
            (bad, 0) => format!(", {bad} skipped"),
            (0, resumed) => format!(", {resumed} logged before and skipped"),
            (bad, resumed) => format!(", {bad} skipped, {resumed} logged before and skipped"),
        },
        secs,
        size(counts.bytes_in),
        size(totals.stored_bytes),
        if indexed {
            ""
        } else {
            "; indexed when the store is next opened"
        }
    );
    Ok(())
}
