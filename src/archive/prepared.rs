//! An object ready to put (`put.rs`): its descriptor, payload and what the index learns of it.

use std::borrow::Cow;

use crate::hash::ObjectHash;
use crate::interop::EncodedRecord;
use crate::object::canonical::Descriptor;
use crate::object::record::Record;
use crate::object::tensor::TensorView;
use crate::object::{CATEGORICAL, Kind, Object};

/// An object ready to put: descriptor and payload bytes.
pub(super) struct Prepared<'a> {
    pub(super) kind: Kind,
    pub(super) desc: Cow<'a, str>,
    pub(super) shape: Cow<'a, [u64]>,
    pub(super) payload: Cow<'a, [u8]>,
    pub(super) elem: usize,
    /// Objects this one refers to (records), which must exist.
    pub(super) refs: Cow<'a, [ObjectHash]>,
    /// A record, whose field paths and (path, value) pairs the index learns from a writer
    /// that keeps it (a logger leaves them to the index's catch-up).
    pub(super) record: Option<Cow<'a, Record>>,
    /// The address, when it was computed where the object was prepared (`prepare_document`).
    pub(super) known: Option<ObjectHash>,
}

impl<'a> Prepared<'a> {
    pub(super) fn tensor(view: &TensorView<'a>) -> Self {
        Prepared {
            kind: Kind::Tensor,
            desc: view.dtype().name(),
            shape: Cow::Borrowed(view.shape().dims()),
            payload: Cow::Borrowed(view.data()),
            elem: view.dtype().shuffle_width(),
            refs: Cow::Borrowed(&[]),
            record: None,
            known: None,
        }
    }

    pub(super) fn text(text: &'a str) -> Self {
        Self::plain(Kind::Text, "", text.as_bytes())
    }

    pub(super) fn bytes(data: &'a [u8], media_type: Option<&'a str>) -> Self {
        Self::plain(Kind::Bytes, media_type.unwrap_or(""), data)
    }

    pub(super) fn plain(kind: Kind, desc: &'a str, payload: &'a [u8]) -> Self {
        Prepared {
            kind,
            desc: Cow::Borrowed(desc),
            shape: Cow::Borrowed(&[]),
            payload: Cow::Borrowed(payload),
            elem: 1,
            refs: Cow::Borrowed(&[]),
            record: None,
            known: None,
        }
    }

    pub(super) fn record(record: Cow<'a, Record>, schema: &'a str) -> Self {
        let payload = Cow::Owned(record.to_msgpack());
        let refs = Cow::Owned(record.refs());
        Self::record_with(Some(record), schema, payload, refs)
    }

    /// A record with its canonical encoding and address, computed where it was prepared.
    pub(super) fn record_encoded(r: &'a EncodedRecord) -> Self {
        Prepared {
            known: Some(r.hash),
            ..Self::record_with(
                r.record.as_ref().map(Cow::Borrowed),
                "",
                Cow::Borrowed(&r.payload),
                Cow::Borrowed(&r.refs),
            )
        }
    }

    fn record_with(
        record: Option<Cow<'a, Record>>,
        schema: &'a str,
        payload: Cow<'a, [u8]>,
        refs: Cow<'a, [ObjectHash]>,
    ) -> Self {
        Prepared {
            kind: Kind::Record,
            desc: Cow::Borrowed(schema),
            shape: Cow::Borrowed(&[]),
            payload,
            elem: 1,
            refs,
            record,
            known: None,
        }
    }

    pub(super) fn object(object: &'a Object) -> Self {
        match object {
            Object::Tensor(t) => Prepared {
                kind: Kind::Tensor,
                desc: t.dtype.name(),
                shape: Cow::Borrowed(t.shape.dims()),
                payload: Cow::Borrowed(&t.data),
                elem: t.dtype.shuffle_width(),
                refs: Cow::Borrowed(&[]),
                record: None,
                known: None,
            },
            Object::Text(text) => Self::text(text),
            Object::Bytes { media_type, data } => Self::bytes(data, media_type.as_deref()),
            Object::Record(r) => Self::record(Cow::Borrowed(r), ""),
            Object::Categorical(c) => Self::record(Cow::Owned(c.to_record()), CATEGORICAL),
        }
    }

    pub(super) fn descriptor(&self) -> Descriptor<'_> {
        Descriptor {
            kind: self.kind,
            desc: &self.desc,
            shape: &self.shape,
        }
    }
}
