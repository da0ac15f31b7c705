"""gradcheck.check and gradcheck.assert_gradients: the vector-Jacobian product against numerics.

For a seeded standard-normal G of the output's shape, L(arrays) = sum(G * layer.forward(**arrays)[0]);
for every checked array a, dL/da by finite differences (gradcheck.differencing, along the coordinates or
directions gradcheck.strategies chooses) is compared element by element with layer.backward(G, cache)[a]
under the tolerances of gradcheck.tolerance, and kinks are told apart by gradcheck.kinks.

The analytic side runs in the arrays' own dtype (float32 arrays give a float32 backward); the numeric side
always runs in float64 (complex128 for complex step) on exact copies.
"""

from __future__ import annotations

import sys
import time
import zlib

import numpy as np

from gradcheck import convergence, strategies
from gradcheck import tolerance as tol_model
from gradcheck.differencing import Differencer, read_only
from gradcheck.errors import GradientMismatch, LayerContractError
from gradcheck.kinks import KINDS, classify
from gradcheck.report import SHOW_WORST, ArrayResult, Element, Report
from gradcheck.residuals import residual_problem
from gradcheck.structure import StructureMismatch


def _rng(seed, key):
    """The rng of one array: depends on the seed and the array's name only (not on what else is checked)."""
    return np.random.default_rng([int(seed), zlib.crc32(key.encode())])


def _layer_name(layer):
    return type(layer).__name__


def _validate_arrays(layer, arrays):
    names = (*layer.inputs, *getattr(layer, "constants", ()))
    missing = [k for k in names if k not in arrays]
    extra = sorted(set(arrays) - set(names))
    if missing or extra:
        raise LayerContractError(
            f"{_layer_name(layer)}: arrays must hold exactly {', '.join(names)}; "
            f"missing {', '.join(missing) or 'none'}, unexpected {', '.join(extra) or 'none'}")


def _validate_grads(layer, arrays, grads):
    kind = _layer_name(layer)
    if not isinstance(grads, dict):
        raise LayerContractError(
            f"{kind}: backward must return a dict name -> gradient, got {type(grads).__name__}")
    missing = [k for k in layer.inputs if k not in grads]
    if missing:
        raise LayerContractError(f"{kind}: backward returned no gradient for {', '.join(missing)}")
    extra = sorted(k for k in grads if k not in layer.inputs and not k.endswith(".delta"))
    if extra:
        raise LayerContractError(
            f"{kind}: backward returned a gradient for {', '.join(extra)}, which is not an input "
            f"(inputs: {', '.join(layer.inputs)})")
    for k in layer.inputs:
        got, want = np.shape(grads[k]), np.shape(arrays[k])
        if got != want:
            raise LayerContractError(
                f"{kind}: backward's gradient for {k} has shape {got}, expected {want} (the shape of {k})")


def _rms(a):
    a = np.asarray(a)
    if a.dtype == np.float64 and a.size:  # one BLAS dot, no array-sized temporaries (100M-element g)
        flat = a.reshape(-1)
        ss = float(np.dot(flat, flat))
        if np.isfinite(ss):
            return float(np.sqrt(ss / flat.size))
    a = a.astype(np.float64)
    finite = a[np.isfinite(a)]
    return float(np.sqrt(np.mean(finite * finite))) if finite.size else 0.0


def _coarsest(*dtypes):
    """The dtype with the largest unit roundoff (the analytic side's precision)."""
    return max(dtypes, key=tol_model.unit_roundoff)


def _analytic_dtype(array_dtype, g):
    """The precision of the analytic side: the coarser of the array's dtype and its gradient's."""
    g = np.asarray(g)
    return _coarsest(np.dtype(array_dtype), g.dtype if g.dtype.kind in "fc" else np.dtype(np.float64))


