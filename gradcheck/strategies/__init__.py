"""Which perturbations to make, as peers: every coordinate, a seeded sample of them, or random directions.

    exhaustive   every coordinate, grouped by a declared or inferred structure (strategies.exhaustive)
    sampled      `samples` coordinates per array (strategies.sampled)
    directional  `directions` random directions, failures located by bisection (strategies.directional)

Each strategy module has check_array(ArrayCheck) -> the fields of an ArrayResult; check_array() here
builds the ArrayResult and adds its convergence order.
"""

from __future__ import annotations

from gradcheck.engine import convergence
from gradcheck.results import ArrayResult
from gradcheck.strategies import directional, exhaustive, parts, sampled
from gradcheck.strategies.directional import DEFAULT_DIRECTIONS, REUSE_ELEMENTS, check_joint
from gradcheck.strategies.sampled import DEFAULT_SAMPLES
from gradcheck.strategies.setting import make

STRATEGIES = {"directional": directional, "sampled": sampled, "exhaustive": exhaustive}
# Upper bounds, refused beyond (as case.schema.json's maxima): a direction object per direction is built up
# front and each direction costs two forwards over every array; more samples than this is an exhaustive check.
MAX_SAMPLES = 1_000_000
MAX_DIRECTIONS = 10_000


def check_array(strategy, diff, key, name, analytic, array_dtype, *, eps, rtol, atol, seed, y_shape, samples,
                directions, infer=True, progress=None, lent=False) -> ArrayResult:
    """Check one array (an input of diff.layer, or a tail's "x" for a residual) -> its ArrayResult. A
    complex array is checked as its real and imaginary parts (strategies.parts). infer, progress: see
    gradcheck.check. lent: the caller hands `analytic` over (lendable()): a sampled check then makes its
    buffer the working copy, and the result's analytic is None."""
    complex_parts = diff.parts(name)
    if complex_parts:
        analytic = parts.as_real(analytic)
    check = make(diff, key, name, analytic, array_dtype, eps=eps, rtol=rtol, atol=atol, seed=seed,
                 y_shape=y_shape, samples=samples, directions=directions, infer=infer, progress=progress,
                 lent=lent and strategy == "sampled")
    fields = STRATEGIES[strategy].check_array(check)
    result = ArrayResult(name=key, shape=check.shape, dtype=str(array_dtype), strategy=strategy,
                         method=diff.method.name, eps=eps, rtol=check.rtol,
                         analytic=None if check.lent else check.g, **fields)
    result = with_convergence(diff, name, result)
    return parts.as_complex(result) if complex_parts else result


def lendable(strategy, diff, grads, k) -> bool:
    """Whether grads[k] may serve as its array's working copy in a `strategy` check: a sampled one (few
    coordinates, each read before the buffer is lent) where directional.lendable allows it."""
    return strategy == "sampled" and directional.lendable(diff, grads, k)


def with_convergence(diff, name, result) -> ArrayResult:
    """result, with its convergence order measured when affordable (a few forwards, not counted in it)."""
    if result.analytic is None:
        why = "not measured: the analytic gradient's buffer served as the working copy"
        result.convergence = convergence.not_measured(result, diff.method, why=why)
    elif convergence.affordable(result, diff.method):
        result.convergence = convergence.measure(diff, name, result.analytic, result)
    else:
        result.convergence = convergence.not_measured(result, diff.method)
    return result


__all__ = ["STRATEGIES", "DEFAULT_SAMPLES", "DEFAULT_DIRECTIONS", "MAX_SAMPLES", "MAX_DIRECTIONS",
           "REUSE_ELEMENTS", "check_array", "check_joint", "lendable", "with_convergence"]
