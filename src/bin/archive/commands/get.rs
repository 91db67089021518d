//! `archive get` and `archive cat`: write an object back out.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use model_archive::document::get_document;
use model_archive::interop::compressed::{compress, split_suffix};
use model_archive::interop::{self, Array, Document, Format, npy};
use model_archive::{Archive, ArchiveReader, Categorical, Object, ObjectHash, ReadObject, Value};

use super::{Ctx, UsageError, resolve, write_output};
use crate::args::GetArgs;

/// A categorical as JSON: labels, the codes' hash, and the label of every code.
fn categorical_json(archive: &dyn ReadObject, cat: &Categorical) -> Result<serde_json::Value> {
    Ok(serde_json::json!({
        "labels": cat.labels,
        "codes": cat.codes.to_string(),
        "values": categorical_values(archive, cat)?,
    }))
}

/// The label of each code, in order.
pub fn categorical_values(archive: &dyn ReadObject, cat: &Categorical) -> Result<Vec<String>> {
    let Object::Tensor(codes) = archive.read_object(&cat.codes)? else {
        return Err(
            UsageError(format!("{}: categorical codes are not a tensor", cat.codes)).into(),
        );
    };
    Categorical::code_values(codes.dtype, &codes.data)
        .enumerate()
        .map(|(i, code)| {
            code.and_then(|c| cat.labels.get(usize::try_from(c).ok()?))
                .cloned()
                .ok_or_else(|| UsageError(format!("code at index {i} has no label")).into())
        })
        .collect()
}

fn pretty(v: &serde_json::Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Where `get` is told to write: the format flag, else the extension of `-o`.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    /// Nothing said: tensors as .npy, records as JSON, text and bytes as they are.
    Default,
    /// Raw little-endian bytes.
    Raw,
    /// A document format.
    Doc(Format),
}

fn target(flag: Option<&str>, out: Option<&Path>) -> Result<(Target, bool)> {
    if let Some(f) = flag {
        let t = match f {
            "raw" => Target::Raw,
            other => Target::Doc(other.parse::<Format>()?),
        };
        return Ok((t, true));
    }
    let ext = out
        .and_then(|p| p.extension())
        .map(|e| e.to_string_lossy().to_lowercase());
    let t = match ext.as_deref() {
        Some("bin" | "raw") => Target::Raw,
        Some(e) => Format::from_extension(e).map_or(Target::Default, Target::Doc),
        None => Target::Default,
    };
    Ok((t, false))
}

/// How `get` writes an object out.
struct Render<'a> {
    hash: ObjectHash,
    name: String,
    target: Target,
    explicit: bool,
    to_terminal: bool,
    out: Option<&'a Path>,
}

