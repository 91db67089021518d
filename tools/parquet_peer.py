"""The Parquet peer of `find-bench`: the same records as a zstd Parquet file written by pyarrow.

    python3 tools/parquet_peer.py STREAM.msgpack OUT.parquet
    python3 tools/parquet_peer.py --read STORE OUT.parquet
    python3 tools/parquet_peer.py --rewrite TABLE.parquet OUT.parquet

Reads the msgpack-numpy stream `find-bench` logs, writes one table (probs as a fixed-size list of
10 float32, label and pred as int64, id, run and split as strings) with `compression="zstd"`, a
row group per 1,000,000 records, then reads the probs column back. Prints JSON: rows, bytes,
write_s (pyarrow's writing alone), read_probs_s (median of 5).

With --read, in one process, medians of 5: `Archive.stack('', "probs")` and
`Archive.table('', columns=["probs"])` of the store (opened once, as a notebook would) beside
`pyarrow.parquet.read_table(OUT, columns=["probs"])`; prints JSON: stack_s, table_s, read_s,
and whether the arrays are equal.

With --rewrite, the table of TABLE.parquet (an `archive export`) is read into memory and
written again by pyarrow (zstd, the same row groups), median of 3: the same table beside the
archive's export of it. Prints JSON: write_s.
"""

import json
import os
import sys
import time

import msgpack
import msgpack_numpy
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

BATCH = 1_000_000


def table(cols: dict) -> pa.Table:
    probs = np.stack(cols["probs"]).astype(np.float32)
    return pa.table(
        {
            "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), 10),
            "label": pa.array(cols["label"], pa.int64()),
            "pred": pa.array(cols["pred"], pa.int64()),
            "id": pa.array(cols["id"]),
            "run": pa.array(cols["run"]),
            "split": pa.array(cols["split"]),
        }
    )


def median(f, n=5) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return sorted(times)[n // 2]


def read_side_by_side(store: str, parquet: str) -> None:
    import model_archive as ma

    a = ma.Archive.open(store)
    stack_s = median(lambda: a.stack("", "probs"))
    table_s = median(lambda: a.table("", columns=["probs"]))
    read_s = median(lambda: pq.read_table(parquet, columns=["probs"]))
    ours = a.stack("", "probs")
    theirs = pq.read_table(parquet, columns=["probs"])["probs"].combine_chunks()
    equal = bool(np.array_equal(ours, theirs.flatten().to_numpy().reshape(ours.shape)))
    print(json.dumps({"stack_s": stack_s, "table_s": table_s, "read_s": read_s, "equal": equal}))


def rewrite(src: str, out: str) -> None:
    f = pq.ParquetFile(src)
    rows = f.metadata.row_group(0).num_rows if f.metadata.num_row_groups else None
    t = f.read()
    write_s = median(lambda: pq.write_table(t, out, compression="zstd", row_group_size=rows), 3)
    print(json.dumps({"write_s": write_s}))


def main() -> None:
    if sys.argv[1] == "--read":
        read_side_by_side(sys.argv[2], sys.argv[3])
        return
    if sys.argv[1] == "--rewrite":
        rewrite(sys.argv[2], sys.argv[3])
        return
    src, out = sys.argv[1], sys.argv[2]
    names = ("probs", "label", "pred", "id", "run", "split")
    cols = {k: [] for k in names}
    rows, write_s, writer = 0, 0.0, None

    def flush() -> None:
        nonlocal writer, write_s, rows
        t = table(cols)
        start = time.perf_counter()
        if writer is None:
            writer = pq.ParquetWriter(out, t.schema, compression="zstd")
        writer.write_table(t)
        write_s += time.perf_counter() - start
        rows += t.num_rows
        for v in cols.values():
            v.clear()

    with open(src, "rb") as f:
        for rec in msgpack.Unpacker(f, object_hook=msgpack_numpy.decode, raw=False):
            for k, v in cols.items():
                v.append(rec[k])
            if len(cols["id"]) == BATCH:
                flush()
    if cols["id"] or writer is None:
        flush()
    writer.close()
    reads = []
    for _ in range(5):
        start = time.perf_counter()
        pq.read_table(out, columns=["probs"])
        reads.append(time.perf_counter() - start)
    reads.sort()
    print(
        json.dumps(
            {"rows": rows, "bytes": os.path.getsize(out), "write_s": write_s, "read_probs_s": reads[2]}
        )
    )


if __name__ == "__main__":
    main()
