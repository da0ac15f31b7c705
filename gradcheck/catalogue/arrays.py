"""A case's arrays: drawn from numpy.random.default_rng([seed, crc32(name)]), so the case seed changes
every array and each array's values do not depend on which other arrays the case lists.

An array of more than BLOCK elements ("normal" or "uniform") is drawn in blocks of BLOCK consecutive flat
elements, filled on a thread pool (numpy's generators release the GIL): block 0 from that generator (so
the first BLOCK values are the ones a one-block array would get), block i > 0 from its own generator,
SeedSequence([seed, crc32(name)], spawn_key=(i,)) (independent streams, as SeedSequence.spawn makes
them). The values depend on the seed and the name only, never on the number of threads.
"""

from __future__ import annotations

import math
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from gradcheck.engine.threads import cpu_count

DTYPES = {"float64": np.float64, "float32": np.float32, "complex128": np.complex128,
          "int64": np.int64, "int32": np.int32}
BLOCK = 1 << 20  # elements per independently seeded block of a large random array (8 MB of float64)


def shape_of(spec: dict) -> tuple[int, ...]:
    if "values" in spec:
        return tuple(np.shape(spec["values"]))
    return tuple(spec["shape"])


def block_rng(seed: int, name: str, i: int) -> np.random.Generator:
    """The generator of flat block i of array `name` (block 0: the array's own generator)."""
    entropy = [int(seed), zlib.crc32(name.encode())]
    if i == 0:
        return np.random.default_rng(entropy)
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(i,)))


def draw(name: str, seed: int, shape: tuple[int, ...], real, init: str, scale: float) -> np.ndarray:
    """scale * standard normal (init "normal") or scale * uniform on [-1, 1) ("uniform") of `shape`, in
    the float dtype `real`, block by block (see the module's docstring)."""
    out = np.empty(shape, dtype=real)
    flat = out.reshape(-1)

    def fill(i):
        rng, part = block_rng(seed, name, i), flat[i * BLOCK:(i + 1) * BLOCK]
        if init == "uniform":  # 2 r - 1 in float64, then rounded (as rng.uniform(-1, 1).astype(real))
            r = part if real == np.float64 else np.empty(part.size)
            rng.random(out=r)
            r *= 2.0
            r -= 1.0
            if r is not part:
                part[...] = r
        else:
            rng.standard_normal(out=part, dtype=real)
        if scale != 1:
            part *= real(scale)

    blocks = -(-flat.size // BLOCK)
    workers = min(cpu_count(), blocks)
    if workers < 2:
        for i in range(blocks):
            fill(i)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(fill, range(blocks)))
    return out


def make_array(name: str, spec: dict, seed: int) -> np.ndarray:
    """Build one input array from its case entry (see the schema's ``init`` description)."""
    init = spec.get("init", "labels" if "classes" in spec else "normal")
    dtype = np.dtype(DTYPES[spec.get("dtype", "int64" if init == "labels" else "float64")])
    scale = spec.get("scale", 1.0)
    if "values" in spec:
        a = np.array(spec["values"], dtype=dtype)
        return a * dtype.type(scale) if "scale" in spec else a
    shape = tuple(spec["shape"])
    if init == "labels":
        rng = block_rng(seed, name, 0)
        return rng.integers(0, spec["classes"], size=shape).astype(dtype, copy=False)
    if init == "zeros":
        return np.zeros(shape, dtype=dtype)
    if init == "ones":
        return np.full(shape, scale, dtype=dtype)
    if init == "arange":
        a = np.arange(math.prod(shape), dtype=np.float64).reshape(shape) * scale
        return a.astype(dtype, copy=False)
    real = np.float32 if dtype == np.float32 else np.float64
    return draw(name, seed, shape, real, init, scale).astype(dtype, copy=False)