def _elements(key, shape, coords, analytic, numeric, left, right, codes, error, tolerance):
    """(kinks, worst up to SHOW_WORST by ratio, margin) from vectorised results over `coords`."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(error == 0, 0.0, error / tolerance)
    ratio = np.where(np.isnan(ratio) | (codes == 3), np.inf, ratio)

    def element(i):
        index = tuple(int(v) for v in np.unravel_index(int(coords[i]), shape)) if coords is not None else None
        return Element(key, index, float(analytic[i]), float(numeric[i]), float(error[i]),
                       float(tolerance[i]), str(KINDS[codes[i]]), None if left is None else float(left[i]),
                       None if right is None else float(right[i]))

    kink = codes == 2
    kinks = [element(i) for i in np.flatnonzero(kink)]
    rest = np.where(kink, -1.0, ratio)
    margin = float(rest.max()) if rest.size and (~kink).any() else 0.0
    order = np.argsort(-rest, kind="stable")[:SHOW_WORST]
    worst = [element(i) for i in order if not kink[i]]
    return kinks, worst, margin


def _at_step(diff, h, run):
    """run() with the differencer's step set to h."""
    eps = diff.eps
    diff.eps = h
    try:
        return run()
    finally:
        diff.eps = eps


def _smaller_steps(diff, dtype, refine):
    """(h, rtol_h, atol_h) for each re-test step eps/10, eps/100: the error model at that step, or the
    caller's own rtol/atol when given. Only called on a failure: the RMS is a pass over the gradient."""
    scale = _rms(refine["g"])
    for factor in tol_model.REFINE_FACTORS:
        h = diff.eps / factor
        rtol_h = tol_model.default_rtol("central", h, dtype) if refine["rtol"] is None else refine["rtol"]
        atol_h = (tol_model.default_atol("central", h, rtol_h, scale, diff.S)
                  if refine["atol"] is None else refine["atol"])
        yield h, rtol_h, atol_h


def _cleared_coordinates(diff, name, shape, coords, analytic, error, failing, *, strategy, y_shape, rng,
                         dtype, refine):
    """Which failing coordinates pass at a smaller central step with an error that really fell
    (tolerance.REFINE_FACTORS): a kink within eps, not a wrong gradient."""
    cleared = np.zeros(coords.size, dtype=bool)
    for h, rtol_h, atol_h in _smaller_steps(diff, dtype, refine):
        todo = np.flatnonzero(failing & ~cleared)
        if todo.size == 0:
            break
        if todo.size <= tol_model.REFINE_LIMIT or strategy != "exhaustive":
            picked = coords[todo]
            central = _at_step(diff, h, lambda picked=picked: np.concatenate(
                [diff.coordinates(name, picked[i:i + 1])[0] for i in range(picked.size)]))
        else:  # many failures (most likely a wrong gradient): one more pass of the grouped plan
            all_coords, all_central, *_ = _at_step(
                diff, h, lambda: strategies.exhaustive(diff, name, shape, y_shape, rng))
            at = np.empty(int(np.prod(shape, dtype=np.int64)))
            at[all_coords] = all_central
            central = at[coords[todo]]
        err_h = np.abs(analytic[todo] - central)
        ok = ((err_h <= tol_model.tolerance(central, rtol_h, atol_h))
              & (err_h <= tol_model.REFINE_DROP * error[todo]))
        cleared[todo[ok]] = True
    return cleared


def _check_coordinates(diff, key, name, g, shape, *, strategy, samples, rng, y_shape, rtol, atol, eps,
                       rounding, dtype, refine):
    t0, f0 = time.perf_counter(), diff.forwards
    if strategy == "exhaustive":
        coords, central, left, right = strategies.exhaustive(diff, name, shape, y_shape, rng)
    else:
        coords, central, left, right = strategies.sampled(diff, name, shape, samples, rng)
    gflat = g.reshape(-1)
    analytic = gflat[coords].astype(np.float64)
    codes, error, tolerance = classify(analytic, central, left, right, rtol=rtol, atol=atol, eps=eps,
                                       rounding=rounding)
    if left is not None and (codes == 1).any():  # central: re-test failures at smaller steps
        cleared = _cleared_coordinates(diff, name, shape, coords, analytic, error, codes == 1,
                                       strategy=strategy, y_shape=y_shape, rng=rng, dtype=dtype,
                                       refine=refine)
        if cleared.any():
            codes, error, tolerance = classify(analytic, central, left, right, rtol=rtol, atol=atol, eps=eps,
                                               rounding=rounding, cleared=cleared)
    kinks, worst, margin = _elements(key, shape, coords, analytic, central, left, right, codes, error,
                                     tolerance)
    numeric, sampled = None, None
    if strategy == "exhaustive" or coords.size == 0 or int(np.prod(shape)) <= DENSE_NUMERIC:
        numeric = np.full(shape, np.nan)
        numeric.reshape(-1)[coords] = central
    else:  # a few samples of a huge array: not an array-sized NaN (0.8 GB and its page faults at 100M)
        sampled = (coords, central)
    failed = int(np.count_nonzero((codes == 1) | (codes == 3)))
    return dict(checked=int(coords.size), failed=failed, kinks=kinks, worst=worst, margin=margin,
                passed=failed == 0, numeric=numeric, sampled=sampled, forwards=diff.forwards - f0,
                seconds=time.perf_counter() - t0, atol=atol)


