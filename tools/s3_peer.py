#!/usr/bin/env python3
"""The peer of `remote-bench` (benches/remote_bench.rs): one ranged GET with boto3, timed inside
the process (client made before the clock starts), and the bytes' count.

    python3 tools/s3_peer.py ENDPOINT BUCKET KEY START END   # prints {"seconds": ..., "bytes": ...}

Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. Needs boto3 (pip install boto3).
"""

import json
import sys
import time

import boto3


def main():
    endpoint, bucket, key, start, end = sys.argv[1:6]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    t = time.perf_counter()
    body = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{int(end) - 1}")["Body"].read()
    took = time.perf_counter() - t
    print(json.dumps({"seconds": took, "bytes": len(body)}))


if __name__ == "__main__":
    main()
