//! The one integration-test binary (one link step): shared helpers in `util`, one module per
//! area.

#[path = "../tools/reliability_common.rs"]
mod reliability_common;
mod util;

mod cli;
mod corrupt;
mod crash;
mod fixtures;
mod format;
mod hostile;
mod interop;
mod log;
mod merge;
mod pack;
mod reliability;
mod roundtrip;
