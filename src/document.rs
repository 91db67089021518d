//! Documents in and out of the store: the store's side of `interop`. `interop` turns files
//! into documents and back and never touches a store; this module stores a document (a lone
//! tensor as a tensor, anything else as a record whose tensors are stored beside it) and reads
//! one back, following the record's references.

use crate::archive::Writer;
use crate::error::{Error, Result};
use crate::hash::ObjectHash;
use crate::interop::{Document, Prepared, PreparedDocument, ROOT_FIELD, prepare_borrowed};
use crate::object::Object;
use crate::object::record::{Record, Value};
use crate::reader::ReadObject;
use crate::tags::validate_tags;

/// Store a document: a lone tensor as a tensor (so its hash is the same whichever format it
/// came in by), anything else as a record whose tensors are stored beside it (without
/// entries) and referred to by hash. Returns the address of what was logged with `tags`.
///
/// The record is built and checked (duplicate names, depth, tags) before anything is
/// appended, so a refused document leaves the store as it was. References
/// ([`Document::refs`]) must name objects already in the archive; a caller that cannot vouch
/// for them should check them with `Archive::contains` first, since a missing one is found
/// only after the tensors are appended.
pub fn put_document(
    w: &mut Writer<'_>,
    doc: &Document<'_>,
    tags: &[(&str, &str)],
) -> Result<ObjectHash> {
    put_prepared_document(w, &prepare_borrowed(doc)?, tags)
}

/// Store a prepared document, as [`put_document`] does.
pub fn put_prepared_document(
    w: &mut Writer<'_>,
    doc: &PreparedDocument<'_>,
    tags: &[(&str, &str)],
) -> Result<ObjectHash> {
    validate_tags(tags)?;
    match &doc.what {
        Prepared::Tensor(a) => w.put_tensor(&a.view()?, tags),
        // The addresses were computed where the document was prepared (on another core, for
        // a logger), so they are not computed again here.
        Prepared::Record { parts, record } => {
            for (a, h) in parts {
                w.put_tensor_part_hashed(&a.view()?, *h)?;
            }
            w.put_record_encoded(record, tags)
        }
    }
}

/// Read an object back as a document: a tensor as a tensor, a record as the tree it was put
/// as (references to tensors become the tensors; references to anything else stay
/// references), a categorical as `{codes, labels}`, text as a string scalar.
pub fn get_document<S: ReadObject + ?Sized>(
    archive: &S,
    hash: &ObjectHash,
) -> Result<Document<'static>> {
    match archive.read_object(hash)? {
        Object::Tensor(t) => Ok(Document::Tensor(t.into())),
        Object::Record(r) => record_to_document(archive, &r),
        Object::Categorical(c) => {
            let codes = value_to_document(archive, &Value::Ref(c.codes))?;
            let labels = c
                .labels
                .into_iter()
                .map(|l| Document::Scalar(Value::Str(l)))
                .collect();
            Ok(Document::Map(vec![
                ("codes".into(), codes),
                ("labels".into(), Document::List(labels)),
            ]))
        }
        Object::Text(s) => Ok(Document::Scalar(Value::Str(s))),
        other => Err(Error::invalid(
            hash.to_string(),
            format!(
                "is {}, which no tensor format can hold; `archive get -o FILE` writes it as it is",
                other.kind()
            ),
        )),
    }
}

fn record_to_document<S: ReadObject + ?Sized>(
    archive: &S,
    r: &Record,
) -> Result<Document<'static>> {
    if let [(name, value)] = r.fields()
        && name == ROOT_FIELD
    {
        return value_to_document(archive, value);
    }
    let mut fields = Vec::with_capacity(r.len());
    for (k, v) in r.fields() {
        fields.push((k.clone(), value_to_document(archive, v)?));
    }
    Ok(Document::Map(fields))
}

fn value_to_document<S: ReadObject + ?Sized>(archive: &S, v: &Value) -> Result<Document<'static>> {
    Ok(match v {
        Value::Ref(h) => match archive.read_object(h)? {
            Object::Tensor(t) => Document::Tensor(t.into()),
            _ => Document::Scalar(Value::Ref(*h)),
        },
        Value::List(items) => Document::List(
            items
                .iter()
                .map(|i| value_to_document(archive, i))
                .collect::<Result<_>>()?,
        ),
        Value::Record(r) => {
            let mut fields = Vec::with_capacity(r.len());
            for (k, v) in r.fields() {
                fields.push((k.clone(), value_to_document(archive, v)?));
            }
            Document::Map(fields)
        }
        other => Document::Scalar(other.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interop::MAX_DOCUMENT_DEPTH;
    use crate::interop::tests::f32s;
    use crate::{Archive, Kind};

    #[test]
    fn documents_round_trip_through_the_archive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = Archive::create(dir.path().join("s")).expect("create");
        let docs = [
            Document::Tensor(f32s(&[1.0, 2.0])),
            Document::Map(vec![
                ("probs".into(), Document::Tensor(f32s(&[0.5]))),
                ("id".into(), Document::Scalar(Value::Int(7))),
                (
                    "nested".into(),
                    Document::Map(vec![(
                        "xs".into(),
                        Document::List(vec![
                            Document::Tensor(f32s(&[])),
                            Document::Scalar(Value::Str("a".into())),
                        ]),
                    )]),
                ),
            ]),
            Document::List(vec![Document::Tensor(f32s(&[3.0]))]),
            Document::Scalar(Value::Float(-0.0)),
            Document::Map(vec![(ROOT_FIELD.into(), Document::Scalar(Value::Null))]),
            Document::Map(vec![]),
        ];
        let mut hashes = Vec::new();
        for doc in &docs {
            let mut w = archive.writer();
            hashes.push(put_document(&mut w, doc, &[("run", "t")]).expect("put"));
            w.commit().expect("commit");
        }
        for (doc, h) in docs.iter().zip(&hashes) {
            assert_eq!(&get_document(&archive, h).expect("get"), doc);
        }
        // A lone tensor is a tensor: the same hash as putting it directly.
        let direct = archive
            .put_tensor(&f32s(&[1.0, 2.0]).view().expect("view"), &[])
            .expect("put");
        assert_eq!(hashes[0], direct);
        assert_eq!(archive.info(&hashes[1]).expect("info").kind, Kind::Record);
    }

    #[test]
    fn refused_documents_append_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = Archive::create(dir.path().join("s")).expect("create");
        let dup = Document::Map(vec![
            ("a".into(), Document::Tensor(f32s(&[1.0]))),
            ("a".into(), Document::Tensor(f32s(&[2.0]))),
        ]);
        let mut deep = Document::Tensor(f32s(&[1.0]));
        for _ in 0..=MAX_DOCUMENT_DEPTH {
            deep = Document::List(vec![deep]);
        }
        let ok = Document::Map(vec![("a".into(), Document::Tensor(f32s(&[1.0])))]);
        let mut w = archive.writer();
        assert!(put_document(&mut w, &dup, &[]).is_err());
        assert!(put_document(&mut w, &deep, &[]).is_err());
        assert!(put_document(&mut w, &ok, &[("bad key", "v")]).is_err());
        assert_eq!(w.pending(), 0);
    }
}
