"""What a store's pack tag sets cost a reader: every pack body decompressed whole (tag sets
inline, as layouts 0 to 2 store them) against the body without them and the tag sets alone,
each compressed as a writer does (the body at zstd level 4, the tag sets alone at level 1, as
layout 3 stores them). The measure behind schema v8's layout 3 (FORMAT.md, "Pack frames").

    python3 tools/tag_sets_apart.py STORE

Reads every zstd-compressed pack frame of STORE's segments (layouts 2 and 3), prints for each
form the time to decompress all of them on one core (best of 5), and their sizes.
"""

import glob
import os
import struct
import sys
import time

import msgpack
import zstandard

MAGIC = b"\x89MAF"
PACK = 3
ZSTD = 1


def varint(b: bytes, at: int) -> tuple[int, int]:
    v, shift = 0, 0
    while True:
        x = b[at]
        at += 1
        v |= (x & 0x7F) << shift
        shift += 7
        if x < 0x80:
            return v, at


def bodies(store: str):
    """Each pack body, decompressed, its tag sets as their msgpack array."""
    d = zstandard.ZstdDecompressor()
    for seg in sorted(glob.glob(os.path.join(store, "segments", "*.seg"))):
        b = open(seg, "rb").read()
        at = 64
        while at + 64 <= len(b):
            h = b[at : at + 64]
            if h[:4] != MAGIC:
                at += 8
                continue
            payload_off, = struct.unpack_from("<I", h, 12)
            payload_len, = struct.unpack_from("<Q", h, 16)
            if h[6] == PACK and h[7] == ZSTD:
                p = b[at + payload_off : at + payload_off + payload_len]
                body = msgpack.unpackb(d.decompress(p, max_output_size=1 << 30), raw=False)
                tags = body[1]
                if isinstance(tags, bytes):  # layout 3: count, length, a zstd frame
                    _, i = varint(tags, 0)
                    n, i = varint(tags, i)
                    tags = d.decompress(tags[i:], max_output_size=n)
                else:
                    tags = msgpack.packb(tags)
                yield body, tags
            at += (payload_off + payload_len + 7) // 8 * 8


def main() -> None:
    c4, c1 = zstandard.ZstdCompressor(level=4), zstandard.ZstdCompressor(level=1)
    whole, rest, tags = [], [], []
    for body, t in bodies(sys.argv[1]):
        inline = list(body)
        inline[1] = msgpack.unpackb(t, raw=False)
        inline[-1] = 2
        apart = list(body)
        apart[1] = b""
        whole.append(c4.compress(msgpack.packb(inline, use_bin_type=True)))
        rest.append(c4.compress(msgpack.packb(apart, use_bin_type=True)))
        tags.append(c1.compress(t))
    d = zstandard.ZstdDecompressor()
    for name, frames in (("whole, tags inline", whole), ("without tags", rest), ("tags alone", tags)):
        best, raw = float("inf"), 0
        for _ in range(5):
            start = time.perf_counter()
            raw = sum(len(d.decompress(f, max_output_size=1 << 30)) for f in frames)
            best = min(best, time.perf_counter() - start)
        stored = sum(map(len, frames))
        print(f"{name:18s} {best * 1e3:7.1f} ms  decoded {raw / 1e6:7.1f} MB  stored {stored / 1e6:6.2f} MB  ({len(frames)} packs)")


if __name__ == "__main__":
    main()
