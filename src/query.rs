//! The query language of `archive query` and `Archive::query`:
//!
//! ```text
//! run = "exp1" and split = "test" and time > 2026-11-01 and kind = tensor
//! model ~ "resnet*" or (has step and not rank = 0)
//! ```
//!
//! `and`, `or`, `not`, parentheses; comparisons `=`, `!=`, `<`, `<=`, `>`, `>=`, and `~` (glob:
//! `*` any run, `?` one character); `has NAME` (the entry has the tag or record field). A field
//! is a name, or one of `time` (RFC 3339, or a date for midnight UTC), `kind`, `dtype`, `rank`,
//! `size` (decoded bytes), `hash` (`=` matches a prefix). A name is a tag key or the path of a
//! field of the logged record (`label`, `meta.source` for a nested record's field); an entry's
//! values of a name are its tags of that key and its record's field at that path. Values are
//! double-quoted strings (with `\"` and `\\`) or bare words and numbers. Comparisons are
//! numeric when both sides are numbers. With [`Query::parse_with`], a bare word on the right
//! that is a name the store knows compares two names (`label != pred`); quote it to mean the
//! word. A syntax error names the column.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::error::{Error, Result};
use crate::info::{EntryInfo, ObjectInfo};
use crate::object::record::Record;

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `~` (glob)
    Glob,
}

/// A field of an entry or of its object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    /// A name: a tag key, or the path of a field of the logged record.
    Tag(String),
    /// The entry's time.
    Time,
    /// The object's kind.
    Kind,
    /// The tensor's dtype.
    Dtype,
    /// The tensor's rank.
    Rank,
    /// The object's decoded size in bytes.
    Size,
    /// The object's hash (`=` matches a prefix).
    Hash,
}

/// A parsed query.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Query {
    /// Both hold.
    And(Box<Query>, Box<Query>),
    /// Either holds.
    Or(Box<Query>, Box<Query>),
    /// It does not hold.
    Not(Box<Query>),
    /// The entry has this tag.
    Has(String),
    /// A comparison; `time` values are kept as nanoseconds.
    Cmp(Field, Op, String),
    /// A comparison of two names' values (`label != pred`). It holds when both have a value
    /// and some pair compares (for `!=`, no pair is equal).
    CmpNames(String, Op, String),
    /// The tag holds one of these (non-numeric) values: what an `or` of equalities on one tag
    /// key becomes, so that it costs one set lookup per tag, and the index can plan it.
    AnyOf(String, std::collections::HashSet<String>),
    /// Matches everything (the empty query).
    All,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Op(Op),
    Word(String),
    Str(String),
}

fn lex(src: &str) -> std::result::Result<Vec<(usize, Tok)>, (usize, String)> {
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&(at, c)) = chars.get(i) {
        let col = src.get(..at).map_or(0, |s| s.chars().count()) + 1;
        let next = chars.get(i + 1).map(|&(_, c)| c);
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((col, Tok::LParen));
                i += 1;
            }
            ')' => {
                out.push((col, Tok::RParen));
                i += 1;
            }
            '=' => {
                out.push((col, Tok::Op(Op::Eq)));
                i += 1;
            }
            '~' => {
                out.push((col, Tok::Op(Op::Glob)));
                i += 1;
            }
            '!' if next == Some('=') => {
                out.push((col, Tok::Op(Op::Ne)));
                i += 2;
            }
            '<' | '>' => {
                let eq = next == Some('=');
                let op = match (c, eq) {
                    ('<', false) => Op::Lt,
                    ('<', true) => Op::Le,
                    ('>', false) => Op::Gt,
                    _ => Op::Ge,
                };
                out.push((col, Tok::Op(op)));
                i += if eq { 2 } else { 1 };
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err((col, "a string is not closed".into())),
                        Some(&(_, '"')) => break,
                        Some(&(_, '\\')) => {
                            let Some(&(_, e)) = chars.get(i + 1) else {
                                return Err((col, "a string is not closed".into()));
                            };
                            s.push(e);
                            i += 2;
                        }
                        Some(&(_, ch)) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push((col, Tok::Str(s)));
                i += 1;
            }
            c if c.is_alphanumeric() || "_-.:+*?/".contains(c) => {
                let mut s = String::new();
                while let Some(&(_, ch)) = chars.get(i) {
                    if ch.is_alphanumeric() || "_-.:+*?/".contains(ch) {
                        s.push(ch);
                        i += 1;
                    } else {
                        break;
                    }
                }
                out.push((col, Tok::Word(s)));
            }
            other => return Err((col, format!("unexpected `{other}`"))),
        }
    }
    Ok(out)
}

