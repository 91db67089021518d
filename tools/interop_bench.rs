//! Interop benchmark (placeholder until written).
fn main() {}
