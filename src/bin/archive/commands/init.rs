//! `archive init [PATH]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use model_archive::Archive;

use super::{Ctx, DEFAULT_DIR};
use crate::output::outln;

/// Create a store at PATH, else --store, else ./.archive.
pub fn run(ctx: &Ctx, path: Option<PathBuf>) -> Result<ExitCode> {
    let path = path
        .or_else(|| ctx.store.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    let archive = Archive::create(&path)?;
    if ctx.json {
        crate::output::json_line(&serde_json::json!({ "created": archive.path() }))?;
    } else {
        outln!("created archive at {}", archive.path().display())?;
    }
    Ok(ExitCode::SUCCESS)
}
