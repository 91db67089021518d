//! Put: `Writer`, a batch of puts that become durable together with one fsync, and the
//! one-put `Archive::put_*`, each a batch of one.
//!
//! A put validates its tags and descriptor, hashes the content (and compresses it at the same
//! time when it is big), and claims the hash (`append.rs`). Content stored before, and new
//! objects of at most `PACK_ITEM_MAX` bytes, go into the batch's pack, written as one frame at
//! commit or when full; larger objects, and puts that ask for a codec, get a frame of their
//! own. `commit` writes the pack, syncs the segment, and applies the batch to the index.

use std::borrow::Cow;

use super::append::Batch;
use super::handoff::PackRecords;
use super::prepared::Prepared;
use super::{Archive, now_ns};
use crate::codec::{self, CHUNK_SIZE, Codec, Encoded};
use crate::error::{Error, Result};
use crate::format::frame::{FrameHeader, FrameKind};
use crate::format::meta::{EntryMeta, FrameMeta};
use crate::format::pack::{PACK_ITEM_MAX, PACK_KIND, PackBuilder};
use crate::hash::{HashMap, ObjectHash};
use crate::index::{EntryRec, ObjectLoc, PackUpdate, RunUpdate, Update};
use crate::object::record::Record;
use crate::object::tensor::TensorView;
use crate::object::{CATEGORICAL, Categorical, Kind, Object};
use crate::segment::payload::payload_meta;
use crate::tags::{owned_tags, validate_tags};

/// Longest descriptor (dtype name, media type, record schema), in bytes.
pub const MAX_DESC: usize = 255;

/// Options for one put.
#[derive(Clone, Debug, Default)]
pub struct PutOptions {
    /// The codec; `None` chooses per object (shuffle+zstd for multi-byte tensors, zstd
    /// otherwise, raw where compression saves less than 10 %).
    pub codec: Option<Codec>,
    /// The zstd level; `None` uses the store's setting, else the codec's default.
    pub level: Option<i32>,
}

impl Archive {
    /// Start a batch: many puts, one fsync at `commit`.
    pub fn writer(&self) -> Writer<'_> {
        Writer {
            archive: self,
            opts: PutOptions::default(),
            batch: Batch::default(),
            totals: WriterTotals::default(),
            update: Update::default(),
            pending: HashMap::default(),
            count: 0,
            pack: PackBuilder::default(),
            pinned: false,
            handed: None,
            records: PackRecords::default(),
            packs: Vec::new(),
        }
    }

    /// One put as a batch of its own, durable when this returns.
    fn put_one(
        &self,
        put: impl FnOnce(&mut Writer<'_>) -> Result<ObjectHash>,
    ) -> Result<ObjectHash> {
        let mut w = self.writer();
        let h = put(&mut w)?;
        w.commit()?;
        Ok(h)
    }

    /// Put a tensor with an entry carrying `tags`; returns its address.
    pub fn put_tensor(&self, view: &TensorView<'_>, tags: &[(&str, &str)]) -> Result<ObjectHash> {
        self.put_one(|w| w.put_tensor(view, tags))
    }

    /// `put_tensor` with explicit codec options.
    pub fn put_tensor_with(
        &self,
        view: &TensorView<'_>,
        tags: &[(&str, &str)],
        opts: &PutOptions,
    ) -> Result<ObjectHash> {
        self.put_one(|w| w.put_tensor_with(view, tags, opts))
    }

    /// Put UTF-8 text.
    pub fn put_text(&self, text: &str, tags: &[(&str, &str)]) -> Result<ObjectHash> {
        self.put_one(|w| w.put_text(text, tags))
    }

    /// Put opaque bytes with an optional media type (`image/png` …).
    pub fn put_bytes(
        &self,
        data: &[u8],
        media_type: Option<&str>,
        tags: &[(&str, &str)],
    ) -> Result<ObjectHash> {
        self.put_one(|w| w.put_bytes(data, media_type, tags))
    }

    /// Put a record. Every object it refers to must already be in the archive.
    pub fn put_record(&self, record: &Record, tags: &[(&str, &str)]) -> Result<ObjectHash> {
        self.put_one(|w| w.put_record(record, tags))
    }

    /// Put categorical outputs: integer `codes` (stored as a tensor of their own) and the
    /// label of each code. Every code must index into `labels`. Returns the categorical
    /// record's address.
    pub fn put_categorical(
        &self,
        codes: &TensorView<'_>,
        labels: &[String],
        tags: &[(&str, &str)],
    ) -> Result<ObjectHash> {
        self.put_one(|w| w.put_categorical(codes, labels, tags))
    }
}

