"""What pattern explains a mismatch: analytic against numeric, on the elements both sides have.

diagnose(result) names the pattern when one fits (checked in this order):

    mirrored      analytic = rot180(numeric) in every 2-D tile: a missing (or extra) rot180
    scaled        analytic = c * numeric, one c for all: a missing factor (beta, the batch size, 1/N)
    sign          analytic = -numeric
    transposed    a square matrix whose analytic is numeric transposed
    shifted       analytic = numeric moved by a few pixels in every tile (a pad cropped at the wrong side)
    holes         analytic is 0 where numeric is not, elsewhere right (a stride: entries never written)
    few elements  only a few elements are wrong, elsewhere right
    complex       (a complex array) analytic = conj(numeric), or only its real or imaginary parts wrong

Tiles are the last two axes and maps axis 1 in gradcheck's own order; an array with a layout
(ArrayResult.layout: NHWC maps, HWIO kernels) is transposed into it first (gradcheck.layout).
Computed by the check (check(explain=...)) and stored in ArrayResult.diagnosis, so renderers only print it.
"""

from __future__ import annotations

import numpy as np

from gradcheck import layout
from gradcheck.results import index_text

CLOSE = 1e-6  # relative agreement for a pattern to fit (well above checker rounding, far below a bug)


def _close(a, b) -> bool:
    scale = max(float(np.max(np.abs(b))) if b.size else 0.0, float(np.max(np.abs(a))) if a.size else 0.0)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= CLOSE * max(scale, 1e-300)))


def diagnose(result) -> list[str]:
    """Sentences about array `result` (an ArrayResult): which pattern explains its mismatch, if any."""
    if result.passed:
        return [f"{result.name}: passes (margin {result.margin:.3g})"]
    if result.failed == 0 and result.undecided:
        return [f"{result.name}: {result.undecided} of {result.checked} undecided: several kinks coincide at "
                f"this point (finite differences cannot decide there); move the point so that they separate"]
    if result.numeric is None and getattr(result, "sampled", None) is not None:
        where = ", ".join(index_text(e.array, e.index) for e in result.worst if e.failed) or "none shown"
        return [f"{result.name}: {result.failed} of {result.checked} sampled coordinates wrong: {where}"]
    if result.numeric is None:
        where = ", ".join(index_text(e.array, e.index) for e in result.located if e.failed)
        where = where or "no single element"
        return [f"{result.name}: wrong along {result.failed} random direction(s); bisection located {where}"]
    out = _complex_patterns(result) if getattr(result, "parts", False) else []
    if out:
        return out + ([f"  {result.convergence}"] if result.convergence is not None else [])
    lay = getattr(result, "layout", None)  # channels-last: into gradcheck's own order first
    g, n = (layout.canonical(np.asarray(a), lay) for a in (result.analytic, result.numeric))
    if getattr(result, "parts", False):  # a complex array: its (re, im) parts, as checked
        g, n = (np.stack([a.real, a.imag], axis=-1) for a in (g.astype(np.complex128), n))
    g, n = np.real(g).astype(np.float64), np.asarray(n, dtype=np.float64)
    have = np.isfinite(n) & np.isfinite(g)
    if not have.any():
        return [f"{result.name}: no finite element to compare"]
    full = bool(have.all())
    name = result.name
    if full and g.ndim >= 2:
        if _close(g, n[..., ::-1, ::-1]) and not _close(g, n):
            out.append(f"{name}: analytic is numeric rotated 180 degrees in every tile (mirrored): "
                       "a missing or extra rot180")
        elif g.ndim == 2 and g.shape[0] == g.shape[1] and _close(g, n.T) and not _close(g, n):
            out.append(f"{name}: analytic is numeric transposed")
    gs, ns = g[have], n[have]
    nz = np.abs(ns) > CLOSE * max(float(np.max(np.abs(ns))), 1e-300)
    if not out and nz.sum() >= 2:
        ratio = gs[nz] / ns[nz]
        c = float(np.median(ratio))
        if abs(c + 1) < CLOSE:
            out.append(f"{name}: analytic = -numeric (a sign flip)")
        elif abs(c - 1) > CLOSE and np.all(np.abs(ratio - c) <= CLOSE * abs(c)) and _close(gs, c * ns):
            out.append(f"{name}: analytic = {c:.6g} x numeric everywhere (numeric = {1 / c:.6g} x analytic):"
                       " a missing factor (beta? the batch size? 1/N?)")
    if not out and full and g.ndim == 4:
        c = _per_map_factor(g, n)
        if c is not None:
            out.append(f"{name}: analytic = c[m] x numeric with one factor per map m (numeric / analytic = "
                       + ", ".join(f"{1 / v:.4g}" for v in c) + "): a missing per-map factor (beta?)")
    if not out and full and g.ndim >= 2:
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                if (dy or dx) and _shift_fits(g, n, dy, dx):
                    out.append(f"{name}: analytic is numeric shifted by ({dy}, {dx}) pixels in every tile"
                               " (a pad cropped on the wrong side?)")
                    break
            if out:
                break
    if not out:
        wrong = np.abs(gs - ns) > CLOSE * max(float(np.max(np.abs(ns))), 1e-300)
        holes = wrong & (np.abs(gs) <= CLOSE * max(float(np.max(np.abs(gs))), 1e-300))
        if wrong.any() and holes.sum() == wrong.sum():
            out.append(f"{name}: analytic is 0 at {int(holes.sum())} of {gs.size} elements where numeric is"
                       " not, right elsewhere (entries never written: a stride or a crop?)")
        elif 0 < wrong.sum() <= 5:
            out.append(f"{name}: only {int(wrong.sum())} element(s) wrong, right elsewhere: "
                       + ", ".join(str(e) for e in result.worst if e.failed))
    if not out:
        out.append(f"{name}: {result.failed} of {result.checked} elements wrong; no simple pattern "
                   "(see the difference map)")
    if result.convergence is not None:
        out.append(f"  {result.convergence}")
    return out


