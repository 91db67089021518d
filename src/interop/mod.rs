//! Reading and writing the formats model outputs live in today. Each reader works on bytes
//! and names its input in every error; each writer is bit-exact with what it read.

pub mod npy;
