"""Chunked passes over a flat slice of a working copy along a direction u (no temporary of an array's size):
the + pass writes a + h u (or a + i h u) and sums the analytic side as it goes, the - pass mirrors the
stored + step. Called by the Differencer through threads.in_parts."""

from __future__ import annotations

import numpy as np

from gradcheck.engine.threads import CHUNK


def _values(u, a, b, scale, out):
    """out[:] = scale * u[a:b] for an ndarray u or a strategies.Direction."""
    if isinstance(u, np.ndarray):
        return np.multiply(u[a:b], scale, out=out)
    return u.values(a, b, scale, out)


def plus_pass(u, w, p, g, h, lo, hi, imag=False, later=()):
    """w = p + h u over [lo, hi) (imag: w = p + i h u). Returns (<g, step+>, <g, step->, sum|g h u|): step+
    = w - p as stored, step- = p - (p - step+) as the - pass will store it (imag: h u and 0); then the same
    triple for each direction of `later` (real steps only), taken from g's chunk before w's is written.

    g None: w only, sums 0. Each chunk of g is read before that chunk of w is written, so w may be g's own
    buffer (adopt): the pass that overwrites g takes the sums later passes along other directions need
    (Differencer.Lent). Chunk-sized scratch buffers only: a fresh temporary of a chunk's size is an mmap
    and its page faults.
    """
    scratch = np.empty((6, min(CHUNK, max(hi - lo, 0))))
    direct = g is None or not np.may_share_memory(w, g)  # write w in place
    sums = np.zeros((1 + len(later), 3))
    for a in range(lo, hi, CHUNK):
        b = min(a + CHUNK, hi)
        us, ga, va, t, s2, t2 = (buf[:b - a] for buf in scratch)
        _values(u, a, b, h, us)
        ps = p[a:b]
        if imag:
            if g is not None:
                gs = g[a:b]
                sums[0, 0] += float(np.dot(gs, us))
                sums[0, 2] += float(np.dot(np.abs(gs, out=ga), np.abs(us, out=va)))
            w[a:b].real = ps
            w[a:b].imag = us
            continue
        wp = w[a:b] if direct else va
        np.add(ps, us, out=wp)  # w+ = p + h u
        if g is not None:
            gs = g[a:b]  # read here, before w[a:b] is written (adopt: w is g)
            np.abs(gs, out=ga)
            sums[0] += _step_sums(ps, gs, ga, us, wp, t)
            for i, v in enumerate(later):
                _values(v, a, b, h, s2)
                np.add(ps, s2, out=t2)  # its w+, in scratch
                sums[1 + i] += _step_sums(ps, gs, ga, s2, t2, t)
        if not direct:
            w[a:b] = wp
    return tuple(float(v) for v in sums.reshape(-1))


def _step_sums(ps, gs, ga, s, wp, t):
    """(<g, step+>, <g, step->, sum|g h u|) of one chunk: s = h u (overwritten by step+), wp = p + h u as
    stored, ga = |g|, t scratch."""
    terms = float(np.dot(ga, np.abs(s, out=t)))
    np.subtract(wp, ps, out=s)  # step+ as stored
    plus = float(np.dot(gs, s))
    np.subtract(ps, s, out=t)  # w- = p - step+
    np.subtract(ps, t, out=t)  # step- as stored
    return plus, float(np.dot(gs, t)), terms


def minus_pass(w, p, lo, hi):
    """w = p - (w - p) over [lo, hi): the + step mirrored."""
    buf = np.empty(min(CHUNK, max(hi - lo, 0)))
    for a in range(lo, hi, CHUNK):
        b = min(a + CHUNK, hi)
        ws, ps, s = w[a:b], p[a:b], buf[:b - a]
        np.subtract(ws, ps, out=s)
        np.subtract(ps, s, out=ws)
    return ()
