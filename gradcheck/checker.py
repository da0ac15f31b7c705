"""gradcheck.checker: check() and assert_gradients(), the vector-Jacobian product against numerics.

For a seeded standard-normal G of the output's shape, L(arrays) = sum(G * layer.forward(**arrays)[0])
(gradcheck.engine.problem); for every checked array a, dL/da by a differencing method
(gradcheck.engine.methods), along the coordinates or directions a strategy chooses (gradcheck.strategies),
is compared element by element with layer.backward(G, cache)[a] under the error model's tolerances
(gradcheck.engine.tolerance); kinks are told apart by gradcheck.engine.verdict.
Several outputs: L is the sum over them, sum_k sum(G_k * y_k) (gradcheck.engine.outputs).
"""

from __future__ import annotations

import math
import time

import numpy as np

from gradcheck import layout, strategies
from gradcheck.engine import convergence, diagnosis, methods
from gradcheck.engine.declarations import StructureMismatch
from gradcheck.engine.problem import Problem, layer_name
from gradcheck.engine.residuals import residual_problem
from gradcheck.engine.threads import one_blas_thread_when_small
from gradcheck.errors import GradientMismatch, LayerContractError
from gradcheck.results import NEAR_MISS, Report
from gradcheck.strategies import directional, parts


def default_method(layer, arrays, strategy, wrt) -> str:
    """Complex step for a complex-safe layer (rtol 2.3e-13), else Richardson (1e-10 resolved where central
    stops at ~1e-8, for 2x its forwards). Central for a directional check (each forward over ~100M weights
    is what a user waits for; complex step's complex128 copy of an array of REUSE_ELEMENTS or more doubles
    the peak memory) and for complex inputs (complex step cannot perturb their imaginary parts alone)."""
    complex_inputs = bool(_complex_inputs(layer, arrays))
    if not getattr(layer, "complex_safe", False) or complex_inputs:
        return "central" if strategy == "directional" or complex_inputs else "richardson"
    names = layer.inputs if wrt is None else wrt
    big = any(np.size(arrays[k]) >= directional.REUSE_ELEMENTS for k in names if k in arrays)
    return "central" if strategy == "directional" and big else "complex"


def _complex_inputs(layer, arrays) -> list[str]:
    return [k for k in layer.inputs if k in arrays and np.iscomplexobj(arrays[k])]


def _options(layer, arrays, strategy, method, eps, samples, directions, wrt, rtol=None, atol=None):
    """(method, eps, samples, directions, wrt) validated (rtol and atol too), defaults filled in."""
    kind = layer_name(layer)
    if strategy not in strategies.STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(strategies.STRATEGIES)}, got {strategy!r}")
    method = methods.get(default_method(layer, arrays, strategy, wrt) if method is None else method)
    if method.needs_complex_safe and not getattr(layer, "complex_safe", False):
        raise ValueError(f"{kind}: method {method.name!r} needs a complex-safe forward (layer.complex_safe = "
                         f"True)")
    if method.needs_complex_safe and _complex_inputs(layer, arrays):
        k = _complex_inputs(layer, arrays)[0]
        raise ValueError(f"{kind}: complex step does not apply to complex input {k} "
                         f"({np.asarray(arrays[k]).dtype}): its imaginary part is a coordinate of its own; "
                         f"use method='central'")
    eps = method.default_eps() if eps is None else float(eps)
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    for option, value in (("rtol", rtol), ("atol", atol)):  # NaN would make every comparison fail (or pass)
        if value is not None and not (math.isfinite(float(value)) and float(value) >= 0):
            raise ValueError(f"{option} must be a finite number >= 0, got {value!r}")
    samples = strategies.DEFAULT_SAMPLES if samples is None else int(samples)
    checked = [np.size(arrays[k]) for k in (layer.inputs if wrt is None else wrt) if k in arrays]
    directions = directional.default_directions(checked) if directions is None else int(directions)
    for option, value, most in (("samples", samples, strategies.MAX_SAMPLES),
                                ("directions", directions, strategies.MAX_DIRECTIONS)):
        if value < 1:  # zero would check nothing and pass
            raise ValueError(f"{option} must be at least 1, got {value}")
        if value > most:  # refused before anything is built for them
            raise ValueError(f"{option} must be at most {most}, got {value}")
    wrt = list(layer.inputs) if wrt is None else list(wrt)
    unknown = [k for k in wrt if k not in layer.inputs]
    if unknown:
        raise LayerContractError(f"{kind}: wrt names {', '.join(unknown)}, not inputs of the layer "
                                 f"(inputs: {', '.join(layer.inputs)})")
    return method, eps, samples, directions, wrt


