"""A complex array checked as its real and imaginary parts, and reported as the complex array it is.

The convention (torch's): for the real L = Re(sum(conj(G) * y)), the gradient of a complex z is
dL/dRe(z) + i dL/dIm(z); for y = x * a that is dx = dy * conj(a). The Differencer perturbs a complex input
as the float64 (*S, 2) view of its parts (gradcheck.engine.differencing), so the strategies check
g_parts[..., 0] = Re(g) against dL/dRe(z) and g_parts[..., 1] = Im(g) against dL/dIm(z), every part a
coordinate of its own. as_complex() turns that ArrayResult back into the array's own: shape S, analytic
and numeric complex (numeric = dL/dRe + i dL/dIm, NaN where not checked), each element's index in S with
its part ("re" or "im"); real_view() goes the other way (the eps sweep of explain).
"""

from __future__ import annotations

import dataclasses

import numpy as np

PARTS = ("re", "im")


def as_real(g) -> np.ndarray:
    """A complex (or real) gradient of shape S as its float64 parts, shape (*S, 2)."""
    g = np.asarray(g)
    z = np.ascontiguousarray(g, dtype=np.complex128)
    return z.reshape(-1).view(np.float64).reshape(*g.shape, 2)


def _to_complex(a):
    if a is None:
        return None
    a = np.ascontiguousarray(a, dtype=np.float64)
    return a.reshape(-1).view(np.complex128).reshape(a.shape[:-1])


def _element(e):
    if e.index is None:
        return e
    tied = tuple(i[:-1] for i in e.tied)
    return dataclasses.replace(e, index=tuple(e.index[:-1]), part=None if e.tied else PARTS[e.index[-1]],
                               tied=tied)


def _element_back(e):
    if e.index is None:
        return e
    return dataclasses.replace(e, index=(*e.index, PARTS.index(e.part or "re")), part=None, tied=())


def as_complex(result):
    """The ArrayResult of a complex array's parts, reported as the complex array (see the module)."""
    return dataclasses.replace(
        result, shape=tuple(result.shape[:-1]), analytic=_to_complex(result.analytic),
        numeric=_to_complex(result.numeric), kinks=[_element(e) for e in result.kinks],
        worst=[_element(e) for e in result.worst], located=[_element(e) for e in result.located], parts=True)


def real_view(result):
    """as_complex() undone: the parts' ArrayResult (shape (*S, 2), float64 analytic), for a sweep along it."""
    return dataclasses.replace(
        result, shape=(*result.shape, 2),
        analytic=None if result.analytic is None else as_real(result.analytic),
        numeric=None if result.numeric is None else as_real(result.numeric),
        kinks=[_element_back(e) for e in result.kinks], worst=[_element_back(e) for e in result.worst],
        located=[_element_back(e) for e in result.located], parts=False)
