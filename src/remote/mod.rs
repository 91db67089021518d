//! Remotes: a store shared through object storage (S3 and what speaks its API, or a directory).
//!
//! | file | what happens there |
//! | --- | --- |
//! | `mod.rs` | remotes by name (`remotes.json`), URLs, the connection, errors |
//! | `pieces.rs` | a segment on a remote: immutable pieces, named by range and hash |
//! | `push.rs` | push: the pieces a remote lacks, then a lookup table of them |
//! | `pull.rs` | pull and clone: the pieces a store lacks, checked, then indexed |
//! | `reader.rs` | one object read from a remote with ranged GETs, through its tables |
//! | `verify.rs` | every remote piece and table re-hashed |
//!
//! A remote holds, under its URL (FORMAT.md, "Remotes"):
//!
//! ```text
//! ARCHIVE                                 the store header, written once
//! segments/<segment>/<from>-<to>-<sum>    bytes from..to of a segment, blake3 `sum`
//! index/<writer>-<time>.tbl               a lookup table of the pieces one push made
//! ```
//!
//! Every object is written once, with a conditional create, under a name no other content
//! can have; nothing is overwritten or deleted, so any number of stores push to one remote
//! at once with no coordinator.

mod pieces;
mod pull;
mod push;
mod reader;
mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::error::{Error, RemoteFailure, Result};

pub use pull::{PullReport, clone_store, pull};
pub use push::{PushReport, push};
pub use reader::RemoteReader;
pub use verify::{RemoteVerifyReport, verify_remote};

/// The file in a store that names its remotes (JSON: name to `{url, endpoint}`).
pub const REMOTES_FILE: &str = "remotes.json";
/// Where a store keeps what it fetched of its remotes' tables, by remote.
pub const CACHE_DIR: &str = "remote-cache";
/// The name `clone` gives the remote it cloned.
pub const DEFAULT_REMOTE: &str = "origin";

/// Where a remote is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RemoteSpec {
    /// `s3://BUCKET/PREFIX` or `file:///PATH`.
    pub url: String,
    /// An S3 endpoint other than AWS's (`http://127.0.0.1:8333`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// A store's remotes, by name.
pub fn remotes(root: &Path) -> Result<BTreeMap<String, RemoteSpec>> {
    let path = root.join(REMOTES_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            Error::invalid(
                path.display().to_string(),
                format!("not a list of remotes: {e}"),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The remote `name` of the store at `root`: the only one when `name` is `None`.
pub fn remote_named(root: &Path, name: Option<&str>) -> Result<(String, RemoteSpec)> {
    let all = remotes(root)?;
    let name = match name {
        Some(n) => n.to_owned(),
        None if all.len() == 1 => all.keys().next().cloned().unwrap_or_default(),
        None if all.contains_key(DEFAULT_REMOTE) => DEFAULT_REMOTE.to_owned(),
        None => {
            return Err(Error::invalid(
                "remote",
                match all.len() {
                    0 => "this store has no remote; add one with `archive remote add NAME URL`",
                    _ => "this store has several remotes and none is `origin`: name one",
                },
            ));
        }
    };
    match all.get(&name) {
        Some(spec) => Ok((name, spec.clone())),
        None => Err(Error::UnknownRemote {
            name,
            store: root.to_owned(),
        }),
    }
}

/// Add remote `name` at `spec` to the store at `root` (an existing name is an error).
pub fn add_remote(root: &Path, name: &str, spec: RemoteSpec) -> Result<()> {
    check_name(name)?;
    Location::parse(&spec)?;
    let mut all = remotes(root)?;
    if all.contains_key(name) {
        return Err(Error::invalid(
            format!("remote `{name}`"),
            "exists already; `archive remote rm` it first",
        ));
    }
    all.insert(name.to_owned(), spec);
    write_remotes(root, &all)
}

/// Forget remote `name` (nothing on the remote changes).
pub fn remove_remote(root: &Path, name: &str) -> Result<RemoteSpec> {
    let mut all = remotes(root)?;
    let spec = all.remove(name).ok_or_else(|| Error::UnknownRemote {
        name: name.to_owned(),
        store: root.to_owned(),
    })?;
    write_remotes(root, &all)?;
    Ok(spec)
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            format!("remote name `{name}`"),
            "use 1 to 64 letters, digits, `-`, `_` or `.`, not starting with `.`",
        ))
    }
}

