"""Richardson extrapolation of central differences: a fourth-order method for layers that are not
complex-safe, with a per-element a-posteriori error bound.

Notation as in gradcheck.engine.tolerance: L(a) = sum(G * y(a)) along one coordinate (or one direction)
of a, u = unit roundoff of float64 (the numerics run in float64), h the step, and

    D(h)   = (L(a + h) - L(a - h)) / 2h          central difference
    E(h)   = L(a + h) + L(a - h) - 2 L(a)        its even counterpart (a second difference)
    R      = (4 D(h) - D(2h)) / 3 = (8 [L(a+h) - L(a-h)] - [L(a+2h) - L(a-2h)]) / 12h

R is the classical 4-point stencil: 4 forwards per group of coordinates (L(a) is shared with every group),
twice central's 2. Taylor, for a smooth L:

    D(h) = L' + h^2 L'''/6 + h^4 L5/120 + ...          R = L' - h^4 L5/30 + ...
    D(h) - D(2h)   = -h^2 L'''/2 - h^4 L5/8 + ...
    E(2h) - 4 E(h) =  h^4 L4 + h^6 L6/6 + ...

Error model (numeric side; the analytic side is tolerance.analytic_rtol, as for every method):

- truncation, a posteriori, per element. L is assumed to vary on a length scale of at least 1/B in units
  of the input, B = sqrt(TRUNCATION_BOUND) = 31.6 (the scale of central's |L'''| <= B^2 |L'|): each
  further derivative costs at most a factor B, |L5| <= B^2 |L'''| + B |L4| at a, and the expansions' later
  terms are smaller than their first by ~(2hB)^2 (6e-4 at the default step). The third and fourth
  derivatives are measured by the same evaluations, |L'''| = 2 |D(h) - D(2h)| / h^2 and
  |L4| = |E(2h) - 4 E(h)| / h^4, so

      truncation = (B^2 h^2 / 15) |D(h) - D(2h)| + (B / 30) |E(2h) - 4 E(h)|     >= h^4 |L5| / 30.

  The L4 term covers a point where L''' happens to vanish; the bound fails only where L''' and L4 are
  both small at once (a double zero of L'''). A fixed bound like central's (B^4 h^4 / 30 relative, 8e-10
  at h = 4e-4) would make a relative error of 1e-10 unresolvable; the a-posteriori one is a few 1e-12 on
  dW of tanh(x W + b) (batch 16, 100 -> 10), a fifth of the rounding term. The measured differences
  include their own rounding, which only enlarges the bound.
- rounding: each evaluation of L, restricted to the outputs a coordinate's value is summed over, is exact
  to ROUNDING_BOUND u S_j (tolerance's model), and R's combination has sum |coefficients| / 12 = 18/12:

      rounding = 1.5 rho,   rho = ROUNDING_BOUND u S_j / h   (the central quotient's at h).

  S_j: with a verified structure (a Group's labels), a coordinate's value is the sum over its footprint
  only (the outputs its label names; outputs outside it are structurally unreachable, hence bit-identical
  in every evaluation); S_j = sum over the footprint of |G| max(Y, the largest |y| of the five
  evaluations). Without structure (a single coordinate, a direction) S_j is the sum over the whole output.
  Y = the RMS of the whole output at a: an output's rounding scales with the terms it is computed from,
  not with its value, and an output that cancels to ~0 (beta down(x) + b near 0 in subsampling) was
  computed from terms of an output's usual size. On dW of tanh(x W + b) (batch 16) rounding_j is ~3e-11:
  a relative 1e-10 on one element is resolved from |g| ~ 0.5 up.
- stored steps: a + h is rounded, so the steps are fl(a + h) - a, not h; D(h) and D(2h) divide by their
  own stored steps; the ratio 2 of the two steps is off by ~u |a| / h and their asymmetry |h+ - h-| <= 2 u
  |a| adds <= u |a| B |L'|: both are covered by a numeric rtol of ANALYTIC_TERMS u, for |a| up to ~30.
- step: the bound's typical size B^2 h^4 |L'''| / 30 + 12 u S / h, minimised at |L'''| ~ S, gives
  h^5 = 90 u / B^2: h = (90 u / TRUNCATION_BOUND)^(1/5) = 3.98e-4 (the fifth-root rule of a fourth-order
  scheme; central's cube-root rule is its second-order counterpart).

Per array, float64: rtol = 1024 u + 1024 u(dtype) = 2.3e-13 (float32: 6.1e-5), and per element
atol_j = rtol * scale + rounding_j + truncation_j (a methods.base.Bound, tolerance.default_atol).

Kinks. With L(a) the same evaluations give second-order one-sided differences,

    right = (4 L(a+h) - L(a+2h) - 3 L(a)) / 2h = L'(a+) - h^2 L'''/3
    left  = (3 L(a) - 4 L(a-h) + L(a-2h)) / 2h,

each exact to 4 rho, and right - left = -(E(2h) - 4 E(h)) / 2h = -h^3 L4 / 2 for a smooth L, so
kink_threshold = B^3 h^3 / 2 max(|left|, |right|) + 8 rho (6.4e-6 relative) and one_sided_error =
B^2 h^2 / 3 max(|left|, |right|) + 4 rho (rho = rounding / 1.5: the strategies hand the value's rounding).

The stencil is ~130x wider than central's, so behind one weight of a stack with thousands of ReLU inputs a
kink inside [a - 2h, a + 2h] is common, and R there is neither accurate nor a one-sided value. A coordinate
whose one-sided differences disagree beyond kink_threshold is handed to FALLBACK (Method.fallback):
central differences at their own step (6e-6, a stencil 130x narrower), their error model, their kink rules,
re-tests and tie groups decide it, at 2 more forwards a coordinate. A 1e-10 error next to a kink is then
out of reach, as it is for central anyway; every smooth coordinate keeps this bound. The other failures
(the blind spot below, a wrong gradient) are re-tested at h/10 ... h/10^4 (refine_factors) with this model
at that step: passing there with an error that fell by REFINE_DROP and by more than both steps' tolerances
together clears it (the rounding bound at h/10^4 is 10^4 times that at h: its noise alone must not clear a
wrong gradient, which plateaus, and a plateau is re-tested no further). A cleared element needs no
"between" test at h: its one-sided differences at h cross the same kinks (cleared_needs_between). E(2h) -
4E(h) is blind to one kink at exactly 2h/3 from a; the re-tests are not.

Convergence along a direction: e(h) ~ h^4 |L5| / 30, order ~4 for a right gradient.
"""

