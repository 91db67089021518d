//! Command-line arguments (clap derive). Parsing only: validation happens in each command,
//! which then calls the library.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
The store is found as git finds its repository: --store PATH, else $ARCHIVE_STORE, else the
nearest `.archive` directory from the current directory upward.

Exit codes:
  0  success
  1  other error (I/O, an internal failure, ...)
  2  bad input or usage (unknown flag, malformed file, shape that disagrees with the bytes)
  3  not found (unknown hash, no store)
  4  corrupt data (or `verify` found problems)
  5  the index is locked by another process
  6  schema version: the store is newer than this program, or needs `archive migrate`
  7  removed: the object was removed (`archive rm`) and dropped by `archive gc`
  8  a remote's server cannot be reached
  9  a remote refused the credentials or the access
 10  no bucket, or no archive, at a remote's URL";

const REMOTE_HELP: &str = "\
A remote is an S3 bucket and prefix (AWS, or any server that speaks S3: MinIO, SeaweedFS,
Ceph; --endpoint names it), or a directory (file:///PATH). Credentials come from the usual
AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION) or the
AWS profile files (~/.aws/credentials, AWS_PROFILE).

Nothing on a remote is ever overwritten: each push adds objects under names no other content
can have, with a conditional create, so many machines push into one remote at once with no
coordinator, and a push that was cut off is finished by the next. Every byte pulled or read is
checked against its hash; damage is named and never used.

Examples:
  archive remote add origin s3://outputs/team-a --endpoint http://127.0.0.1:8333
  archive remote ls
  archive push                     # to the only remote, or `origin`
  archive pull origin
  archive clone s3://outputs/team-a ./copy.archive --endpoint http://127.0.0.1:8333
  archive get 3fa2 --remote origin -o x.npy   # one object, read with ranged GETs
  archive verify --remote origin";

/// `archive remote`.
#[derive(Subcommand, Debug)]
pub enum RemoteAction {
    /// Add a remote by name.
    Add {
        /// Its name (`origin`).
        name: String,
        /// `s3://BUCKET/PREFIX` or `file:///PATH`.
        url: String,
        /// An S3 endpoint other than AWS's, e.g. `http://127.0.0.1:8333`.
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
    },
    /// List the remotes.
    Ls,
    /// Forget a remote (nothing on it changes).
    Rm {
        /// Its name.
        name: String,
    },
}

/// A content-addressed, compressed archive for model outputs: tensors, text, bytes, records.
#[derive(Parser, Debug)]
#[command(name = "archive", version, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    /// The store to use (default: $ARCHIVE_STORE, else the nearest `.archive` upward).
    #[arg(long, global = true, env = "ARCHIVE_STORE", value_name = "PATH")]
    pub store: Option<PathBuf>,

    /// Print JSON (one object per line for listings) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    /// Seconds to wait for another process to hand over the index. A holder hands it over
    /// between steps of long work, so a wait is short; a command says so when one took more
    /// than a second (ARCHIVE_TRACE_WAITS=1: it always says how long it waited).
    #[arg(long, global = true, default_value_t = 10.0, value_name = "SECS")]
    pub wait: f64,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a store (default: ./.archive).
    Init {
        /// Where to create it.
        path: Option<PathBuf>,
    },
    /// Store files or text; prints one hash per input.
    #[command(after_help = "\
Examples:
  archive put probs.npy --tag run=exp1 --tag split=test
  archive put --text \"the generated summary\" --tag run=exp1
  archive put logits.bin --dtype F32 --shape 128,1000
  archive put preds.npy --labels labels.json      # categorical: codes + label vocabulary
  archive put photo.png --media-type image/png
  cat out.txt | archive put - --kind text
  archive put output.pb --proto my.proto --message MyArray   # a message of your own schema

