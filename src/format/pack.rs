//! Pack frames (schema v2): many small objects and the entries that log them in one frame, so
//! that a logged prediction of ~70 bytes costs about its own size on disk instead of a 64-byte
//! frame header, metadata and a sled key of its own.
//!
//! A pack's payload is one msgpack body (positional fields, see FORMAT.md "Pack frames"),
//! compressed like any payload. The frame header's hash is blake3 of the decoded body, so a
//! damaged pack is found before any item in it is trusted. Items carry no hashes of their own:
//! an object's address is recomputed from its descriptor and bytes when the pack is read, as
//! the index does when it is rebuilt from the segments. An entry of content stored elsewhere
//! (a duplicate) carries that content's hash.
//!
//! Since schema v5 a body is laid out in columns (`format::pack_layout`): payloads grouped by
//! descriptor, tensor groups byte-shuffled, and a record's references to objects before it
//! stored as local references. [`Pack::object`] always gives canonical bytes;
//! [`Pack::stored_object`] gives the stored form to readers that only look at fields.

//!
//! This module is the byte layout alone, with no I/O: building a body, and decoding and
//! checking one. Reading pack frames out of segments is `segment::pack`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_bytes::ByteBuf;

use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::format::meta::ObjectMeta;
use crate::hash::ObjectHash;
use crate::object::Kind;
use crate::object::canonical::Descriptor;
use crate::tags::owned_tags;

/// The `kind` of a pack frame's payload description.
pub const PACK_KIND: &str = "pack";
/// Objects up to this many bytes go into packs (unless a codec is asked for); larger ones get
/// a frame of their own, where a raw tensor can be memory-mapped.
pub const PACK_ITEM_MAX: usize = 4096;
/// A pack is written once its body reaches this many bytes, so reading one item back decodes
/// at most this much.
pub const PACK_BYTES: usize = 256 << 10;
/// Most items in one pack.
pub const PACK_ITEMS: usize = 8192;

pub use super::pack_body::{ItemRef, Items, PackBody, PackItem, ReadBody, TagSets};
use super::pack_layout::{LAYOUT_TAG_BYTES, grouped};

mod search;
mod summary;

/// How many of the objects stored just before a record a writer looks among for the objects
/// it refers to (a logger stores a record's tensors right before it).
const LOCAL_WINDOW: usize = 64;

/// A pack being filled by a writer.
#[derive(Default)]
pub struct PackBuilder {
    body: PackBody,
    /// The tag sets added so far (`body.tagsets`), by a hash of their pairs: a lookup
    /// copies no tag (every tag set is new when each entry has an id of its own).
    tagsets: HashMap<u64, u32>,
    /// The tag set of the last entry: consecutive entries usually share one.
    last_tagset: Option<u32>,
    /// Item index (slot - 1) and hash of each object stored, in order.
    objects: Vec<(u32, ObjectHash)>,
    /// Item index of each entry, and the hash it logs when stored elsewhere.
    entries: Vec<(u32, Option<ObjectHash>)>,
    time_min: i64,
    time_max: i64,
    approx_len: usize,
    /// Record (path, value) pairs of the entries (see `PackSummary::tags`).
    attrs: Vec<(String, String)>,
    attrs_unknown: bool,
    totals: crate::totals::Totals,
    object_sizes: Vec<u64>,
    /// Each descriptor's payloads (its group, shuffled at `finish` by the width), in item order.
    groups: Vec<(usize, Vec<u8>)>,
}

/// What a written pack adds to the index.
#[derive(Clone, Debug, Default)]
pub struct PackSummary {
    /// Objects stored, with their slot (item index + 1).
    pub objects: Vec<(ObjectHash, u32)>,
    /// The decoded size of each of `objects`, in the same order.
    pub object_sizes: Vec<u64>,
    /// Entries, in order: the hash of content stored elsewhere, or `None` for an entry of an
    /// object in this pack.
    pub entries: Vec<Option<ObjectHash>>,
    /// Earliest and latest entry time.
    pub time_min: i64,
    /// Latest entry time.
    pub time_max: i64,
    /// Distinct tags of the entries, and the (path, value) pairs of the records they log
    /// (`Record::query_attrs`), which the index files the pack under alike.
    pub tags: Vec<(String, String)>,
    /// Some entry logs content whose record fields are not known here (a record stored
    /// elsewhere): a query on a record field reads this pack whatever its value.
    pub attrs_unknown: bool,
    /// Record paths with more distinct values among the entries than the index lists one by
    /// one, with a filter of all of them (sized for the pack's entries). Other paths' values
    /// are in `tags`.
    pub many: Vec<(String, crate::format::bloom::Bloom)>,
    /// What the pack adds to the store's counts. An entry of content stored elsewhere counts
    /// that content's size as far as the one who made the summary knew it.
    pub totals: crate::totals::Totals,
}

impl PackBuilder {
    /// True if nothing was added.
    pub fn is_empty(&self) -> bool {
        self.body.items.is_empty()
    }

    /// True once the pack should be written (at the next entry).
    pub fn is_full(&self) -> bool {
        self.approx_len >= PACK_BYTES || self.body.items.len() >= PACK_ITEMS
    }

