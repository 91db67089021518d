//! `archive export`: one tensor field of every entry a query matches, stacked into one array
//! and written in a tensor format, atomically (an interrupted export leaves no file).

use std::process::ExitCode;

use anyhow::Result;
use model_archive::interop::{self, Array, Document, Format};
use model_archive::query::Query;

use super::{Ctx, write_output};
use crate::args::ExportArgs;
use crate::output::{outln, size, spinner};

pub fn run(ctx: &Ctx, args: ExportArgs) -> Result<ExitCode> {
    // Bad input is reported before the store is opened.
    Query::parse(&args.query)?;
    let format = match &args.format {
        Some(f) => f.parse::<Format>()?,
        None => args
            .output
            .extension()
            .and_then(|e| Format::from_extension(&e.to_string_lossy()))
            .unwrap_or(Format::Npy),
    };
    let archive = ctx.open()?;
    let query = archive.parse_query(&args.query)?;
    let bar = spinner("rows");
    let tensor = archive.stack(&query, args.field.as_deref(), &|done, _| {
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    let (rows, dtype, shape) = (
        tensor.shape.dims().first().copied().unwrap_or(0),
        tensor.dtype,
        tensor.shape.clone(),
    );
    let name = args.output.display().to_string();
    let bytes = interop::write(format, &name, &Document::Tensor(Array::from(tensor)))?;
    write_output(Some(&args.output), &bytes)?;
    if args.output.as_os_str() == "-" {
        return Ok(ExitCode::SUCCESS);
    }
    if ctx.json {
        crate::output::json_line(&serde_json::json!({
            "rows": rows, "dtype": dtype.name(), "shape": shape.dims(),
            "format": format.name(), "output": name, "bytes": bytes.len(),
        }))?;
    } else {
        outln!(
            "{rows} rows, {dtype} {shape}, {} {format} written to {name}",
            size(bytes.len() as u64)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