def _cleared_direction(diff, name, u, gflat, error, dtype, refine):
    """A failing direction that passes at a smaller central step with an error that really fell
    (tolerance.REFINE_FACTORS): it crosses a kink within eps, it does not point at a wrong gradient."""
    for h, rtol_h, atol_h in _smaller_steps(diff, dtype, refine):
        terms = []  # sum|g u|, the size of <g, u>'s terms, which the differencer sums in its pass
        record = terms.append
        a, n, _, _ = _at_step(diff, h, lambda h=h, record=record: diff.direction(
            name, u, gflat, 0, gflat.size, one_sided=lambda a, n, t: record(t)))
        if refine["atol"] is None:
            atol_h = tol_model.default_atol("central", h, rtol_h, terms[0], diff.S)
        err_h = abs(a - n)
        if err_h <= tol_model.tolerance(n, rtol_h, atol_h) and err_h <= tol_model.REFINE_DROP * error:
            return True
    return False


def _check_directions(diff, key, name, g, shape, *, directions, rng, rtol, atol, eps, rounding, method,
                      atol_given, dtype, refine):
    t0, f0 = time.perf_counter(), diff.forwards
    gflat = np.ascontiguousarray(g, dtype=np.float64).reshape(-1)
    size = gflat.size
    scale = _rms(gflat)
    coord_atol = atol if atol_given else tol_model.default_atol(method, eps, rtol, scale, diff.S)

    def judge_values(u, lo, hi):
        dir_atols = []

        def fails(a, n, terms):  # one-sided differences (the base point's forward) only for a failing one
            # terms = sum|g u| over the slice, the size of <g, u>'s terms (summed in the differencer's pass)
            dir_atols.append(atol if atol_given else tol_model.default_atol(method, eps, rtol, terms, diff.S))
            return not abs(a - n) <= tol_model.tolerance(n, rtol, dir_atols[-1])

        a, n, lft, rgt = diff.direction(name, u, gflat, lo, hi, one_sided=fails)
        dir_atol = dir_atols[-1]
        codes, error, tolerance = classify([a], [n], None if lft is None else [lft],
                                           None if rgt is None else [rgt],
                                           rtol=rtol, atol=dir_atol, eps=eps, rounding=rounding)
        return a, n, lft, rgt, codes, error, tolerance, dir_atol

    results, located, atols = [], [], []
    for _ in range(int(directions)):
        u = strategies.random_direction(rng, size)
        a, n, lft, rgt, codes, error, tolerance, dir_atol = judge_values(u, 0, size)
        atols.append(dir_atol)
        code = int(codes[0])
        if code == 1 and lft is not None and _cleared_direction(diff, name, u, gflat, float(error[0]), dtype,
                                                                refine):
            code = 2
        if code in (1, 3) and sum(e.failed for e in located) < strategies.MAX_LOCATED:

            def judge(lo, hi, u=u):
                *_, c, e, t, _ = judge_values(u, lo, hi)
                failed = c[0] in (1, 3)
                return failed, (np.inf if c[0] == 3 else (float(e[0] / t[0]) if t[0] > 0 else np.inf))

            def leaf(j):
                central, left, right = diff.coordinates(name, np.array([j], dtype=np.int64))
                c, e, t = classify(gflat[j:j + 1], central, left, right, rtol=rtol, atol=coord_atol, eps=eps,
                                   rounding=rounding)
                index = tuple(int(v) for v in np.unravel_index(j, shape))
                return Element(key, index, float(gflat[j]), float(central[0]), float(e[0]), float(t[0]),
                               str(KINDS[c[0]]), None if left is None else float(left[0]),
                               None if right is None else float(right[0]))

            seen = {e.index for e in located}
            found, complete = strategies.bisect(judge, leaf, size,
                                                strategies.MAX_LOCATED - sum(e.failed for e in located))
            for e in found:
                if e.index not in seen:
                    located.append(e)
                    seen.add(e.index)
            # non-differentiable along u (one-sided differences disagree), and every coordinate the search
            # reached is ok or a kink: several kinks at once, each a valid subgradient, not a failure
            if (code == 1 and lft is not None and complete and not any(e.failed for e in found)
                    and any(e.kind == "kink" for e in found)
                    and abs(rgt - lft) > tol_model.kink_threshold(lft, rgt, eps, rounding)):
                code = 2
        results.append((a, n, lft, rgt, code, float(error[0]), float(tolerance[0])))

    arr = np.array([r[:2] for r in results], dtype=np.float64).reshape(-1, 2)
    codes = np.array([r[4] for r in results], dtype=np.int64)
    error = np.array([r[5] for r in results])
    tolerance = np.array([r[6] for r in results])
    left = None if not results or results[0][2] is None else np.array([r[2] for r in results])
    right = None if left is None else np.array([r[3] for r in results])
    kinks, worst, margin = _elements(key, shape, None, arr[:, 0], arr[:, 1], left, right, codes, error,
                                     tolerance)
    bad_located = [e for e in located if e.failed]
    worst = sorted(bad_located, key=lambda e: -e.ratio)[:SHOW_WORST] + worst
    worst = worst[:SHOW_WORST]
    failed = int(np.count_nonzero((codes == 1) | (codes == 3)))
    return dict(checked=len(results), failed=failed, kinks=kinks, worst=worst, margin=margin,
                passed=failed == 0, numeric=None, forwards=diff.forwards - f0,
                seconds=time.perf_counter() - t0, atol=max(atols) if atols else 0.0, located=located)