    /// True once the pack must be written even in the middle of a record's parts: twice
    /// the bytes of a full pack, or the most items a pack holds.
    pub fn is_over(&self) -> bool {
        self.approx_len >= 2 * PACK_BYTES || self.body.items.len() >= PACK_ITEMS
    }

    /// Entries added.
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    fn entry(&mut self, time_ns: i64, tags: &[(&str, &str)]) -> (i64, u32) {
        if self.entries.is_empty() {
            self.body.time0 = time_ns;
            self.time_min = time_ns;
            self.time_max = time_ns;
        }
        self.time_min = self.time_min.min(time_ns);
        self.time_max = self.time_max.max(time_ns);
        let next = self.body.tagsets.len() as u32;
        let same = |t: &Vec<(String, String)>| {
            t.len() == tags.len() && t.iter().zip(tags).all(|((a, b), (c, d))| a == c && b == d)
        };
        let same_as_last = self
            .last_tagset
            .and_then(|i| self.body.tagsets.get(i as usize))
            .is_some_and(same);
        let key = || {
            use std::hash::Hasher;
            let mut h = std::hash::DefaultHasher::new();
            for (k, v) in tags {
                h.write(k.as_bytes());
                h.write_u8(0xff);
                h.write(v.as_bytes());
                h.write_u8(0xff);
            }
            h.finish()
        };
        let idx = match self.last_tagset.filter(|_| same_as_last) {
            Some(i) => i,
            None => {
                let key = key();
                let found = self
                    .tagsets
                    .get(&key)
                    .filter(|i| self.body.tagsets.get(**i as usize).is_some_and(same));
                match found {
                    Some(i) => *i,
                    // New (or a hash shared with another tag set: then it is stored twice,
                    // which readers take as they take any tag set).
                    None => {
                        self.tagsets.insert(key, next);
                        self.body.tagsets.push(owned_tags(tags));
                        self.approx_len += tags
                            .iter()
                            .map(|(k, v)| k.len() + v.len() + 4)
                            .sum::<usize>();
                        next
                    }
                }
            }
        };
        self.last_tagset = Some(idx);
        (time_ns.wrapping_sub(self.body.time0), idx)
    }

    /// Add an object (with the entry that logs it, if any). `hash` is its address.
    pub fn push_object(
        &mut self,
        hash: ObjectHash,
        desc: &Descriptor<'_>,
        payload: &[u8],
        entry: Option<(i64, &[(&str, &str)])>,
    ) {
        // A pack holds a handful of descriptors: a scan finds one without allocating.
        let kind = desc.kind as u8;
        let found = self
            .body
            .descs
            .iter()
            .position(|(k, d)| *k == kind && d == desc.desc);
        let d = match found {
            Some(i) => i as u32,
            None => {
                self.approx_len += desc.desc.len() + 4;
                self.body.descs.push((kind, desc.desc.to_owned()));
                let width = super::pack_layout::group_width(kind, desc.desc);
                self.groups.push((width, Vec::new()));
                self.body.descs.len() as u32 - 1
            }
        };
        let entry = entry.map(|(t, tags)| self.entry(t, tags));
        let i = self.body.items.len() as u32;
        let local = match desc.kind {
            Kind::Record => self.localize(i, payload),
            _ => None,
        };
        let stored = local.as_deref().unwrap_or(payload);
        self.body.items.push(PackItem {
            object: Some((d, desc.shape.to_vec(), stored.len() as u64)),
            hash: None,
            entry,
        });
        if let Some((_, g)) = self.groups.get_mut(d as usize) {
            g.extend_from_slice(stored);
        }
        self.approx_len += stored.len() + 8 + 9 * desc.shape.len();
        self.objects.push((i, hash));
        self.totals.add_object(kind, payload.len() as u64);
        self.object_sizes.push(payload.len() as u64);
        if entry.is_some() {
            self.entries.push((i, None));
            self.totals.add_entry(payload.len() as u64);
        }
    }

    /// A record's payload as item `i` stores it: its references to objects stored just
    /// before it in this pack made local (`None`: it has none).
    fn localize(&self, i: u32, payload: &[u8]) -> Option<Vec<u8>> {
        let from = self.objects.len().saturating_sub(LOCAL_WINDOW);
        let recent = self.objects.get(from..).unwrap_or_default();
        let back = |h: &ObjectHash| {
            let (j, _) = recent.iter().rev().find(|(_, o)| o == h)?;
            Some((i - j) as usize)
        };
        super::pack_layout::localize(payload, &back)
    }

    /// Add the record (path, value) pairs of the entry just added (`None`: not known).
    pub fn add_attrs(&mut self, attrs: Option<&[(String, String)]>) {
        match attrs {
            Some(a) => self.attrs.extend_from_slice(a),
            None => self.attrs_unknown = true,
        }
    }