@one_blas_thread_when_small
def check(layer, arrays, *, strategy="exhaustive", method=None, eps=None, rtol=None, atol=None, samples=None,
          directions=None, seed=0, wrt=None, residuals=None, name=None, keep_analytic=False,
          explain=None, infer=True, progress=None, layouts=None) -> Report:
    """Compare layer.backward with numerical derivatives; return a Report (never raises on a mismatch).

    arrays: name -> array, every name in layer.inputs and layer.constants; never modified.
    strategy: "exhaustive" | "sampled" (`samples` coordinates per array) | "directional" (`directions`, 3 or
    2 from 4M elements (directional.default_directions), random directions spanning all checked arrays at
    once; when one fails, as many per array, failures located by bisection).
    method: a name of gradcheck.engine.methods ("complex", "central", "richardson") or None (default_method).
    eps: the step (default: the method's); rtol/atol: override the error model's tolerances.
    wrt: input names to check (default all); residuals: layer names of a Sequential whose "<name>.delta"
    is checked against numerics of tail(name); seed: seeds G, directions and samples; name: the case name.
    keep_analytic: directional and sampled checks with a method that adopts otherwise hand an analytic
    gradient of REUSE_ELEMENTS or more elements over as its array's working copy (ArrayResult.analytic None).
    explain: a margin (e.g. results.NEAR_MISS), or None: every array that fails or whose margin is above
    it also gets its error-vs-eps sweep and a diagnosis (what the pictures and `gradcheck explain` show).
    infer: an array with no declared structure gets one fitted to the forward (engine.inference;
    ArrayResult.inferred), whatever fails or is a kink on it re-checked alone; False: one per forward.
    progress: progress(array, groups done, groups total, coordinates), called now and then while the
    coordinate strategies run (total == coordinates: one coordinate per forward).
    layouts: array name -> axis layout of a 4-D array (gradcheck.layout: "NHWC" channels-last maps, "HWIO"
    channels-last kernels), kept in its ArrayResult.layout so pictures and diagnoses read it as maps.
    Raises LayerContractError (a ValueError) when the layer or the arrays break the layer contract.
    """
    t0 = time.perf_counter()
    if hasattr(layer, "with_dtypes"):  # an adapter (gradcheck.pair): integer arrays are its constants
        layer = layer.with_dtypes({k: np.asarray(v).dtype for k, v in arrays.items()})
    given_method, given_eps = method, eps
    method, eps, samples, directions, wrt = _options(layer, arrays, strategy, method, eps, samples,
                                                     directions, wrt, rtol, atol)
    layouts = layout.of_inputs(layer_name(layer), layer.inputs, arrays, layouts)
    problem = Problem.build(layer, arrays, seed)
    if method.needs_complex_safe and np.iscomplexobj(problem.y):  # Im L(a + ih) / h needs a real L(a)
        if given_method is not None:
            raise ValueError(f"{layer_name(layer)}: complex step needs a real output, got {problem.y.dtype}; "
                             f"use method='central'")
        method = methods.get("central")
        eps = method.default_eps() if given_eps is None else eps
    if not (wrt or residuals):  # nothing asked: not a pass
        why = ("nothing was checked: wrt is empty, so no array was asked for" if layer.inputs
               else "nothing was checked: the layer has no inputs")
        return Report(case=name, arrays={}, residuals={}, seed=int(seed), strategy=strategy,
                      method=method.name, seconds=time.perf_counter() - t0, forwards=problem.forwards,
                      eps=eps, warnings=list(problem.warnings), cause=why)
    grads = problem.grads
    per_array = dict(eps=eps, rtol=rtol, atol=atol, seed=seed, y_shape=problem.y.shape, samples=samples,
                     directions=directions, infer=infer, progress=progress)
    diffs = {}  # key -> (Differencer, its array name), for the sweeps of explain
    try:  # a structure probe that fails because forward is not a function of its arrays blames the layer
        diff = problem.differencer(method, eps)
        results = {}
        if strategy == "directional" and wrt:
            joint = strategies.check_joint(diff, grads, arrays, wrt, directions=directions, seed=seed,
                                           rtol=rtol, atol=atol, eps=eps, keep_analytic=keep_analytic)
            if joint is not None:
                results = {k: strategies.with_convergence(diff, k, r) for k, r in joint.items()}
            elif any(grads[k] is None for k in wrt):  # a gradient lent its buffer: compute it again
                grads = problem.backward_again()
        for k in wrt:
            if k not in results:
                lent = not keep_analytic and strategies.lendable(strategy, diff, grads, k)
                g, grads[k] = grads[k], None if lent else grads[k]  # lent: handed over (recomputed if needed)
                results[k] = strategies.check_array(strategy, diff, k, k, g, np.asarray(arrays[k]).dtype,
                                                    lent=lent, **per_array)
            diffs[k] = (diff, k)
        residual_results = {}
        for r in residuals or []:
            tail, tail_arrays, delta = residual_problem(layer, arrays, grads, r)
            problem.forwards += 1  # the head's forward that produced u
            tdiff = problem.differencer(method, eps, tail, tail_arrays)
            key, x = f"{r}.delta", tail.inputs[0]
            residual_results[key] = strategies.check_array(strategy, tdiff, key, x, delta,
                                                           np.asarray(tail_arrays[x]).dtype, **per_array)
            diffs[key] = (tdiff, x)
    except StructureMismatch:
        problem.require_deterministic()
        raise
    for k, r in results.items():
        r.layout = layouts.get(k)
    every = [*results.values(), *residual_results.values()]
    if not all(res.passed and not res.kinks for res in every):  # a "kink" excuses a mismatch: confirm too
        problem.require_deterministic()
    forwards = problem.forwards + sum(d.forwards for d in {id(d): d for d, _ in diffs.values()}.values())
    report = Report(case=name, arrays=results, residuals=residual_results, seed=int(seed), strategy=strategy,
                    method=method.name, seconds=time.perf_counter() - t0, forwards=forwards, eps=eps,
                    warnings=[*problem.warnings, *(w for r in every for w in r.warnings)],
                    cause=problem.cause, outputs=dict(getattr(problem.layer, "output_shapes", {})))
    if explain is not None:
        _explain(report, problem, diffs, explain)
    return report


def _explain(report, problem, diffs, margin) -> None:
    """Sweep eps and diagnose every array worth showing (computed here, so renderers only draw)."""
    for r in report.shown(margin):
        diff, name = diffs[r.name]
        g = r.analytic
        if g is None:  # lent to the check as a working copy: compute it again
            g = problem.backward_again()[r.name]
        if r.parts:  # a complex array: swept along its (re, im) parts, as it was checked
            r.sweep = convergence.sweep(diff, name, parts.as_real(g), parts.real_view(r))
        else:
            r.sweep = convergence.sweep(diff, name, g, r)
        r.diagnosis = diagnosis.diagnose(r)


def assert_gradients(layer, arrays, **options) -> Report:
    """check(), raising GradientMismatch (an AssertionError whose text is the verdict) unless it passed."""
    report = check(layer, arrays, **options)
    if not report.passed:
        raise GradientMismatch(report)
    return report


__all__ = ["check", "assert_gradients", "default_method", "NEAR_MISS"]
