"""Central differences: (L(a + h+ e) - L(a - h- e)) / (h+ + h-), with the one-sided differences that
tell a kink from a wrong gradient.

Error model (float64 numerics; gradcheck.engine.tolerance adds the analytic side):
    truncation  h^2/6 |L'''|. We assume |L'''| <= TRUNCATION_BOUND * |L'| in units of the input (steep
                sigmoids, exp, products of a few factors), so rtol >= TRUNCATION_BOUND h^2 / 6.
    rounding    each evaluation of L is exact to ROUNDING_BOUND * u * S (the forward's own depth and the
                sum over outputs), the quotient to ROUNDING_BOUND * u * S / h: an absolute term.
    h = u64^(1/3) = 6.06e-6 balances the two (the classical cube-root rule): rtol 6.1e-9.

Per coordinate set C, with steps h+ and h- as stored::

    central   (L(a + h+ e_C) - L(a - h- e_C)) / (h+ + h-)     split per coordinate by bincount over labels
    right     (L(a + h+ e_C) - L(a)) / h+                      one-sided, for kinks
    left      (L(a) - L(a - h- e_C)) / h-
"""

from __future__ import annotations

import numpy as np

from gradcheck.engine.differencing import split
from gradcheck.engine.methods.base import Along, Method, u64
from gradcheck.engine.tolerance import ROUNDING_BOUND, TRUNCATION_BOUND, unit_roundoff


class Central(Method):
    name = "central"
    one_sided = True
    adopts = True
    forwards = 2
    order = 2

    def default_eps(self, dtype=np.float64) -> float:
        return float(np.cbrt(2 * unit_roundoff(dtype)))

    def numeric_rtol(self, eps: float) -> float:
        return TRUNCATION_BOUND * eps**2 / 6

    def rounding_atol(self, eps: float, S: float) -> float:
        return ROUNDING_BOUND * u64() * S / eps

    def coordinates(self, diff, name, coords, labels, eps):
        y0 = diff.y0
        yp, hp = diff.perturbed(name, coords, eps)
        ym, hm = diff.perturbed(name, coords, -eps)
        hm = -hm
        weigh, k = diff.weigh, coords.size
        central = split(weigh(yp - ym), labels, k) / (hp + hm)
        right = split(weigh(yp - y0), labels, k) / hp
        left = split(weigh(y0 - ym), labels, k) / hm
        return central, left, right

    def direction(self, diff, parts, eps) -> Along:
        yp, ym, a_plus, a_minus, terms = diff.pair(parts, eps)
        weigh = diff.weigh

        def one_sided():
            y0 = diff.y0
            return float(np.sum(weigh(y0 - ym))) / eps, float(np.sum(weigh(yp - y0))) / eps

        return Along((a_plus + a_minus) / (2 * eps), float(np.sum(weigh(yp - ym))) / (2 * eps), terms,
                     one_sided)


METHOD = Central()