/// Deepest nesting of parentheses and `not` a query may have: parsing, matching and dropping
/// a query recurse on its depth, so it is bounded (20,000 levels overflowed the stack).
pub const MAX_NESTING: usize = 64;

/// Most conditions in one query. A chain of `and`/`or` is as deep as it is long.
pub const MAX_CONDITIONS: usize = 4096;

struct Parser<'s> {
    src: &'s str,
    /// Is a bare word a name the store knows (so `a != b` compares two names)?
    is_name: &'s dyn Fn(&str) -> bool,
    toks: Vec<(usize, Tok)>,
    pos: usize,
    /// Parentheses and `not`s open at `pos`.
    depth: usize,
    /// Conditions parsed so far.
    conditions: usize,
}

impl Parser<'_> {
    fn col(&self) -> usize {
        self.toks
            .get(self.pos)
            .map_or(self.src.chars().count() + 1, |(c, _)| *c)
    }

    fn fail<T>(&self, why: &str) -> Result<T> {
        fail(self.src, self.col(), why)
    }

    fn peek_word(&self, w: &str) -> bool {
        matches!(self.toks.get(self.pos), Some((_, Tok::Word(x))) if x.eq_ignore_ascii_case(w))
    }

    fn or(&mut self) -> Result<Query> {
        let mut q = self.and()?;
        while self.peek_word("or") {
            self.pos += 1;
            q = Query::Or(Box::new(q), Box::new(self.and()?));
        }
        Ok(q)
    }

    fn and(&mut self) -> Result<Query> {
        let mut q = self.not()?;
        while self.peek_word("and") {
            self.pos += 1;
            q = Query::And(Box::new(q), Box::new(self.not()?));
        }
        Ok(q)
    }

    fn not(&mut self) -> Result<Query> {
        if self.peek_word("not") {
            self.pos += 1;
            let q = self.nested(Self::not)?;
            return Ok(Query::Not(Box::new(q)));
        }
        self.primary()
    }

    /// Parse one level deeper, refusing past `MAX_NESTING`.
    fn nested(&mut self, parse: fn(&mut Self) -> Result<Query>) -> Result<Query> {
        if self.depth >= MAX_NESTING {
            return self.fail(&format!(
                "nested deeper than {MAX_NESTING} levels of parentheses and `not`"
            ));
        }
        self.depth += 1;
        let q = parse(self);
        self.depth -= 1;
        q
    }

    /// Count a condition, refusing past `MAX_CONDITIONS`.
    fn condition(&mut self) -> Result<()> {
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            return self.fail(&format!("more than {MAX_CONDITIONS} conditions"));
        }
        Ok(())
    }

    fn primary(&mut self) -> Result<Query> {
        match self.toks.get(self.pos).cloned() {
            Some((_, Tok::LParen)) => {
                self.pos += 1;
                let q = self.nested(Self::or)?;
                if !matches!(self.toks.get(self.pos), Some((_, Tok::RParen))) {
                    return self.fail("expected `)`");
                }
                self.pos += 1;
                Ok(q)
            }
            Some((_, Tok::Word(w))) if w.eq_ignore_ascii_case("has") => {
                self.condition()?;
                self.pos += 1;
                match self.toks.get(self.pos).cloned() {
                    Some((_, Tok::Word(k) | Tok::Str(k))) => {
                        self.pos += 1;
                        Ok(Query::Has(k))
                    }
                    _ => self.fail("expected a tag key after `has`"),
                }
            }
            Some((_, Tok::Word(name) | Tok::Str(name))) => {
                self.condition()?;
                self.pos += 1;
                let field = match name.as_str() {
                    "time" => Field::Time,
                    "kind" => Field::Kind,
                    "dtype" => Field::Dtype,
                    "rank" => Field::Rank,
                    "size" => Field::Size,
                    "hash" => Field::Hash,
                    _ => Field::Tag(name),
                };
                let Some((_, Tok::Op(op))) = self.toks.get(self.pos).cloned() else {
                    return self.fail("expected an operator (=, !=, <, <=, >, >=, ~)");
                };
                self.pos += 1;
                let col = self.col();
                let (value, bare) = match self.toks.get(self.pos).cloned() {
                    Some((_, Tok::Word(v))) => (v, true),
                    Some((_, Tok::Str(v))) => (v, false),
                    _ => return self.fail("expected a value"),
                };
                self.pos += 1;
                if let Field::Tag(name) = &field
                    && bare
                    && op != Op::Glob
                    && (self.is_name)(&value)
                {
                    return Ok(Query::CmpNames(name.clone(), op, value));
                }
                let value = match field {
                    Field::Time => match parse_time(&value) {
                        Some(ns) => ns.to_string(),
                        None => return fail(self.src, col, "expected a time (RFC 3339 or a date)"),
                    },
                    Field::Rank | Field::Size if value.parse::<u64>().is_err() => {
                        return fail(self.src, col, "expected a whole number");
                    }
                    _ => value,
                };
                Ok(Query::Cmp(field, op, value))
            }
            _ => self.fail("expected a condition"),
        }
    }
}