fn write_remotes(root: &Path, all: &BTreeMap<String, RemoteSpec>) -> Result<()> {
    let path = root.join(REMOTES_FILE);
    let tmp = root.join(format!(".{REMOTES_FILE}.tmp"));
    let mut text = serde_json::to_vec_pretty(all).map_err(|e| Error::internal(e.to_string()))?;
    text.push(b'\n');
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::io(&path, e))
}

/// A remote URL, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    S3 { bucket: String, prefix: String },
    Dir(PathBuf),
}

impl Location {
    fn parse(spec: &RemoteSpec) -> Result<Location> {
        let bad = |why: &str| Error::invalid(format!("remote URL `{}`", spec.url), why.to_owned());
        if let Some(rest) = spec.url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let bucket_ok = (3..=63).contains(&bucket.len())
                && bucket
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
            if !bucket_ok {
                return Err(bad(
                    "the bucket name must be 3 to 63 lowercase letters, digits, `-` or `.` \
                     (s3://BUCKET/PREFIX)",
                ));
            }
            let prefix = prefix.trim_end_matches('/');
            if prefix
                .split('/')
                .any(|p| matches!(p, "." | "..") || (p.is_empty() && !prefix.is_empty()))
            {
                return Err(bad("the prefix must be plain names separated by `/`"));
            }
            if let Some(e) = &spec.endpoint
                && !(e.starts_with("http://") || e.starts_with("https://"))
            {
                return Err(Error::invalid(
                    format!("endpoint `{e}`"),
                    "must start with http:// or https://",
                ));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
            });
        }
        if let Some(rest) = spec.url.strip_prefix("file://") {
            let path = PathBuf::from(rest);
            if !path.is_absolute() {
                return Err(bad("a file URL names an absolute path: file:///PATH"));
            }
            return Ok(Location::Dir(path));
        }
        Err(bad(
            "unsupported: use s3://BUCKET/PREFIX (with --endpoint for other S3 servers) or \
             file:///PATH",
        ))
    }
}

/// An open connection to a remote, with the runtime its client runs on (the async runtime
/// lives here, so commands that touch no remote never start one).
pub struct Remote {
    url: String,
    store: Arc<dyn ObjectStore>,
    runtime: tokio::runtime::Runtime,
    requests: AtomicU64,
}

impl Remote {
    /// Connect to the remote at `spec`. Nothing is sent until the first request; credentials
    /// come from the usual AWS variables (`AWS_ACCESS_KEY_ID`, ...) or the AWS profile files.
    pub fn connect(spec: &RemoteSpec) -> Result<Remote> {
        // One crypto provider for the TLS of every client (ring; see Cargo.toml).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = spec.url.trim_end_matches('/').to_owned();
        let store: Arc<dyn ObjectStore> = match Location::parse(spec)? {
            Location::S3 { bucket, prefix } => {
                let s3 = s3_builder(spec, &bucket)
                    .build()
                    .map_err(|e| Error::invalid(format!("remote `{url}`"), e.to_string()))?;
                if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    Arc::new(object_store::prefix::PrefixStore::new(s3, prefix.as_str()))
                }
            }
            Location::Dir(dir) => {
                std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| Error::invalid(format!("remote `{url}`"), e.to_string()))?;
                Arc::new(fs)
            }
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))?;
        Ok(Remote {
            url,
            store,
            runtime,
            requests: AtomicU64::new(0),
        })
    }

    /// The remote's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// The URL of `key`, for messages.
    fn url_of(&self, key: &str) -> String {
        format!("{}/{key}", self.url)
    }

    fn error(&self, key: &str, e: object_store::Error) -> Error {
        remote_error(&self.url_of(key), e)
    }

    /// Every object under `prefix` (a folder, `segments/`).
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let p = Key::from(prefix);
        self.store
            .list(Some(&p))
            .try_collect()
            .await
            .map_err(|e| self.error(prefix, e))
    }

    /// The object `key`; `None` if there is none.
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let got = match self.store.get(&Key::from(key)).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error(key, e)),
        };
        got.bytes().await.map(Some).map_err(|e| self.error(key, e))
    }

    /// Bytes `range` of object `key`.
    async fn get_range(&self, key: &str, range: std::ops::Range<u64>) -> Result<Bytes> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.store
            .get_range(&Key::from(key), range)
            .await
            .map_err(|e| self.error(key, e))
    }

    /// Create object `key` unless it exists: true if this call created it. Nothing on a
    /// remote is ever overwritten.
    async fn create(&self, key: &str, bytes: Bytes) -> Result<bool> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&Key::from(key), PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(object_store::Error::Precondition { .. }) => Ok(false),
            Err(e) => Err(self.error(key, e)),
        }
    }
}