DENSE_NUMERIC = 1 << 22  # sampled: above this many elements the report keeps (coords, values), not an array
REUSE_ELEMENTS = 1 << 22  # directional, central: an analytic gradient this large lends its buffer to the
# working copy (4M float64 = 32 MB; at 100M weights it saves 0.8 GB of the peak and its page faults)


def _own_buffer(grads, k) -> bool:
    """grads[k] is a float64, C-contiguous, writable array whose memory nothing but the grads dict reaches
    (a layer that keeps or shares its gradient keeps it intact): it owns its memory, or it is a reshape of
    a whole array that nothing else holds (Conv2D's dk, its matrix product reshaped)."""
    g = grads[k]
    if not (type(g) is np.ndarray and g.dtype == np.float64 and g.flags.c_contiguous and g.flags.writeable
            and sys.getrefcount(g) <= 3):  # grads' entry, g, getrefcount's argument
        return False
    base = g.base
    if base is None:
        return g.flags.owndata
    return (type(base) is np.ndarray and base.base is None and base.flags.owndata and base.nbytes == g.nbytes
            and sys.getrefcount(base) <= 3)  # g's base, this name, getrefcount's argument


def _check_joint(diff, grads, arrays, names, *, directions, seed, rtol, atol, eps, method, rounding,
                 keep_analytic):
    """The directional strategy's first stage: `directions` random directions spanning all arrays at once.

    Direction i is, on each array k, the i-th direction the per-array check of k draws (strategies.
    random_direction from _rng(seed, k)), so the joint derivative is the sum of the per-array ones, and
    one forward pair (central) or one forward (complex step) checks every array. Returns
    {name: ArrayResult} when every joint direction passes, or None (after the first failure): the caller
    then checks each array on its own, with bisection, one-sided differences and kinks.

    Unless keep_analytic, an analytic gradient of at least REUSE_ELEMENTS elements that the check owns
    becomes its array's working copy (Differencer.adopt) once its sums along the directions are taken;
    such a result's analytic is None. grads[k] is then set to None (the caller recomputes on a failure).
    """
    t0, f0 = time.perf_counter(), diff.forwards
    sizes = {k: int(np.size(grads[k])) for k in names}
    dtypes = {k: _analytic_dtype(np.asarray(arrays[k]).dtype, grads[k]) for k in names}
    rtols = {k: float(rtol) if rtol is not None else tol_model.default_rtol(method, eps, d)
             for k, d in dtypes.items()}
    if len(set(rtols.values())) != 1 or min(sizes.values()) == 0:
        return None  # mixed precisions (one rtol cannot serve all) or an empty array: per array
    rtol_ = rtols[names[0]]
    rngs = {k: _rng(seed, k) for k in names}
    us = [{k: strategies.random_direction(rngs[k], sizes[k]) for k in names} for _ in range(int(directions))]
    gflat, consumed = {}, []
    for k in names:
        if (not keep_analytic and method == "central" and sizes[k] >= REUSE_ELEMENTS
                and _own_buffer(grads, k)):
            g = grads[k].reshape(-1)
            grads[k] = None
            known = [diff.sums(k, u[k], g) for u in us[1:]]  # later directions' sums, before g is gone
            diff.adopt(k, g.reshape(np.shape(arrays[k])))
            gflat[k] = [g, *known]
            consumed.append(k)
        else:
            g = np.ascontiguousarray(grads[k], dtype=np.float64).reshape(-1)
            gflat[k] = [g] * len(us)
    label = names[0] if len(names) == 1 else f"({', '.join(names)})"
    elements, atols = [], []
    for i, u in enumerate(us):
        terms = []
        parts = [(k, u[k], gflat[k][i], 0, sizes[k]) for k in names]
        a, n, _, _ = diff.directions(parts, one_sided=lambda a, n, t, terms=terms: terms.append(t))
        dir_atol = float(atol) if atol is not None else tol_model.default_atol(method, eps, rtol_, terms[0],
                                                                               diff.S)
        codes, error, tolerance = classify([a], [n], None, None, rtol=rtol_, atol=dir_atol, eps=eps,
                                           rounding=rounding)
        if codes[0] != 0:
            return None
        elements.append(Element(label, None, float(a), float(n), float(error[0]), float(tolerance[0]), "ok"))
        atols.append(dir_atol)
    margin = max(e.ratio for e in elements) if elements else 0.0
    worst = sorted(elements, key=lambda e: -e.ratio)[:SHOW_WORST]
    forwards, seconds = diff.forwards - f0, time.perf_counter() - t0
    results = {}
    for k in names:
        result = ArrayResult(name=k, shape=tuple(np.shape(arrays[k])), dtype=str(np.asarray(arrays[k]).dtype),
                             strategy="directional", method=method, eps=eps, rtol=rtol_, atol=max(atols),
                             checked=len(elements), failed=0, kinks=[], worst=list(worst), margin=margin,
                             passed=True, analytic=None if k in consumed else grads[k], numeric=None,
                             forwards=forwards, seconds=seconds, joint=tuple(names))
        results[k] = result
    return results