/// What a writer has done since it was made (across commits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterTotals {
    /// Puts that logged an entry.
    pub entries: u64,
    /// Of those, puts of content already stored (an entry, and no new object).
    pub duplicates: u64,
    /// Objects stored (content not stored before, parts of records included).
    pub new_objects: u64,
    /// Decoded bytes of those objects.
    pub raw_bytes: u64,
    /// Bytes they take in segments.
    pub stored_bytes: u64,
}

/// The entry a new object logs: time, tags and record (path, value) pairs.
type NewEntry<'e> = (i64, &'e [(&'e str, &'e str)], &'e [(String, String)]);

/// A batch of puts that become durable together, with one fsync, at `commit`. Dropping an
/// uncommitted writer commits it; call `commit` to see the error if that fails.
pub struct Writer<'a> {
    archive: &'a Archive,
    opts: PutOptions,
    /// Where this batch's frames went (`append.rs`).
    batch: Batch,
    totals: WriterTotals,
    /// What the index learns at commit.
    update: Update,
    /// Hashes of the new objects this batch stores (claimed), with their decoded sizes.
    pending: HashMap<u64>,
    count: usize,
    /// Small objects and entries not yet written: one pack frame at commit (or when full).
    pack: PackBuilder,
    /// This batch logs an entry of content stored before and holds the gc lock shared
    /// until its frames are durable (`pin.rs`).
    pinned: bool,
    /// Opened for logging only, keep what the index learns of each commit for this
    /// process's catch-up (`hand_over`), here until taken.
    handed: Option<Vec<super::handoff::LoggedBatch>>,
    /// Handing over: the records of the pack being filled, and of this batch's packs.
    records: PackRecords,
    packs: Vec<(u64, PackRecords)>,
}

