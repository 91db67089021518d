"""The Parquet peer of `find-bench`: the same records as a zstd Parquet file written by pyarrow.

    python3 tools/parquet_peer.py STREAM.msgpack OUT.parquet

Reads the msgpack-numpy stream `find-bench` logs, writes one table (probs as a fixed-size list of
10 float32, label and pred as int64, id, run and split as strings) with `compression="zstd"`,
then reads the probs column back. Prints JSON: rows, bytes, write_s, read_probs_s (median of 5).
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


def main() -> None:
    src, out = sys.argv[1], sys.argv[2]
    cols = {k: [] for k in ("probs", "label", "pred", "id", "run", "split")}
    with open(src, "rb") as f:
        for rec in msgpack.Unpacker(f, object_hook=msgpack_numpy.decode, raw=False):
            for k, v in cols.items():
                v.append(rec[k])
    probs = np.stack(cols["probs"]).astype(np.float32)
    table = pa.table(
        {
            "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), 10),
            "label": pa.array(cols["label"], pa.int64()),
            "pred": pa.array(cols["pred"], pa.int64()),
            "id": pa.array(cols["id"]),
            "run": pa.array(cols["run"]),
            "split": pa.array(cols["split"]),
        }
    )
    start = time.perf_counter()
    pq.write_table(table, out, compression="zstd")
    write_s = time.perf_counter() - start
    reads = []
    for _ in range(5):
        start = time.perf_counter()
        pq.read_table(out, columns=["probs"])
        reads.append(time.perf_counter() - start)
    reads.sort()
    print(
        json.dumps(
            {
                "rows": table.num_rows,
                "bytes": os.path.getsize(out),
                "write_s": write_s,
                "read_probs_s": reads[2],
            }
        )
    )


if __name__ == "__main__":
    main()