def _check_array(diff, key, name, analytic, array_dtype, *, strategy, method, eps, rtol, atol, samples,
                 directions, seed, y_shape):
    """Check one array (an input of diff.layer, or a tail's "x" for a residual) and build its ArrayResult."""
    g = np.asarray(analytic)
    shape = tuple(g.shape)
    dtype = _analytic_dtype(array_dtype, g)
    rtol_ = tol_model.default_rtol(method, eps, dtype) if rtol is None else float(rtol)
    rounding = tol_model.rounding_atol(method, eps, diff.S)
    rng = _rng(seed, key)
    refine = {"rtol": rtol, "atol": atol, "g": g}  # for re-tests of failures at smaller steps
    if strategy == "directional":
        out = _check_directions(diff, key, name, g, shape, directions=directions, rng=rng, rtol=rtol_,
                                atol=atol, eps=eps, rounding=rounding, method=method,
                                atol_given=atol is not None, dtype=dtype, refine=refine)
    else:
        atol_ = tol_model.default_atol(method, eps, rtol_, _rms(g), diff.S) if atol is None else float(atol)
        out = _check_coordinates(diff, key, name, g, shape, strategy=strategy, samples=samples, rng=rng,
                                 y_shape=y_shape, rtol=rtol_, atol=atol_, eps=eps, rounding=rounding,
                                 dtype=dtype, refine=refine)
    result = ArrayResult(name=key, shape=shape, dtype=str(np.dtype(array_dtype)), strategy=strategy,
                         method=method, eps=eps, rtol=rtol_, analytic=g, **out)
    return _with_convergence(diff, name, result, method)


