//! Pack bodies (schema v6's item columns among them): a body a logger would write, with the
//! input's bytes flipped into it (three bytes a flip: where, high and low, then what to XOR),
//! and the input alone. Never a panic; a pack that decodes reads every slot, its entries,
//! its summary and its tag sets.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use model_archive::format::pack::{Pack, PackBuilder};
use model_archive::object::Kind;
use model_archive::object::canonical::Descriptor;
use model_archive::{Codec, ObjectHash, Record, Value};

/// Predictions as `archive log` packs them: a tensor, then a record referring to it, each
/// record an entry with a tag set of its own; and an entry of an object stored elsewhere.
fn sample() -> &'static [u8] {
    static BODY: OnceLock<Vec<u8>> = OnceLock::new();
    BODY.get_or_init(|| {
        let mut b = PackBuilder::default();
        let tensor = Descriptor {
            kind: Kind::Tensor,
            desc: "F32",
            shape: &[2],
        };
        let record = Descriptor {
            kind: Kind::Record,
            desc: "",
            shape: &[],
        };
        for i in 0..12u8 {
            let probs: Vec<u8> = [f32::from(i) / 12.0, 1.0 - f32::from(i) / 12.0]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect();
            let th = tensor.hash(&probs);
            b.push_object(th, &tensor, &probs, None);
            let id = format!("img-{i}");
            let rec = Record::new()
                .with("probs", Value::Ref(th))
                .and_then(|r| r.with("id", Value::Str(id.clone())))
                .and_then(|r| r.with("label", Value::Int(i64::from(i % 3))))
                .expect("record")
                .to_msgpack();
            let tags = [("id", id.as_str()), ("split", "val")];
            b.push_object(record.hash(&rec), &record, &rec, Some((i64::from(i) * 3_117, &tags)));
        }
        b.push_entry(ObjectHash([7; 32]), 4, 99_000, &[("run", "r1")]);
        b.finish().expect("encode").0
    })
}

fn read(bytes: &[u8]) {
    if let Ok(p) = Pack::decode(bytes, Path::new("fuzz"), 0, Codec::Raw, bytes.len() as u64) {
        for slot in 0..=p.len() as u32 + 1 {
            let _ = p.object(slot).map(|o| o.hash());
            let _ = p.item_hash(slot);
            let _ = p.tags_owned(slot);
        }
        let _ = (p.entries(), p.summary(), p.tag_view().get(0).len());
    }
}

fuzz_target!(|data: &[u8]| {
    let mut body = sample().to_vec();
    for flip in data.chunks_exact(3) {
        let at = (usize::from(flip[0]) << 8 | usize::from(flip[1])) % body.len();
        body[at] ^= flip[2];
    }
    read(&body);
    read(data);
});
