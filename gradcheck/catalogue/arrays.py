"""A case's arrays: drawn from numpy.random.default_rng([seed, crc32(name)]), so the case seed changes
every array and each array's values do not depend on which other arrays the case lists."""

from __future__ import annotations

import math
import zlib

import numpy as np

DTYPES = {"float64": np.float64, "float32": np.float32, "complex128": np.complex128,
          "int64": np.int64, "int32": np.int32}


def shape_of(spec: dict) -> tuple[int, ...]:
    if "values" in spec:
        return tuple(np.shape(spec["values"]))
    return tuple(spec["shape"])


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
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    if init == "labels":
        return rng.integers(0, spec["classes"], size=shape).astype(dtype, copy=False)
    if init == "zeros":
        return np.zeros(shape, dtype=dtype)
    if init == "ones":
        return np.full(shape, scale, dtype=dtype)
    if init == "arange":
        a = np.arange(math.prod(shape), dtype=np.float64).reshape(shape) * scale
        return a.astype(dtype, copy=False)
    real = np.float32 if dtype == np.float32 else np.float64
    if init == "uniform":
        a = rng.uniform(-1.0, 1.0, size=shape).astype(real, copy=False)
    else:
        a = rng.standard_normal(size=shape, dtype=real)
    if scale != 1:
        a *= real(scale)
    return a.astype(dtype, copy=False)


