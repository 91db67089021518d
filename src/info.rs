//! What the store reports about its contents: `ObjectInfo` (what `info` shows about an object)
//! and `EntryInfo` (one entry, as `ls` and `query` list them). Plain data, shared by the
//! store, the lock-free reader and the query language.

use std::path::Path;

use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::format::meta::ObjectMeta;
use crate::hash::ObjectHash;
use crate::object::Kind;
use crate::object::tensor::{Dtype, Shape};

/// What `info` shows about an object; everything comes from the index.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectInfo {
    /// The address.
    pub hash: ObjectHash,
    /// The kind.
    pub kind: Kind,
    /// Dtype (tensors).
    pub dtype: Option<Dtype>,
    /// Shape (tensors).
    pub shape: Option<Shape>,
    /// Media type (bytes) or record schema (records), if any.
    pub desc: Option<String>,
    /// Decoded size.
    pub raw_len: u64,
    /// Stored size.
    pub stored_len: u64,
    /// How it is stored.
    pub codec: Codec,
    /// Segment file name.
    pub segment: String,
    /// Offset of its frame in the segment.
    pub offset: u64,
    /// 0 for an object in a frame of its own; item index + 1 in a pack frame.
    pub slot: u32,
}

/// One entry, as `entries` lists them.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryInfo {
    /// Sequence number, in logging order.
    pub seq: u64,
    /// Nanoseconds since the Unix epoch.
    pub time_ns: i64,
    /// The object logged.
    pub hash: ObjectHash,
    /// Tags.
    pub tags: Vec<(String, String)>,
}

/// An `ObjectInfo` from what an object is; how and where it is stored are left for the caller
/// (raw, at offset 0). The error is a reason (a dtype this program does not know).
pub(crate) fn describe(
    hash: ObjectHash,
    kind: Kind,
    desc: &str,
    shape: &[u64],
    raw_len: u64,
) -> std::result::Result<ObjectInfo, String> {
    let (dtype, shape, desc) = match kind {
        Kind::Tensor => (
            Some(desc.parse::<Dtype>().map_err(|e| e.to_string())?),
            Some(Shape::new(shape.to_vec())),
            None,
        ),
        _ => (None, None, Some(desc.to_owned()).filter(|d| !d.is_empty())),
    };
    Ok(ObjectInfo {
        hash,
        kind,
        dtype,
        shape,
        desc,
        raw_len,
        stored_len: raw_len,
        codec: Codec::Raw,
        segment: String::new(),
        offset: 0,
        slot: 0,
    })
}

/// An `ObjectInfo` from object metadata (the location fields are left for the caller).
pub(crate) fn info_from_meta(
    hash: ObjectHash,
    meta: &ObjectMeta,
    path: &Path,
    offset: u64,
) -> Result<ObjectInfo> {
    let corrupt = |reason: String| Error::corrupt(path, offset, reason);
    let kind = meta
        .kind
        .parse::<Kind>()
        .map_err(|e| corrupt(e.to_string()))?;
    let mut info = describe(hash, kind, &meta.desc, &meta.shape, meta.raw_len).map_err(corrupt)?;
    info.offset = offset;
    Ok(info)
}
