//! `archive export`: the entries a query matches as a table (Parquet, Arrow IPC), or one tensor
//! field of each stacked into one array in a tensor format; written atomically (an interrupted
//! export leaves no file).

use std::process::ExitCode;

use anyhow::Result;
use arrow_schema::SchemaRef;
use model_archive::interop::{self, Array, Document, Format};
use model_archive::query::Query;
use model_archive::table::Table;
use model_archive::table::write::{self as table_write, TableFormat, TableStream};

use super::{Ctx, UsageError, write_file, write_output, write_parts};
use crate::args::ExportArgs;
use crate::output::{outln, size, spinner};

/// What to write.
enum Target {
    Table(TableFormat),
    Array(Format),
}

pub fn run(ctx: &Ctx, args: ExportArgs) -> Result<ExitCode> {
    // Bad input is reported before the store is opened.
    Query::parse(&args.query)?;
    let target = target(&args)?;
    let archive = ctx.open()?;
    let query = archive.parse_query(&args.query)?;
    let name = args.output.display().to_string();
    let bar = spinner("rows");
    let progress = |done, _| bar.set_position(done);
    let (rows, what, detail, bytes, format) = match target {
        Target::Table(format) => {
            let columns = (!args.field.is_empty()).then_some(args.field.as_slice());
            let to_file = args.output.as_os_str() != "-";
            let streamed = match to_file {
                true => {
                    let group_rows = usize::try_from(args.row_group_rows).unwrap_or(usize::MAX);
                    let to = (format, args.output.as_path(), group_rows);
                    stream_table(&archive, &query, columns, to, &progress)?
                }
                false => None,
            };
            let file_len = || std::fs::metadata(&args.output).map_or(0, |m| m.len());
            let (schema, rows, bytes) = match streamed {
                Some((schema, rows)) => (schema, rows, file_len()),
                None => {
                    let table = archive.table(&query, columns, &progress)?;
                    let bytes = if to_file {
                        write_file(&args.output, &mut |f| {
                            table_write::write(&table, format, &name, f)?;
                            Ok(())
                        })?;
                        file_len()
                    } else {
                        let bytes = table_write::write(&table, format, &name, Vec::new())?;
                        write_output(None, &bytes)?;
                        bytes.len() as u64
                    };
                    (table.schema.clone(), table.num_rows() as u64, bytes)
                }
            };
            bar.finish_and_clear();
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            let detail = format!("{} columns ({})", names.len(), names.join(", "));
            let what = serde_json::json!({ "columns": names });
            (rows, what, detail, bytes, format.name())
        }
        Target::Array(format) => {
            let field = args.field.first().map(String::as_str);
            let tensor = archive.stack(&query, field, &progress)?;
            bar.finish_and_clear();
            let rows = tensor.shape.dims().first().copied().unwrap_or(0);
            let what = serde_json::json!({
                "dtype": tensor.dtype.name(), "shape": tensor.shape.dims(),
            });
            let detail = format!("{} {}", tensor.dtype, tensor.shape);
            let written = match format {
                // The header, then the stacked rows as they are: no second copy of them.
                Format::Npy => {
                    let head = interop::npy::header(&name, tensor.dtype, &tensor.shape, 0)?;
                    write_parts(&args.output, &[&head, &tensor.data])?
                }
                _ => {
                    let bytes =
                        interop::write(format, &name, &Document::Tensor(Array::from(tensor)))?;
                    write_parts(&args.output, &[&bytes])?
                }
            };
            (rows, what, detail, written, format.name())
        }
    };
    if args.output.as_os_str() == "-" {
        return Ok(ExitCode::SUCCESS);
    }
    if ctx.json {
        let mut line = serde_json::json!({
            "rows": rows, "format": format, "output": name, "bytes": bytes,
        });
        if let (Some(l), serde_json::Value::Object(w)) = (line.as_object_mut(), what) {
            l.extend(w);
        }
        crate::output::json_line(&line)?;
    } else {
        outln!(
            "{rows} rows, {detail}, {} {format} written to {name}",
            size(bytes)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The table written to `path` as its rows are read, a row group at a time, so memory stays
/// that of a few groups however many rows there are; its schema and rows. `None` when a row
/// read after some were written changed the columns (a type widened, a column appeared) or
/// the index was rebuilt meanwhile: the caller writes the file again from the whole table.
fn stream_table(
    archive: &model_archive::Archive,
    query: &Query,
    columns: Option<&[String]>,
    (format, path, group_rows): (TableFormat, &std::path::Path, usize),
    progress: &dyn Fn(u64, u64),
) -> Result<Option<(SchemaRef, u64)>> {
    let name = path.display().to_string();
    let mut again = false;
    let mut done = None;
    let written = write_file(path, &mut |f| {
        let mut out = Some(f);
        let mut stream: Option<TableStream<_>> = None;
        let rows = {
            let mut sink = |t: Table| -> model_archive::Result<bool> {
                let s = match (&mut stream, out.take()) {
                    (Some(s), _) => s,
                    (None, Some(f)) => stream.insert(
                        TableStream::new(&t.schema, format, &name, f)?.with_group_rows(group_rows),
                    ),
                    (None, None) => return Ok(false),
                };
                if *s.schema() != t.schema {
                    return Ok(false);
                }
                s.push(t)?;
                Ok(true)
            };
            archive.table_pieces(query, columns, progress, group_rows, &mut sink)?
        };
        match (rows, stream) {
            (Some(rows), Some(s)) => {
                let schema = s.schema().clone();
                s.finish()?;
                done = Some((schema, rows));
                Ok(())
            }
            _ => {
                again = true;
                Err(anyhow::anyhow!(
                    "{name}: written again from the whole table"
                ))
            }
        }
    });
    match written {
        Err(_) if again => Ok(None),
        other => other.map(|()| done),
    }
}

/// The format the output's extension or --format names.
fn target(args: &ExportArgs) -> Result<Target> {
    let ext = args
        .output
        .extension()
        .map(|e| e.to_string_lossy().into_owned());
    let target = match &args.format {
        Some(f) => match TableFormat::parse(f) {
            Some(t) => Target::Table(t),
            None => Target::Array(f.parse::<Format>()?),
        },
        None => match ext.as_deref() {
            Some(e) => match TableFormat::from_extension(e) {
                Some(t) => Target::Table(t),
                None => Target::Array(Format::from_extension(e).unwrap_or(Format::Npy)),
            },
            None => Target::Array(Format::Npy),
        },
    };
    if let Target::Array(f) = target
        && args.field.len() > 1
    {
        return Err(UsageError(format!(
            "{} stacks one field into one array; --field was given {} times (a table format \
             such as .parquet takes several)",
            f.name(),
            args.field.len()
        ))
        .into());
    }
    Ok(target)
}
