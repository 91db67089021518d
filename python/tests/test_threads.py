"""The GIL is released while hashing, compressing and writing: a thread pool of puts runs
concurrently and every result is correct (correctness is asserted, not timing)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import model_archive as ma


def arrays(n, size):
    rng = np.random.default_rng(11)
    return [rng.standard_normal(size).astype(np.float32) for _ in range(n)]


def test_thread_pool_of_puts(archive):
    xs = arrays(32, 1 << 18)
    with ThreadPoolExecutor(max_workers=4) as pool:
        hashes = list(pool.map(lambda x: archive.put(x, tags={"t": "pool"}), xs))
    assert len(set(hashes)) == len(xs)
    for h, x in zip(hashes, xs):
        assert np.array_equal(archive.get(h), x)
    assert len(archive.entries(tags={"t": "pool"})) == len(xs)


def test_threads_share_one_writer_and_gets_run_beside_puts(archive):
    xs = arrays(64, 1 << 12)
    known = archive.put(xs[0])
    errors = []

    def reader():
        try:
            for _ in range(200):
                assert np.array_equal(archive.get(known), xs[0])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=reader)
    t.start()
    with archive.writer() as w, ThreadPoolExecutor(max_workers=4) as pool:
        hashes = list(pool.map(w.put, xs))
    t.join()
    assert not errors
    assert archive.stats()["entries"] == 1 + len(xs)
    for h, x in zip(hashes, xs):
        assert np.array_equal(archive.get(h), x)


def test_other_threads_run_python_while_a_put_is_in_rust(archive):
    # If the put held the GIL from start to end, the main thread could run no Python code in
    # between. It polls the clock; some of its readings must fall well inside the put.
    x = np.random.default_rng(5).standard_normal(1 << 24).astype(np.float32)  # 64 MiB
    span = {}

    def put():
        span["start"] = time.monotonic()
        span["hash"] = archive.put(x)
        span["end"] = time.monotonic()

    t = threading.Thread(target=put)
    readings = []
    t.start()
    while t.is_alive():
        readings.append(time.monotonic())
        time.sleep(0.001)
    t.join()
    quarter = (span["end"] - span["start"]) / 4
    inside = [r for r in readings if span["start"] + quarter < r < span["end"] - quarter]
    assert inside, f"no Python ran during a {4 * quarter:.3f} s put"
    assert np.array_equal(archive.get(span["hash"]), x)


def test_waiting_for_a_locked_store_releases_the_gil(tmp_path):
    store = tmp_path / "s"
    holder = ma.Archive(store)
    span = {}

    def opener():
        span["start"] = time.monotonic()
        try:
            ma.Archive(store, lock_timeout=0.5)
        except ma.Locked:
            span["locked"] = True
        span["end"] = time.monotonic()

    t = threading.Thread(target=opener)
    readings = []
    t.start()
    while t.is_alive():
        readings.append(time.monotonic())
        time.sleep(0.005)
    t.join()
    holder.close()
    assert span.get("locked")
    assert any(span["start"] + 0.1 < r < span["end"] - 0.1 for r in readings)
