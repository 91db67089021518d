//! Segment files: append-only sequences of frames, the single source of truth. `writer`
//! appends, `reader` maps, `scan` walks frames without the index, `mapped` reads one frame at
//! an offset through the maps, `payload` decodes and verifies an object's payload, and `pack`
//! reads pack frames.

pub mod mapped;
pub mod pack;
pub mod payload;
pub mod reader;
pub mod scan;
pub mod superseded;
pub mod writer;
