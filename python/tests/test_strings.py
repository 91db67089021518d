"""String tensors (numpy's fixed-width `<U` and `S` arrays) and the dtypes that are refused,
through the Python bindings."""
import numpy as np
import pytest

import model_archive as ma


def test_string_arrays_round_trip_with_their_width_and_one_hash(archive):
    text = np.array([["cat", "dog"], ["é🙂", ""]])
    raw = np.array([b"ab", b"", b"x\x00y"])
    for a in [text, raw]:
        h = archive.put(a)
        back = archive.get(h)
        assert back.dtype == a.dtype and back.shape == a.shape
        assert np.array_equal(back, a)
        # Byte order and memory layout do not change the address.
        assert archive.put(np.asfortranarray(a)) == h
    assert archive.put(text.astype(">U3")) == archive.put(text)
    assert archive.info(archive.put(text))["dtype"] == "STR3"
    rec = archive.get(archive.put({"labels": text, "score": 0.5}))
    assert np.array_equal(rec["labels"], text) and rec["labels"].dtype == text.dtype


def test_string_arrays_stack_and_show(archive):
    for word in ["cat", "dog", "owl"]:
        archive.put({"label": np.array([word, word.upper()])}, tags={"run": "a"})
    stacked = archive.stack('run = "a"', "label")
    assert stacked.dtype == np.dtype("<U3")
    assert stacked.tolist() == [["cat", "CAT"], ["dog", "DOG"], ["owl", "OWL"]]
    shown = archive.show(archive.put(np.array(["a", "b"])))
    assert (shown["dtype"], shown["count"], shown["min"]) == ("STR1", 2, None)


@pytest.mark.parametrize("dtype", ["datetime64[ns]", "timedelta64[s]"])
def test_datetime_arrays_are_refused_saying_so(archive, dtype):
    with pytest.raises(ma.InvalidInput, match="datetime64 and timedelta64"):
        archive.put(np.array([1, 2], dtype=dtype))
