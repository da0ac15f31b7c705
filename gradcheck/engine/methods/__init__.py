"""Differencing methods, one module each; a new method is a module here plus one line in METHODS.

A method turns the Differencer's primitives (gradcheck.engine.differencing) into numeric derivatives and
owns everything that differs between methods:

    name, default_eps(dtype)            its step
    numeric_rtol(eps), rounding_atol(eps, S)   its error model (gradcheck.engine.tolerance adds the
                                               analytic side's)
    coordinates(diff, name, coords, labels, eps) -> (numeric, left, right)   one group of coordinates
    direction(diff, parts, eps) -> Along                                    one direction
    complex_work                        its working copies are complex128 (imaginary perturbations)
    needs_complex_safe                  it is only valid for a complex-safe forward
    one_sided                           it gives one-sided differences: kinks, re-tests at smaller steps
    adopts                              an analytic gradient's buffer may serve as a working copy
    forwards                            forwards per group or direction (cost estimates)
    order                               truncation order: a right gradient's error ~ eps**order

and, with central differences' behaviour as the default (gradcheck.engine.methods.base.Method):

    bounded                             coordinates() also returns a Bound per coordinate, direction() an
                                        Along.bound: an a-posteriori numeric error, per element, that
                                        replaces rounding_atol in atol (tolerance.default_atol)
    kink_threshold, one_sided_error     its kink rules for its own one-sided differences (verdict.classify)
    fallback                            the method for coordinates whose stencil holds a kink (the one-sided
                                        differences disagree): they are measured and judged by it
    refine_factors, retest, refined     its re-tests of failures at smaller steps: which steps, which
                                        failures are worth one, which are cleared (a kink) or settled
    cleared_needs_between               whether a cleared failure must lie between its one-sided values
"""

from __future__ import annotations

from gradcheck.engine.methods import central, complex_step, richardson
from gradcheck.engine.methods.base import Along, Bound, Method

METHODS: dict[str, Method] = {m.name: m for m in (complex_step.METHOD, central.METHOD, richardson.METHOD)}


def names() -> tuple[str, ...]:
    return tuple(METHODS)


def get(method) -> Method:
    """The Method of a name (or a Method itself)."""
    if isinstance(method, Method):
        return method
    try:
        return METHODS[method]
    except (KeyError, TypeError):
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}") from None


__all__ = ["Along", "Bound", "Method", "METHODS", "get", "names"]