/// An S3 client for `bucket`: credentials and region from the environment or the AWS profile
/// files, bounded retries and timeouts (a server that is down fails in seconds, not minutes).
fn s3_builder(spec: &RemoteSpec, bucket: &str) -> object_store::aws::AmazonS3Builder {
    use object_store::aws::AmazonS3Builder;
    use object_store::{BackoffConfig, ClientOptions, RetryConfig};
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let profile = aws_profile();
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none()
        && let (Some(id), Some(secret)) = (
            profile.get("aws_access_key_id"),
            profile.get("aws_secret_access_key"),
        )
    {
        b = b.with_access_key_id(id).with_secret_access_key(secret);
        if let Some(t) = profile.get("aws_session_token") {
            b = b.with_token(t);
        }
    }
    let region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .ok()
        .or_else(|| profile.get("region").cloned())
        .unwrap_or_else(|| "us-east-1".to_owned());
    // Client options first: setting them replaces any set before (`allow_http` among them).
    b = b.with_region(region).with_client_options(
        ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(300)),
    );
    if let Some(e) = &spec.endpoint {
        b = b
            .with_endpoint(e)
            .with_allow_http(e.starts_with("http://"))
            .with_virtual_hosted_style_request(false);
    }
    b.with_retry(RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(20),
    })
}

/// The settings of the AWS profile in use (`AWS_PROFILE`, else `default`) from the shared
/// credentials and config files, as the AWS CLI reads them; empty if there are none.
fn aws_profile() -> BTreeMap<String, String> {
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_owned());
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let file = |var: &str, name: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
    };
    let mut out = BTreeMap::new();
    // The config file names a profile `[profile NAME]` (but `[default]`); credentials `[NAME]`.
    let config_section = if profile == "default" {
        "default".to_owned()
    } else {
        format!("profile {profile}")
    };
    for (path, section) in [
        (file("AWS_CONFIG_FILE", "config"), config_section),
        (file("AWS_SHARED_CREDENTIALS_FILE", "credentials"), profile),
    ] {
        if let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) {
            out.extend(ini_section(&text, &section));
        }
    }
    out
}

/// The `key = value` lines of `[section]` of an INI text.
fn ini_section(text: &str, section: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
        } else if inside && let Some((k, v)) = line.split_once('=') {
            out.insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    out
}

/// An object_store error as the library's: which kind (exit codes differ), and what to do.
fn remote_error(url: &str, e: object_store::Error) -> Error {
    let (failure, reason) = match &e {
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => (
            RemoteFailure::Denied,
            format!(
                "access denied: check the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY \
                 or the AWS profile) and the bucket ({e})"
            ),
        ),
        object_store::Error::NotFound { .. } => (
            RemoteFailure::Missing,
            format!("not found: check the bucket and prefix ({e})"),
        ),
        _ if unreachable(&e) => (
            RemoteFailure::Unreachable,
            format!(
                "the server cannot be reached: is it running, and is the endpoint right? ({e})"
            ),
        ),
        _ if e.to_string().contains("NoSuchBucket") => (
            RemoteFailure::Missing,
            "no such bucket: create it, or check the URL".to_owned(),
        ),
        _ => (RemoteFailure::Other, e.to_string()),
    };
    Error::Remote {
        remote: url.to_owned(),
        failure,
        reason,
    }
}

