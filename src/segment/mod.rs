//! Segment files: append-only sequences of frames, the single source of truth. `writer`
//! appends, `reader` maps, `scan` walks frames without the index.

pub mod reader;
pub mod scan;
pub mod writer;