    /// Add an entry of content stored elsewhere, of `raw_len` decoded bytes.
    pub fn push_entry(
        &mut self,
        hash: ObjectHash,
        raw_len: u64,
        time_ns: i64,
        tags: &[(&str, &str)],
    ) {
        self.totals.add_entry(raw_len);
        let entry = self.entry(time_ns, tags);
        let i = self.body.items.len() as u32;
        self.body.items.push(PackItem {
            object: None,
            hash: Some(ByteBuf::from(hash.as_bytes().to_vec())),
            entry: Some(entry),
        });
        self.approx_len += 48;
        self.entries.push((i, Some(hash)));
    }

    /// The encoded body and what the index learns from it; the builder is left empty.
    pub fn finish(&mut self) -> Result<(Vec<u8>, PackSummary)> {
        let attrs = std::mem::take(&mut self.attrs);
        let (body, mut summary, tagsets) = self.finish_untagged()?;
        let mut tags: Vec<(String, String)> = tagsets.into_iter().flatten().collect();
        tags.extend(attrs);
        tags.sort();
        tags.dedup();
        summary.tags = tags;
        Ok((body, summary))
    }

    /// `finish`, the summary's `tags` left empty and the pack's tag sets given instead: for a
    /// writer whose summary goes to no index, or to one that files them itself.
    pub fn finish_untagged(&mut self) -> Result<(Vec<u8>, PackSummary, TagSets)> {
        let mut b = std::mem::take(self);
        b.body.data = ByteBuf::from(super::pack_layout::join_groups(&b.groups));
        b.body.layout = LAYOUT_TAG_BYTES;
        let body = super::pack_body::encode(&b.body)
            .map_err(|e| Error::internal(format!("encoding a pack: {e}")))?;
        let summary = PackSummary {
            objects: b.objects.into_iter().map(|(i, h)| (h, i + 1)).collect(),
            object_sizes: b.object_sizes,
            entries: b.entries.into_iter().map(|(_, h)| h).collect(),
            time_min: b.time_min,
            time_max: b.time_max,
            tags: Vec::new(),
            attrs_unknown: b.attrs_unknown,
            many: Vec::new(),
            totals: b.totals,
        };
        Ok((body, summary, b.body.tagsets))
    }
}

/// One entry read out of a pack.
#[derive(Clone, Debug, PartialEq)]
pub struct PackEntry {
    /// The item's slot (index + 1).
    pub slot: u32,
    /// Nanoseconds since the Unix epoch.
    pub time_ns: i64,
    /// The object logged.
    pub hash: ObjectHash,
    /// Index into the pack's tag sets.
    pub tagset: u32,
}

/// A pack's local references: (item, offset in its stored payload, item named).
type Locals = Vec<(u32, u32, u32)>;

/// A decoded, checked pack.
#[derive(Debug)]
pub struct Pack {
    /// The body but for its tag sets (decoded when first asked for, [`Pack::tagsets`]) and
    /// its data.
    body: ReadBody,
    /// The objects' payloads (unshuffled, for the columnar layouts).
    data: Vec<u8>,
    tagsets: super::pack_body::LazyTagsets,
    decoded_tagsets: std::sync::OnceLock<Vec<Vec<(String, String)>>>,
    /// Start of each item's payload in `data`.
    starts: Vec<usize>,
    /// The pack-local references of its records (layout 1): (item, offset of the reference in
    /// the item's stored payload, item it names), in item and offset order; found when first
    /// needed (a stack reads a record's fields in their stored form, and needs none of them).
    /// `Err`: a reference names no object, and the pack is damaged.
    locals: std::sync::OnceLock<std::result::Result<Locals, String>>,
    /// The canonical bytes of the records with local references, and every object's hash,
    /// made when first asked for.
    expanded: std::sync::OnceLock<Expanded>,
    /// Set by the first `slot_of`: a pack asked again has every address computed at once.
    searched: std::sync::atomic::AtomicBool,
    /// The segment and offset it was read from, for errors.
    path: PathBuf,
    offset: u64,
    /// The payload codec and stored length of the whole pack.
    pub codec: Codec,
    /// Stored payload bytes.
    pub stored_len: u64,
}

/// What a pack with local references computes once: the canonical bytes of those records
/// (`spans`: item, start and length in `data`, in item order) and the hash of every object.
#[derive(Debug, Default)]
struct Expanded {
    data: Vec<u8>,
    spans: Vec<(u32, usize, usize)>,
    hashes: Vec<Option<ObjectHash>>,
}

/// An object read out of a pack.
pub struct PackedObject<'p> {
    /// Kind.
    pub kind: Kind,
    /// Dtype, media type or record schema.
    pub desc: &'p str,
    /// Tensor shape.
    pub shape: &'p [u64],
    /// The payload.
    pub data: &'p [u8],
}

impl PackedObject<'_> {
    /// Its descriptor.
    pub fn descriptor(&self) -> Descriptor<'_> {
        Descriptor {
            kind: self.kind,
            desc: self.desc,
            shape: self.shape,
        }
    }

    /// Its address.
    pub fn hash(&self) -> ObjectHash {
        self.descriptor().hash(self.data)
    }

    /// Metadata as for an object frame, for code shared with whole frames.
    pub fn meta(&self) -> ObjectMeta {
        ObjectMeta {
            kind: self.kind.name().to_owned(),
            desc: self.desc.to_owned(),
            shape: self.shape.to_vec(),
            raw_len: self.data.len() as u64,
            ..ObjectMeta::default()
        }
    }
}

