"""model_archive: a persistent, content-addressed, compressed archive for model outputs.

``Archive(path)`` opens or creates a store; ``put`` stores numpy arrays, text, bytes and
records; ``get`` returns them (arrays zero-copy from the memory map when stored raw);
``entries``/``query`` list what was logged; ``writer`` batches many puts into one fsync.
"""

import datetime
import os
from types import TracebackType
from typing import Any, Literal, Mapping, Optional, Union

import numpy as np

__version__: str

TagValue = Union[str, int, float]
Tags = Mapping[str, TagValue]
StrPath = Union[str, "os.PathLike[str]"]
Hash = str
"""64 hex digits (blake3); where a hash is taken, a unique prefix of at least 4 digits works."""

class ArchiveError(Exception):
    """Base class of every error the archive raises."""

class NotFound(ArchiveError):
    """No object matches the hash or prefix."""

class Removed(NotFound):
    """The object's entries were removed and `archive gc` dropped it."""

class Ambiguous(ArchiveError):
    """A short hash matches more than one object."""

class Corrupt(ArchiveError):
    """Stored bytes do not decode or do not hash back to their address."""

class NeedsMigration(ArchiveError):
    """The store was written by an older schema version; run `archive migrate`."""

class TooNew(ArchiveError):
    """The store was written by a newer version of model-archive."""

class Locked(ArchiveError):
    """Another process holds the store's index; the message names it."""

class InvalidInput(ArchiveError):
    """Input that cannot be stored as given (dtype, tag, record field ...)."""

class NoStore(ArchiveError):
    """No archive at the path (`Archive.open`)."""

class AlreadyExists(ArchiveError):
    """`Archive.create` on a path that already holds something."""

class IoError(ArchiveError):
    """An I/O error on a named file."""

class IndexFailed(ArchiveError):
    """The index failed; `archive reindex` rebuilds it from the segments."""

class RemoteError(ArchiveError):
    """A remote failed. `failure` says why: "unreachable" (the server), "denied" (the
    credentials), "missing" (no bucket or no archive at the URL), "damaged" (a remote object
    truncated or not hashing to its name), "unknown" (no remote of that name), "other"."""

    failure: str

class Ref:
    """A reference to another object in the archive, as a record field holds it."""

    def __init__(self, hash: Hash) -> None: ...
    @property
    def hash(self) -> Hash: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class Mapped:
    """The memory behind an array from `get` (its `base`): the memory map itself when
    `zero_copy` (raw tensors over 4 KiB), else a decoded or copied buffer. Read-only buffer
    protocol."""

    @property
    def zero_copy(self) -> bool: ...
    @property
    def hash(self) -> Hash: ...
    def __len__(self) -> int: ...
    def __buffer__(self, flags: int) -> memoryview: ...

class OwnedBytes:
    """The memory behind an array from `stack` and `get(..., rows=...)` (its `base`): the
    bytes the store made, handed over without a copy. Writable buffer protocol."""

    def __len__(self) -> int: ...
    def __buffer__(self, flags: int) -> memoryview: ...

class Entry:
    """One act of logging: which object, when, with which tags."""

    @property
    def seq(self) -> int:
        """Sequence number, in logging order."""
    @property
    def hash(self) -> Hash: ...
    @property
    def time(self) -> datetime.datetime:
        """When it was logged, timezone-aware UTC (microseconds; `time_ns` has all of it)."""
    @property
    def time_ns(self) -> int: ...
    @property
    def tags(self) -> dict[str, str]: ...

# What `put` takes: an array-like (ndarray, numpy scalar, torch/jax CPU tensor, memoryview,
# anything with __array__ / __array_interface__ / __dlpack__), str, bytes, or a record dict.
Storable = Any
# What `get` returns: np.ndarray (read-only), str, bytes, or dict (record / categorical).
Stored = Union[np.ndarray, str, bytes, dict[str, Any]]

class Writer:
    """A batch of puts that become durable and visible together, with one fsync, at
    `commit()`. Leaving a `with` block commits, also on an exception (what was logged
    before it is kept); `discard()` drops the uncommitted puts."""

    def put(
        self, obj: Storable, *, tags: Optional[Tags] = None, media_type: Optional[str] = None
    ) -> Hash:
        """Store `obj` as `Archive.put` does, in this batch; returns its hash."""
    def commit(self) -> None:
        """Make every put since the last commit durable (one fsync) and visible."""
    def discard(self) -> None:
        """Undo every put since the last commit, leaving the store as it was; closes."""
    def close(self) -> None:
        """Commit and close. Calling it twice does nothing."""
    @property
    def pending(self) -> int:
        """Number of puts since the last commit."""
    def __enter__(self) -> "Writer": ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> Literal[False]: ...