def _complex_patterns(result) -> list[str]:
    """A complex array's conventions gone wrong: conjugated, or one part wrong and the other right."""
    g, n = np.asarray(result.analytic, dtype=np.complex128), np.asarray(result.numeric, dtype=np.complex128)
    if not (np.isfinite(g).all() and np.isfinite(n).all()):
        return []
    name = result.name
    if _close(g, np.conj(n)) and not _close(g, n):
        return [f"{name}: analytic is the conjugate of numeric: the gradient of a complex array is "
                f"dL/dRe + i dL/dIm (torch's convention: for y = x * a, dx = dy * conj(a), not dy * a)"]
    real_ok, imag_ok = _close(g.real, n.real), _close(g.imag, n.imag)
    if real_ok != imag_ok:
        right, wrong = ("real", "imaginary") if real_ok else ("imaginary", "real")
        return [f"{name}: the {wrong} parts are wrong, the {right} parts right (the {wrong} part of the "
                f"gradient is dL/d{'Im' if wrong == 'imaginary' else 'Re'} of the element)"]
    return []


def _per_map_factor(g, n):
    """c[m] with g[:, m] = c[m] * n[:, m] for every map m (axis 1), the c not all equal; else None."""
    c = []
    for m in range(g.shape[1]):
        gm, nm = g[:, m].reshape(-1), n[:, m].reshape(-1)
        k = int(np.argmax(np.abs(nm)))
        if abs(nm[k]) == 0 or not _close(gm, gm[k] / nm[k] * nm):
            return None
        c.append(gm[k] / nm[k])
    c = np.array(c)
    return c if np.ptp(c) > CLOSE * np.max(np.abs(c)) else None


def _shift_fits(g, n, dy, dx) -> bool:
    """analytic[..., i, j] == numeric[..., i - dy, j - dx] wherever both exist, and those cover most."""
    H, W = g.shape[-2:]
    if abs(dy) >= H or abs(dx) >= W:
        return False
    gs = g[..., max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)]
    ns = n[..., max(-dy, 0):H + min(-dy, 0), max(-dx, 0):W + min(-dx, 0)]
    return gs.size >= g.size // 2 and _close(gs, ns) and not _close(g, n)


