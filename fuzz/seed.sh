#!/usr/bin/env bash
# Seed corpora for the fuzz targets from real files: the committed samples, the frozen v1
# store (its header, frames, metadata and compressed chunks), and the files the real numpy,
# safetensors, msgpack-numpy and onnx libraries write (tests/interop/formats_interop.py, when
# Python has them). Writes fuzz/corpus/<target>/; seeds over 256 KiB are left out (they only
# slow each execution). Safe to run again: it adds, never removes.
set -euo pipefail
cd "$(dirname "$0")"
root=..
c=corpus
mkdir -p "$c"/{frame_header,store_header,frame_meta,codec_decode,store_open}
mkdir -p "$c"/interop_{npy,npz,safetensors,msgpack,json,onnx,pickle}
mkdir -p "$c"/record_decode

py_fixtures=$(mktemp -d)
trap 'rm -rf "$py_fixtures"' EXIT
python3 "$root/tests/interop/pickle_interop.py" write "$py_fixtures/pickles" >/dev/null 2>&1 || true
if ! python3 "$root/tests/interop/formats_interop.py" write "$py_fixtures" >/dev/null 2>&1; then
    echo "seed: formats_interop.py did not run (numpy, safetensors, msgpack-numpy, onnx?); seeding from samples only" >&2
fi

python3 - "$root" "$c" "$py_fixtures" <<'PY'
import hashlib, os, struct, sys
from pathlib import Path

root, corpus, extra = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
LIMIT = 256 << 10

def put(target, data):
    if len(data) > LIMIT:
        return
    name = hashlib.sha1(data).hexdigest()
    (corpus / target / name).write_bytes(data)

# The store header and the frozen segment, frame by frame.
put("store_header", (root / "tests/fixtures/v1/ARCHIVE").read_bytes())
for seg in sorted((root / "tests/fixtures/v1/segments").glob("*.seg")):
    data = seg.read_bytes()
    put("store_open", data)
    put("frame_header", data[:64])
    at = 64
    while at + 64 <= len(data):
        if data[at:at + 4] != b"\x89MAF":
            at += 8
            continue
        codec = data[at + 7]
        meta_len, payload_off, payload_len = struct.unpack_from("<IIQ", data, at + 8)
        meta = data[at + 64:at + 64 + meta_len]
        payload = data[at + payload_off:at + payload_off + payload_len]
        end = at + payload_off + payload_len
        put("frame_header", data[at:at + 64 + meta_len])
        put("frame_meta", meta)
        if payload and b"record" in meta:
            put("frame_meta", payload)
        if codec in (1, 2) and payload:
            try:
                import msgpack
                obj = msgpack.unpackb(meta).get("object", {})
                raw_len, chunks = obj.get("raw_len", 0), obj.get("chunks", [])
                elem = {"F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I32": 4, "I64": 8}.get(obj.get("desc"), 1)
                parts, pos = [], 0
                for n in chunks:
                    parts.append(payload[pos:pos + n]); pos += n
                if raw_len < (4 << 20):
                    head = bytes([codec, elem]) + raw_len.to_bytes(3, "little")
                    put("codec_decode", head + b"\xfe".join(parts))
            except ImportError:
                pass
        # Small segments of one frame each, for the store target.
        put("store_open", data[:64] + data[at:(end + 7) // 8 * 8])
        at = (end + 7) // 8 * 8

# Interop readers: committed samples and whatever the real libraries wrote.
by_ext = {".npy": "interop_npy", ".npz": "interop_npz", ".safetensors": "interop_safetensors",
          ".msgpack": "interop_msgpack", ".json": "interop_json", ".pb": "interop_onnx",
          ".ndjson": "interop_json", ".pkl": "interop_pickle"}
files = list((root / "samples").glob("*")) + list(extra.rglob("*"))
for f in files:
    target = by_ext.get(f.suffix)
    if target and f.is_file():
        if f.suffix == ".ndjson":
            for line in f.read_bytes().splitlines()[:20]:
                put(target, line)
        else:
            put(target, f.read_bytes())
        # msgpack maps are records' shape: bytes, ext types, float32s and odd keys included.
        if f.suffix == ".msgpack":
            put("record_decode", f.read_bytes())
# Small files of the formats with few small fixtures, when the libraries are there.
try:
    import io, numpy as np, safetensors.numpy
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, 2], np.int64),
              "c": np.zeros((0, 2), np.uint8), "d": np.array(True)}
    put("interop_safetensors", safetensors.numpy.save(arrays, metadata={"run": "fuzz"}))
    put("interop_safetensors", safetensors.numpy.save({"x": arrays["a"]}))
    for compress in (np.savez, np.savez_compressed):
        buf = io.BytesIO(); compress(buf, **arrays); put("interop_npz", buf.getvalue())
except ImportError:
    pass
# Canonical records with every kind of value: a reference, bytes (ext 1), an extension
# value (ext 2), a float32, a map with an integer key, a nested record.
put("record_decode", bytes.fromhex(
    "87a172c420" + "11" * 32 + "a162d40163a165d6020501020fa166ca3dcccccd"
    "a16d8101a178" "a16e81a178c0" "a16c92c3c0"))
for d in sorted(corpus.iterdir()):
    print(f"{d.name}: {len(list(d.iterdir()))} seeds")
PY
