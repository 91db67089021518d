//! The one integration-test binary (one link step): shared helpers in `util`, one module per
//! area. Everything the tests read or run lives under tests/:
//!
//! - `util`: temporary stores, the `archive` command, the committed samples (samples/).
//! - `gc_common`: gc killed at random moments, run short by `gc` and long by the report.
//! - `contention_common`: loggers and loops of every other command at once, each a process,
//!   run short by `reliability` and long by the report.
//! - `hostile_common`: issue 10's findings as rounds (symlinks, newer frames, deep queries,
//!   re-logs), run by `hostile` and, many times, by the report.
//! - `reliability_common`: the workloads that kill, corrupt, fill and crash-image a store, run
//!   small by `reliability` and long by the `reliability-report` program (benches/).
//! - `s3_common`: a real S3 server (SeaweedFS) on loopback, started by the remote tests.
//! - `fixtures/`: stores frozen at older schema versions, read by `fixtures`.
//! - `interop/`: the Python scripts `interop` runs to write and read every format with the real
//!   libraries (numpy, safetensors, msgpack-numpy, onnx; pinned in tools/requirements.txt).

mod contention_common;
mod gc_common;
mod hostile_common;
mod reliability_common;
mod s3_common;
mod util;

mod cli;
mod corrupt;
mod crash;
mod export;
mod fixtures;
mod format;
mod gc;
mod hostile;
mod interop;
mod legacy;
mod log;
mod merge;
mod pack;
mod proto;
mod query;
mod reliability;
mod remote;
mod rm;
mod roundtrip;
mod show;
mod table;
