//! The one integration-test binary (one link step): shared helpers in `util`, one module per
//! area.

mod util;

mod cli;
mod corrupt;
mod crash;
mod fixtures;
mod format;
mod interop;
mod log;
mod roundtrip;
