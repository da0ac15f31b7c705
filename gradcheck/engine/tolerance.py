"""Tolerances, derived from an error model of both sides of the comparison (each method's own part in
gradcheck.engine.methods).

An element passes when ``|analytic - numeric| <= atol + rtol * |numeric|``. Both sides carry error;
the tolerance is the sum of the two error bounds, each written below with the constant that bounds it.

Notation: u(dtype) = unit roundoff (2^-53 = 1.1e-16 for float64, 2^-24 = 6.0e-8 for float32);
L(a) = sum(G * y(a)), S = sum(|G * y|) at the base point (the size of the terms of L);
scale = the size of the terms of the analytic value: RMS of the analytic gradient for a coordinate
check, sum(|g * u|) for a directional check along u (a dot product of n terms).

Numeric side (always evaluated in float64, also for float32 cases):

- central, ``(L(a + h) - L(a - h)) / 2h``:
    truncation  h^2/6 |L'''|.  We assume |L'''| <= TRUNCATION_BOUND * |L'| in units of the input
                (steep sigmoids, exp, products of a few factors), so rtol >= TRUNCATION_BOUND h^2 / 6.
    rounding    each evaluation of L is exact to ROUNDING_BOUND * u * S (the forward's own depth and
                the sum over outputs), the difference quotient to ROUNDING_BOUND * u * S / h: an absolute
                term (it does not shrink with the derivative). The checker differences y, not L
                (sum(G * (y+ - y-))), which only makes the real error smaller than this bound.
    h = CENTRAL_EPS = u64^(1/3) = 6.06e-6 balances the two (the classical cube-root rule), giving
    rtol = 6.1e-9: central differences cannot resolve a gradient off by 1e-9 relative.
- complex step, ``Im L(a + i h) / h``: no subtraction, so no cancellation; truncation h^2 |L'''|/6 is
    ~1e-40 at h = COMPLEX_EPS = 1e-20. What remains is rounding of the (complex) forward, of the
    same kind as the analytic side's: ANALYTIC_TERMS * u64 relative to ``scale``.

Analytic side (the layer's own backward, run in the arrays' dtype):
    rounding of sums of products: a sum of n terms carries <= n u sum|terms| in the worst case and
    ~sqrt(n) u sum|terms| typically; ANALYTIC_TERMS = 1024 covers ~1000-term sums at the worst-case
    rate (millions at the typical one). Relative to the value: ANALYTIC_TERMS * u(dtype); near values
    that cancel to ~0 the same bound applies to ``scale`` (the atol part).
    float64: 1024 * 1.1e-16 = 1.1e-13.  float32: 1024 * 6.0e-8 = 6.1e-5 (the analytic runs in float32 on
    float32 arrays; the numeric runs on exact float64 copies of the same values, so the float32 rounding
    of the backward, and of the forward that fed its cache, is the whole error budget).

Hence, per array::

    rtol = numeric_rtol(method, h) + ANALYTIC_TERMS * u(dtype)
    atol = rtol * scale + [central only] ROUNDING_BOUND * u64 * S / h

float64 complex step: rtol = 2.2e-13 (a 1e-9 relative error is ~4500x the tolerance); central: 6.1e-9.
A method may instead bound its numeric side a posteriori, per element, from its own evaluations
(methods.base.Bound: richardson's rounding and truncation), which then replaces the rounding term of atol.

Kinks (central only). The one-sided differences right = (L(a+h) - L(a))/h and left = (L(a) - L(a-h))/h
of a smooth function differ by ~h |L''| <= TRUNCATION_BOUND * h * |L'| plus twice the rounding term
2 ROUNDING_BOUND * u S / h each; a larger disagreement means L is not differentiable within [a-h, a+h].
"""

from __future__ import annotations

import numpy as np

TRUNCATION_BOUND = 1000.0  # assumed |L'''| / |L'| (and |L''| / |L'|) in units of the input
ROUNDING_BOUND = 8.0  # rounding of one evaluation of L, in units of u * sum|G * y|
ANALYTIC_TERMS = 1024.0  # rounding of a sum of products, in units of u * sum|terms|

# Re-testing a central-difference failure at smaller steps. A right gradient next to a kink (a ReLU
# pre-activation or a max-pool tie within eps of the point: in a stack one bias moves thousands of them)
# fails at eps because [a - eps, a + eps] straddles the kink, and passes once the step is below the
# distance to it; a wrong gradient plateaus at every step. The smaller step's tolerance is the error model's
# at that step (its rounding term grows as 1/h), so the error must also really fall: truncation falls
# 100x per 10x step, a plateau not at all.
REFINE_FACTORS = (10.0, 100.0)  # steps eps/10, eps/100
REFINE_DROP = 0.25  # cleared only if the error fell at least 4x below its value at eps
REFINE_LIMIT = 64  # failures re-tested one coordinate at a time; more re-run the exhaustive plan


def unit_roundoff(dtype) -> float:
    """u = 2^-p for a binary floating type (half the machine epsilon); complex types use their real part."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        dtype = np.empty(0, dtype).real.dtype
    if dtype.kind != "f":
        dtype = np.dtype(np.float64)
    return float(np.finfo(dtype).eps) / 2


def _method(method):
    from gradcheck.engine import methods

    return methods.get(method)


def default_eps(method, dtype=np.float64) -> float:
    """Step size for `method` (a name or Method) when the numerics run in `dtype` (float64 here)."""
    return _method(method).default_eps(dtype)


def numeric_rtol(method, eps: float) -> float:
    """Relative error of the numeric derivative (float64 numerics): the method's error model."""
    return _method(method).numeric_rtol(eps)


def analytic_rtol(dtype) -> float:
    """Relative rounding error of the analytic gradient computed in `dtype`."""
    return ANALYTIC_TERMS * unit_roundoff(dtype)


def default_rtol(method: str, eps: float, dtype) -> float:
    """rtol = numeric side + analytic side (see module docstring)."""
    return numeric_rtol(method, eps) + analytic_rtol(dtype)


def rounding_atol(method, eps: float, S: float) -> float:
    """Absolute rounding error of the method's difference quotient of L whose terms sum to S in magnitude."""
    return _method(method).rounding_atol(eps, S)


def default_atol(method: str, eps: float, rtol: float, scale: float, S: float, bound=None):
    """atol = rtol * scale (values that cancel to ~0) + the numeric side's absolute error: the method's
    rounding floor (central: its difference quotient's), or `bound`, the Bound a method with an a-posteriori
    model measured with the values (methods.base.Bound; per element: then atol is an array)."""
    if bound is not None:
        return rtol * scale + bound.total
    return rtol * scale + rounding_atol(method, eps, S)


def tolerance(numeric, rtol: float, atol: float):
    """Per-element tolerance ``atol + rtol * |numeric|`` (numeric may be an array)."""
    return atol + rtol * np.abs(numeric)


def kink_threshold(left, right, eps: float, rounding: float):
    """Largest disagreement of one-sided differences that a smooth L can produce.

    right - left ~ h L''(a) <= TRUNCATION_BOUND h |L'|, plus each one-sided quotient's rounding, which is
    twice the central quotient's (divided by h, not 2h).
    """
    size = np.maximum(np.abs(left), np.abs(right))
    return TRUNCATION_BOUND * eps * size + 4 * rounding


def one_sided_error(left, right, eps: float, rounding: float):
    """Error bound of a one-sided difference: truncation h/2 |L''| plus rounding (2x the central one's)."""
    size = np.maximum(np.abs(left), np.abs(right))
    return TRUNCATION_BOUND * eps / 2 * size + 2 * rounding
