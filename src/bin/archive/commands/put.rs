//! `archive put`: files (by extension or flags), stdin, or --text; one batch, one fsync.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use model_archive::interop::npy;
use model_archive::{Codec, Dtype, ObjectHash, PutOptions, Record, Shape, TensorView, Writer};

use super::{Ctx, UsageError};
use crate::args::PutArgs;

/// Split `key=value` tags.
pub fn parse_tags(tags: &[String]) -> Result<Vec<(String, String)>> {
    tags.iter()
        .map(|t| match t.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(UsageError(format!("--tag {t}: expected key=value")).into()),
        })
        .collect()
}

/// What one input was stored as.
struct Stored {
    input: String,
    hash: ObjectHash,
    kind: &'static str,
}

pub fn run(ctx: &Ctx, args: PutArgs) -> Result<ExitCode> {
    let tags = parse_tags(&args.tags)?;
    let tag_refs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let opts = PutOptions {
        codec: args.codec.as_deref().map(str::parse::<Codec>).transpose()?,
        level: args.level,
    };
    if args.text.is_none() && args.files.is_empty() {
        return Err(UsageError(
            "nothing to put: name files (`-` for stdin) or give --text; see `archive put --help`"
                .into(),
        )
        .into());
    }
    let archive = ctx.open()?;
    let mut writer = archive.writer();
    writer.set_options(opts);
    let mut stored = Vec::new();
    if let Some(text) = &args.text {
        let hash = writer.put_text(text, &tag_refs)?;
        stored.push(Stored {
            input: "--text".into(),
            hash,
            kind: "text",
        });
    }
    for file in &args.files {
        let name = file.display().to_string();
        let bytes = read_input(file)?;
        let (hash, kind) = put_file(&mut writer, &name, file, &bytes, &args, &tag_refs)?;
        stored.push(Stored {
            input: name,
            hash,
            kind,
        });
    }
    writer.commit()?;
    for s in &stored {
        if ctx.json {
            crate::output::json_line(
                &serde_json::json!({ "hash": s.hash.to_string(), "input": s.input, "kind": s.kind }),
            )?;
        } else if stored.len() == 1 {
            println!("{}", s.hash);
        } else {
            println!("{}  {}", s.hash, s.input);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_input(file: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if file == Path::new("-") {
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .context("cannot read stdin")?;
    } else {
        bytes = std::fs::read(file).with_context(|| format!("{}: cannot read", file.display()))?;
    }
    Ok(bytes)
}

fn put_file(
    w: &mut Writer<'_>,
    name: &str,
    file: &Path,
    bytes: &[u8],
    args: &PutArgs,
    tags: &[(&str, &str)],
) -> Result<(ObjectHash, &'static str)> {
    if let (Some(dtype), Some(shape)) = (&args.dtype, &args.shape) {
        let dtype: Dtype = dtype.parse()?;
        let shape: Shape = shape.parse()?;
        let view = TensorView::new(dtype, &shape, bytes).map_err(|e| named(name, e))?;
        return Ok((w.put_tensor(&view, tags)?, "tensor"));
    }
    if let Some(media_type) = &args.media_type {
        return Ok((w.put_bytes(bytes, Some(media_type), tags)?, "bytes"));
    }
    let ext = file
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let kind = match (args.kind.as_deref(), ext.as_deref()) {
        (Some(k), _) => k,
        (None, Some("npy")) => "tensor",
        (None, Some("txt" | "text" | "md")) => "text",
        (None, Some("json")) => "record",
        (None, Some("pkl" | "pickle")) => {
            return Err(UsageError(format!(
                "{name}: pickle files can run code when loaded, so they are never read; save \
                 the arrays with np.save (.npy) or safetensors and put those"
            ))
            .into());
        }
        _ => {
            return Err(UsageError(format!(
                "{name}: cannot tell what this file holds; use a .npy/.txt/.json file, give \
                 --dtype and --shape for raw tensor bytes, --media-type for opaque bytes, or \
                 --kind"
            ))
            .into());
        }
    };
    match kind {
        "tensor" => {
            let arr = npy::read(name, bytes)?;
            let view =
                TensorView::new(arr.dtype, &arr.shape, &arr.data).map_err(|e| named(name, e))?;
            if let Some(labels) = &args.labels {
                let labels = read_labels(labels)?;
                return Ok((w.put_categorical(&view, &labels, tags)?, "record"));
            }
            Ok((w.put_tensor(&view, tags)?, "tensor"))
        }
        "text" => {
            let text = std::str::from_utf8(bytes).map_err(|e| {
                UsageError(format!(
                    "{name}: not UTF-8 text: invalid byte at offset {}",
                    e.valid_up_to()
                ))
            })?;
            Ok((w.put_text(text, tags)?, "text"))
        }
        _ => {
            let json: serde_json::Value = serde_json::from_slice(bytes)
                .map_err(|e| UsageError(format!("{name}: not JSON: {e}")))?;
            Ok((
                w.put_record(&Record::from_json(name, &json)?, tags)?,
                "record",
            ))
        }
    }
}

/// Put the file's name on an error about "the tensor".
fn named(name: &str, e: model_archive::Error) -> model_archive::Error {
    match e {
        model_archive::Error::InvalidInput { reason, .. } => model_archive::Error::InvalidInput {
            input: name.to_owned(),
            reason,
        },
        other => other,
    }
}

fn read_labels(path: &Path) -> Result<Vec<String>> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).with_context(|| format!("{name}: cannot read"))?;
    serde_json::from_slice::<Vec<String>>(&bytes).map_err(|e| {
        UsageError(format!(
            "{name}: expected a JSON list of label strings: {e}"
        ))
        .into()
    })
}
