//! The `ARCHIVE` file at the root of a store: magic, schema version, and the store's settings
//! as msgpack. Layout: FORMAT.md, "Store header".

use serde::{Deserialize, Serialize};

use super::{checksum, le_u16, le_u32};

/// First bytes of the `ARCHIVE` file: non-ASCII, then CR LF, SUB, LF, as PNG does, so that
/// text-mode transfers and truncation to 7 bits are caught.
pub const STORE_MAGIC: [u8; 8] = [0x89, b'M', b'A', b'R', 0x0d, 0x0a, 0x1a, 0x0a];
/// Offset of the u16 schema version.
pub const VERSION_OFFSET: usize = STORE_MAGIC.len();
/// Offset of the u16 reserved field (zero).
pub const RESERVED_OFFSET: usize = VERSION_OFFSET + 2;
/// Offset of the u32 settings length.
pub const SETTINGS_LEN_OFFSET: usize = RESERVED_OFFSET + 2;
/// Offset of the msgpack settings.
pub const SETTINGS_OFFSET: usize = SETTINGS_LEN_OFFSET + 4;
/// Settings larger than this are refused before they are read.
pub const MAX_SETTINGS_LEN: u32 = 64 * 1024;

/// Settings recorded when the store was created.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Settings {
    /// Creation time, nanoseconds since the Unix epoch.
    #[serde(default)]
    pub created_ns: i64,
    /// Default zstd level for puts that give none (`None`: each codec's own default).
    #[serde(default)]
    pub zstd_level: Option<i32>,
}

/// What a store header holds.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreHeader {
    /// Schema version of the store.
    pub version: u16,
    /// Settings.
    pub settings: Settings,
}

impl StoreHeader {
    /// Encode: fixed fields, settings, then a checksum of everything before it. The error is a
    /// reason (msgpack refused a setting).
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let settings = rmp_serde::to_vec_named(&self.settings)
            .map_err(|e| format!("store settings do not encode: {e}"))?;
        let mut out = Vec::with_capacity(SETTINGS_OFFSET + settings.len() + 4);
        out.extend_from_slice(&STORE_MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&(settings.len() as u32).to_le_bytes());
        out.extend_from_slice(&settings);
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        Ok(out)
    }

    /// Decode; the error is a reason for the caller to put beside the path.
    pub fn decode(buf: &[u8]) -> Result<StoreHeader, String> {
        if buf.get(..STORE_MAGIC.len()) != Some(&STORE_MAGIC[..]) {
            return Err("not an archive store header (wrong magic)".into());
        }
        let version = le_u16(buf, VERSION_OFFSET).ok_or("store header is truncated")?;
        let len = le_u32(buf, SETTINGS_LEN_OFFSET).ok_or("store header is truncated")?;
        if len > MAX_SETTINGS_LEN {
            return Err(format!("store header claims {len} bytes of settings"));
        }
        let end = SETTINGS_OFFSET + len as usize;
        let body = buf.get(..end).ok_or("store header is truncated")?;
        let stored = le_u32(buf, end).ok_or("store header is truncated")?;
        if checksum(body) != stored {
            return Err("store header checksum does not match".into());
        }
        let settings = buf
            .get(SETTINGS_OFFSET..end)
            .and_then(|s| rmp_serde::from_slice(s).ok())
            .ok_or("store settings do not decode")?;
        Ok(StoreHeader { version, settings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_detects_flips() {
        let h = StoreHeader {
            version: 1,
            settings: Settings {
                created_ns: 42,
                zstd_level: Some(5),
            },
        };
        let bytes = h.encode().expect("header encodes");
        assert_eq!(StoreHeader::decode(&bytes), Ok(h));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            if let Some(b) = bad.get_mut(i) {
                *b ^= 0x10;
            }
            assert!(StoreHeader::decode(&bad).is_err(), "flip at {i} not caught");
        }
        for cut in 0..bytes.len() {
            assert!(StoreHeader::decode(bytes.get(..cut).unwrap_or_default()).is_err());
        }
    }
}