What a file holds is told by its extension, or by --format:
  .npy                  one tensor (bfloat16/float8 by their ml_dtypes names)
  .npz                  a record of named tensors (stored or deflated members)
  .safetensors          a record of named tensors; __metadata__ kept as a field
  .msgpack .mpk         msgpack-numpy arrays anywhere in maps and lists; a stream of
                        values is stored as one entry per value
  .json                 JSON; {\"shape\", \"dtype\", \"data_b64\"} objects are tensors
  .pb                   one ONNX TensorProto (its name becomes the tag name=...), or a
                        SequenceProto of tensors (stored as a list)
  .pkl .pickle          a pickle of numpy arrays and plain values, read without running it;
                        read only
  .txt                  text
  --proto F --message M a protobuf message of your own schema (a .proto file, compiled here,
                        or a descriptor set): a record, repeated numbers as 1-D tensors;
                        `archive get H -o x.pb --proto F --message M` writes it back byte
                        for byte
Any of them may be gzip-, zstd- or zlib-compressed (preds.npy.gz): it is inflated first.
A lone tensor is stored as a tensor, anything else as a record whose tensors are stored beside
it. Raw bytes need --dtype and --shape; any other file needs --media-type (opaque bytes).
Pickles are never run: one that names anything but numpy's arrays and dtypes is refused.")]
    Put(PutArgs),
    /// Log a stream of records from stdin, one entry each, durable in batches; any number of
    /// `archive log` processes can log into one store at once.
    #[command(after_help = "\
Examples:
  my_job | archive log --tag run=exp1 --tensor-field probs
  archive log --format msgpack --tag-field split < preds.msgpack
  archive log --skip-bad --batch 5000 --interval 2 < preds.ndjson
  archive log --tag run=exp1 --tag-field id --resume-by id < preds.ndjson   # again, after a crash

NDJSON: one JSON object per line; {\"shape\", \"dtype\", \"data_b64\"} objects are tensors, and
so are the fields named by --tensor-field (nested lists of numbers). msgpack: consecutive maps,
arrays in msgpack-numpy form. Records become durable every --batch records or --interval
seconds, and at the end; Ctrl-C commits what was read, then exits 130. A line that does not
parse ends the run (exit 2, everything before it kept) unless --skip-bad counts and skips it.
The index catches up with the commits while the run goes on and at its end, whenever no other
process holds it (a logger takes it only for a catch-up); else when the store is next opened.")]
    Log(LogArgs),
    /// Write an object back out (a unique hash prefix is enough).
    #[command(after_help = "\
Examples:
  archive get 3f9a2c -o probs_back.npy     # tensor as .npy (by extension; --format overrides)
  archive get 3f9a2c -o logits.bin         # tensor as raw little-endian bytes
  archive get 5d0e -o outputs.safetensors  # record of tensors as .safetensors (or .npz,
                                           # .msgpack, .json); a tensor as .pb (ONNX)
  archive get 5d0e -o - --format msgpack   # any format to stdout
  archive get 7b1e                         # text, records (JSON) and bytes to stdout
  archive get 5d0e -o out.pb --proto my.proto --message MyArray   # your message, as put read it")]
    Get(GetArgs),
    /// Print text (or a record as JSON, or categorical labels) to stdout.
    Cat {
        /// Hash or unique prefix.
        hash: String,
    },
    /// Show what is in an object: a tensor's NaN/inf/zero counts, min, max, mean, std,
    /// quantiles and histogram of its finite values, the argmax of a probability-like last
    /// axis and its first values; text's first lines; a record's fields; a categorical's
    /// label counts. `--json` for every figure.
    #[command(after_help = "Examples:
  archive show 3f9a2c             # a tensor: its figures and a histogram
  archive --json show 3f9a2c      # the same figures as JSON (numpy's definitions)
  archive show 3f9a2c --rows 1000:1010   # ten rows of a big tensor, without decoding it all")]
    Show {
        /// Hash or unique prefix.
        hash: String,

        /// Only rows START:END (along the first axis, END excluded) of a tensor, read by
        /// decoding only the chunks that hold them.
        #[arg(long, value_name = "START:END")]
        rows: Option<String>,
    },
    /// How two objects differ: tensors element by element under a tolerance (mismatches,
    /// largest differences and where, NaN changes, argmax flips), records field by field,
    /// text by its first differing line. Exit 0 equal within tolerance, 1 different, 2 trouble.
    #[command(after_help = "Examples:
  archive diff 3f9a2c 8e41d0                  # two runs' outputs for one input
  archive diff 3f9a2c 8e41d0 --rtol 1e-3      # a looser tolerance
  archive --json diff 3f9a2c 8e41d0           # every figure as JSON
  archive diff 'run = \"a\"' 'run = \"b\"' --by id   # two runs, paired by id

Default tolerances (as torch.testing.assert_close): float16 rtol 1e-3 atol 1e-5, bfloat16
1.6e-2/1e-5, float32 1.3e-6/1e-5, float64 1e-7/1e-7, fp8 one last-place unit; integers exact.
An element is within tolerance when |a - b| <= atol + rtol * |b|; NaN on both sides agrees.")]
    Diff(DiffArgs),
    /// Show what an object is: kind, dtype, shape, sizes, codec, entries and tags.
    Info {
        /// Hash or unique prefix.
        hash: String,
    },
    /// List entries, newest first.
    Ls(LsArgs),
    /// Find entries by tags, time and what they hold.
    #[command(after_help = "\
Examples:
  archive query 'run = \"exp1\" and split = \"test\" and time > 2026-11-01 and kind = tensor'
  archive query 'model ~ \"resnet*\" or (has step and not rank = 0)' --limit 20
  archive query 'run = exp1' --hashes | xargs -n1 archive get   # one hash per line
  archive query 'split = \"test\" and label != pred' -n 20     # fields of logged records
  archive query 'meta.source = \"cam2\" and score >= 0.9'       # a nested field by its path

Conditions: FIELD OP VALUE with OP one of = != < <= > >= ~ (glob: * and ?), or `has NAME`;
combine with and, or, not and parentheses. FIELD is a name (a tag key, or the path of a field
of the logged record) or one of time (RFC 3339 or a date), kind, dtype, rank, size (bytes),
hash (= matches a prefix). Values are \"quoted\" or bare; comparisons are numeric when both
sides are numbers. A bare value that is a name of the store compares two fields (label !=
pred); quote it to mean the word itself.")]
    Query(QueryArgs),
    /// Write the entries a query matches as a table (Parquet, Arrow), or one tensor field of
    /// each as one array (npy, npz, safetensors ...).
    #[command(after_help = "\
Examples:
  archive export 'run = \"exp1\"' -o preds.parquet               # a row per entry, every field
  archive export 'run = \"exp1\"' -o preds.arrow --field probs --field label --field id
  archive export 'run = \"exp1\"' --field probs -o probs.npy     # [N, 10], rows oldest first
  archive export 'split = \"test\" and label != pred' --field probs -o wrong.safetensors
  archive export 'run = \"exp1\" and kind = tensor' -o outputs.npz # entries that are tensors

The format follows the extension of --output or --format. Rows are in logging order, oldest
first. The file appears whole or not at all: an error or Ctrl-C leaves none.

Tables (.parquet; .arrow or .feather, the Arrow IPC file) have a row per entry: time (UTC),
hash, then a column per record field (by its path: meta.source) and per tag key, as queries
name them (a field and a tag of one name are one column, the field's value first); an entry
that logs a tensor, text or bytes has it in `value`. Tensors are fixed-size lists, nested a
level per dimension (lists where shapes vary); string tensors' elements are strings (STR<n>)
or binary (BYTES<n>). Columns mix types as far as they can: integers
with floats become floats, other scalar mixes text; a tensor column keeps one dtype and rank.
--field (repeatable) picks the columns, in order.

Arrays (npy, npz, safetensors, msgpack, json, pb) stack one tensor field, --field, of every
entry (or the entries' own tensors without it): every row must have the first row's dtype and
shape; the error names the first entry that differs or lacks the field.")]
    Export(ExportArgs),
    /// Re-read and re-hash everything; exits 4 if anything is damaged.
    #[command(after_help = "\
Examples:
  archive verify                   # every frame of this store, and its index
  archive verify --remote origin   # every object on the remote, re-hashed against its name")]
    Verify {
        /// Check a remote instead: every piece re-hashed against its name, every table
        /// against its checksum and the pieces it names.
        #[arg(long, value_name = "NAME")]
        remote: Option<String>,
    },
    /// Name the object storage this store shares through: add, list, forget.
    #[command(after_help = REMOTE_HELP)]
    Remote {
        /// What to do.
        #[command(subcommand)]
        action: RemoteAction,
    },
    /// Upload what a remote lacks: new frames of every segment, then a table of their objects.
    #[command(after_help = REMOTE_HELP)]
    Push {
        /// The remote (default: the only one, or `origin`).
        remote: Option<String>,
    },
    /// Download what this store lacks of a remote, check it, and index it.
    #[command(after_help = REMOTE_HELP)]
    Pull {
        /// The remote (default: the only one, or `origin`).
        remote: Option<String>,
    },
    /// Copy the archive at a remote URL into a new store, its remote named `origin`.
    #[command(after_help = REMOTE_HELP)]
    Clone {
        /// `s3://BUCKET/PREFIX` or `file:///PATH`.
        url: String,
        /// The new store (must not exist, or be empty).
        path: PathBuf,
        /// An S3 endpoint other than AWS's, e.g. `http://127.0.0.1:8333`.
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
    },
    /// Rebuild the index from the segments alone.
    Reindex,
    /// Objects, entries, raw and stored bytes, dedup and compression savings.
    Stats,
    /// Fold other stores (one per machine of a batch job, say) into this one.
    #[command(after_help = "\
Every entry of each OTHER_STORE is copied into the store (--store, or the one found upward)
with its original time and tags, oldest first. Objects are deduplicated by hash: content the
store already holds is not stored again, and the tensors a record refers to come along with it.
Nothing is added to the other stores (opening one catches its index up, as any command does).

Merging is idempotent: an entry is skipped when the store already has an entry of the same
object with the same time and tags, so merging the same store twice adds nothing the second
time, and a merge that stopped (a corrupt object, a full disk) can simply be run again.
Entries are committed every 10,000; a failure discards only the batch in progress.

Examples:
  archive merge /mnt/node1/.archive /mnt/node2/.archive     # into the store found upward
  archive --store all.archive merge runs/*/.archive
  archive --json merge node3.archive   # one JSON object per store: entries_merged,
                                       # entries_skipped, new_objects, raw_bytes ...")]
    Merge {
        /// The stores to merge in.
        #[arg(value_name = "OTHER_STORE", required = true)]
        others: Vec<PathBuf>,
    },
    /// Bring a store written by an older schema version to the current one.
    Migrate,
    /// Remove the entries a query matches; `archive gc` then gets their space back.
    #[command(after_help = "\
The entries disappear from ls, query, export and diff at once. The removal is itself recorded in
the store (a removal frame: reindex and merge know of it), so nothing written before is changed.
The objects the entries logged stay until `archive gc`, which drops those no live entry or live
record needs; until then `archive get HASH` still finds them, afterwards it says they were
removed (exit 7). A query that matches nothing removes nothing and says so.

Examples:
  archive rm 'run = \"debug-3\"' --dry-run       # entries and bytes that would go
  archive rm 'run = \"debug-3\"'
  archive rm 'time < 2026-06-01 and not has keep'
  archive gc                                    # then get the space back")]
    Rm(RmArgs),
    /// Get back the space of removed entries: rewrite segments with enough garbage, drop the old.
    #[command(after_help = "\
Garbage is what removed entries logged (and what their records refer to) that no live entry or
live record needs. gc walks every segment, then rewrites each one whose garbage is at least
--min-dead of its size into one new segment, and deletes the old ones. Entries, live objects and
removals are copied bit-exact; a content stored twice is kept once.

Readers' memory maps of old segments stay valid, gc never touches a segment a writer holds, and a
gc that is killed leaves the store readable with nothing lost: the next open or gc finishes or
undoes its work. It runs beside `archive log` and every other command, and leaves a segment a
writer is appending to for a later gc. Afterwards `archive get` of a dropped object says it was
removed (exit 7).

Examples:
  archive gc --dry-run           # what would be rewritten, and the space it would give back
  archive gc
  archive gc --min-dead 0        # rewrite every segment holding any garbage
  archive --json gc              # the report as JSON")]
    Gc(GcArgs),
}

/// `archive gc`.
#[derive(Args, Debug)]
pub struct GcArgs {
    /// Say what would be done, and change nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,

    /// Rewrite a segment when garbage takes at least this share of it (0 to 1).
    #[arg(long, default_value_t = 0.1, value_name = "SHARE")]
    pub min_dead: f64,
}

/// `archive rm`.
#[derive(Args, Debug)]
pub struct RmArgs {
    /// The query whose matches go, e.g. 'run = "debug-3"' (as `archive query` takes it).
    pub query: String,

    /// Say what would be removed, and remove nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
}

/// `archive put`.
#[derive(Args, Debug)]
pub struct PutArgs {
    /// Files to store (`-` reads stdin).
    pub files: Vec<PathBuf>,

    /// The files are base64 text (`base64.b64encode(arr.tobytes())`, of a JSON document, of
    /// an .npy ...): decoded first, then read as their extension, --format or --dtype/--shape
    /// say. Whitespace and line breaks are ignored.
    #[arg(long)]
    pub base64: bool,

    /// Store this text instead of a file.
    #[arg(long, conflicts_with = "files")]
    pub text: Option<String>,

    /// A tag for the entry, `key=value` (repeatable).
    #[arg(long = "tag", short = 't', value_name = "KEY=VALUE")]
    pub tags: Vec<String>,

    /// Element type of raw bytes (F32, I64, BF16 ... or numpy names like float32).
    #[arg(long, requires = "shape")]
    pub dtype: Option<String>,

    /// Shape of raw bytes, e.g. 128,1000 (empty for a scalar).
    #[arg(long, requires = "dtype", allow_hyphen_values = true)]
    pub shape: Option<String>,

    /// Store the file as opaque bytes with this media type (image/png, audio/wav ...).
    #[arg(long, value_name = "TYPE")]
    pub media_type: Option<String>,

    /// What the input holds, when the extension does not say: tensor (.npy), text, record
    /// (JSON object).
    #[arg(long, value_parser = ["tensor", "text", "record"])]
    pub kind: Option<String>,

    /// The input's format, overriding its extension.
    #[arg(long, value_parser = ["npy", "npz", "safetensors", "msgpack", "json", "onnx", "pickle"])]
    pub format: Option<String>,

    /// The files are protobuf messages of this schema: a .proto file (imports beside it) or
    /// a descriptor set (`protoc --descriptor_set_out`); needs --message.
    #[arg(long, value_name = "FILE", requires = "message", conflicts_with_all = ["format", "kind", "dtype", "media_type"])]
    pub proto: Option<PathBuf>,

    /// The message type of --proto's schema (`MyArray`, or `pkg.MyArray`).
    #[arg(long, value_name = "NAME", requires = "proto")]
    pub message: Option<String>,

    /// Label vocabulary (a JSON list of strings): store the .npy integer codes as categorical.
    #[arg(long, value_name = "FILE.json")]
    pub labels: Option<PathBuf>,

    /// Codec: raw, zstd or shuffle-zstd (default: chosen per object).
    #[arg(long)]
    pub codec: Option<String>,

    /// zstd level (default: 1 behind a shuffle, 3 otherwise).
    #[arg(long, allow_hyphen_values = true)]
    pub level: Option<i32>,
}

/// `archive log`.
#[derive(Args, Debug)]
pub struct LogArgs {
    /// A tag for every entry, `key=value` (repeatable).
    #[arg(long = "tag", short = 't', value_name = "KEY=VALUE")]
    pub tags: Vec<String>,

    /// The stream's format.
    #[arg(long, default_value = "ndjson", value_parser = ["ndjson", "msgpack"])]
    pub format: String,

    /// A field holding a (nested) list of numbers to store as a tensor (repeatable).
    #[arg(long = "tensor-field", value_name = "FIELD")]
    pub tensor_fields: Vec<String>,

    /// Store every field that is a (nested) list of numbers as a tensor.
    #[arg(long)]
    pub infer_tensors: bool,

    /// Element type of those tensors: F32, F64, I32 or I64.
    #[arg(long, default_value = "F32")]
    pub tensor_dtype: String,

    /// A field whose value also becomes a tag of the record's entry (repeatable).
    #[arg(long = "tag-field", value_name = "FIELD")]
    pub tag_fields: Vec<String>,

    /// Commit after this many records.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,

    /// Commit at least this often, in seconds, while records arrive.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub interval: f64,

    /// Skip records already logged: those whose FIELD (one of the --tag-field fields) has
    /// an entry with this run's --tag tags already. For running a stream again after a crash.
    #[arg(long, value_name = "FIELD")]
    pub resume_by: Option<String>,

    /// Skip records that do not parse (counted in the summary) instead of stopping.
    #[arg(long)]
    pub skip_bad: bool,
}

/// `archive get`.
#[derive(Args, Debug)]
pub struct GetArgs {
    /// Hash or unique prefix.
    pub hash: String,

    /// Output file (`-` for stdout; default stdout). A `.gz`, `.zst` or `.zlib` suffix
    /// compresses it: `-o preds.npy.gz` writes gzip-compressed npy.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Output format (default: by the extension of -o; tensors as npy, records as json).
    #[arg(
        long,
        value_parser = ["npy", "npz", "safetensors", "msgpack", "json", "onnx", "raw"]
    )]
    pub format: Option<String>,

    /// Write a protobuf message of this schema (a .proto file or a descriptor set), as
    /// `put --proto` read it; needs --message.
    #[arg(
        long,
        value_name = "FILE",
        requires = "message",
        conflicts_with = "format"
    )]
    pub proto: Option<PathBuf>,

    /// The message type of --proto's schema (`MyArray`, or `pkg.MyArray`).
    #[arg(long, value_name = "NAME", requires = "proto")]
    pub message: Option<String>,

    /// Skip re-hashing (O(1) for raw tensors); `archive verify` checks everything.
    #[arg(long)]
    pub no_verify: bool,

    /// Write the output base64-encoded (standard alphabet, one line), as
    /// `base64.b64encode(...)` would.
    #[arg(long)]
    pub base64: bool,

    /// Read the object from this remote, with ranged GETs, instead of from the store (a
    /// full hash, or a prefix the remote's tables know).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["no_verify", "proto"])]
    pub remote: Option<String>,
}

/// `archive diff`.
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The first object (hash or unique prefix); with --by, a query.
    pub a: String,

    /// The second, the reference (`|a - b| <= atol + rtol * |b|`); with --by, a query.
    pub b: String,

    /// Compare two sets of entries, the matches of queries A and B, paired by this tag or
    /// record field (`id`): a summary of pairs, entries on one side only, identical pairs
    /// (same hash, nothing read), pairs within tolerance and different ones.
    #[arg(long, value_name = "KEY")]
    pub by: Option<String>,

    /// With --by: list this many of the most different pairs.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,

    /// Relative tolerance (default: by dtype).
    #[arg(long)]
    pub rtol: Option<f64>,

    /// Absolute tolerance (default: by dtype).
    #[arg(long)]
    pub atol: Option<f64>,
}

/// `archive ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Show at most this many entries.
    #[arg(long, short = 'n', default_value_t = 50)]
    pub limit: usize,

    /// Show every entry.
    #[arg(long, conflicts_with = "limit")]
    pub all: bool,

    /// Only entries with this tag, `key=value` (repeatable; all must hold).
    #[arg(long = "tag", short = 't', value_name = "KEY=VALUE")]
    pub tags: Vec<String>,

    /// Only entries logged at or after this time (RFC 3339 or a date).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only entries logged before this time (RFC 3339 or a date).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

/// `archive export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The query, e.g. 'run = "exp1"' (see `archive query --help`).
    pub query: String,

    /// For arrays, the record field (a path: probs, out.logits) holding each entry's tensor
    /// (without it, the entries must be tensors themselves); for tables, a column to write
    /// (repeatable; without it, every column).
    #[arg(long, value_name = "PATH")]
    pub field: Vec<String>,

    /// Where to write (`-` for stdout).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,

    /// parquet, arrow, npy, npz, safetensors, msgpack, json or onnx (default: by the
    /// extension, else npy).
    #[arg(long)]
    pub format: Option<String>,

    /// Tables: rows per Parquet row group (per piece for Arrow). A table is written to a
    /// file a group at a time as its rows are read, so the export holds about this many rows
    /// in memory whatever the total.
    #[arg(long, value_name = "N", default_value_t = 262_144,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub row_group_rows: u64,
}

/// `archive query`.
#[derive(Args, Debug)]
pub struct QueryArgs {
    /// The query, e.g. 'run = "exp1" and time > 2026-11-01'.
    pub query: String,

    /// Show at most this many entries.
    #[arg(long, short = 'n')]
    pub limit: Option<usize>,

    /// Oldest first.
    #[arg(long)]
    pub reverse: bool,

    /// Print only the hashes, one per line (to pipe into `archive get`).
    #[arg(long, conflicts_with = "json")]
    pub hashes: bool,
}