/// Tags as a [`Subject`] holds them.
pub fn borrowed(tags: &[(String, String)]) -> Vec<(&str, &str)> {
    tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// An entry as a query looks at it: its tags, time and hash, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// Tags.
    pub tags: &'a [(&'a str, &'a str)],
    /// Nanoseconds since the Unix epoch.
    pub time_ns: i64,
    /// The object logged.
    pub hash: &'a crate::hash::ObjectHash,
}

impl Subject<'_> {
    fn matches(
        &self,
        q: &Query,
        info: Option<&ObjectInfo>,
        record: Option<&dyn RecordFields>,
    ) -> bool {
        q.matches_fields(self, info, record)
    }
}

/// Where a query finds the fields of an entry's record: a decoded [`Record`], or the values
/// read out of its bytes for the names the query looks at.
pub trait RecordFields {
    /// The field at `path`: `None` if the record has none there, `Some(None)` if it has one
    /// without a value queries compare (a list, a record, a reference).
    fn field(&self, path: &str) -> Option<Option<Cow<'_, str>>>;
}

impl RecordFields for Record {
    fn field(&self, path: &str) -> Option<Option<Cow<'_, str>>> {
        self.at_path(path).map(|v| v.query_text())
    }
}

fn syntax(src: &str, col: usize, why: &str) -> Error {
    let caret = format!("{}^", " ".repeat(col.saturating_sub(1)));
    Error::invalid(
        "query",
        format!("{why} at column {col}\n  {src}\n  {caret}"),
    )
}

fn fail<T>(src: &str, col: usize, why: &str) -> Result<T> {
    Err(syntax(src, col, why))
}

/// Nanoseconds since the epoch of an RFC 3339 time or a date (midnight UTC).
pub fn parse_time(s: &str) -> Option<i64> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return i64::try_from(t.as_nanosecond()).ok();
    }
    let date = s.parse::<jiff::civil::Date>().ok()?;
    let t = date.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    i64::try_from(t.as_nanosecond()).ok()
}

/// `*` matches any run of characters, `?` one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

fn compare(op: Op, ord: Ordering) -> bool {
    match op {
        Op::Eq => ord == Ordering::Equal,
        Op::Ne => ord != Ordering::Equal,
        Op::Lt => ord == Ordering::Less,
        Op::Le => ord != Ordering::Greater,
        Op::Gt => ord == Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
        Op::Glob => false,
    }
}

/// Compare a text value: glob, numeric when both are numbers, else by characters.
fn compare_text(op: Op, have: &str, want: &str) -> bool {
    if op == Op::Glob {
        return glob(want, have);
    }
    let ord = match (have.parse::<f64>(), want.parse::<f64>()) {
        (Ok(a), Ok(b)) => match a.partial_cmp(&b) {
            Some(ord) => ord,
            // NaN equals nothing and is in no order.
            None => return op == Op::Ne,
        },
        _ => have.cmp(want),
    };
    compare(op, ord)
}