/// True if `e` says the server was not reached (or stopped answering).
fn unreachable(e: &object_store::Error) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(h) = err.downcast_ref::<HttpError>() {
            return matches!(
                h.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Request
                    | HttpErrorKind::Interrupted
            );
        }
        next = err.source();
    }
    false
}

/// An error unless the remote's schema version is this store's: stores share a remote only
/// at one version.
fn same_version(remote: &Remote, theirs: u16, ours: u16) -> Result<()> {
    if theirs == ours {
        return Ok(());
    }
    Err(Error::Remote {
        remote: remote.url().to_owned(),
        failure: RemoteFailure::Other,
        reason: format!(
            "holds an archive of schema v{theirs}, this store is v{ours}: migrate the older one"
        ),
    })
}

/// The directory caching what this store fetched of remote `url` (its tables).
fn cache_dir(root: &Path, url: &str) -> PathBuf {
    let id = blake3::hash(url.as_bytes()).to_hex();
    root.join(CACHE_DIR).join(id.get(..16).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str) -> RemoteSpec {
        RemoteSpec {
            url: url.into(),
            endpoint: None,
        }
    }

    #[test]
    fn urls_parse_or_say_why_not() {
        assert_eq!(
            Location::parse(&spec("s3://outputs/team-a/x/")).expect("test value"),
            Location::S3 {
                bucket: "outputs".into(),
                prefix: "team-a/x".into()
            }
        );
        assert_eq!(
            Location::parse(&spec("s3://outputs")).expect("test value"),
            Location::S3 {
                bucket: "outputs".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            Location::parse(&spec("file:///tmp/r")).expect("test value"),
            Location::Dir("/tmp/r".into())
        );
        for bad in [
            "s3://Bad_Bucket/x",
            "s3://ab",
            "s3://ok-bucket/a//b",
            "s3://ok/../x",
            "http://x",
            "file://rel",
            "outputs/x",
        ] {
            let e = Location::parse(&spec(bad))
                .expect_err("an error")
                .to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
        let e = Location::parse(&RemoteSpec {
            url: "s3://outputs/x".into(),
            endpoint: Some("127.0.0.1:8333".into()),
        })
        .expect_err("an error");
        assert!(e.to_string().contains("http://"), "{e}");
    }

    #[test]
    fn profiles_read_as_the_aws_cli_does() {
        let text = "[default]\naws_access_key_id = A\n[profile x]\nregion=eu-west-1\n[x]\naws_access_key_id=B\n";
        assert_eq!(
            ini_section(text, "default")
                .get("aws_access_key_id")
                .expect("test value"),
            "A"
        );
        assert_eq!(
            ini_section(text, "profile x")
                .get("region")
                .expect("test value"),
            "eu-west-1"
        );
        assert_eq!(
            ini_section(text, "x")
                .get("aws_access_key_id")
                .expect("test value"),
            "B"
        );
        assert!(ini_section(text, "y").is_empty());
    }

    #[test]
    fn remotes_are_added_listed_and_removed() {
        let dir = tempfile::tempdir().expect("test value");
        let root = dir.path();
        assert!(remotes(root).expect("test value").is_empty());
        add_remote(root, "origin", spec("s3://outputs/a")).expect("test value");
        assert!(add_remote(root, "origin", spec("s3://outputs/b")).is_err());
        assert!(add_remote(root, "bad name", spec("s3://outputs/b")).is_err());
        assert!(add_remote(root, "other", spec("ftp://x")).is_err());
        let (name, got) = remote_named(root, None).expect("test value");
        assert_eq!(
            (name.as_str(), got.url.as_str()),
            ("origin", "s3://outputs/a")
        );
        assert!(matches!(
            remote_named(root, Some("nope")),
            Err(Error::UnknownRemote { .. })
        ));
        remove_remote(root, "origin").expect("test value");
        assert!(remotes(root).expect("test value").is_empty());
    }
}