def _with_convergence(diff, name, result, method):
    """result, with its convergence order measured when affordable (a few forwards, not counted in it)."""
    if result.analytic is None:
        result.convergence = convergence.not_measured(
            result, method, why="not measured: the analytic gradient's buffer served as the working copy")
    elif convergence.affordable(result, method):
        result.convergence = convergence.measure(diff, name, result.analytic, result)
    else:
        result.convergence = convergence.not_measured(result, method)
    return result


def _require_deterministic(layer, views, y, kind):
    """Raise LayerContractError when forward at the base point no longer gives y: the layer draws random
    numbers of its own (a dropout mask) or keeps state between calls, and any mismatch (or kink) is noise.
    Run only after a failure or a kink (one forward): such a layer is neither reported as a wrong gradient
    nor passed on one-sided differences that disagree for no reason but the noise."""
    again = np.asarray(layer.forward(**views)[0])
    if again.shape == y.shape and np.array_equal(again, y, equal_nan=True):
        return
    with np.errstate(invalid="ignore", over="ignore"):
        gap = float(np.nanmax(np.abs(again - y))) if again.shape == y.shape and y.size else float("nan")
    raise LayerContractError(
        f"{kind}: forward is not a function of its arrays: two calls with the same arrays differ "
        f"(by up to {gap:.3g}), so the mismatch found is noise; fix its random numbers (seed a dropout mask "
        f"per call) and keep no state between calls (the checker calls forward from several threads)")


def _default_method(layer, arrays, strategy, wrt):
    """Complex step for a complex-safe layer (no cancellation: rtol 2.3e-13), else central differences.

    Except for a directional check of an array of REUSE_ELEMENTS or more: complex step's complex128 working
    copy is twice the array (peak memory 4x it instead of 2x with central's adopted buffer) and one complex
    forward costs more than central's two real ones (4x the flops of a real matrix product).
    """
    if not getattr(layer, "complex_safe", False):
        return "central"
    names = layer.inputs if wrt is None else wrt
    if strategy == "directional" and any(np.size(arrays[k]) >= REUSE_ELEMENTS for k in names if k in arrays):
        return "central"
    return "complex"


