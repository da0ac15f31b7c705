"""The error-vs-eps sweep of one array of a Report, set up as gradcheck.check set it up (the same problem:
G from report.seed, method, eps), for tests that sweep other steps than check(explain=...) does."""

from gradcheck.engine import convergence
from gradcheck.engine.problem import Problem
from gradcheck.engine.residuals import residual_problem


def problem_of(layer, arrays, report, key):
    """(Differencer, array name, analytic gradient) of array `key` of `report`."""
    problem = Problem.build(layer, arrays, report.seed)
    if key in report.arrays:
        g = report.arrays[key].analytic
        g = problem.grads[key] if g is None else g
        return problem.differencer(report.method, report.eps), key, g
    tail, tail_arrays, delta = residual_problem(layer, arrays, problem.grads, key[: -len(".delta")])
    return problem.differencer(report.method, report.eps, tail, tail_arrays), tail.inputs[0], delta


def sweep(layer, arrays, report, key, steps=None):
    diff, name, g = problem_of(layer, arrays, report, key)
    result = report.arrays.get(key) or report.residuals[key]
    return convergence.sweep(diff, name, g, result, steps)
