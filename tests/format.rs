//! The on-disk format against FORMAT.md: the golden frame there must be what the format code
//! encodes, and what the writer writes must decode to the same fields.

use model_archive::format::frame::{FrameHeader, FrameKind, SEGMENT_HEADER_LEN};
use model_archive::format::meta::{EntryMeta, FrameMeta, ObjectMeta};
use model_archive::format::{align_up, checksum};
use model_archive::object::canonical::Descriptor;
use model_archive::{Codec, Kind};

use crate::util::TempStore;

/// The frame of FORMAT.md's example: the text "hi", logged at 2023-11-14T22:13:20Z with the
/// tag run=demo, stored raw, as the first frame of a segment.
fn golden_frame() -> Vec<u8> {
    let payload = b"hi";
    let hash = Descriptor {
        kind: Kind::Text,
        desc: "",
        shape: &[],
    }
    .hash(payload);
    let meta = FrameMeta {
        object: Some(ObjectMeta {
            kind: "text".into(),
            desc: String::new(),
            shape: vec![],
            raw_len: 2,
            chunk_size: 0,
            chunks: vec![],
            level: None,
        }),
        entry: Some(EntryMeta {
            time_ns: 1_700_000_000_000_000_000,
            tags: vec![("run".into(), "demo".into())],
        }),
    }
    .encode()
    .expect("metadata encodes");
    let start = SEGMENT_HEADER_LEN as u64;
    let payload_off = FrameHeader::payload_offset(start, meta.len() as u32, 1);
    let header = FrameHeader {
        version: 1,
        kind: FrameKind::Object,
        codec: Codec::Raw,
        meta_len: meta.len() as u32,
        payload_off,
        payload_len: 2,
        hash,
        meta_sum: checksum(&meta),
    };
    let mut out = header.encode().to_vec();
    out.extend_from_slice(&meta);
    out.resize(payload_off as usize, 0);
    out.extend_from_slice(payload);
    out.resize(header.frame_len() as usize, 0);
    out
}

/// The hex lines between the golden-frame markers of FORMAT.md.
fn format_md_hex() -> Vec<u8> {
    let doc = include_str!("../FORMAT.md");
    let block = doc
        .split("<!-- golden-frame:begin -->")
        .nth(1)
        .and_then(|b| b.split("<!-- golden-frame:end -->").next())
        .expect("FORMAT.md has a golden-frame block");
    block
        .lines()
        .filter_map(|l| l.split_once(": "))
        .flat_map(|(_, hex)| {
            hex.split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        })
        .collect()
}

fn hex_dump(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .enumerate()
        .map(|(i, c)| {
            let hex: Vec<String> = c.iter().map(|b| format!("{b:02x}")).collect();
            format!("{:04x}: {}\n", i * 16, hex.join(" "))
        })
        .collect()
}

#[test]
fn golden_frame_matches_format_md() {
    let frame = golden_frame();
    assert_eq!(
        format_md_hex(),
        frame,
        "FORMAT.md's golden frame differs from what the code encodes:\n{}",
        hex_dump(&frame)
    );
    assert_eq!(&frame[..4], &[0x89, b'M', b'A', b'F']);
}

#[test]
fn the_writer_writes_what_the_format_describes() {
    let t = TempStore::new();
    let a = t.create();
    // A codec asked for gives an object a frame of its own (small ones otherwise go in packs).
    let mut w = a.writer();
    w.set_options(model_archive::PutOptions {
        codec: Some(Codec::Raw),
        level: None,
    });
    let h = w.put_text("hi", &[("run", "demo")]).expect("put");
    w.commit().expect("commit");
    drop(w);
    drop(a);
    let seg = std::fs::read(&t.segments()[0]).expect("segment");
    assert_eq!(&seg[..8], &[0x89, b'M', b'A', b'S', 0x0d, 0x0a, 0x1a, 0x0a]);
    let golden = golden_frame();
    let written = &seg[SEGMENT_HEADER_LEN..];
    let header = FrameHeader::decode(written).expect("header");
    let expect = FrameHeader::decode(&golden).expect("golden header");
    assert_eq!(header.hash, h);
    assert_eq!(
        (header.kind, header.codec, header.payload_len),
        (expect.kind, expect.codec, 2)
    );
    let meta_end = 64 + header.meta_len as usize;
    let meta = FrameMeta::decode(&written[64..meta_end]).expect("meta");
    assert_eq!(
        meta.object,
        FrameMeta::decode(&golden[64..64 + expect.meta_len as usize])
            .expect("m")
            .object
    );
    let off = header.payload_off as usize;
    assert_eq!(&written[off..off + 2], b"hi");
    assert_eq!(
        off,
        64 + header.meta_len as usize,
        "text payloads follow the metadata"
    );
    assert_eq!(
        seg.len() as u64,
        align_up(seg.len() as u64, 8).expect("align")
    );
}
