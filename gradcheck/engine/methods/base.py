"""What every differencing method provides (see gradcheck.engine.methods), and the value of one direction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gradcheck.engine.tolerance import unit_roundoff


@dataclass
class Along:
    """The derivative of L along one direction u: analytic <g, u> (along the steps as stored, so the
    rounding of a + h u cancels out of the comparison) against numeric; terms = sum|g u|, the size of
    <g, u>'s terms (its rounding and the atol scale with it). one_sided() gives (left, right), the
    one-sided differences (a forward at the base point, spent only when asked), or (None, None)."""

    analytic: float
    numeric: float
    terms: float
    _one_sided: Callable[[], tuple[float, float]] | None = None

    def one_sided(self) -> tuple[float | None, float | None]:
        return (None, None) if self._one_sided is None else self._one_sided()


class Method:
    """Base of the differencing methods: the defaults a subclass overrides."""

    name = ""
    complex_work = False
    needs_complex_safe = False
    one_sided = False
    adopts = False
    forwards = 2
    order = 2

    def default_eps(self, dtype=np.float64) -> float:
        raise NotImplementedError

    def numeric_rtol(self, eps: float) -> float:
        raise NotImplementedError

    def rounding_atol(self, eps: float, S: float) -> float:
        """Absolute rounding error of the difference quotient of L whose terms sum to S in magnitude."""
        return 0.0

    def floor(self, eps: float, S: float, scale: float) -> float:
        """The numeric side's rounding floor along a direction whose <g, u> has terms of size `scale`
        (convergence: an error below it is rounding, not truncation)."""
        return self.rounding_atol(eps, S)

    def coordinates(self, diff, name, coords, labels, eps):
        raise NotImplementedError

    def direction(self, diff, parts, eps) -> Along:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<method {self.name}>"


def u64() -> float:
    return unit_roundoff(np.float64)
