//! numpy's `.npz`: a zip archive of `.npy` members, stored (`np.savez`) or deflated
//! (`np.savez_compressed`). Read as a map of named tensors in member order (the `.npy` suffix
//! dropped, as `np.load` does); written stored, as `np.savez` writes it.
//!
//! A zip can claim, and a deflated member can inflate to, far more than it holds. Every member
//! is read through a bound: never more than it declares, never more than [`Limits::member`],
//! and all members together never more than [`Limits::total`]. Anything past a bound is
//! refused as a zip bomb before it is allocated.

use std::borrow::Cow;
use std::io::{Cursor, Read, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use super::{Array, Document, flatten_tensors, npy};
use crate::error::{Error, Result};

/// Default bound on one member's decompressed size: 4 GiB.
pub const MAX_MEMBER_BYTES: u64 = 4 << 30;
/// Default bound on all members' decompressed sizes together: 16 GiB.
pub const MAX_TOTAL_BYTES: u64 = 16 << 30;
/// Default bound on the number of members.
pub const MAX_MEMBERS: usize = 1 << 16;

/// How much an `.npz` may decompress to.
///
/// ## Defaults
/// - `member`: [`MAX_MEMBER_BYTES`] (4 GiB)
/// - `total`: [`MAX_TOTAL_BYTES`] (16 GiB)
/// - `members`: [`MAX_MEMBERS`] (65,536)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes one member may decompress to.
    pub member: u64,
    /// Most bytes all members together may decompress to.
    pub total: u64,
    /// Most members.
    pub members: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            member: MAX_MEMBER_BYTES,
            total: MAX_TOTAL_BYTES,
            members: MAX_MEMBERS,
        }
    }
}

/// What a lone tensor is called in an `.npz`: `np.savez`'s name for its first positional
/// argument.
pub const LONE_NAME: &str = "arr_0";

/// Read an `.npz` with the default [`Limits`]. `input` names the file in errors.
pub fn read(input: &str, bytes: &[u8]) -> Result<Document<'static>> {
    read_with_limits(input, bytes, Limits::default())
}

/// Read an `.npz`, refusing anything that decompresses past `limits`.
pub fn read_with_limits(input: &str, bytes: &[u8], limits: Limits) -> Result<Document<'static>> {
    let bad = |why: String| Error::invalid(input, format!("not a valid .npz file: {why}"));
    if bytes.get(..2) != Some(b"PK") {
        return Err(bad("wrong magic (a zip archive starts with `PK`)".into()));
    }
    let mut zip = ZipArchive::new(Cursor::new(bytes)).map_err(|e| bad(e.to_string()))?;
    if zip.len() > limits.members {
        return Err(bad(format!(
            "holds {} members, more than the limit of {}",
            zip.len(),
            limits.members
        )));
    }
    // Declared sizes so far: each member's bound is checked before its bytes are allocated.
    let mut total = 0u64;
    let mut fields = Vec::with_capacity(zip.len());
    let mut seen = std::collections::HashSet::with_capacity(zip.len());
    for i in 0..zip.len() {
        let mut member = zip.by_index(i).map_err(|e| bad(e.to_string()))?;
        let raw_name = member.name().map_err(|e| bad(e.to_string()))?.into_owned();
        let member_input = format!("{input}: member `{raw_name}`");
        if member.is_dir() {
            continue;
        }
        let Some(name) = raw_name.strip_suffix(".npy") else {
            return Err(Error::invalid(
                member_input,
                "is not a .npy array (an .npz holds only `NAME.npy` members)",
            ));
        };
        if !seen.insert(name.to_owned()) {
            return Err(Error::invalid(member_input, "appears twice in the archive"));
        }
        let declared = member.size();
        check_bounds(&member_input, declared, &mut total, limits)?;
        check_compression(&member_input, member.compression())?;
        let data = read_member(&member_input, &mut member, declared)?;
        let array = member_array(&member_input, &data)?;
        fields.push((name.to_owned(), Document::Tensor(array)));
    }
    Ok(Document::Map(fields))
}