impl Render<'_> {
    /// Refuse binary output to a terminal.
    fn check_terminal(&self, object: &Object) -> Result<()> {
        let binary = match (object, self.target) {
            (Object::Tensor(_), Target::Default) => true,
            (_, Target::Raw) => true,
            (_, Target::Doc(f)) => f != Format::JsonB64,
            _ => false,
        };
        if self.to_terminal && binary && !matches!(object, Object::Text(_) | Object::Bytes { .. }) {
            return Err(UsageError(format!(
                "{} is {}; write it to a file with -o FILE (.npy, .npz, .safetensors, .msgpack, \
                 .json, .pb, or .bin for raw bytes), or to a pipe with -o -",
                self.hash,
                describe(object)
            ))
            .into());
        }
        Ok(())
    }

    /// The bytes of what needs no index: tensors (but as ONNX), text, bytes. Anything else
    /// is handed back, to be rendered with the archive.
    fn simple(&self, object: Object) -> Result<std::result::Result<Vec<u8>, Object>> {
        self.check_terminal(&object)?;
        let (hash, name, target, explicit) = (&self.hash, &self.name, self.target, self.explicit);
        Ok(Ok(match object {
            Object::Tensor(t) => match target {
                Target::Raw => t.data,
                Target::Default => npy::write(name, t.dtype, &t.shape, &t.data)?,
                // An ONNX tensor's name is the `name` tag of its entry: that needs the index.
                Target::Doc(Format::Onnx) => return Ok(Err(Object::Tensor(t))),
                Target::Doc(f) => interop::write(f, name, &Document::Tensor(Array::from(t)))?,
            },
            Object::Text(s) => match target {
                Target::Doc(f) if explicit => {
                    interop::write(f, name, &Document::Scalar(Value::Str(s)))?
                }
                _ => s.into_bytes(),
            },
            Object::Bytes { data, .. } => {
                if explicit && target != Target::Raw {
                    return Err(UsageError(format!(
                        "{hash} is opaque bytes; --format applies to tensors and records"
                    ))
                    .into());
                }
                data
            }
            other => return Ok(Err(other)),
        }))
    }

    /// The bytes of what needs the archive: records, categoricals, ONNX names.
    /// The bytes of records and categoricals, which follow references: any source will do.
    /// ONNX tensors are handed back (their name is in the index).
    fn with_source(
        &self,
        src: &dyn ReadObject,
        object: Object,
    ) -> Result<std::result::Result<Vec<u8>, Object>> {
        let (hash, name, target) = (self.hash, &self.name, self.target);
        Ok(Ok(match object {
            Object::Record(_) => match target {
                Target::Raw => {
                    return Err(UsageError(format!(
                        "{hash} is a record; raw bytes hold one tensor. Write it as .json, \
                     .msgpack, .npz or .safetensors"
                    ))
                    .into());
                }
                Target::Default => {
                    interop::write(Format::JsonB64, name, &get_document(src, &hash)?)?
                }
                // A sequence's name is the `name` tag of its entry: that needs the index.
                Target::Doc(Format::Onnx) => return Ok(Err(object)),
                Target::Doc(f) => interop::write(f, name, &get_document(src, &hash)?)?,
            },
            Object::Categorical(cat) => match target {
                Target::Doc(Format::Npy) | Target::Raw => {
                    let Object::Tensor(codes) = src.read_object(&cat.codes)? else {
                        return Err(UsageError("categorical codes are not a tensor".into()).into());
                    };
                    if target == Target::Raw {
                        codes.data
                    } else {
                        npy::write(name, codes.dtype, &codes.shape, &codes.data)?
                    }
                }
                // A categorical's JSON form names each code's label, as `archive cat` does.
                Target::Default | Target::Doc(Format::JsonB64) => {
                    pretty(&categorical_json(src, &cat)?)
                }
                Target::Doc(f) => interop::write(f, name, &get_document(src, &hash)?)?,
            },
            Object::Tensor(t) => return Ok(Err(Object::Tensor(t))),
            _ => return Err(UsageError(format!("{hash}: unknown object kind")).into()),
        }))
    }

    /// An ONNX tensor, or a record of a list of tensors as a sequence: its name came in as
    /// the `name` tag of its newest entry.
    fn onnx(&self, src: &dyn ReadObject, tensor_name: &str, object: Object) -> Result<Vec<u8>> {
        let doc = match object {
            Object::Tensor(t) => Document::Tensor(Array::from(t)),
            Object::Record(_) => get_document(src, &self.hash)?,
            _ => return Err(UsageError(format!("{}: unknown object kind", self.hash)).into()),
        };
        Ok(interop::onnx_write(&self.name, tensor_name, &doc)?)
    }
}

