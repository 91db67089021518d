"""Real jax arrays (CPU) go in as they are: the same hash as the numpy array with the same
values, dtypes kept (bfloat16 included), records with jax fields. `.ci/run` installs jax from
python/requirements-dev.txt. torch is not installed here: PyPI's torch wheel pulls several GB
of CUDA libraries and PyTorch's CPU-only index is not reachable from this machine, so torch
tensors are covered by the `__array__` stand-in in test_roundtrip.py."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

jax.config.update("jax_platforms", "cpu")


def test_jax_arrays_store_as_their_numpy_values(archive):
    x = jnp.arange(24, dtype=jnp.float32).reshape(4, 6) / 7
    h = archive.put(x, tags={"framework": "jax"})
    assert h == archive.put(np.asarray(x)), "a jax array hashes as the same numpy array"
    back = archive.get(h)
    assert back.dtype == np.float32 and back.shape == (4, 6)
    assert np.array_equal(back, np.asarray(x))


def test_jax_bfloat16_and_integers_keep_their_dtypes(archive):
    b = jnp.linspace(-2, 2, 10, dtype=jnp.bfloat16)
    back = archive.get(archive.put(b))
    assert back.dtype == ml_dtypes.bfloat16
    assert np.array_equal(back.view(np.uint16), np.asarray(b).view(np.uint16))
    i = jnp.arange(5, dtype=jnp.int32) * -3
    assert np.array_equal(archive.get(archive.put(i)), np.asarray(i))


def test_jax_fields_of_a_record(archive):
    logits = jax.random.normal(jax.random.PRNGKey(0), (3, 10), dtype=jnp.float32)
    h = archive.put({"logits": logits, "label": 3})
    rec = archive.get(h)
    assert rec["label"] == 3
    assert np.array_equal(rec["logits"], np.asarray(logits))