impl Pack {
    /// Decode and check a body read from `path` at `offset`: every index in range, the
    /// payload lengths adding up to the data, and every local reference naming an object.
    pub fn decode(
        bytes: &[u8],
        path: &Path,
        offset: u64,
        codec: Codec,
        stored_len: u64,
    ) -> Result<Pack> {
        let pack = Self::decode_lazy(bytes, path, offset, codec, stored_len)?;
        pack.check()?;
        Ok(pack)
    }

    /// `decode`, its records' local references left to be found when first needed: for a
    /// pack read through the index, which read it whole when it indexed it. A reference that
    /// names no object then makes the records of the pack unreadable (`object` gives `None`)
    /// instead of failing the decode.
    pub(crate) fn decode_lazy(
        bytes: &[u8],
        path: &Path,
        offset: u64,
        codec: Codec,
        stored_len: u64,
    ) -> Result<Pack> {
        let corrupt = |reason: String| Error::corrupt(path, offset, reason);
        let (body, tagsets, data) = super::pack_body::decode(bytes)
            .map_err(|e| corrupt(format!("pack body does not decode: {e}")))?;
        for (i, (k, _)) in body.descs.iter().enumerate() {
            if Kind::from_code(*k).is_none() {
                return Err(corrupt(format!("pack descriptor {i} has unknown kind {k}")));
            }
        }
        let (starts, sizes) =
            super::pack_layout::item_starts(&body, data.len()).map_err(corrupt)?;
        let items = &body.items;
        // An item names a good hash when it stores no object (hash items are few: found
        // in order beside the items).
        let mut hashes = items.hashes().iter().peekable();
        for i in 0..items.len() {
            let mut named = None;
            while let Some((at, h)) = hashes.next_if(|h| h.0 as usize <= i) {
                if *at as usize == i {
                    named = ObjectHash::from_slice(h);
                }
            }
            if named.is_none() && items.object(i).is_none() {
                return Err(corrupt(format!(
                    "pack item {i} has neither an object nor a hash"
                )));
            }
        }
        if let Some((i, _, t)) = items
            .entries()
            .iter()
            .find(|e| e.2 as usize >= tagsets.len())
        {
            return Err(corrupt(format!(
                "pack item {i} names tag set {t} of {}",
                tagsets.len()
            )));
        }
        let locals = std::sync::OnceLock::new();
        let data = if grouped(body.layout) {
            let groups: Vec<(usize, usize)> = body
                .descs
                .iter()
                .zip(&sizes)
                .map(|((k, desc), len)| (super::pack_layout::group_width(*k, desc), *len))
                .collect();
            // Unshuffled straight out of the body: the data is copied once.
            super::pack_layout::split_groups(data, &groups)
        } else {
            // A row-layout body has none.
            let _ = locals.set(Ok(Vec::new()));
            data.to_vec()
        };
        Ok(Pack {
            body,
            data,
            tagsets,
            decoded_tagsets: std::sync::OnceLock::new(),
            starts,
            locals,
            expanded: std::sync::OnceLock::new(),
            searched: std::sync::atomic::AtomicBool::new(false),
            path: path.to_owned(),
            offset,
            codec,
            stored_len,
        })
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.body.items.len()
    }

    /// The items, as columns.
    pub fn items(&self) -> &Items {
        &self.body.items
    }

    /// Time of the first entry (entries' times are kept as offsets from it).
    pub fn time0(&self) -> i64 {
        self.body.time0
    }

    /// How the body lays out its data and records (`pack_body::LAYOUT_*`).
    pub fn layout(&self) -> u8 {
        self.body.layout
    }

    /// The objects' payloads, as the layout orders them (unshuffled).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// True if the pack holds no items.
    pub fn is_empty(&self) -> bool {
        self.body.items.is_empty()
    }

    /// The local references of the pack's records, found on the first call (`None`: one
    /// names no object).
    fn locals(&self) -> Option<&[(u32, u32, u32)]> {
        self.locals
            .get_or_init(|| super::pack_layout::find_locals(&self.body, &self.data, &self.starts))
            .as_deref()
            .ok()
    }

    /// Check what `decode_lazy` leaves to be checked when first needed: every local
    /// reference of the records names an object before it, and the tag sets (of layout 3)
    /// are an array of pairs of UTF-8 strings. For a pack read whole (a scan, a catch-up,
    /// `verify`); one read through the index was checked so when it was indexed.
    pub fn check(&self) -> Result<()> {
        self.check_locals()?;
        self.tagsets
            .check()
            .map_err(|e| Error::corrupt(&self.path, self.offset, format!("pack tag sets: {e}")))
    }

    /// Check that every local reference of the pack's records names an object stored
    /// before it: the error says which does not.
    pub fn check_locals(&self) -> Result<()> {
        match self.locals().map(|_| ()) {
            Some(()) => Ok(()),
            None => {
                let why = match self.locals.get() {
                    Some(Err(e)) => e.clone(),
                    _ => "a local reference names no object".to_owned(),
                };
                Err(Error::corrupt(&self.path, self.offset, why))
            }
        }
    }