/// The `name` tag of the newest entry of `hash`: an ONNX tensor's name.
fn onnx_name(archive: &Archive, hash: &ObjectHash) -> Result<String> {
    Ok(archive
        .entries_of(hash)?
        .iter()
        .rev()
        .find_map(|e| {
            e.tags
                .iter()
                .find(|(k, _)| k == "name")
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_default())
}

/// `get --remote NAME`: the object read from a remote with ranged GETs. There is no index of
/// the remote's entries here, so an ONNX tensor is written without a name.
fn from_remote<'o>(
    ctx: &Ctx,
    name: &str,
    prefix: &str,
    render: &dyn Fn(ObjectHash) -> Render<'o>,
) -> Result<Vec<u8>> {
    let root = ctx.store_path()?;
    let (_, spec) = model_archive::remote::remote_named(&root, Some(name))?;
    let reader = model_archive::remote::RemoteReader::open(&root, &spec)?;
    let hash = reader.resolve(prefix)?;
    let object = reader.get(&hash)?;
    let r = render(hash);
    let bytes = match r.simple(object)? {
        Ok(bytes) => bytes,
        Err(object) => match r.with_source(&reader, object)? {
            Ok(bytes) => bytes,
            Err(object) => r.onnx(&reader, "", object)?,
        },
    };
    if std::env::var_os("ARCHIVE_TRACE_REMOTE").is_some_and(|v| v == "1") {
        eprintln!(
            "archive: {} requests to {}",
            reader.requests(),
            reader.url()
        );
    }
    Ok(bytes)
}

impl Render<'_> {}

/// The lookup tables and the hash `prefix` names in them, without the index lock or sled:
/// `None` when there are none or they do not know it. A full hash is taken as it is (the
/// caller's read looks it up).
pub(super) fn quick_hash(ctx: &Ctx, prefix: &str) -> Result<Option<(ArchiveReader, ObjectHash)>> {
    let Some(reader) = ArchiveReader::open(ctx.store_path()?)? else {
        return Ok(None);
    };
    let hash = match prefix.trim().parse::<ObjectHash>() {
        Ok(hash) => Some(hash),
        Err(_) => reader.resolve(prefix.trim())?,
    };
    Ok(hash.map(|h| (reader, h)))
}

/// The object through the lookup tables, without the index lock or sled: `None` when they
/// do not know it (then the caller opens the archive, which knows everything).
pub(super) fn quick(
    ctx: &Ctx,
    prefix: &str,
    no_verify: bool,
) -> Result<Option<(ArchiveReader, ObjectHash, Object)>> {
    let Some((reader, hash)) = quick_hash(ctx, prefix)? else {
        return Ok(None);
    };
    let object = if no_verify {
        match reader.map(&hash, false)? {
            Some(m) => match m.tensor() {
                Some((dtype, shape, bytes)) => Object::Tensor(model_archive::Tensor::new(
                    dtype,
                    shape.clone(),
                    bytes.to_vec(),
                )?),
                None => match reader.get(&hash)? {
                    Some(o) => o,
                    None => return Ok(None),
                },
            },
            None => return Ok(None),
        }
    } else {
        match reader.get(&hash)? {
            Some(o) => o,
            None => return Ok(None),
        }
    };
    Ok(Some((reader, hash, object)))
}

pub fn run(ctx: &Ctx, args: GetArgs) -> Result<ExitCode> {
    let out = args.output.as_deref();
    let to_terminal =
        (out.is_none() || out == Some(Path::new("-"))) && std::io::stdout().is_terminal();
    // `-o preds.npy.gz`: the format of `preds.npy`, gzip-compressed.
    let name = out
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned());
    let (plain, compression) = match &name {
        Some(n) => split_suffix(n),
        None => ("", None),
    };
    let plain_out = out.map(|p| p.with_file_name(plain));
    let (target, explicit) = target(args.format.as_deref(), plain_out.as_deref())?;
    let finish = |bytes: Vec<u8>| -> Result<Vec<u8>> {
        let bytes = match compression {
            Some(c) => compress(&bytes, c)
                .with_context(|| format!("{}: cannot compress", name.as_deref().unwrap_or("")))?,
            None => bytes,
        };
        Ok(encoded(bytes, args.base64))
    };
    if let (Some(proto), Some(message)) = (&args.proto, &args.message) {
        let schema = interop::proto::ProtoSchema::load(proto, message)?;
        let label = name.clone().unwrap_or_else(|| args.hash.clone());
        let doc = match quick(ctx, &args.hash, args.no_verify)? {
            Some((reader, hash, _)) => get_document(&reader, &hash)?,
            None => {
                let archive = ctx.open()?;
                let hash = resolve(&archive, &args.hash)?;
                get_document(&*archive, &hash)?
            }
        };
        let bytes = interop::proto::write(&schema, &label, &doc)?;
        write_output(out, &finish(bytes)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let render = |hash: ObjectHash| Render {
        hash,
        name: hash.to_string(),
        target,
        explicit,
        to_terminal,
        out,
    };
    if let Some(remote) = &args.remote {
        let bytes = from_remote(ctx, remote, &args.hash, &render)?;
        write_output(out, &finish(bytes)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Most gets need no index: try the lookup tables first.
    let mut pending = None;
    if let Some((reader, hash, object)) = quick(ctx, &args.hash, args.no_verify)? {
        let r = render(hash);
        let done = match r.simple(object)? {
            Ok(bytes) => Ok(bytes),
            Err(object) => r.with_source(&reader, object)?,
        };
        match done {
            Ok(bytes) => {
                write_output(out, &finish(bytes)?)?;
                return Ok(ExitCode::SUCCESS);
            }
            Err(object) => pending = Some((hash, object)),
        }
    }
    let archive = ctx.open()?;
    let (hash, object) = match pending {
        Some(p) => p,
        None => {
            let hash = resolve(&archive, &args.hash)?;
            let object = if args.no_verify {
                let mapped = archive.map_unchecked(&hash)?;
                match mapped.tensor() {
                    Some((dtype, shape, bytes)) => Object::Tensor(model_archive::Tensor::new(
                        dtype,
                        shape.clone(),
                        bytes.to_vec(),
                    )?),
                    None => archive.get(&hash)?,
                }
            } else {
                archive.get(&hash)?
            };
            (hash, object)
        }
    };
    let r = render(hash);
    let bytes = match r.simple(object)? {
        Ok(bytes) => bytes,
        Err(object) => match r.with_source(&*archive, object)? {
            Ok(bytes) => bytes,
            Err(object) => r.onnx(&*archive, &onnx_name(&archive, &hash)?, object)?,
        },
    };
    write_output(r.out, &finish(bytes)?)?;
    Ok(ExitCode::SUCCESS)
}

/// The output, base64-encoded on one line when asked.
fn encoded(bytes: Vec<u8>, base64: bool) -> Vec<u8> {
    use base64::Engine;
    if !base64 {
        return bytes;
    }
    let mut text = base64::engine::general_purpose::STANDARD
        .encode(bytes)
        .into_bytes();
    text.push(b'\n');
    text
}

fn describe(object: &Object) -> String {
    match object {
        Object::Tensor(t) => format!("a tensor ({} {})", t.dtype, t.shape),
        other => format!("a {}", other.kind()),
    }
}

pub fn cat(ctx: &Ctx, prefix: &str) -> Result<ExitCode> {
    // Text, records and categoricals need no index: the lookup tables find them.
    match quick(ctx, prefix, false)? {
        Some((_, _, Object::Text(s))) => {
            write_output(None, s.as_bytes())?;
            return Ok(ExitCode::SUCCESS);
        }
        Some((_, _, Object::Record(r))) => {
            write_output(None, &pretty(&r.to_json()))?;
            return Ok(ExitCode::SUCCESS);
        }
        Some((reader, _, Object::Categorical(cat))) => {
            let mut lines = categorical_values(&reader, &cat)?.join("\n");
            lines.push('\n');
            write_output(None, lines.as_bytes())?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let archive = ctx.open()?;
    let hash = resolve(&archive, prefix)?;
    let bytes = match archive.get(&hash)? {
        Object::Text(s) => s.into_bytes(),
        Object::Record(r) => pretty(&r.to_json()),
        Object::Categorical(cat) => {
            let mut lines = categorical_values(&*archive, &cat)?.join("\n");
            lines.push('\n');
            lines.into_bytes()
        }
        Object::Bytes { data, .. } if !std::io::stdout().is_terminal() => data,
        other => {
            return Err(UsageError(format!(
                "{hash} is {}, not text; use `archive get {} -o FILE`",
                other.kind(),
                hash.short(12)
            ))
            .into());
        }
    };
    write_output(None, &bytes)?;
    Ok(ExitCode::SUCCESS)
}