def check(layer, arrays, *, strategy="exhaustive", method=None, eps=None, rtol=None, atol=None, samples=None,
          directions=None, seed=0, wrt=None, residuals=None, name=None, keep_analytic=False) -> Report:
    """Compare layer.backward with numerical derivatives; return a Report (never raises on a mismatch).

    arrays: name -> array, every name in layer.inputs and layer.constants; never modified.
    strategy: "exhaustive" | "sampled" (`samples` coordinates per array) | "directional" (`directions`
    random directions spanning all checked arrays at once; when one fails, `directions` random unit
    directions per array, failures located by bisection).
    method: "complex" | "central" | None (complex step when layer.complex_safe, else central; see
    _default_method for the exception at scale).
    eps: the step (default tolerance.default_eps); rtol/atol: override the error model's tolerances.
    wrt: input names to check (default all); residuals: layer names of a Sequential whose "<name>.delta"
    is checked against numerics of tail(name); seed: seeds G, directions and samples; name: the case name.
    keep_analytic: directional checks with central differences otherwise hand an analytic gradient of
    REUSE_ELEMENTS or more elements over as its array's working copy (peak memory 2x an array instead of
    3x), and its ArrayResult.analytic is None.
    Raises LayerContractError (a ValueError) when the layer or the arrays break the layer contract.
    """
    t0 = time.perf_counter()
    kind = _layer_name(layer)
    if strategy not in strategies.STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(strategies.STRATEGIES)}, got {strategy!r}")
    complex_safe = bool(getattr(layer, "complex_safe", False))
    if method is None:
        method = _default_method(layer, arrays, strategy, wrt)
    if method not in tol_model.METHODS:
        raise ValueError(f"method must be one of {', '.join(tol_model.METHODS)}, got {method!r}")
    if method == "complex" and not complex_safe:
        raise ValueError(f"{kind}: method 'complex' needs a complex-safe forward (layer.complex_safe = True)")
    eps = tol_model.default_eps(method) if eps is None else float(eps)
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps!r}")
    samples = strategies.DEFAULT_SAMPLES if samples is None else int(samples)
    directions = strategies.DEFAULT_DIRECTIONS if directions is None else int(directions)
    for option, value in (("samples", samples), ("directions", directions)):
        if value < 1:  # zero would check nothing and pass
            raise ValueError(f"{option} must be at least 1, got {value}")
    _validate_arrays(layer, arrays)
    wrt = list(layer.inputs) if wrt is None else list(wrt)
    unknown = [k for k in wrt if k not in layer.inputs]
    if unknown:
        raise LayerContractError(
            f"{kind}: wrt names {', '.join(unknown)}, not inputs of the layer "
            f"(inputs: {', '.join(layer.inputs)})")
    residuals = list(residuals or [])

    # analytic side, in the arrays' own dtype, on read-only views
    views = {k: read_only(v) for k, v in arrays.items()}
    y, cache = layer.forward(**views)
    y = np.asarray(y)
    forwards = 1
    G = np.asarray(np.random.default_rng(int(seed)).standard_normal(y.shape))
    if y.dtype.kind == "f":
        G = G.astype(y.dtype)  # float32 output: the same values, float32, for backward and (upcast) numerics
    grads = layer.backward(G, cache)
    del cache  # the layer's intermediates (an im2col matrix, say) are not needed again
    _validate_grads(layer, arrays, grads)
    grads = dict(grads)  # our own dict: a gradient the layer keeps (in its returned dict too) stays shared
    G64 = G.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        terms = np.abs(G64 * np.real(y).astype(np.float64))
    S = float(np.sum(terms[np.isfinite(terms)]))

    try:  # a structure probe that fails because forward is not a function of its arrays blames the layer
        results = {}
        diff = Differencer(layer, arrays, G64, method, eps, S)
        if strategy == "directional" and wrt:
            joint = _check_joint(diff, grads, arrays, wrt, directions=directions, seed=seed, rtol=rtol,
                                 atol=atol, eps=eps, method=method, keep_analytic=keep_analytic,
                                 rounding=tol_model.rounding_atol(method, eps, S))
            if joint is not None:
                results = {k: _with_convergence(diff, k, r, method) for k, r in joint.items()}
            elif any(grads[k] is None for k in wrt):  # a gradient lent its buffer: compute it again
                grads = layer.backward(G, layer.forward(**views)[1])
                forwards += 1
        for k in wrt:
            if k in results:
                continue
            results[k] = _check_array(diff, k, k, grads[k], np.asarray(arrays[k]).dtype, strategy=strategy,
                                      method=method, eps=eps, rtol=rtol, atol=atol, samples=samples,
                                      directions=directions, seed=seed, y_shape=y.shape)
        forwards += diff.forwards

        residual_results = {}
        for r in residuals:
            tail, tail_arrays, delta = residual_problem(layer, arrays, grads, r)
            forwards += 1  # the head's forward that produced u
            tdiff = Differencer(tail, tail_arrays, G64, method, eps, S)
            key = f"{r}.delta"
            residual_results[key] = _check_array(
                tdiff, key, tail.inputs[0], delta, np.asarray(tail_arrays[tail.inputs[0]]).dtype,
                strategy=strategy, method=method, eps=eps, rtol=rtol, atol=atol, samples=samples,
                directions=directions, seed=seed, y_shape=y.shape)
            forwards += tdiff.forwards
    except StructureMismatch:
        _require_deterministic(layer, views, y, kind)
        raise

    every = [*results.values(), *residual_results.values()]
    if not all(res.passed and not res.kinks for res in every):  # a "kink" excuses a mismatch: confirm too
        _require_deterministic(layer, views, y, kind)
        forwards += 1
    worst_all = [e for res in every for e in res.worst]
    worst = max(worst_all, key=lambda e: e.ratio) if worst_all else None
    return Report(case=name, passed=all(res.passed for res in every), arrays=results,
                  residuals=residual_results, margin=max((res.margin for res in every), default=0.0),
                  worst=worst,
                  seed=int(seed), strategy=strategy, method=method, seconds=time.perf_counter() - t0,
                  forwards=forwards, eps=eps)


def assert_gradients(layer, arrays, **options) -> Report:
    """check(), raising GradientMismatch (an AssertionError whose text is the verdict) unless it passed."""
    report = check(layer, arrays, **options)
    if not report.passed:
        raise GradientMismatch(report)
    return report