from __future__ import annotations

import numpy as np

from gradcheck.engine.differencing import split
from gradcheck.engine.methods.base import Along, Bound, Method, u64
from gradcheck.engine.tolerance import (
    ANALYTIC_TERMS,
    REFINE_DROP,
    ROUNDING_BOUND,
    TRUNCATION_BOUND,
    unit_roundoff,
)

B = float(np.sqrt(TRUNCATION_BOUND))  # 31.6: the length scale 1/B of the smoothness assumption
COMBINATION = 18.0 / 12.0  # sum |coefficients| of R's four evaluations over 12h: rounding = 1.5 rho


def rho(eps, S):
    """ROUNDING_BOUND u S / h: the central quotient's rounding at step h (S may be per element, S_j)."""
    return ROUNDING_BOUND * u64() * np.asarray(S, dtype=np.float64) / eps


def truncation(eps, d1, d2, even):
    """The a-posteriori bound of h^4 |L5| / 30 from D(h) - D(2h) and E(2h) - 4 E(h) (module docstring)."""
    return B * B * eps * eps / 15.0 * np.abs(d1 - d2) + B / 30.0 * np.abs(even)


def _output_scale(y0) -> float:
    """Y: the RMS of the output's finite entries at the base point."""
    m = np.abs(np.asarray(y0)).astype(np.float64, copy=False).reshape(-1)
    m = m[np.isfinite(m)]
    return float(np.sqrt(np.dot(m, m) / m.size)) if m.size else 0.0


def _magnitude(ys):
    """max(Y, max_k |y_k|) per output over the evaluations ys (ys[0] the base point); non-finite entries as
    Y (they make the value non-finite anyway, which is a failure of its own)."""
    floor = _output_scale(ys[0])
    m = np.array(np.abs(ys[0]), dtype=np.float64)  # a 0-d array for a scalar output (a loss)
    for y in ys[1:]:
        np.maximum(m, np.abs(y), out=m)
    return np.where(np.isfinite(m), np.maximum(m, floor), floor)