impl Query {
    /// Parse a query; the empty string matches everything. Bare words on the right are values.
    pub fn parse(src: &str) -> Result<Query> {
        Self::parse_with(src, &|_| false)
    }

    /// Parse a query where a bare word on the right for which `is_name` holds is a name, so
    /// that the comparison is between two names' values (`label != pred`).
    /// `Archive::parse_query` passes the names its store knows.
    pub fn parse_with(src: &str, is_name: &dyn Fn(&str) -> bool) -> Result<Query> {
        let toks = lex(src).map_err(|(col, why)| syntax(src, col, &why))?;
        if toks.is_empty() {
            return Ok(Query::All);
        }
        let mut p = Parser {
            src,
            is_name,
            toks,
            pos: 0,
            depth: 0,
            conditions: 0,
        };
        let q = p.or()?;
        if p.pos < p.toks.len() {
            return p.fail("expected `and`, `or` or the end");
        }
        Ok(q.fold_disjunctions())
    }

    /// Turn each `or` of two or more equalities on one tag key into `AnyOf`. Numeric values
    /// stay comparisons: they compare as numbers (`3` equals `3.0`), not as text.
    fn fold_disjunctions(self) -> Query {
        match self {
            Query::Or(..) => {
                let mut leaves = Vec::new();
                self.or_leaves(&mut leaves);
                let mut sets: Vec<(String, std::collections::HashSet<String>)> = Vec::new();
                let mut rest = Vec::new();
                for leaf in leaves {
                    match leaf {
                        Query::Cmp(Field::Tag(k), Op::Eq, v) if v.parse::<f64>().is_err() => {
                            match sets.iter_mut().find(|(key, _)| *key == k) {
                                Some((_, set)) => {
                                    set.insert(v);
                                }
                                None => sets.push((k, [v].into_iter().collect())),
                            }
                        }
                        other => rest.push(other.fold_disjunctions()),
                    }
                }
                let folded = sets.into_iter().map(|(k, set)| match set.len() {
                    1 => {
                        let v = set.into_iter().next().unwrap_or_default();
                        Query::Cmp(Field::Tag(k), Op::Eq, v)
                    }
                    _ => Query::AnyOf(k, set),
                });
                let mut all = folded.chain(rest);
                let first = all.next().unwrap_or(Query::All);
                all.fold(first, |q, next| Query::Or(Box::new(q), Box::new(next)))
            }
            Query::And(a, b) => Query::And(
                Box::new(a.fold_disjunctions()),
                Box::new(b.fold_disjunctions()),
            ),
            Query::Not(a) => Query::Not(Box::new(a.fold_disjunctions())),
            other => other,
        }
    }

    /// The operands of a chain of `or`s, in order.
    fn or_leaves(self, out: &mut Vec<Query>) {
        match self {
            Query::Or(a, b) => {
                a.or_leaves(out);
                b.or_leaves(out);
            }
            other => out.push(other),
        }
    }

    /// True if the query looks at the object (kind, dtype, rank, size), not only the entry.
    pub fn needs_object(&self) -> bool {
        match self {
            Query::And(a, b) | Query::Or(a, b) => a.needs_object() || b.needs_object(),
            Query::Not(a) => a.needs_object(),
            Query::Cmp(f, _, _) => {
                matches!(f, Field::Kind | Field::Dtype | Field::Rank | Field::Size)
            }
            Query::Has(_) | Query::AnyOf(..) | Query::CmpNames(..) | Query::All => false,
        }
    }

    /// True if the query looks at anything but tags (time, hash, or the object): otherwise
    /// entries with the same tags all match or all do not.
    pub fn needs_more_than_tags(&self) -> bool {
        match self {
            Query::And(a, b) | Query::Or(a, b) => {
                a.needs_more_than_tags() || b.needs_more_than_tags()
            }
            Query::Not(a) => a.needs_more_than_tags(),
            Query::Cmp(f, _, _) => !matches!(f, Field::Tag(_)),
            Query::Has(_) | Query::AnyOf(..) | Query::CmpNames(..) | Query::All => false,
        }
    }