impl Writer<'_> {
    /// Codec options for the puts of this batch that give none.
    pub fn set_options(&mut self, opts: PutOptions) -> &mut Self {
        self.opts = opts;
        self
    }

    /// Put with this batch's options and an entry logged now.
    fn put_now(&mut self, p: Prepared<'_>, tags: &[(&str, &str)]) -> Result<ObjectHash> {
        let opts = self.opts.clone();
        self.put_prepared(p, tags, &opts, Some(now_ns()))
    }

    /// Put a tensor.
    pub fn put_tensor(
        &mut self,
        view: &TensorView<'_>,
        tags: &[(&str, &str)],
    ) -> Result<ObjectHash> {
        self.put_now(Prepared::tensor(view), tags)
    }

    /// Put a tensor with explicit codec options.
    pub fn put_tensor_with(
        &mut self,
        view: &TensorView<'_>,
        tags: &[(&str, &str)],
        opts: &PutOptions,
    ) -> Result<ObjectHash> {
        self.put_prepared(Prepared::tensor(view), tags, opts, Some(now_ns()))
    }

    /// Store a tensor without logging an entry for it: for the parts of a record (the arrays
    /// of an `.npz`, say), whose record is what gets logged.
    pub fn put_tensor_part(&mut self, view: &TensorView<'_>) -> Result<ObjectHash> {
        let opts = self.opts.clone();
        self.put_prepared(Prepared::tensor(view), &[], &opts, None)
    }

    /// `put_tensor_part` of a tensor whose address `prepare_document` computed.
    pub(crate) fn put_tensor_part_hashed(
        &mut self,
        view: &TensorView<'_>,
        hash: ObjectHash,
    ) -> Result<ObjectHash> {
        let opts = self.opts.clone();
        let p = Prepared {
            known: Some(hash),
            ..Prepared::tensor(view)
        };
        self.put_prepared(p, &[], &opts, None)
    }

    /// `put_record` of a record whose canonical encoding and address `prepare_document`
    /// computed.
    pub(crate) fn put_record_encoded(
        &mut self,
        record: &crate::interop::EncodedRecord,
        tags: &[(&str, &str)],
    ) -> Result<ObjectHash> {
        self.put_now(Prepared::record_encoded(record), tags)
    }

    /// Put UTF-8 text.
    pub fn put_text(&mut self, text: &str, tags: &[(&str, &str)]) -> Result<ObjectHash> {
        self.put_now(Prepared::text(text), tags)
    }

    /// Put opaque bytes.
    pub fn put_bytes(
        &mut self,
        data: &[u8],
        media_type: Option<&str>,
        tags: &[(&str, &str)],
    ) -> Result<ObjectHash> {
        self.put_now(Prepared::bytes(data, media_type), tags)
    }

    /// Put a record.
    pub fn put_record(&mut self, record: &Record, tags: &[(&str, &str)]) -> Result<ObjectHash> {
        self.put_now(Prepared::record(Cow::Borrowed(record), ""), tags)
    }

    /// Put categorical outputs (see `Archive::put_categorical`).
    pub fn put_categorical(
        &mut self,
        codes: &TensorView<'_>,
        labels: &[String],
        tags: &[(&str, &str)],
    ) -> Result<ObjectHash> {
        Categorical::check_codes(codes, labels.len())?;
        let codes_hash = self.put_tensor_part(codes)?;
        let cat = Categorical {
            codes: codes_hash,
            labels: labels.to_vec(),
        };
        self.put_now(
            Prepared::record(Cow::Owned(cat.to_record()), CATEGORICAL),
            tags,
        )
    }

    /// Log an entry of content already stored (by this batch or before), with `tags` at
    /// `time_ns`, without handing the content over again. `Error::NotFound` if the content is
    /// not stored.
    pub fn put_entry(
        &mut self,
        hash: &ObjectHash,
        tags: &[(&str, &str)],
        time_ns: i64,
    ) -> Result<()> {
        validate_tags(tags)?;
        if !self.pending.contains_key(hash) {
            if !self.archive.stored_or_claimed(hash)? {
                return Err(Error::NotFound(hash.to_string()));
            }
            self.pin_stored(hash)?;
        }
        // The content's fields are not at hand: the index reads this pack for every query on
        // a record field.
        let raw_len = match self.pending.get(hash) {
            Some(n) => *n,
            None => self.archive.info(hash).map_or(0, |i| i.raw_len),
        };
        self.push_entry(*hash, tags, time_ns, true, None, raw_len)
    }

    /// Put any object. `entry` gives the tags and time (nanoseconds since the Unix epoch) of
    /// the entry that logs it; `None` stores it without an entry, as a part of a record. This
    /// is how objects are copied between stores with their entries' times (`merge`).
    pub fn put_object(
        &mut self,
        object: &Object,
        entry: Option<(&[(&str, &str)], i64)>,
    ) -> Result<ObjectHash> {
        let (tags, time) = match entry {
            Some((tags, time)) => (tags, Some(time)),
            None => (&[][..], None),
        };
        let opts = self.opts.clone();
        self.put_prepared(Prepared::object(object), tags, &opts, time)
    }

    /// Check what a put is given before anything is hashed or appended.
    fn check(&mut self, p: &Prepared<'_>, tags: &[(&str, &str)]) -> Result<()> {
        validate_tags(tags)?;
        if p.desc.len() > MAX_DESC {
            return Err(Error::invalid(
                p.desc.as_ref(),
                format!("longer than {MAX_DESC} bytes"),
            ));
        }
        let stored: Vec<&ObjectHash> = p
            .refs
            .iter()
            .filter(|r| !self.pending.contains_key(r))
            .collect();
        for r in &stored {
            if !self.archive.known(r)? {
                return Err(Error::invalid(
                    format!("reference {r}"),
                    "a record may only refer to objects already in the archive",
                ));
            }
        }
        // A reference to content stored before: gc must not collect it before this commits.
        for r in stored {
            self.pin_stored(r)?;
        }
        Ok(())
    }

    /// Pin the store for this batch, waiting for a running gc (`pin.rs`), before it logs
    /// an entry of (or refers to) `hash`, stored before: which must still be there.
    fn pin_stored(&mut self, hash: &ObjectHash) -> Result<()> {
        if !self.pinned {
            self.archive.wait_pin()?;
            self.pinned = true;
        }
        if self.archive.claimed(hash)? || self.archive.still_stored(hash)? {
            return Ok(());
        }
        Err(Error::invalid(
            format!("object {hash}"),
            "no longer in the archive: `archive gc` collected it after its entries were removed",
        ))
    }

    /// Claim `hash` for this batch: true if the batch stores the content, false if it logs
    /// an entry of the copy stored before, which pins the store. While gc runs (no pin), the
    /// content is stored again.
    fn claim(&mut self, hash: &ObjectHash) -> Result<bool> {
        let archive = self.archive;
        let pinned = &mut self.pinned;
        archive.claim(hash, &mut || {
            if !*pinned {
                *pinned = archive.try_pin()?;
            }
            Ok(*pinned)
        })
    }

    /// The record the index learns of from `p` (its field paths and values): only a writer
    /// whose commits it applies needs one. A record prepared as bytes only (`msgpack_record`)
    /// is decoded for it.
    fn indexed_record<'p>(&self, p: &'p Prepared<'_>) -> Result<Option<Cow<'p, Record>>> {
        Ok(match (&p.record, self.archive.has_index()) {
            (_, false) => None,
            (Some(r), true) => Some(Cow::Borrowed(r.as_ref())),
            (None, true) if p.kind == Kind::Record => Some(Cow::Owned(Record::from_msgpack(
                "a prepared record",
                &p.payload,
            )?)),
            (None, true) => None,
        })
    }

    fn put_prepared(
        &mut self,
        p: Prepared<'_>,
        tags: &[(&str, &str)],
        opts: &PutOptions,
        entry_time: Option<i64>,
    ) -> Result<ObjectHash> {
        self.check(&p, tags)?;
        let level = opts.level.or(self.archive.settings.zstd_level);
        let payload: &[u8] = &p.payload;
        let desc = p.descriptor();
        // Big payloads: hash and compress at once on every core. Small ones: hash first, so a
        // duplicate costs no compression.
        let (hash, encoded) = if let Some(h) = p.known {
            (h, None)
        } else if payload.len() >= CHUNK_SIZE {
            let (h, e) = rayon::join(
                || desc.hash(payload),
                || codec::encode(payload, p.elem, opts.codec, level),
            );
            (h, Some(e?))
        } else {
            (desc.hash(payload), None)
        };
        let new = !self.pending.contains_key(&hash) && self.claim(&hash)?;
        let record = self.indexed_record(&p)?;
        let record = record.as_deref();
        if new {
            self.pending.insert(hash, payload.len() as u64);
            if let Some(r) = record {
                let fields = &mut self.update.record_fields;
                r.visit_paths(&mut |path| {
                    // A batch's records mostly have the same few paths: comparing them is
                    // cheaper than hashing each.
                    let known = match fields.len() {
                        0..=8 => fields.iter().any(|f| f == path),
                        _ => fields.contains(path),
                    };
                    if !known {
                        fields.insert(path.to_owned());
                    }
                });
            }
        }
        let attrs = match (record, entry_time) {
            (Some(r), Some(_)) => r.query_attrs(),
            _ => Vec::new(),
        };
        match (new, entry_time) {
            (false, None) => Ok(hash),
            (false, Some(t)) => self
                .push_entry(hash, tags, t, true, Some(&attrs), payload.len() as u64)
                .map(|()| hash),
            // Small objects go into the batch's pack; a codec asked for (raw, to map a
            // tensor, say) gets a frame of its own.
            (true, t) if payload.len() <= PACK_ITEM_MAX && opts.codec.is_none() => {
                let entry = t.map(|t| (t, tags, &attrs[..]));
                self.pack_new(hash, &desc, payload, entry).map(|()| hash)
            }
            (true, t) => {
                let encoded = match encoded {
                    Some(e) => e,
                    None => codec::encode(payload, p.elem, opts.codec, level)?,
                };
                let entry = t.map(|time_ns| EntryMeta {
                    time_ns,
                    tags: owned_tags(tags),
                });
                self.append_object(&p, hash, &encoded, level, entry, &attrs)
                    .inspect_err(|_| {
                        self.pending.remove(&hash);
                        self.archive.release(&[hash]);
                    })
                    .map(|()| hash)
            }
        }
    }

    /// Add a new object to the pack, with its entry (time, tags, record attrs) if it logs one.
    fn pack_new(
        &mut self,
        hash: ObjectHash,
        desc: &crate::object::canonical::Descriptor<'_>,
        payload: &[u8],
        entry: Option<NewEntry<'_>>,
    ) -> Result<()> {
        self.pack
            .push_object(hash, desc, payload, entry.map(|(t, tags, _)| (t, tags)));
        if let (Some(_), Kind::Record) = (&self.handed, desc.kind) {
            self.records.push(payload, entry.is_some());
        }
        if let Some((_, _, attrs)) = entry {
            self.pack.add_attrs(Some(attrs));
            self.totals.entries += 1;
        }
        self.totals.new_objects += 1;
        self.totals.raw_bytes += payload.len() as u64;
        self.count_put(entry.is_some())
    }

    /// Add an entry of content stored elsewhere to the pack.
    fn push_entry(
        &mut self,
        hash: ObjectHash,
        tags: &[(&str, &str)],
        time_ns: i64,
        duplicate: bool,
        attrs: Option<&[(String, String)]>,
        raw_len: u64,
    ) -> Result<()> {
        self.pack.push_entry(hash, raw_len, time_ns, tags);
        self.pack.add_attrs(attrs);
        self.totals.entries += 1;
        self.totals.duplicates += u64::from(duplicate);
        self.count_put(true)
    }

    /// Count a put that went into the pack, and write the pack once it is full: after an
    /// entry, so that the parts a record refers to (stored just before it, without entries)
    /// share its pack, unless the parts alone overfill it.
    fn count_put(&mut self, entry: bool) -> Result<()> {
        self.count += 1;
        if (entry && self.pack.is_full()) || self.pack.is_over() {
            self.flush_pack()?;
        }
        Ok(())
    }

    /// Append a new object in a frame of its own, with the entry that logs it, if any.
    fn append_object(
        &mut self,
        p: &Prepared<'_>,
        hash: ObjectHash,
        encoded: &Encoded<'_>,
        level: Option<i32>,
        entry: Option<EntryMeta>,
        attrs: &[(String, String)],
    ) -> Result<()> {
        // Entries stay in put order: the pack's entries go first.
        if entry.is_some() && self.pack.entry_count() > 0 {
            self.flush_pack()?;
        }
        let raw_len = p.payload.len();
        let meta = FrameMeta {
            object: Some(payload_meta(
                p.kind.name(),
                &p.desc,
                &p.shape,
                raw_len,
                encoded,
                level,
            )),
            entry: entry.clone(),
        };
        let mappable = matches!(p.kind, Kind::Tensor | Kind::Bytes);
        let align = FrameHeader::payload_align(mappable, encoded.codec(), raw_len as u64);
        let (seg, offset) = self.append(
            FrameKind::Object,
            encoded.codec(),
            hash,
            &meta,
            &encoded.parts(),
            align,
        )?;
        self.totals.new_objects += 1;
        self.totals.raw_bytes += raw_len as u64;
        self.totals.stored_bytes += encoded.stored_len();
        self.update.objects.push((
            hash,
            ObjectLoc {
                seg,
                offset,
                kind: p.kind as u8,
                desc: p.desc.to_string(),
                shape: p.shape.to_vec(),
                raw_len: raw_len as u64,
                stored_len: encoded.stored_len(),
                codec: encoded.codec() as u8,
                first_entry: None,
            },
        ));
        if let Some(e) = entry {
            self.totals.entries += 1;
            if !attrs.is_empty() {
                self.update.attrs.insert((seg, offset), attrs.to_vec());
            }
            self.update.push_entry(EntryRec {
                time_ns: e.time_ns,
                hash,
                tags: e.tags,
                seg,
                offset,
            });
        }
        self.count += 1;
        Ok(())
    }

    /// Append a frame to this process's segment, as part of this batch.
    fn append(
        &mut self,
        kind: FrameKind,
        codec: Codec,
        hash: ObjectHash,
        meta: &FrameMeta,
        parts: &[&[u8]],
        align: u64,
    ) -> Result<(u32, u64)> {
        let meta = meta
            .encode()
            .map_err(|reason| Error::internal(format!("object {hash}: {reason}")))?;
        self.archive.append_frame(
            &mut self.batch,
            &mut self.update.marks,
            kind,
            codec,
            hash,
            &meta,
            parts,
            align,
        )
    }

    /// Record a removal (`archive rm`): a removal frame, durable at commit, after which the
    /// index leaves its entries out of every listing.
    pub fn log_removal(&mut self, body: crate::format::removal::RemovalBody) -> Result<()> {
        let bytes = body.encode().map_err(Error::internal)?;
        let level = Some(self.archive.settings.zstd_level.unwrap_or(3));
        let kind = crate::format::removal::REMOVAL_KIND;
        let (seg, offset, _) = self.append_body(FrameKind::Removal, kind, &bytes, level)?;
        self.update.removals.push((seg, offset, body));
        self.count += 1;
        Ok(())
    }

    /// Append a frame whose payload is a body of `kind` (a pack, a removal), compressed at
    /// `level` (raw where that saves little), its header's hash blake3 of the body. Returns
    /// where it went and its stored bytes.
    fn append_body(
        &mut self,
        frame: FrameKind,
        kind: &str,
        body: &[u8],
        level: Option<i32>,
    ) -> Result<(u32, u64, u64)> {
        let b = BodyFrame::new(kind, body, level)?;
        let parts = b.encoded.parts();
        let codec = b.encoded.codec();
        let (seg, offset) = self.append(frame, codec, b.hash, &b.meta, &parts, b.align)?;
        Ok((seg, offset, b.encoded.stored_len()))
    }

    /// Write the pack of small objects and entries gathered so far as one frame.
    fn flush_pack(&mut self) -> Result<()> {
        if self.pack.is_empty() {
            return Ok(());
        }
        // A summary no index takes needs no tags; one handed over gets them from the catch-up.
        let (body, mut summary, tagsets) = match self.archive.has_index() {
            true => {
                let (body, summary) = self.pack.finish()?;
                (body, summary, Vec::new())
            }
            false => self.pack.finish_untagged()?,
        };
        let mut records = std::mem::take(&mut self.records);
        let level = Some(
            self.opts
                .level
                .or(self.archive.settings.zstd_level)
                .unwrap_or(PACK_LEVEL),
        );
        let (seg, offset, stored) = self.append_body(FrameKind::Pack, PACK_KIND, &body, level)?;
        self.totals.stored_bytes += stored;
        summary.totals.stored_bytes = stored;
        if self.handed.is_some() {
            records.set_tagsets(tagsets);
            self.packs.push((offset, records));
        }
        self.update.runs.push(RunUpdate::Pack(PackUpdate {
            seg,
            offset,
            summary,
        }));
        Ok(())
    }

    /// Keep, from now on, what the index learns of each commit, for a catch-up of this
    /// process to apply instead of reading the frames back (`take_logged`,
    /// `ArchiveBuilder::open_with_logged`). Only a writer of an archive opened for logging
    /// only has anything to hand over.
    pub fn hand_over(&mut self) -> &mut Self {
        self.handed.get_or_insert_with(Vec::new);
        self
    }

    /// The batches committed since the last call (see `hand_over`), oldest first.
    pub fn take_logged(&mut self) -> Vec<super::handoff::LoggedBatch> {
        self.handed.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// What this writer has done so far, across commits.
    pub fn totals(&self) -> WriterTotals {
        self.totals
    }

    /// Number of puts since the last commit.
    pub fn pending(&self) -> usize {
        self.count
    }

    /// Make every put of this batch durable (one fsync) and visible to readers.
    pub fn commit(&mut self) -> Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        let mut segment = None;
        let sealed = self.flush_pack().and_then(|()| {
            segment = self.batch.segment().map(str::to_owned);
            self.archive
                .seal_batch(&mut self.batch, self.count, &mut self.update.marks)
        });
        let sealed = match sealed {
            Ok(id) => id,
            Err(e) => {
                self.reset();
                return Err(e);
            }
        };
        let update = std::mem::take(&mut self.update);
        let packs = std::mem::take(&mut self.packs);
        let claims: Vec<ObjectHash> = self.pending.drain().map(|(h, _)| h).collect();
        self.reset();
        // The claims make the objects this batch stored new to the index: no lookups needed.
        // Opened for logging only: the frames are durable; the index learns of them when a
        // process next opens it.
        let applied = if self.archive.has_index() {
            self.archive
                .index()
                .and_then(|index| index.apply(update, true).map(|_| ()))
        } else {
            let batch = segment.and_then(|s| super::handoff::LoggedBatch::of(&s, update, packs));
            if let (Some(handed), Some(b)) = (self.handed.as_mut(), batch) {
                handed.push(b);
            }
            Ok(())
        };
        self.archive.end_batch(sealed);
        self.archive.release(&claims);
        applied
    }

    /// Undo every put since the last commit: cut the segment back to where this batch began,
    /// so the store is exactly as it was. This works when nothing else was appended to the
    /// segment after the batch (always, for a process that writes one batch at a time); if
    /// something was, the batch is left uncommitted (its frames are indexed on the next open)
    /// and the error says so.
    pub fn discard(mut self) -> Result<()> {
        let n = self.count;
        let mut batch = std::mem::take(&mut self.batch);
        self.reset();
        self.archive.truncate_batch(&mut batch, n)
    }

    fn reset(&mut self) {
        self.pack = PackBuilder::default();
        self.records = PackRecords::default();
        self.packs.clear();
        self.update = Update::default();
        let claims: Vec<ObjectHash> = self.pending.drain().map(|(h, _)| h).collect();
        self.archive.release(&claims);
        self.archive.forget_batch(&mut self.batch);
        self.count = 0;
        if std::mem::take(&mut self.pinned) {
            self.archive.unpin();
        }
    }
}