/// Refuse a member whose declared size passes the per-member bound, or brings the running
/// `total` of declared sizes past the bound on all members.
fn check_bounds(member_input: &str, declared: u64, total: &mut u64, limits: Limits) -> Result<()> {
    if declared > limits.member {
        return Err(Error::invalid(
            member_input,
            format!(
                "declares {declared} bytes decompressed, more than the limit of {} per member",
                limits.member
            ),
        ));
    }
    *total = total.saturating_add(declared);
    if *total > limits.total {
        return Err(Error::invalid(
            member_input,
            format!(
                "brings the decompressed total to {total} bytes, more than the limit of {}",
                limits.total
            ),
        ));
    }
    Ok(())
}

/// numpy writes members stored or deflated; anything else is refused.
fn check_compression(member_input: &str, method: CompressionMethod) -> Result<()> {
    if !matches!(
        method,
        CompressionMethod::Stored | CompressionMethod::Deflated
    ) {
        return Err(Error::invalid(
            member_input,
            format!("is compressed with {method:?}; numpy writes members stored or deflated"),
        ));
    }
    Ok(())
}

/// A member's decompressed bytes, exactly the `declared` size (already checked against the
/// limits): more is refused as a zip bomb, less as truncated.
fn read_member(member_input: &str, member: &mut impl Read, declared: u64) -> Result<Vec<u8>> {
    // Bounded read: one byte past the declared size is enough to catch a member that
    // inflates to more than it said, without ever holding more than that.
    let want = usize::try_from(declared)
        .map_err(|_| Error::invalid(member_input, "is larger than this machine can address"))?;
    let mut data = Vec::new();
    data.try_reserve_exact(want)
        .map_err(|_| Error::invalid(member_input, format!("cannot allocate {declared} bytes")))?;
    member
        .take(declared.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| Error::invalid(member_input, format!("cannot be read: {e}")))?;
    if data.len() as u64 > declared {
        return Err(Error::invalid(
            member_input,
            format!(
                "decompresses to more than the {declared} bytes it declares (a zip bomb?); \
                 refused"
            ),
        ));
    }
    if (data.len() as u64) < declared {
        return Err(Error::invalid(
            member_input,
            format!(
                "is truncated: {} of the {declared} bytes it declares",
                data.len()
            ),
        ));
    }
    Ok(data)
}

/// A member's `.npy` bytes as an array. Its data is copied out of `data`, so the array
/// outlives the member's buffer.
fn member_array(member_input: &str, data: &[u8]) -> Result<Array<'static>> {
    let arr = npy::read(member_input, data)?;
    Array::new(
        member_input,
        arr.dtype,
        arr.shape,
        Cow::Owned(arr.data.into_owned()),
    )
}