class Richardson(Method):
    name = "richardson"
    one_sided = True
    forwards = 4
    order = 4
    bounded = True
    fallback = "central"
    refine_factors = (10.0, 100.0, 1000.0, 10000.0)  # h/10 .. h/10^4 (down to central's own step / 70)
    cleared_needs_between = False

    def default_eps(self, dtype=np.float64) -> float:
        return float((90.0 * unit_roundoff(dtype) / TRUNCATION_BOUND) ** 0.2)

    def numeric_rtol(self, eps: float) -> float:
        """Beyond the per-element Bound: the stored steps' asymmetry and ratio (module docstring)."""
        return ANALYTIC_TERMS * u64()

    def rounding_atol(self, eps: float, S: float) -> float:
        """R's rounding for terms of L summing to S (the whole output; per element: Bound.rounding)."""
        return float(COMBINATION * rho(eps, S))

    def kink_threshold(self, left, right, eps: float, rounding):
        size = np.maximum(np.abs(left), np.abs(right))
        return B**3 * eps**3 / 2 * size + 8 * np.asarray(rounding) / COMBINATION

    def one_sided_error(self, left, right, eps: float, rounding):
        size = np.maximum(np.abs(left), np.abs(right))
        return B * B * eps * eps / 3 * size + 4 * np.asarray(rounding) / COMBINATION

    def retest(self, error, tolerance, rounding, factor):
        """Only an error that can show a fall at eps / factor, whose rounding bound is `factor` times
        larger: beyond its tolerance plus that."""
        return error > tolerance + factor * np.asarray(rounding)

    def refined(self, error, tolerance, err_h, tol_h):
        """cleared: passing at the smaller step with an error that fell by REFINE_DROP and by more than
        both tolerances together (a wrong gradient off by e shows e +- tolerance at eps and e +- tol_h
        there); settled: cleared, or an error that stayed put within both tolerances in a band narrow
        enough to mean it (a plateau: a wrong gradient)."""
        cleared = (err_h <= tol_h) & (err_h <= REFINE_DROP * error) & (err_h + tol_h + tolerance < error)
        band = tol_h + tolerance
        plateau = (np.abs(err_h - error) <= band) & (band <= 0.5 * error)
        return cleared, cleared | plateau

    def coordinates(self, diff, name, coords, labels, eps):
        """(R, left, right, Bound) per coordinate of one group (module docstring), steps as stored."""
        y0, k, weigh = diff.y0, coords.size, diff.weigh
        yp1, hp1 = diff.perturbed(name, coords, eps)
        ym1, hm1 = diff.perturbed(name, coords, -eps)
        yp2, hp2 = diff.perturbed(name, coords, 2 * eps)
        ym2, hm2 = diff.perturbed(name, coords, -2 * eps)
        hm1, hm2 = -hm1, -hm2
        P1, M1 = split(weigh(yp1 - y0), labels, k), split(weigh(y0 - ym1), labels, k)
        P2, M2 = split(weigh(yp2 - y0), labels, k), split(weigh(y0 - ym2), labels, k)
        d1, d2 = (P1 + M1) / (hp1 + hm1), (P2 + M2) / (hp2 + hm2)
        right = 2 * P1 / hp1 - P2 / hp2
        left = 2 * M1 / hm1 - M2 / hm2
        S = split(np.abs(diff.G) * _magnitude([y0, yp1, ym1, yp2, ym2]), labels, k)
        bound = Bound(COMBINATION * rho(eps, S), truncation(eps, d1, d2, (P2 - M2) - 4 * (P1 - M1)))
        return (4 * d1 - d2) / 3, left, right, bound

    def direction(self, diff, parts, eps) -> Along:
        """R along one direction (Differencer.pair at h and 2h: 4 forwards); analytic = (8 <g, s1+ + s1->
        - <g, s2+ + s2->) / 12h along the steps as stored."""
        for *_, g, _lo, _hi in parts:
            if isinstance(g, tuple):
                raise ValueError("richardson reads the analytic gradient at two steps: pass it, not its sums")
        yp1, ym1, a1p, a1m, terms = diff.pair(parts, eps)
        yp2, ym2, a2p, a2m, _ = diff.pair(parts, 2 * eps)
        y0, weigh = diff.y0, diff.weigh
        P1, M1 = float(np.sum(weigh(yp1 - y0))), float(np.sum(weigh(y0 - ym1)))
        P2, M2 = float(np.sum(weigh(yp2 - y0))), float(np.sum(weigh(y0 - ym2)))
        d1, d2 = (P1 + M1) / (2 * eps), (P2 + M2) / (4 * eps)
        S = float(np.sum(np.abs(diff.G) * _magnitude([y0, yp1, ym1, yp2, ym2])))
        trunc = float(truncation(eps, d1, d2, (P2 - M2) - 4 * (P1 - M1)))
        bound = Bound(float(COMBINATION * rho(eps, S)), trunc)
        sides = ((2 * M1 - M2 / 2) / eps, (2 * P1 - P2 / 2) / eps)
        return Along((8 * (a1p + a1m) - (a2p + a2m)) / (12 * eps), (4 * d1 - d2) / 3, terms, lambda: sides,
                     bound=bound)


METHOD = Richardson()
