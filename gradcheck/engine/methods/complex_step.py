"""Complex step: Im L(a + i h e) / h, for a complex-safe (analytic) forward.

No subtraction, so no cancellation: the truncation h^2 |L'''| / 6 is ~1e-40 at h = 1e-20, and what
remains is rounding of the complex forward, of the same kind as the analytic side's: ANALYTIC_TERMS * u64
relative (rtol 2.3e-13 in all with the analytic side). No one-sided differences, so no kinks: a layer with
kinks is not complex-safe.
"""

from __future__ import annotations

import numpy as np

from gradcheck.engine.differencing import split
from gradcheck.engine.methods.base import Along, Method, u64
from gradcheck.engine.tolerance import ANALYTIC_TERMS

EPS = 1e-20


class ComplexStep(Method):
    name = "complex"
    complex_work = True
    needs_complex_safe = True
    forwards = 1
    order = 2

    def default_eps(self, dtype=np.float64) -> float:
        return EPS

    def numeric_rtol(self, eps: float) -> float:
        return ANALYTIC_TERMS * u64()

    def floor(self, eps: float, S: float, scale: float) -> float:
        return self.numeric_rtol(eps) * scale

    def coordinates(self, diff, name, coords, labels, eps):
        y, _ = diff.perturbed(name, coords, complex(0.0, eps))
        return split(diff.G * y.imag, labels, coords.size) / eps, None, None

    def direction(self, diff, parts, eps) -> Along:
        y, dot, terms = diff.imaginary(parts, eps)
        return Along(dot / eps, float(np.sum(diff.G * y.imag)) / eps, terms)


METHOD = ComplexStep()