/// Write a document as an `.npz` of stored members. Nested maps and lists are flattened,
/// their names joined with `/`; a lone tensor is named [`LONE_NAME`]. Scalars are refused:
/// an `.npz` holds only arrays.
pub fn write(output: &str, doc: &Document<'_>) -> Result<Vec<u8>> {
    let tensors = flatten_tensors(output, ".npz", doc, '/', LONE_NAME, None)?;
    let failed = |e: &dyn std::fmt::Display| Error::invalid(output, format!("cannot write: {e}"));
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, a) in tensors {
        let member = npy::write(output, a.dtype(), a.shape(), a.data())?;
        // A fixed time makes the output depend on the content alone.
        let opts = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .last_modified_time(DateTime::default())
            .large_file(member.len() as u64 >= u64::from(u32::MAX));
        zip.start_file(format!("{name}.npy"), opts)
            .map_err(|e| failed(&e))?;
        zip.write_all(&member).map_err(|e| failed(&e))?;
    }
    Ok(zip.finish().map_err(|e| failed(&e))?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::record::Value;
    use crate::object::tensor::{Dtype, Shape};

    fn array(dtype: Dtype, dims: &[u64], data: Vec<u8>) -> Document<'static> {
        Document::Tensor(Array::new("t", dtype, Shape::new(dims.to_vec()), data.into()).expect("a"))
    }

    fn deflated(members: &[(&str, &[u8])], declared: Option<u64>) -> Vec<u8> {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in members {
            let opts = SimpleFileOptions::default()
                .compression_method(CompressionMethod::Deflated)
                .last_modified_time(DateTime::default());
            zip.start_file(*name, opts).expect("start");
            zip.write_all(data).expect("write");
        }
        let mut bytes = zip.finish().expect("finish").into_inner();
        if let Some(size) = declared {
            // Rewrite the uncompressed size in the local header (offset 22) and the central
            // directory entry (offset 24 from its signature) to lie about the member.
            bytes[22..26].copy_from_slice(&(size as u32).to_le_bytes());
            let cd = bytes
                .windows(4)
                .rposition(|w| w == b"PK\x01\x02")
                .expect("central directory");
            bytes[cd + 24..cd + 28].copy_from_slice(&(size as u32).to_le_bytes());
        }
        bytes
    }

    #[test]
    fn write_then_read_round_trips_in_order() {
        let doc = Document::Map(vec![
            (
                "probs".into(),
                array(Dtype::F32, &[2], vec![0, 0, 128, 63, 0, 0, 0, 64]),
            ),
            ("bf".into(), array(Dtype::BF16, &[], vec![128, 63])),
            ("none".into(), array(Dtype::I64, &[0, 3], vec![])),
        ]);
        let bytes = write("o", &doc).expect("write");
        assert_eq!(read("o", &bytes).expect("read"), doc);
        let lone = array(Dtype::U8, &[1], vec![9]);
        let back = read("o", &write("o", &lone).expect("write")).expect("read");
        assert_eq!(back, Document::Map(vec![(LONE_NAME.into(), lone)]));
        let scalar = Document::Map(vec![("n".into(), Document::Scalar(Value::Int(1)))]);
        assert!(write("o", &scalar).is_err());
    }

    #[test]
    fn deflated_members_read_and_bombs_are_refused() {
        let npy =
            npy::write("t", Dtype::U8, &Shape::new(vec![100_000]), &[0; 100_000]).expect("npy");
        let ok = deflated(&[("zeros.npy", &npy)], None);
        assert!(ok.len() < 2_000, "deflate shrinks zeros: {}", ok.len());
        let Document::Map(fields) = read("z", &ok).expect("read") else {
            panic!("not a map")
        };
        assert_eq!(fields[0].0, "zeros");
        let small = Limits {
            member: 50_000,
            ..Limits::default()
        };
        let err = read_with_limits("z.npz", &ok, small)
            .err()
            .map(|e| e.to_string());
        assert!(
            err.is_some_and(|m| m.contains("z.npz") && m.contains("limit")),
            "declared"
        );
        let total = Limits {
            total: 150_000,
            ..Limits::default()
        };
        let two = deflated(&[("a.npy", &npy), ("b.npy", &npy)], None);
        let err = read_with_limits("z.npz", &two, total)
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|m| m.contains("member `b.npy`") && m.contains("total")));
        // A member that lies, declaring 1000 bytes but inflating to 100 KB, stops at 1001.
        let liar = deflated(&[("zeros.npy", &npy)], Some(1000));
        let err = read("z.npz", &liar).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|m| m.contains("z.npz: member `zeros.npy`") && m.contains("declare")),
            "{err:?}"
        );
    }

    #[test]
    fn bad_archives_are_refused_with_reasons() {
        let doc = Document::Map(vec![("a".into(), array(Dtype::U8, &[3], vec![1, 2, 3]))]);
        let good = write("o", &doc).expect("write");
        for cut in 0..good.len() {
            assert!(read("t", &good[..cut]).is_err(), "cut at {cut}");
        }
        let mut magic = good.clone();
        magic[0] = b'X';
        let err = read("t.npz", &magic).err().map(|e| e.to_string());
        assert!(err.is_some_and(|m| m.contains("t.npz") && m.contains("magic")));
        let other = deflated(&[("notes.txt", b"hello")], None);
        assert!(read("t", &other).is_err());
    }
}
