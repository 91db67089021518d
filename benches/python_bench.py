#!/usr/bin/env python3
"""Issue 6's benchmark: the Python bindings against the usual ways of saving numpy arrays.

Usage (after `pip install ./python` and `pip install -r tools/requirements.txt`):
    python3 benches/python_bench.py [--data target/bench-data] [--repeats 3] [--small 100000]

Two workloads, same data for every method:
  big    one 64 MiB float32 array, [65536, 256] hidden-layer activations before ReLU
         (target/bench-data/hidden_pre_64mib.npy from benches/make_bench_data.py; if that file
         is missing and scikit-learn is not installed, a seeded normal array of that shape).
  small  100,000 arrays of float32[10]: the first rows of probs_64mib.npy (class
         probabilities), or seeded Dirichlet rows if it is missing.

a.get checks every object against its hash (reads every byte); a.get(verify=False) does not,
as none of the other methods checks anything, so a raw tensor's get is a map of its bytes.

Per method: write time, read time and bytes on disk; medians over --repeats runs, each write
into a fresh directory. "read" loads and then touches every byte (a float64 sum), so lazy
loaders (memory maps) pay for their page faults too; "open" is the load alone. The page
cache is warm (the files were just written): these are CPU and syscall costs, not disk.

How each method lays out the small arrays: the archive logs them through one `a.writer()`
batch (one fsync) into one store; np.save writes one .npy file per array; safetensors one
file holding 100,000 named tensors; pickle+zlib and msgpack-numpy one blob of the list.
"disk" is the sum of file lengths; "blocks" what the file system allocates (4 KiB per small
file). The archive's figure includes its index. np.load(mmap_mode='r') maps the small files
one at a time while reading (100,000 maps at once exceed the open-file limit).
"""

import argparse
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path

import msgpack
import msgpack_numpy
import numpy as np
import safetensors.numpy as stn

import model_archive as ma

ROOT = Path(__file__).resolve().parent.parent


def load_data(data_dir: Path, small_n: int):
    big_path = data_dir / "hidden_pre_64mib.npy"
    probs_path = data_dir / "probs_64mib.npy"
    if not big_path.exists():
        try:
            subprocess.run(
                [sys.executable, str(ROOT / "benches/make_bench_data.py"), str(data_dir)], check=True
            )
        except (subprocess.CalledProcessError, OSError):
            pass
    if big_path.exists():
        big, big_src = np.load(big_path), big_path.name
    else:
        big = np.random.default_rng(6).standard_normal((65536, 256)).astype(np.float32)
        big_src = "synthetic normal (make_bench_data.py failed)"
    if probs_path.exists():
        probs = np.load(probs_path, mmap_mode="r")[:small_n]
        small_src = probs_path.name
    else:
        probs = np.random.default_rng(6).dirichlet(np.ones(10), small_n).astype(np.float32)
        small_src = "synthetic Dirichlet"
    small = [np.array(row) for row in probs]  # separate, owned arrays
    return big, big_src, small, small_src


def disk_usage(path: Path):
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    length = sum(p.stat().st_size for p in files)
    blocks = sum(p.stat().st_blocks * 512 for p in files)
    return length, blocks


def touch(x) -> float:
    if isinstance(x, np.ndarray):
        return float(x.sum(dtype=np.float64))
    if isinstance(x, dict):
        x = list(x.values())
    return float(sum(a.sum(dtype=np.float64) for a in x))


# Each method: write(path, data) and open(path) -> the array (big) or the arrays (small).


class Archive:
    def __init__(self, name, codec=None, verify=True):
        self.name, self.codec, self.verify = name, codec, verify
        self.hashes = None

    def write_big(self, path, x):
        with ma.Archive.create(path) as a:
            self.hashes = a.put(x, codec=self.codec)

    def open_big(self, path):
        with ma.Archive.open(path) as a:
            return a.get(self.hashes, verify=self.verify)

    def write_small(self, path, xs):
        with ma.Archive.create(path) as a, a.writer(codec=self.codec) as w:
            self.hashes = [w.put(x) for x in xs]

    def open_small(self, path):
        with ma.Archive.open(path) as a:
            return [a.get(h, verify=self.verify) for h in self.hashes]


