"""What every differencing method provides (see gradcheck.engine.methods), and the value of one direction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from gradcheck.engine import tolerance as tol_model
from gradcheck.engine.tolerance import unit_roundoff


class Bound(NamedTuple):
    """The numeric side's absolute error bound of values a method measured, per value (arrays, or floats
    for one direction), from its own evaluations: rounding (of the value itself, what rounding_atol is for
    an a-priori model) and truncation (a-posteriori). A method with an a-priori model returns none (its
    truncation is in numeric_rtol, its rounding is rounding_atol)."""

    rounding: np.ndarray | float
    truncation: np.ndarray | float

    @property
    def total(self):
        return self.rounding + self.truncation


class Bounds:
    """The Bounds a bounded method measured, per array name and flat coordinate, as blocks appended by
    whichever thread measured them (list.append is atomic); get() looks them up, the last measurement of a
    coordinate winning (a re-test at a smaller step), once the blocks' plan has run."""

    def __init__(self):
        self._blocks: dict[str, list] = {}

    def add(self, name, coords, bound: Bound) -> None:
        self._blocks.setdefault(name, []).append((np.asarray(coords, dtype=np.int64), bound))

    def get(self, name, coords) -> Bound | None:
        blocks = self._blocks.get(name)
        if not blocks:
            return None
        c = np.concatenate([b[0] for b in blocks])
        parts = [np.concatenate([np.asarray(b[1][i], dtype=np.float64).reshape(-1) for b in blocks])
                 for i in range(2)]
        order = np.argsort(c, kind="stable")
        c, parts = c[order], [p[order] for p in parts]
        last = np.append(c[1:] != c[:-1], True)
        c, parts = c[last], [p[last] for p in parts]
        self._blocks[name] = [(c, Bound(*parts))]  # compacted
        coords = np.asarray(coords, dtype=np.int64)
        if c.size == 0:
            return None
        at = np.minimum(np.searchsorted(c, coords), c.size - 1)
        if not np.array_equal(c[at], coords):
            return None
        return Bound(parts[0][at], parts[1][at])


@dataclass
class Along:
    """The derivative of L along one direction u: analytic <g, u> (along the steps as stored, so the
    rounding of a + h u cancels out of the comparison) against numeric; terms = sum|g u|, the size of
    <g, u>'s terms (its rounding and the atol scale with it). one_sided() gives (left, right), the
    one-sided differences (a forward at the base point, spent only when asked), or (None, None).
    bound: the method's own Bound of numeric, or None (the a-priori model)."""

    analytic: float
    numeric: float
    terms: float
    _one_sided: Callable[[], tuple[float, float]] | None = None
    bound: Bound | None = None

    def one_sided(self) -> tuple[float | None, float | None]:
        return (None, None) if self._one_sided is None else self._one_sided()


class Method:
    """Base of the differencing methods: the defaults a subclass overrides (central differences' rules
    for kinks and re-tests, an a-priori error model)."""

    name = ""
    complex_work = False
    needs_complex_safe = False
    one_sided = False
    adopts = False
    forwards = 2
    order = 2
    bounded = False  # coordinates() returns a 4th value, a Bound per coordinate (direction(): Along.bound)
    fallback: str | None = None  # the method for coordinates whose stencil holds a kink (rough())
    refine_factors = tol_model.REFINE_FACTORS  # re-test steps eps / factor of a failure with one-sided values
    cleared_needs_between = True  # a failure cleared at a smaller step is a kink only if the analytic value
    # lies between its one-sided differences at eps (False: they cross the same kinks, so they prove nothing)

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

    def kink_threshold(self, left, right, eps: float, rounding):
        """Largest |right - left| of this method's one-sided differences that a smooth L can produce;
        rounding: the numeric value's rounding bound (rounding_atol, or Bound.rounding per element)."""
        return tol_model.kink_threshold(left, right, eps, rounding)

    def one_sided_error(self, left, right, eps: float, rounding):
        """Error bound of one of this method's one-sided differences."""
        return tol_model.one_sided_error(left, right, eps, rounding)

    def retest(self, error, tolerance, rounding, factor):
        """Which failures (error > tolerance at eps; rounding as for kink_threshold, 0 for a caller's own
        atol) are worth re-testing at eps / factor: all of them by default."""
        return np.ones(np.shape(error), dtype=bool)

    def refined(self, error, tolerance, err_h, tol_h):
        """(cleared, settled) of failures re-tested at a smaller step: cleared, a kink within eps (it passes
        there with an error that fell at least 1 / REFINE_DROP-fold); settled, re-tested no further."""
        cleared = (err_h <= tol_h) & (err_h <= tol_model.REFINE_DROP * error)
        return cleared, cleared

    def coordinates(self, diff, name, coords, labels, eps):
        """(numeric, left, right) per coordinate of one group (+ a Bound when `bounded`)."""
        raise NotImplementedError

    def direction(self, diff, parts, eps) -> Along:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<method {self.name}>"


def u64() -> float:
    return unit_roundoff(np.float64)