    /// The object in `slot` (item index + 1), if that item stores one: its canonical bytes.
    pub fn object(&self, slot: u32) -> Option<PackedObject<'_>> {
        let mut o = self.stored_object(slot)?;
        // Only records have local references: other objects are read without a search.
        if o.kind == Kind::Record && self.has_locals(slot)? {
            let e = self.expanded();
            let at = e.spans.binary_search_by_key(&(slot - 1), |s| s.0).ok()?;
            let (_, start, len) = *e.spans.get(at)?;
            o.data = e.data.get(start..start + len)?;
        }
        Some(o)
    }

    /// The object in `slot` as the pack stores it: a record's references to earlier items of
    /// the pack may be local ([`Target::Local`](crate::object::record::Target)), which
    /// [`Pack::object`] would replace by their hashes. For readers that look only at fields.
    pub fn stored_object(&self, slot: u32) -> Option<PackedObject<'_>> {
        let (d, shape, data) = self.stored_item(slot)?;
        let (kind, desc) = self.body.descs.get(d as usize)?;
        Some(PackedObject {
            kind: Kind::from_code(*kind)?,
            desc,
            shape,
            data,
        })
    }

    /// `stored_object` as its descriptor's index (into [`Pack::descs`]), shape and payload.
    #[inline]
    pub fn stored_item(&self, slot: u32) -> Option<(u32, &[u64], &[u8])> {
        let i = (slot as usize).checked_sub(1)?;
        let (d, shape, len) = self.body.items.object(i)?;
        let start = *self.starts.get(i)?;
        let data = self.data.get(start..start + usize::try_from(len).ok()?)?;
        Some((d, shape, data))
    }

    /// The distinct (kind code, descriptor) pairs of its objects.
    pub fn descs(&self) -> &[(u8, String)] {
        &self.body.descs
    }

    /// The length of the canonical bytes of the object in `slot` (its stored length, and 30
    /// bytes more for each local reference), without expanding it.
    pub(crate) fn canonical_len(&self, slot: u32) -> Option<u64> {
        let stored = self.stored_object(slot)?.data.len();
        Some((stored + 30 * self.locals_of(slot)?.len()) as u64)
    }

    /// The local references of the record in `slot` (none for any other item; `None`: the
    /// pack's are damaged).
    fn locals_of(&self, slot: u32) -> Option<&[(u32, u32, u32)]> {
        let all = self.locals()?;
        let i = slot.wrapping_sub(1);
        let from = all.partition_point(|l| l.0 < i);
        let to = all.partition_point(|l| l.0 <= i);
        all.get(from..to)
    }

    /// `locals_of`, scanning the record in `slot` alone when the pack's have not been found
    /// (a query that names a few hits should not scan every record of their packs).
    fn record_locals(&self, slot: u32) -> Option<std::borrow::Cow<'_, [(u32, u32, u32)]>> {
        if self.locals.get().is_some() {
            return self.locals_of(slot).map(std::borrow::Cow::Borrowed);
        }
        let mut out = Vec::new();
        let i = (slot as usize).checked_sub(1)?;
        super::pack_layout::item_locals(&self.body, &self.data, &self.starts, i, &mut out).ok()?;
        Some(std::borrow::Cow::Owned(out))
    }

    /// True if the record in `slot` has local references (`None`: the pack's are damaged).
    fn has_locals(&self, slot: u32) -> Option<bool> {
        Some(!self.locals_of(slot)?.is_empty())
    }

    /// The records with local references in canonical form, and every object's hash.
    fn expanded(&self) -> &Expanded {
        self.expanded.get_or_init(|| {
            let mut e = Expanded {
                hashes: vec![None; self.len()],
                ..Expanded::default()
            };
            for slot in 1..=self.len() as u32 {
                let Some(o) = self.stored_object(slot) else {
                    continue;
                };
                let i = slot as usize - 1;
                // Asked for only once the locals are known good.
                let ours = self.locals_of(slot).unwrap_or_default();
                // Every target is an object before this one (checked when the pack was read):
                // its hash is known.
                let mine: Vec<(usize, ObjectHash)> = ours
                    .iter()
                    .filter_map(|(_, at, t)| Some((*at as usize, (*e.hashes.get(*t as usize)?)?)))
                    .collect();
                let hash = if ours.is_empty() {
                    o.hash()
                } else {
                    let start = e.data.len();
                    super::pack_layout::expand(o.data, &mine, &mut e.data);
                    e.spans.push((i as u32, start, e.data.len() - start));
                    o.descriptor().hash(e.data.get(start..).unwrap_or_default())
                };
                if let Some(h) = e.hashes.get_mut(i) {
                    *h = Some(hash);
                }
            }
            e
        })
    }

    /// The address of the object in `slot` (`None` if the item stores none): where its pack has local references, from the
    /// pack's expansion if it was made, else for this object alone (a query that prints a
    /// few hits should not hash every item of their packs).
    pub(crate) fn object_hash(&self, slot: u32) -> Option<ObjectHash> {
        let i = (slot as usize).checked_sub(1)?;
        if let Some(e) = self.expanded.get() {
            return *e.hashes.get(i)?;
        }
        self.hash_alone(slot, 0)
    }

    /// `object_hash` of one object, hashing the objects its local references name (a chain
    /// too long to follow this way takes the pack's expansion instead).
    fn hash_alone(&self, slot: u32, depth: usize) -> Option<ObjectHash> {
        let o = self.stored_object(slot)?;
        let mine = self.record_locals(slot)?;
        if mine.is_empty() {
            return Some(o.hash());
        }
        if depth >= 8 {
            // The expansion trusts the pack's references: they are checked first.
            self.locals()?;
            return *self.expanded().hashes.get(slot as usize - 1)?;
        }
        let named = mine
            .iter()
            .map(|(_, at, t)| Some((*at as usize, self.hash_alone(t + 1, depth + 1)?)))
            .collect::<Option<Vec<_>>>()?;
        let mut canonical = Vec::new();
        super::pack_layout::expand(o.data, &named, &mut canonical);
        Some(o.descriptor().hash(&canonical))
    }

    /// Every object stored here, with its slot.
    pub fn objects(&self) -> impl Iterator<Item = (u32, PackedObject<'_>)> + '_ {
        (1..=self.len() as u32).filter_map(|s| self.object(s).map(|o| (s, o)))
    }

    /// The entries, in order. Hashes of objects stored here are computed.
    pub fn entries(&self) -> Vec<PackEntry> {
        let mut out = Vec::new();
        for &(i, dt, tagset) in self.body.items.entries() {
            let slot = i + 1;
            let hash = match self.body.items.hash(i as usize) {
                Some(h) => ObjectHash::from_slice(h),
                None => self.object_hash(slot),
            };
            if let Some(hash) = hash {
                out.push(PackEntry {
                    slot,
                    time_ns: self.body.time0.wrapping_add(dt),
                    hash,
                    tagset,
                });
            }
        }
        out
    }

    /// The entries, in order, as (slot, time, tag set); no hashes are computed.
    pub fn entry_items(&self) -> impl Iterator<Item = (u32, i64, u32)> + '_ {
        let time0 = self.body.time0;
        self.body
            .items
            .entries()
            .iter()
            .map(move |&(i, dt, tagset)| (i + 1, time0.wrapping_add(dt), tagset))
    }

    /// The address of the object an item stores or logs.
    pub fn item_hash(&self, slot: u32) -> Option<ObjectHash> {
        let i = (slot as usize).checked_sub(1)?;
        match self.body.items.hash(i) {
            Some(h) => ObjectHash::from_slice(h),
            None if i < self.len() => self.object_hash(slot),
            None => None,
        }
    }

    /// A tag set by index.
    pub fn tags(&self, tagset: u32) -> &[(String, String)] {
        self.tagsets()
            .get(tagset as usize)
            .map_or(&[], |t| t.as_slice())
    }

    /// A tag set by index, as its own strings: decoded alone unless every set of the pack
    /// has been (a query with a few hits in a pack of thousands of tag sets).
    pub fn tags_owned(&self, tagset: u32) -> Vec<(String, String)> {
        match self.decoded_tagsets.get() {
            Some(all) => all.get(tagset as usize).cloned().unwrap_or_default(),
            None => self.tagsets.one(tagset),
        }
    }

    /// Every tag set of the pack, its strings borrowed: for a scan that only compares them
    /// (`tags` builds a `String` of each).
    pub fn tag_view(&self) -> super::pack_body::TagView<'_> {
        self.tagsets.view()
    }

    /// Every tag set of the pack, decoded on the first call.
    pub fn tagsets(&self) -> &[Vec<(String, String)>] {
        self.decoded_tagsets.get_or_init(|| self.tagsets.decode())
    }

    /// Where the pack was read from.
    pub fn location(&self) -> (&Path, u64) {
        (&self.path, self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(run: &str) -> Vec<(String, String)> {
        vec![("run".to_owned(), run.to_owned())]
    }

    fn tag(run: &str) -> [(&str, &str); 1] {
        [("run", run)]
    }

    #[test]
    fn a_pack_round_trips_objects_entries_and_tags() {
        let mut b = PackBuilder::default();
        let d = Descriptor {
            kind: Kind::Tensor,
            desc: "F32",
            shape: &[2],
        };
        let payload = [0u8, 0, 128, 63, 0, 0, 0, 64];
        let h = d.hash(&payload);
        b.push_object(h, &d, &payload, Some((1_000, &tag("a"))));
        let t = Descriptor {
            kind: Kind::Text,
            desc: "",
            shape: &[],
        };
        let h2 = t.hash(b"hi");
        b.push_object(h2, &t, b"hi", None);
        b.push_entry(h, 0, 1_500, &tag("b"));
        let (body, summary) = b.finish().expect("encode");
        assert!(b.is_empty());
        assert_eq!(summary.objects, vec![(h, 1), (h2, 2)]);
        assert_eq!(summary.entries, vec![None, Some(h)]);
        assert_eq!((summary.time_min, summary.time_max), (1_000, 1_500));
        let p =
            Pack::decode(&body, Path::new("s"), 64, Codec::Raw, body.len() as u64).expect("decode");
        assert_eq!(p.object(1).map(|o| o.hash()), Some(h));
        assert_eq!(p.object(2).map(|o| o.data.to_vec()), Some(b"hi".to_vec()));
        assert!(p.object(3).is_none() && p.object(0).is_none());
        // One tag set read alone, before any has been decoded, and past the last.
        assert_eq!(p.tags_owned(1), tags("b"));
        assert_eq!(p.tags_owned(0), tags("a"));
        assert!(p.tags_owned(2).is_empty());
        let e = p.entries();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].hash, e[0].time_ns, p.tags(e[0].tagset)),
            (h, 1_000, &tags("a")[..])
        );
        assert_eq!(
            (e[1].hash, e[1].time_ns, p.tags(e[1].tagset)),
            (h, 1_500, &tags("b")[..])
        );
        // The borrowed view holds the same tag sets, and nothing past them.
        let view = p.tag_view();
        for t in 0..3 {
            let owned: Vec<(&str, &str)> = p
                .tags(t)
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert_eq!(view.get(t), &owned[..], "tag set {t}");
        }
        assert!(view.get(2).is_empty() && !view.get(1).is_empty());
        // Once every set is decoded, one set comes from them.
        assert_eq!((p.tags_owned(0), p.tags_owned(1)), (tags("a"), tags("b")));
        let s = p.summary();
        assert_eq!(
            (s.objects, s.entries, s.tags.len()),
            (summary.objects, summary.entries, 2)
        );
    }

    #[test]
    fn lying_packs_are_refused() {
        let mut body = PackBody::default();
        body.descs.push((1, "F32".into()));
        body.items.push(PackItem {
            object: Some((0, vec![1], 4)),
            ..PackItem::default()
        });
        body.data = ByteBuf::from(vec![1, 2]);
        let bytes = rmp_serde::to_vec(&body).expect("encode");
        let err = Pack::decode(&bytes, Path::new("s"), 0, Codec::Raw, 0).expect_err("short data");
        assert!(err.to_string().contains("runs past"), "{err}");
        body.data = ByteBuf::from(vec![1, 2, 3, 4]);
        body.items[0].object = Some((3, vec![1], 4));
        let bytes = rmp_serde::to_vec(&body).expect("encode");
        assert!(Pack::decode(&bytes, Path::new("s"), 0, Codec::Raw, 0).is_err());
        assert!(Pack::decode(b"\x92\x01", Path::new("s"), 0, Codec::Raw, 0).is_err());
    }

    fn sample_body() -> Vec<u8> {
        let mut b = PackBuilder::default();
        for i in 0..20u8 {
            let d = Descriptor {
                kind: Kind::Tensor,
                desc: "U8",
                shape: &[3],
            };
            let payload = [i, i + 1, i + 2];
            b.push_object(
                d.hash(&payload),
                &d,
                &payload,
                Some((i64::from(i), &tag("r"))),
            );
        }
        for i in 0..4u8 {
            push_prediction(&mut b, i);
        }
        b.push_entry(ObjectHash([7; 32]), 0, 99, &tag("s"));
        b.finish().expect("encode").0
    }

    /// A logger's prediction: a float32 tensor, then a record referring to it and to a hash
    /// stored elsewhere. Returns the two addresses and the record's canonical bytes.
    fn push_prediction(b: &mut PackBuilder, i: u8) -> (ObjectHash, ObjectHash, Vec<u8>) {
        use crate::object::record::{Record, Value};
        let t = Descriptor {
            kind: Kind::Tensor,
            desc: "F32",
            shape: &[2],
        };
        let probs: Vec<u8> = [f32::from(i) / 10.0, 1.0 - f32::from(i) / 10.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let th = t.hash(&probs);
        b.push_object(th, &t, &probs, None);
        let rec = Record::new()
            .with("probs", Value::Ref(th))
            .and_then(|r| r.with("elsewhere", Value::Ref(ObjectHash([9; 32]))))
            .and_then(|r| r.with("id", Value::Str(format!("img-{i}"))))
            .expect("record")
            .to_msgpack();
        let r = Descriptor {
            kind: Kind::Record,
            desc: "",
            shape: &[],
        };
        let rh = r.hash(&rec);
        b.push_object(rh, &r, &rec, Some((i64::from(i), &tag("p"))));
        (th, rh, rec)
    }

    #[test]
    fn a_record_hashed_alone_before_its_pack_is_scanned_hashes_as_after() {
        let mut b = PackBuilder::default();
        let made: Vec<_> = (0..5).map(|i| push_prediction(&mut b, i)).collect();
        let (bytes, _) = b.finish().expect("encode");
        let p = Pack::decode_lazy(&bytes, Path::new("s"), 0, Codec::Raw, 0).expect("decode");
        // Slots 2, 4, ...: the records. Asked for one at a time, nothing scanned yet.
        for (i, (_, rh, _)) in made.iter().enumerate().rev() {
            assert_eq!(p.item_hash(2 * i as u32 + 2), Some(*rh), "record {i} alone");
        }
        assert!(
            p.locals.get().is_none(),
            "no pack-wide scan for a few hashes"
        );
        for (i, (th, rh, rec)) in made.iter().enumerate() {
            let o = p.object(2 * i as u32 + 2).expect("record");
            assert_eq!(o.data, &rec[..], "canonical bytes of record {i}");
            assert_eq!(p.item_hash(2 * i as u32 + 1), Some(*th));
            assert_eq!(p.item_hash(2 * i as u32 + 2), Some(*rh));
        }
    }

    #[test]
    fn records_refer_to_tensors_before_them_locally_and_read_back_canonical() {
        let mut b = PackBuilder::default();
        let made: Vec<_> = (0..50u8).map(|i| push_prediction(&mut b, i)).collect();
        let (body, summary) = b.finish().expect("encode");
        let p = Pack::decode(&body, Path::new("s"), 0, Codec::Raw, 0).expect("decode");
        assert_eq!(p.body.layout, LAYOUT_TAG_BYTES);
        // Each record stores 4 bytes for its tensor's 34: the 50 records are 1,500 bytes
        // shorter than their canonical bytes.
        let canonical: usize = made.iter().map(|m| m.2.len()).sum();
        let stored: usize = (1..=100)
            .filter_map(|s| p.stored_object(s))
            .map(|o| o.data.len())
            .sum();
        assert_eq!(stored, canonical + 50 * 8 - 50 * 30);
        for (i, (th, rh, rec)) in made.iter().enumerate() {
            let (ts, rs) = (2 * i as u32 + 1, 2 * i as u32 + 2);
            assert_eq!(p.object(rs).map(|o| o.data.to_vec()), Some(rec.clone()));
            assert_eq!((p.item_hash(ts), p.item_hash(rs)), (Some(*th), Some(*rh)));
            let stored = p.stored_object(rs).expect("stored");
            assert_eq!(
                crate::object::record::find_target(stored.data, "probs"),
                Ok(Some(crate::object::record::Target::Local(1)))
            );
            assert_eq!(
                crate::object::record::find_ref(stored.data, "elsewhere"),
                Ok(Some(ObjectHash([9; 32])))
            );
        }
        assert_eq!(p.summary().objects, summary.objects);
        let hashes: Vec<_> = p.entries().iter().map(|e| e.hash).collect();
        assert_eq!(hashes, made.iter().map(|m| m.1).collect::<Vec<_>>());
    }

    #[test]
    fn a_local_reference_to_no_object_is_refused() {
        let mut b = PackBuilder::default();
        push_prediction(&mut b, 1);
        let (bytes, _) = b.finish().expect("encode");
        let (read, lazy, data) = crate::format::pack_body::decode(&bytes).expect("decode");
        let mut body = read.into_body(lazy.decode(), data.to_vec());
        // The body with its record's local reference naming the item `back` before it.
        let naming = |back: u8| {
            let mut bad = body.clone();
            let at = bad
                .data
                .windows(2)
                .position(|w| w == [0xd5, 3])
                .expect("a local reference");
            bad.data[at + 3] = back;
            crate::format::pack_body::encode(&bad).expect("encode")
        };
        // The record now names itself, then an item before the first.
        for back in [0u8, 2] {
            let err = Pack::decode(&naming(back), Path::new("s"), 0, Codec::Raw, 0);
            let err = err.expect_err("bad");
            assert!(err.to_string().contains("is not there"), "{err}");
        }
        // Read through the index (lazily), the pack decodes; its records are unreadable,
        // and the check says why.
        let bytes = naming(0);
        let lazy = Pack::decode_lazy(&bytes, Path::new("s"), 0, Codec::Raw, 0).expect("lazy");
        assert!(
            lazy.stored_object(2).is_some(),
            "the stored record is there"
        );
        assert!(lazy.object(2).is_none(), "but not its canonical bytes");
        assert!(lazy.item_hash(2).is_none(), "nor its address");
        assert!(lazy.object(1).is_some(), "the tensor before it reads");
        let err = lazy.check_locals().expect_err("bad");
        assert!(err.to_string().contains("is not there"), "{err}");
        // An unknown layout is damage too.
        body.layout = 9;
        let bytes = rmp_serde::to_vec(&body).expect("encode");
        let err = Pack::decode(&bytes, Path::new("s"), 0, Codec::Raw, 0).expect_err("layout");
        assert!(err.to_string().contains("unknown pack layout"), "{err}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

        /// Bytes that are no pack, or a pack with bytes changed, never panic a reader: they
        /// decode to a checked pack or give an error.
        #[test]
        fn damaged_bodies_never_panic(
            flips in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 0..8),
            cut in 0usize..4096,
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
        ) {
            let mut body = sample_body();
            for (at, x) in flips {
                let n = body.len();
                if let Some(b) = body.get_mut(at % n) {
                    *b ^= x;
                }
            }
            body.truncate(cut.max(1));
            for bytes in [&body[..], &noise[..]] {
                if let Ok(p) = Pack::decode(bytes, Path::new("s"), 0, Codec::Raw, 0) {
                    for slot in 0..=p.len() as u32 + 1 {
                        let _ = p.object(slot).map(|o| o.hash());
                        let _ = p.item_hash(slot);
                    }
                    let _ = (p.entries(), p.summary());
                }
            }
        }
    }
}
