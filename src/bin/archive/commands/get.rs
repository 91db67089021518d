//! `archive get` and `archive cat`: write an object back out.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use model_archive::interop::npy;
use model_archive::{Archive, Categorical, Object};

use super::{Ctx, UsageError, resolve, write_output};
use crate::args::GetArgs;

/// A categorical as JSON: labels, the codes' hash, and the label of every code.
fn categorical_json(archive: &Archive, cat: &Categorical) -> Result<serde_json::Value> {
    Ok(serde_json::json!({
        "labels": cat.labels,
        "codes": cat.codes.to_string(),
        "values": categorical_values(archive, cat)?,
    }))
}

/// The label of each code, in order.
pub fn categorical_values(archive: &Archive, cat: &Categorical) -> Result<Vec<String>> {
    let Object::Tensor(codes) = archive.get(&cat.codes)? else {
        return Err(
            UsageError(format!("{}: categorical codes are not a tensor", cat.codes)).into(),
        );
    };
    let size = codes.dtype.size();
    codes
        .data
        .chunks_exact(size)
        .map(|c| {
            let mut le = [0u8; 8];
            for (d, s) in le.iter_mut().zip(c) {
                *d = *s;
            }
            let code = u64::from_le_bytes(le) as usize;
            cat.labels
                .get(code)
                .cloned()
                .ok_or_else(|| UsageError(format!("code {code} has no label")).into())
        })
        .collect()
}

fn pretty(v: &serde_json::Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).unwrap_or_default();
    out.push(b'\n');
    out
}

pub fn run(ctx: &Ctx, args: GetArgs) -> Result<ExitCode> {
    let archive = ctx.open()?;
    let hash = resolve(&archive, &args.hash)?;
    let out = args.output.as_deref();
    let to_terminal = out.is_none() || out == Some(Path::new("-"));
    let object = if args.no_verify {
        // Unverified reads go through the memory map; decode from the raw bytes.
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
    let bytes = match &object {
        Object::Tensor(t) => {
            let ext = out
                .and_then(|p| p.extension())
                .map(|e| e.to_string_lossy().to_lowercase());
            let raw = match (args.format.as_deref(), ext.as_deref()) {
                (Some(f), _) => f == "raw",
                (None, Some("bin" | "raw")) => true,
                _ => false,
            };
            if to_terminal && std::io::stdout().is_terminal() {
                return Err(UsageError(format!(
                    "{hash} is a tensor ({} {}); write it to a file with -o FILE.npy (or \
                     -o FILE.bin for raw bytes)",
                    t.dtype, t.shape
                ))
                .into());
            }
            if raw {
                t.data.clone()
            } else {
                npy::write(&hash.to_string(), t.dtype, &t.shape, &t.data)?
            }
        }
        Object::Text(s) => s.clone().into_bytes(),
        Object::Bytes { data, .. } => data.clone(),
        Object::Record(r) => pretty(&r.to_json()),
        Object::Categorical(cat) => {
            let ext = out
                .and_then(|p| p.extension())
                .map(|e| e.to_string_lossy().to_lowercase());
            if ext.as_deref() == Some("npy") {
                let Object::Tensor(codes) = archive.get(&cat.codes)? else {
                    return Err(UsageError("categorical codes are not a tensor".into()).into());
                };
                npy::write(&hash.to_string(), codes.dtype, &codes.shape, &codes.data)?
            } else {
                pretty(&categorical_json(&archive, cat)?)
            }
        }
        _ => return Err(UsageError(format!("{hash}: unknown object kind")).into()),
    };
    write_output(out, &bytes)?;
    Ok(ExitCode::SUCCESS)
}

pub fn cat(ctx: &Ctx, prefix: &str) -> Result<ExitCode> {
    let archive = ctx.open()?;
    let hash = resolve(&archive, prefix)?;
    let bytes = match archive.get(&hash)? {
        Object::Text(s) => s.into_bytes(),
        Object::Record(r) => pretty(&r.to_json()),
        Object::Categorical(cat) => {
            let mut lines = categorical_values(&archive, &cat)?.join("\n");
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