class Archive:
    """An archive of model outputs. `Archive(path)` opens the store at `path`, creating it if
    there is none. While open, this process holds the store's index: another process opening
    it waits up to `lock_timeout` seconds, then raises `Locked`. Close it (or use `with`)."""

    def __init__(
        self, path: StrPath, *, lock_timeout: float = 10.0, zstd_level: Optional[int] = None
    ) -> None: ...
    @staticmethod
    def open(path: StrPath, *, lock_timeout: float = 10.0) -> "Archive":
        """Open an existing store; raises `NoStore` if there is none."""
    @staticmethod
    def create(
        path: StrPath, *, lock_timeout: float = 10.0, zstd_level: Optional[int] = None
    ) -> "Archive":
        """Create a new store; raises `AlreadyExists` if `path` holds something."""
    @property
    def path(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    def put(
        self,
        obj: Storable,
        *,
        tags: Optional[Tags] = None,
        media_type: Optional[str] = None,
        codec: Optional[Literal["raw", "zstd", "shuffle-zstd"]] = None,
        level: Optional[int] = None,
    ) -> Hash:
        """Store `obj` and log an entry for it with `tags`; returns its hash.

        ndarray / array-like -> tensor (C-contiguous little-endian input is not copied);
        str -> text; bytes -> bytes (with `media_type`); dict -> record (arrays inside are
        stored as tensors and referred to by hash). `codec="raw"` stores it memory-mappable
        (then `get` is zero-copy); the default compresses where that pays."""
    def get(self, hash: Hash, *, verify: bool = True, rows: Optional[slice] = None) -> Stored:
        """Get an object: a read-only ndarray, str, bytes or dict. `rows=slice(a, b)` reads
        those rows of a tensor, decoding only the chunks that hold them (not re-hashed).

        A tensor stored raw in a frame of its own (over 4 KiB) is the memory map itself, no
        copy (`np.shares_memory` of two gets is true); small tensors (packed) and compressed
        ones come back in a fresh buffer. Checked against its hash unless `verify=False`,
        which makes a raw tensor's get O(1) in its size (damage is then found by `verify()`).
        """
    def diff(
        self,
        a: str,
        b: str,
        *,
        by: Optional[str] = None,
        rtol: Optional[float] = None,
        atol: Optional[float] = None,
        top: int = 10,
        table: bool = True,
    ) -> dict[str, Any]:
        """How two objects differ (b the reference), or with `by`, two queries' entries
        paired by that key: the figures `archive --json diff` prints, and under `table` a
        pyarrow.Table with a row per key (key, status, a, b, max_abs, mismatched,
        argmax_flipped)."""
    def show(self, hash: Hash) -> dict[str, Any]:
        """A tensor's figures as `archive show` gives them: counts of NaN, infinities and
        zeros; numpy's min, max, mean, std, quantiles and 20-bin histogram of the finite
        values; argmax counts of probability rows."""
    def resolve(self, prefix: str) -> Hash: ...
    def __contains__(self, hash: str) -> bool: ...
    def info(self, hash: Hash) -> dict[str, Any]:
        """hash, kind, dtype, shape, desc, raw_len, stored_len, codec."""
    def entries(
        self, *, tags: Optional[Tags] = None, limit: Optional[int] = None
    ) -> list[Entry]:
        """Entries newest first, those whose tags include every given key=value."""
    def query(self, query: str, *, limit: Optional[int] = None) -> list[Entry]:
        """Entries matching a query (`run = "exp1" and split = "test"`), newest first."""
    def stack(self, query: str, field: Optional[str] = None) -> np.ndarray:
        """One tensor field (a record field's path; none: the entries' own tensors) of every
        entry the query matches, as one array [N, ...], rows oldest first: writable, and a
        view of the bytes the store stacked (no copy)."""
    def table(self, query: str, *, columns: Optional[list[str]] = None) -> Any:
        """The entries the query matches as a pyarrow.Table, a row per entry oldest first:
        time, hash, then a column per record field and tag key (`columns` picks them)."""
    def entries_of(self, hash: Hash) -> list[Entry]: ...
    def stats(self) -> dict[str, Any]: ...
    def rm(self, query: str, dry_run: bool = False) -> dict[str, Any]:
        """Remove every entry `query` matches: entries, objects, stored_bytes, dry_run."""
    def gc(self, dry_run: bool = False, min_dead: float = 0.1) -> dict[str, Any]:
        """Get back the space of removed entries: segments_replaced, bytes_reclaimed, ..."""
    @staticmethod
    def clone(
        url: str, path: str | os.PathLike[str], *, endpoint: Optional[str] = None, lock_timeout: float = 10.0
    ) -> Archive:
        """Clone the archive at `url` (s3://BUCKET/PREFIX or file:///PATH) into `path` and open
        it; its remote is named `origin`. `endpoint`: an S3 server other than AWS's."""
    def remote_add(self, name: str, url: str, *, endpoint: Optional[str] = None) -> None:
        """Add a remote by name, as `archive remote add`."""
    def remotes(self) -> dict[str, dict[str, Any]]:
        """The remotes: name to {"url": ..., "endpoint": ...}."""
    def push(self, remote: Optional[str] = None) -> dict[str, Any]:
        """Upload what the remote lacks: pieces, bytes, segments, tables, requests, seconds."""
    def pull(self, remote: Optional[str] = None) -> dict[str, Any]:
        """Download what this store lacks, check and index it; damaged objects under `damaged`."""
    def verify(self) -> list[str]:
        """Re-read and re-hash everything; the problems found (empty when all is well)."""
    def writer(
        self,
        *,
        tags: Optional[Tags] = None,
        codec: Optional[Literal["raw", "zstd", "shuffle-zstd"]] = None,
        level: Optional[int] = None,
    ) -> Writer:
        """A batch writer: many puts, one fsync at `commit()` or the end of `with`."""
    def release_index(self) -> None:
        """Hand the index to other processes while idle; it is taken again when needed."""
    def close(self) -> None: ...
    def __enter__(self) -> "Archive": ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> Literal[False]: ...