/// The zstd level of a pack unless the store or the writer asks for another. Packs are written
/// on the logging path; their bodies (byte-shuffled tensors, records, item columns) come out
/// the same at levels 1 to 3, and 1.4 % smaller at 4 for about 0.13 s more CPU a million
/// logged predictions (zstd's lazy match search; levels past 5 halve its speed again).
const PACK_LEVEL: i32 = 4;

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        let _ = self.commit();
    }
}

/// A frame whose payload is a body of `kind` (a pack, a removal, a compaction) compressed at
/// `level` (raw where that saves little), its header's hash blake3 of the payload as stored.
pub(super) struct BodyFrame<'b> {
    pub meta: FrameMeta,
    pub hash: ObjectHash,
    pub encoded: Encoded<'b>,
    pub align: u64,
}

impl<'b> BodyFrame<'b> {
    pub(super) fn new(kind: &str, body: &'b [u8], level: Option<i32>) -> Result<BodyFrame<'b>> {
        let encoded = codec::encode(body, 1, None, level)?;
        let mut stored = blake3::Hasher::new();
        for part in encoded.parts() {
            stored.update(part);
        }
        Ok(BodyFrame {
            meta: FrameMeta {
                object: Some(payload_meta(kind, "", &[], body.len(), &encoded, level)),
                entry: None,
            },
            hash: ObjectHash::from(stored.finalize()),
            align: FrameHeader::payload_align(false, encoded.codec(), body.len() as u64),
            encoded,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::format::frame::{FrameKind, SEGMENT_HEADER_LEN};
    use crate::object::record::{Record, Target, Value, find_target};
    use crate::object::tensor::{Dtype, Shape, TensorView};
    use crate::segment::pack::decode_frame;
    use crate::segment::scan::{read_frame, scan};

    /// However the pack's bytes fall, a record is packed with the tensor stored just before
    /// it, and refers to it locally.
    #[test]
    fn a_record_shares_its_pack_with_its_parts() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = crate::archive::Archive::create(dir.path().join("s")).expect("create");
        let mut w = a.writer();
        let shape = Shape::new(vec![10]);
        for i in 0..12_000u32 {
            let data: Vec<u8> = (0..10u32)
                .flat_map(|j| ((i * 10 + j) as f32).to_le_bytes())
                .collect();
            let view = TensorView::new(Dtype::F32, &shape, &data).expect("view");
            let h = w.put_tensor_part(&view).expect("part");
            // Records of many sizes: a pack fills after a tensor as often as after a record.
            let rec = Record::new()
                .with("probs", Value::Ref(h))
                .and_then(|r| r.with("id", Value::Str("x".repeat((i % 37) as usize))))
                .expect("record");
            w.put_record(&rec, &[("n", &i.to_string())])
                .expect("record");
        }
        w.commit().expect("commit");
        let (mut packs, mut records) = (0, 0);
        for e in std::fs::read_dir(dir.path().join("s/segments")).expect("segments") {
            let path = e.expect("entry").path();
            let bytes = std::fs::read(&path).expect("read");
            for frame in scan(&bytes, SEGMENT_HEADER_LEN as u64).frames {
                if frame.header.kind != FrameKind::Pack {
                    continue;
                }
                packs += 1;
                let (f, payload) = read_frame(&bytes, frame.offset).expect("frame");
                let pack = decode_frame(&f, payload, &path).expect("pack");
                for slot in 1..=pack.len() as u32 {
                    let o = pack.stored_object(slot).expect("object");
                    if o.kind == crate::object::Kind::Record {
                        records += 1;
                        let t = find_target(o.data, "probs").expect("scan");
                        assert_eq!(t, Some(Target::Local(1)), "slot {slot} of pack {packs}");
                    }
                }
            }
        }
        assert!(packs > 3, "{packs} packs");
        assert_eq!(records, 12_000);
    }
}