    /// True if the query looks at the entry's hash (directly, or through the object).
    pub fn needs_hash(&self) -> bool {
        match self {
            Query::And(a, b) | Query::Or(a, b) => a.needs_hash() || b.needs_hash(),
            Query::Not(a) => a.needs_hash(),
            Query::Cmp(f, _, _) => matches!(
                f,
                Field::Hash | Field::Kind | Field::Dtype | Field::Rank | Field::Size
            ),
            Query::Has(_) | Query::AnyOf(..) | Query::CmpNames(..) | Query::All => false,
        }
    }

    /// Every name the query looks at (tag keys and record field paths), in order.
    pub fn names(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_names(&mut out);
        out
    }

    fn collect_names<'q>(&'q self, out: &mut Vec<&'q str>) {
        match self {
            Query::And(a, b) | Query::Or(a, b) => {
                a.collect_names(out);
                b.collect_names(out);
            }
            Query::Not(a) => a.collect_names(out),
            Query::Has(k) | Query::AnyOf(k, _) | Query::Cmp(Field::Tag(k), _, _) => out.push(k),
            Query::CmpNames(a, _, b) => out.extend([a.as_str(), b.as_str()]),
            Query::Cmp(..) | Query::All => {}
        }
    }

    /// Equalities of a name to a text value that every matching entry has (`run = "a" and
    /// ...` at the top level): the index narrows the search to the runs of entries with these
    /// tags. Numbers are left out: `3` equals a tag `3.0`, which the index files elsewhere.
    pub fn required_tags(&self) -> Vec<(&str, &str)> {
        match self {
            Query::And(a, b) => {
                let mut v = a.required_tags();
                v.extend(b.required_tags());
                v
            }
            Query::Cmp(Field::Tag(k), Op::Eq, want) if want.parse::<f64>().is_err() => {
                vec![(k.as_str(), want.as_str())]
            }
            _ => Vec::new(),
        }
    }

    /// Tag keys with the values one of which every matching entry has (`AnyOf` at the top
    /// level): the index narrows the search to the runs with any of them.
    pub fn required_alternatives(&self) -> Vec<(&str, Vec<&str>)> {
        match self {
            Query::And(a, b) => {
                let mut v = a.required_alternatives();
                v.extend(b.required_alternatives());
                v
            }
            Query::AnyOf(k, values) => {
                vec![(k.as_str(), values.iter().map(String::as_str).collect())]
            }
            _ => Vec::new(),
        }
    }

    /// Inclusive bounds on the time of every matching entry (from `time` comparisons at the
    /// top level), so that runs outside them are skipped unread.
    pub fn time_bounds(&self) -> (i64, i64) {
        match self {
            Query::And(a, b) => {
                let (a, b) = (a.time_bounds(), b.time_bounds());
                (a.0.max(b.0), a.1.min(b.1))
            }
            Query::Cmp(Field::Time, op, want) => match want.parse::<i64>() {
                Ok(w) => match op {
                    Op::Eq => (w, w),
                    Op::Gt => (w.saturating_add(1), i64::MAX),
                    Op::Ge => (w, i64::MAX),
                    Op::Lt => (i64::MIN, w.saturating_sub(1)),
                    Op::Le => (i64::MIN, w),
                    _ => (i64::MIN, i64::MAX),
                },
                // An unparsable time matches nothing; leave that to `matches`.
                Err(_) => (i64::MIN, i64::MAX),
            },
            _ => (i64::MIN, i64::MAX),
        }
    }

    /// Does the entry (with its object's info, when the query needs it) match? Record fields
    /// are not looked at: see [`Query::matches_with`].
    pub fn matches(&self, e: &EntryInfo, info: Option<&ObjectInfo>) -> bool {
        self.matches_with(e, info, None)
    }

    /// Does the entry match, with its object's info (when the query needs it) and the record
    /// it logs (when the query names record fields and the object is a record)?
    pub fn matches_with(
        &self,
        e: &EntryInfo,
        info: Option<&ObjectInfo>,
        record: Option<&Record>,
    ) -> bool {
        let tags = borrowed(&e.tags);
        let s = Subject {
            tags: &tags,
            time_ns: e.time_ns,
            hash: &e.hash,
        };
        s.matches(self, info, record.map(|r| r as &dyn RecordFields))
    }

    /// [`Query::matches_with`] of an entry given by its parts, with the record's fields from
    /// wherever they are read: what a scan calls for every entry, without building one.
    pub fn matches_fields(
        &self,
        e: &Subject<'_>,
        info: Option<&ObjectInfo>,
        record: Option<&dyn RecordFields>,
    ) -> bool {
        let values = |name: &'_ str| -> Vec<Cow<'_, str>> {
            let mut v: Vec<Cow<'_, str>> = e
                .tags
                .iter()
                .filter(|(key, _)| *key == name)
                .map(|(_, v)| Cow::Borrowed(*v))
                .collect();
            v.extend(record.and_then(|r| r.field(name)).flatten());
            v
        };
        match self {
            Query::All => true,
            Query::And(a, b) => e.matches(a, info, record) && e.matches(b, info, record),
            Query::Or(a, b) => e.matches(a, info, record) || e.matches(b, info, record),
            Query::Not(a) => !e.matches(a, info, record),
            Query::Has(k) => {
                e.tags.iter().any(|(key, _)| key == k)
                    || record.is_some_and(|r| r.field(k).is_some())
            }
            Query::AnyOf(k, set) => values(k).iter().any(|v| set.contains(v.as_ref())),
            Query::CmpNames(a, op, b) => {
                let (a, b) = (values(a), values(b));
                match op {
                    Op::Ne => {
                        !a.is_empty()
                            && !b.is_empty()
                            && a.iter()
                                .all(|x| b.iter().all(|y| compare_text(Op::Ne, x, y)))
                    }
                    _ => a.iter().any(|x| b.iter().any(|y| compare_text(*op, x, y))),
                }
            }
            Query::Cmp(field, op, want) => match field {
                Field::Tag(k) => {
                    let values = values(k);
                    match op {
                        // `!=` holds when no value equals (a missing one too).
                        Op::Ne => values.iter().all(|v| compare_text(Op::Ne, v, want)),
                        _ => values.iter().any(|v| compare_text(*op, v, want)),
                    }
                }
                Field::Time => want
                    .parse::<i64>()
                    .is_ok_and(|w| compare(*op, e.time_ns.cmp(&w))),
                Field::Hash => {
                    let h = e.hash.to_string();
                    let want = want.to_ascii_lowercase();
                    match op {
                        Op::Eq => h.starts_with(&want),
                        Op::Ne => !h.starts_with(&want),
                        _ => compare_text(*op, &h, &want),
                    }
                }
                Field::Kind => info.is_some_and(|i| compare_text(*op, i.kind.name(), want)),
                Field::Dtype => info
                    .and_then(|i| i.dtype)
                    .is_some_and(|d| compare_text(*op, &d.name(), &want.to_ascii_uppercase())),
                Field::Rank => info
                    .and_then(|i| i.shape.as_ref())
                    .is_some_and(|s| compare_text(*op, &s.rank().to_string(), want)),
                Field::Size => {
                    info.is_some_and(|i| compare_text(*op, &i.raw_len.to_string(), want))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planning_takes_top_level_tag_equalities_and_time_bounds() {
        let q = Query::parse("run = \"a\" and (split = \"b\" or x = \"c\") and time >= 2026-01-01")
            .expect("q");
        assert_eq!(q.required_tags(), vec![("run", "a")]);
        let t = parse_time("2026-01-01").expect("time");
        assert_eq!(q.time_bounds(), (t, i64::MAX));
        let q = Query::parse("run = \"a\" or run = \"b\"").expect("q");
        assert!(q.required_tags().is_empty(), "an `or` requires neither");
        let q =
            Query::parse("not run = \"a\" and time < 2026-01-02 and time > 2026-01-01").expect("q");
        assert!(q.required_tags().is_empty());
        let (a, b) = (
            parse_time("2026-01-01").expect("t"),
            parse_time("2026-01-02").expect("t"),
        );
        assert_eq!(q.time_bounds(), (a + 1, b - 1));
    }
    use crate::hash::ObjectHash;

    fn entry(tags: &[(&str, &str)], time: &str) -> EntryInfo {
        EntryInfo {
            seq: 0,
            time_ns: parse_time(time).expect("time"),
            hash: ObjectHash([0xab; 32]),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        }
    }

    #[test]
    fn queries_parse_and_match() {
        let e = entry(
            &[
                ("run", "exp1"),
                ("split", "test"),
                ("step", "120"),
                ("model", "resnet50"),
            ],
            "2026-11-20T10:00:00Z",
        );
        let yes = [
            r#"run = "exp1" and split = "test""#,
            "run = exp1 and time > 2026-11-01",
            "step > 99 and step <= 120",
            r#"model ~ "resnet*" and not split = train"#,
            "has step and (run = x or split != train)",
            "hash = abab and time < 2026-11-21T00:00:00Z",
            "",
        ];
        for q in yes {
            assert!(Query::parse(q).expect(q).matches(&e, None), "{q}");
        }
        let no = [
            "run = exp2",
            "step < 100",
            "has epoch",
            "model ~ vgg*",
            "run != exp1",
            "kind = tensor",
        ];
        for q in no {
            assert!(!Query::parse(q).expect(q).matches(&e, None), "{q}");
        }
    }

    #[test]
    fn syntax_errors_point_at_the_column() {
        let err = Query::parse("run = exp1 and")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("column 15"), "{err}");
        let err = Query::parse("run exp1")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("column 5") && err.contains("operator"),
            "{err}"
        );
        let err = Query::parse("time > yesterday")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("column 8") && err.contains("time"), "{err}");
        assert!(Query::parse(r#"a = "open"#).is_err());
        assert!(Query::parse("(a = 1").is_err());
        assert!(Query::parse("a = 1 )").is_err());
    }

    #[test]
    fn deep_nesting_and_long_chains_are_refused_clearly() {
        // Issue: 20,000 nested parentheses aborted on a stack overflow.
        let deep = format!("{}run = \"a\"{}", "(".repeat(20_000), ")".repeat(20_000));
        let err = Query::parse(&deep).expect_err("too deep").to_string();
        assert!(err.contains("nested deeper than 64"), "{err}");
        let nots = format!("{}run = \"a\"", "not ".repeat(MAX_NESTING + 1));
        assert!(Query::parse(&nots).is_err());
        let ok = format!(
            "{}run = \"a\"{}",
            "(".repeat(MAX_NESTING),
            ")".repeat(MAX_NESTING)
        );
        assert!(Query::parse(&ok).is_ok());
        let terms = |n: usize| {
            (0..n)
                .map(|i| format!("id = \"{i}\""))
                .collect::<Vec<_>>()
                .join(" or ")
        };
        assert!(Query::parse(&terms(MAX_CONDITIONS)).is_ok());
        let err = Query::parse(&terms(MAX_CONDITIONS + 1))
            .expect_err("too long")
            .to_string();
        assert!(err.contains("more than 4096 conditions"), "{err}");
    }

    #[test]
    fn an_or_of_tag_equalities_is_one_set_lookup() {
        let q = Query::parse(r#"id = "a" or id = "b" or run = "r" or id = "c""#).expect("q");
        let Query::Or(ids, run) = &q else {
            panic!("{q:?}")
        };
        match ids.as_ref() {
            Query::AnyOf(k, set) => {
                assert_eq!(k, "id");
                assert_eq!(set.len(), 3);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            run.as_ref(),
            &Query::Cmp(Field::Tag("run".into()), Op::Eq, "r".into())
        );
        for (tags, hit) in [
            (vec![("id", "b")], true),
            (vec![("run", "r")], true),
            (vec![("id", "d")], false),
            (vec![("other", "a")], false),
        ] {
            assert_eq!(
                q.matches(&entry(&tags, "2026-01-01"), None),
                hit,
                "{tags:?}"
            );
        }
        // Planned: an AnyOf at the top level narrows the runs read.
        let q = Query::parse(r#"split = "test" and (id = "x" or id = "y")"#).expect("q");
        assert_eq!(q.required_tags(), vec![("split", "test")]);
        let alts = q.required_alternatives();
        assert_eq!(alts.len(), 1);
        assert_eq!(alts[0].0, "id");
        // Numbers compare as numbers: they stay comparisons.
        let q = Query::parse("label = 3 or label = 4").expect("q");
        assert!(q.required_alternatives().is_empty());
        assert!(q.matches(&entry(&[("label", "3.0")], "2026-01-01"), None));
    }

    #[test]
    fn globs() {
        assert!(glob("resnet*", "resnet50"));
        assert!(glob("*net?0", "resnet50"));
        assert!(!glob("res*x", "resnet50"));
        assert!(glob("*", ""));
    }
}
