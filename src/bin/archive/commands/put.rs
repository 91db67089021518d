//! `archive put`: files (by extension, `--format` or flags), stdin, or --text; one batch, one
//! fsync. Every file is read and parsed before anything is stored, so a bad file among many
//! leaves the store as it was.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use model_archive::document;
use model_archive::interop::{self, Document, Format, onnx};
use model_archive::tags::validate_tag;
use model_archive::{Archive, Codec, Dtype, ObjectHash, PutOptions, Shape, TensorView, Writer};

use super::{Ctx, UsageError};
use crate::args::PutArgs;
use crate::output::outln;

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

/// How a file is to be read.
#[derive(Clone, Copy)]
enum How {
    Raw,
    Bytes,
    Text,
    Doc(Format),
    /// A message of the --proto schema.
    Proto,
}

/// One file, parsed and ready to put.
enum Parsed<'a> {
    Raw(Dtype, Shape, &'a [u8]),
    Bytes(&'a [u8], String),
    Text(&'a str),
    /// The documents of the file (several for a msgpack stream), each with its input label,
    /// and a tag to add (an ONNX tensor's name).
    Docs(Vec<(String, Document<'a>)>, Option<(String, String)>),
}

pub fn run(ctx: &Ctx, args: PutArgs) -> Result<ExitCode> {
    let tags = parse_tags(&args.tags)?;
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
    let labels = args.labels.as_deref().map(read_labels).transpose()?;
    // Read and parse everything first: a refused file stores nothing, not even its neighbours.
    let mut contents = Vec::with_capacity(args.files.len());
    for file in &args.files {
        let how = how(file, &args)?;
        let mut bytes = read_input(file)?;
        if args.base64 {
            bytes = from_base64(file, &bytes)?;
        }
        contents.push((file, how, bytes));
    }
    let parsed = parse_all(&contents, &args, labels.is_some())?;
    // Records that refer to stored objects need the index to check them; other puts never
    // wait for it.
    let refers = parsed
        .iter()
        .any(|(_, p)| matches!(p, Parsed::Docs(docs, _) if docs.iter().any(|(_, d)| !d.refs().is_empty())));
    let archive = if refers {
        ctx.open()?
    } else {
        ctx.open_for_writing()?
    };
    check_refs(&archive, &parsed)?;
    let mut writer = archive.writer();
    writer.set_options(opts);
    let mut stored = Vec::new();
    let tag_refs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut put_all = || -> Result<()> {
        if let Some(text) = &args.text {
            let hash = writer.put_text(text, &tag_refs)?;
            stored.push(Stored {
                input: "--text".into(),
                hash,
                kind: "text",
            });
        }
        for (name, p) in &parsed {
            put_parsed(&mut writer, name, p, &tags, labels.as_deref(), &mut stored)?;
        }
        Ok(())
    };
    if let Err(e) = put_all() {
        // A put refused late (a categorical code out of range, say) takes the whole batch
        // with it: the store is left exactly as it was.
        writer.discard()?;
        return Err(e);
    }
    writer.commit()?;
    for s in &stored {
        if ctx.json {
            crate::output::json_line(
                &serde_json::json!({ "hash": s.hash.to_string(), "input": s.input, "kind": s.kind }),
            )?;
        } else if stored.len() == 1 {
            outln!("{}", s.hash)?;
        } else {
            outln!("{}  {}", s.hash, s.input)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Parse every file read, refusing `--labels` for anything but one tensor.
fn parse_all<'a>(
    contents: &'a [(&PathBuf, How, Vec<u8>)],
    args: &PutArgs,
    labelled: bool,
) -> Result<Vec<(String, Parsed<'a>)>> {
    let mut parsed = Vec::with_capacity(contents.len());
    for (file, how, bytes) in contents {
        let name = file.display().to_string();
        let p = parse(&name, *how, bytes, args)?;
        let lone_tensor = match &p {
            Parsed::Raw(..) => true,
            Parsed::Docs(docs, _) => matches!(docs.as_slice(), [(_, Document::Tensor(_))]),
            _ => false,
        };
        if labelled && !lone_tensor {
            return Err(UsageError(format!(
                "{name}: --labels needs one tensor of integer codes, and this file holds more"
            ))
            .into());
        }
        parsed.push((name, p));
    }
    Ok(parsed)
}

/// References are checked before anything is appended, like everything else.
fn check_refs(archive: &Archive, parsed: &[(String, Parsed<'_>)]) -> Result<()> {
    for (name, p) in parsed {
        if let Parsed::Docs(docs, _) = p {
            for h in docs.iter().flat_map(|(_, d)| d.refs()) {
                if !archive.contains(&h)? {
                    return Err(UsageError(format!(
                        "{name}: refers to {h}, which is not in the archive"
                    ))
                    .into());
                }
            }
        }
    }
    Ok(())
}

/// Base64 text (standard alphabet, padding optional, whitespace ignored) decoded.
fn from_base64(file: &Path, text: &[u8]) -> Result<Vec<u8>> {
    use base64::Engine;
    let compact: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(&compact).map_err(|e| {
        UsageError(format!(
            "{}: --base64, but this is not base64 text: {e}",
            file.display()
        ))
        .into()
    })
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

/// Decide how to read a file: flags first, then `--format`/`--kind`, then the extension.
fn how(file: &Path, args: &PutArgs) -> Result<How> {
    let name = file.display();
    if args.proto.is_some() {
        return Ok(How::Proto);
    }
    if args.dtype.is_some() && args.shape.is_some() {
        return Ok(How::Raw);
    }
    if args.media_type.is_some() {
        return Ok(How::Bytes);
    }
    if let Some(f) = &args.format {
        return Ok(How::Doc(f.parse()?));
    }
    match args.kind.as_deref() {
        Some("tensor") => return Ok(How::Doc(Format::Npy)),
        Some("text") => return Ok(How::Text),
        Some("record") => return Ok(How::Doc(Format::JsonB64)),
        _ => {}
    }
    // `preds.npy.gz`: the format inside a compressed file (inflated when read).
    let stripped = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .map(|n| interop::compressed::strip_suffix(&n).to_owned());
    let file = Path::new(stripped.as_deref().unwrap_or_default());
    let ext = file
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("txt" | "text" | "md") => Ok(How::Text),
        e => match e.and_then(Format::from_extension) {
            Some(format) => Ok(How::Doc(format)),
            None => Err(UsageError(format!(
                "{name}: cannot tell what this file holds; use a .npy, .npz, .safetensors, \
             .msgpack, .json, .pb or .txt file (or --format), give --dtype and --shape for raw \
             tensor bytes, --media-type for opaque bytes, or --kind"
            ))
            .into()),
        },
    }
}

fn parse<'a>(name: &str, how: How, bytes: &'a [u8], args: &PutArgs) -> Result<Parsed<'a>> {
    Ok(match how {
        How::Raw => {
            let dtype: Dtype = args.dtype.as_deref().unwrap_or_default().parse()?;
            let shape: Shape = args.shape.as_deref().unwrap_or_default().parse()?;
            TensorView::new(dtype, &shape, bytes).map_err(|e| named(name, e))?;
            Parsed::Raw(dtype, shape, bytes)
        }
        How::Bytes => Parsed::Bytes(bytes, args.media_type.clone().unwrap_or_default()),
        How::Text => Parsed::Text(std::str::from_utf8(bytes).map_err(|e| {
            UsageError(format!(
                "{name}: not UTF-8 text: invalid byte at offset {}",
                e.valid_up_to()
            ))
        })?),
        How::Doc(Format::Onnx) => {
            // The archive addresses a tensor by its content; an ONNX tensor's name is kept as
            // the entry's `name` tag, unless one was given.
            // A sequence of tensors is a list, its name kept the same way.
            let (doc, onnx_name) = match onnx::read_value(name, bytes)? {
                onnx::OnnxValue::Tensor(t) => (Document::Tensor(t.array), t.name),
                onnx::OnnxValue::Sequence { name, tensors } => (
                    Document::List(tensors.into_iter().map(Document::Tensor).collect()),
                    name,
                ),
            };
            let fits = |n: &str| !n.is_empty() && validate_tag("name", n).is_ok();
            let tag = Some(("name".to_owned(), onnx_name))
                .filter(|(_, n)| fits(n) && !args.tags.iter().any(|t| t.starts_with("name=")));
            Parsed::Docs(vec![(name.to_owned(), doc)], tag)
        }
        How::Proto => {
            let (Some(proto), Some(message)) = (&args.proto, &args.message) else {
                return Err(UsageError("--proto needs --message".into()).into());
            };
            let schema = interop::proto::ProtoSchema::load(proto, message)?;
            let doc = interop::proto::read(&schema, name, bytes)?;
            Parsed::Docs(vec![(name.to_owned(), doc)], None)
        }
        How::Doc(format) => {
            let docs = interop::read_all(format, name, bytes)?;
            let many = docs.len() > 1;
            let labelled = docs
                .into_iter()
                .enumerate()
                .map(|(i, d)| {
                    let label = if many {
                        format!("{name}[{i}]")
                    } else {
                        name.to_owned()
                    };
                    (label, d)
                })
                .collect();
            Parsed::Docs(labelled, None)
        }
    })
}

fn put_parsed(
    w: &mut Writer<'_>,
    name: &str,
    p: &Parsed<'_>,
    tags: &[(String, String)],
    labels: Option<&[String]>,
    stored: &mut Vec<Stored>,
) -> Result<()> {
    let tag_refs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut push = |input: &str, hash, kind| {
        stored.push(Stored {
            input: input.to_owned(),
            hash,
            kind,
        })
    };
    match p {
        Parsed::Raw(dtype, shape, bytes) => {
            let view = TensorView::new(*dtype, shape, bytes).map_err(|e| named(name, e))?;
            match labels {
                Some(l) => push(name, w.put_categorical(&view, l, &tag_refs)?, "record"),
                None => push(name, w.put_tensor(&view, &tag_refs)?, "tensor"),
            }
        }
        Parsed::Bytes(bytes, media_type) => {
            push(
                name,
                w.put_bytes(bytes, Some(media_type), &tag_refs)?,
                "bytes",
            );
        }
        Parsed::Text(text) => push(name, w.put_text(text, &tag_refs)?, "text"),
        Parsed::Docs(docs, extra) => {
            let mut with_extra = tag_refs.clone();
            if let Some((k, v)) = extra {
                with_extra.push((k.as_str(), v.as_str()));
            }
            for (label, doc) in docs {
                match (doc, labels) {
                    (Document::Tensor(a), Some(l)) => {
                        let view = a.view().map_err(|e| named(name, e))?;
                        push(label, w.put_categorical(&view, l, &with_extra)?, "record");
                    }
                    (Document::Tensor(_), None) => {
                        push(
                            label,
                            document::put_document(w, doc, &with_extra)?,
                            "tensor",
                        );
                    }
                    _ => push(
                        label,
                        document::put_document(w, doc, &with_extra)?,
                        "record",
                    ),
                }
            }
        }
    }
    Ok(())
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
