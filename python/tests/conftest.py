import pytest

import model_archive as ma


@pytest.fixture
def archive(tmp_path):
    with ma.Archive(tmp_path / "runs.archive") as a:
        yield a


def mapped_of(arr):
    """Follow an array's base chain (arrays, memoryviews) to the object that owns its memory."""
    base = arr
    while True:
        nxt = getattr(base, "base", None)
        if nxt is None:
            nxt = getattr(base, "obj", None)  # a memoryview's exporter
        if nxt is None:
            return base
        base = nxt