class NpSave:
    def __init__(self, name, mmap):
        self.name, self.mmap = name, mmap

    def write_big(self, path, x):
        with open(path, "wb") as f:  # as given: np.save would add ".npy" to a bare path
            np.save(f, x)

    def open_big(self, path):
        return np.load(path, mmap_mode="r" if self.mmap else None)

    def write_small(self, path, xs):
        path.mkdir()
        for i, x in enumerate(xs):
            np.save(path / f"{i}.npy", x)

    def open_small(self, path):
        if self.mmap:
            # Each map holds a file descriptor, and 100,000 exceed the limit: map one file at
            # a time while reading (so its "open" is ~0 and "read" has all the work).
            return (np.load(path / f"{i}.npy", mmap_mode="r") for i in range(self.n))
        return [np.load(path / f"{i}.npy") for i in range(self.n)]


class Safetensors:
    name = "safetensors save_file/load_file"

    def write_big(self, path, x):
        stn.save_file({"x": x}, str(path))

    def open_big(self, path):
        return stn.load_file(str(path))["x"]

    def write_small(self, path, xs):
        stn.save_file({str(i): x for i, x in enumerate(xs)}, str(path))

    def open_small(self, path):
        return stn.load_file(str(path))


class PickleZlib:
    name = "pickle + zlib"

    def write_big(self, path, x):
        path.write_bytes(zlib.compress(pickle.dumps(x, protocol=5)))

    def open_big(self, path):
        return pickle.loads(zlib.decompress(path.read_bytes()))

    write_small = write_big
    open_small = open_big


class MsgpackNumpy:
    name = "msgpack-numpy"

    def write_big(self, path, x):
        path.write_bytes(msgpack.packb(x, default=msgpack_numpy.encode))

    def open_big(self, path):
        return msgpack.unpackb(path.read_bytes(), object_hook=msgpack_numpy.decode)

    write_small = write_big
    open_small = open_big


def bench(method, workload, data, work: Path, repeats: int):
    write = getattr(method, f"write_{workload}")
    open_ = getattr(method, f"open_{workload}")
    writes, opens, reads = [], [], []
    path = None
    for r in range(repeats):
        if path is not None:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        path = work / f"{workload}-{r}"
        t0 = time.perf_counter()
        write(path, data)
        writes.append(time.perf_counter() - t0)
    expected = touch(data)
    for _ in range(repeats):
        t0 = time.perf_counter()
        got = open_(path)
        t1 = time.perf_counter()
        total = touch(got)
        t2 = time.perf_counter()
        del got
        assert abs(total - expected) <= 1e-6 * max(1.0, abs(expected)), (method.name, total)
        opens.append(t1 - t0)
        reads.append(t2 - t0)
    length, blocks = disk_usage(path)
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    med = statistics.median
    return med(writes), med(opens), med(reads), length, blocks


def fmt_time(s):
    return f"{s * 1000:9.1f} ms" if s < 10 else f"{s:9.2f} s "


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "target/bench-data")
    ap.add_argument("--work", type=Path, default=ROOT / "target/python-bench")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--small", type=int, default=100_000)
    args = ap.parse_args()

    big, big_src, small, small_src = load_data(args.data, args.small)
    if args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True)

    npy, npy_mmap = NpSave("np.save/np.load", False), NpSave("np.save/np.load(mmap_mode='r')", True)
    npy.n = npy_mmap.n = len(small)
    methods = [
        Archive("archive a.put/a.get"),
        Archive("archive a.put(codec='raw')/a.get", codec="raw"),
        Archive("archive codec='raw', get(verify=False)", codec="raw", verify=False),
        npy,
        npy_mmap,
        Safetensors(),
        PickleZlib(),
        MsgpackNumpy(),
    ]
    mib = big.nbytes / 2**20
    small_bytes = sum(x.nbytes for x in small)
    print(f"big:   {big.dtype}{list(big.shape)} = {mib:.1f} MiB ({big_src})")
    print(f"small: {len(small)} x {small[0].dtype}{list(small[0].shape)} = "
          f"{small_bytes / 2**20:.1f} MiB ({small_src})")
    print(f"medians of {args.repeats} runs; warm page cache; {os.cpu_count()} cores\n")
    header = (f"{'workload':8} {'method':38} {'write':>12} {'open':>12} {'read':>12} "
              f"{'disk':>11} {'blocks':>11} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for workload, data, raw in (("big", big, big.nbytes), ("small", small, small_bytes)):
        for m in methods:
            w, o, r, length, blocks = bench(m, workload, data, args.work, args.repeats)
            print(f"{workload:8} {m.name:38} {fmt_time(w)} {fmt_time(o)} {fmt_time(r)} "
                  f"{length / 2**20:7.2f} MiB {blocks / 2**20:7.2f} MiB {length / raw:6.3f}",
                  flush=True)
    shutil.rmtree(args.work)


if __name__ == "__main__":
    main()
