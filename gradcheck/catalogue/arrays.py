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
MAX_DIMENSIONS = 32  # numpy's own limit is 64; a case with more is a mistake


def yaml_number(v) -> str:
    """A number as the case would spell it: .inf, -.inf, .nan, or Python's repr."""
    if isinstance(v, float) and not math.isfinite(v):
        return ".nan" if math.isnan(v) else ("-.inf" if v < 0 else ".inf")
    return repr(v)


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _values_shape(v, at: list, depth: int = 0) -> tuple[tuple[int, ...] | None, list, str]:
    """(shape, [], "") of nested lists of numbers, or (None, path, what was wrong) at the first problem."""
    if not isinstance(v, list):
        if _is_number(v):
            return (), [], ""
        got = f"{v!r}" if isinstance(v, str) else ("a mapping" if isinstance(v, dict) else yaml_number(v))
        return None, at, f"expected a number; got {got}"
    if depth >= MAX_DIMENSIONS:
        return None, at, f"expected at most {MAX_DIMENSIONS} nested lists"
    shapes = []
    for i, item in enumerate(v):
        shape, where, why = _values_shape(item, at + [i], depth + 1)
        if shape is None:
            return None, where, why
        if shapes and shape != shapes[0]:
            return None, at + [i], (f"expected nested lists of one rectangular shape; item {i} has shape "
                                    f"{list(shape)}, item 0 has shape {list(shapes[0])}")
        shapes.append(shape)
    return (len(v), *(shapes[0] if shapes else ())), [], ""


def _flat(v):
    if isinstance(v, list):
        for item in v:
            yield from _flat(item)
    else:
        yield v


def spec_problem(spec: dict, differentiable: bool) -> tuple[list, str] | None:
    """(path within the array's entry, what was expected) for the first thing wrong with an array entry
    that the schema cannot see, or None. Called before anything builds the array or takes its shape."""
    for i, n in enumerate(spec.get("shape", [])):
        if not isinstance(n, int) or isinstance(n, bool):
            return ["shape", i], f"expected an integer; got {yaml_number(n)}"
    scale = spec.get("scale")
    if scale is not None and not math.isfinite(scale):
        return ["scale"], f"expected a finite number; got {yaml_number(scale)}"
    init = spec.get("init", "labels" if "classes" in spec else None)
    if init == "labels" and "classes" not in spec:
        return [], "missing 'classes': init: labels draws integers in [0, classes)"
    if differentiable and init == "labels":
        return ["init"], ("expected a float init (normal, uniform, arange, zeros, ones) for a differentiable "
                          "input; labels are integers, for a constant such as a loss's targets")
    if "values" not in spec:
        return None
    shape, where, why = _values_shape(spec["values"], [])
    if shape is None:
        return ["values", *where], why
    dtype = np.dtype(DTYPES[spec.get("dtype", "float64")])
    for v in _flat(spec["values"]):
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            if not isinstance(v, int) or not info.min <= v <= info.max:
                return ["values"], f"expected integers within {dtype} (|v| < 2**{info.bits - 1}); got {v!r}"
        elif isinstance(v, int) and abs(v) > float(np.finfo(np.float64).max):
            return ["values"], "expected numbers within float64's range (|v| < 1.8e308); got an integer of " \
                               f"{len(str(abs(v)))} digits"
        elif differentiable and not math.isfinite(v):
            return ["values"], f"expected finite numbers for a differentiable input; got {yaml_number(v)}"
    return None
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


def dtype_of(spec: dict) -> np.dtype:
    """The dtype of an array entry: its ``dtype``, else int64 for labels, else float64."""
    init = spec.get("init", "labels" if "classes" in spec else "normal")
    return np.dtype(DTYPES[spec.get("dtype", "int64" if init == "labels" else "float64")])


def make_array(name: str, spec: dict, seed: int) -> np.ndarray:
    """Build one input array from its case entry (see the schema's ``init`` description)."""
    init = spec.get("init", "labels" if "classes" in spec else "normal")
    dtype = dtype_of(spec)
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
