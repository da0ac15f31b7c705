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


def plus_pass(u, w, p, g, h, lo, hi, imag=False):
    """w = p + h u over [lo, hi) (imag: w = p + i h u). Returns (<g, step+>, <g, step->, sum|g h u|): step+
    = w - p as stored, step- = p - (p - step+) as the - pass will store it (imag: h u and 0).

    w None: the sums only, nothing written; g None: w only, sums 0. Each chunk of g is read before that
    chunk of w is written, so w may be g's own buffer (adopt). Chunk-sized scratch buffers only: a fresh
    temporary of a chunk's size is an mmap and its page faults.
    """
    scratch = np.empty((4, min(CHUNK, max(hi - lo, 0))))
    dot = dot_minus = terms = 0.0
    for a in range(lo, hi, CHUNK):
        b = min(a + CHUNK, hi)
        us, ga, va, gs = (buf[:b - a] for buf in scratch)
        _values(u, a, b, h, us)
        ps = p[a:b]
        if g is not None:
            np.copyto(gs, g[a:b])
            np.abs(gs, out=ga)
            np.abs(us, out=va)
            terms += float(np.dot(ga, va))
        if imag:
            if g is not None:
                dot += float(np.dot(gs, us))
            if w is not None:
                w[a:b].real = ps
                w[a:b].imag = us
            continue
        np.add(ps, us, out=va)  # w+ = p + h u
        if g is not None:
            np.subtract(va, ps, out=us)  # step+ as stored
            dot += float(np.dot(gs, us))
            np.subtract(ps, us, out=ga)  # w- = p - step+
            np.subtract(ps, ga, out=ga)  # step- as stored
            dot_minus += float(np.dot(gs, ga))
        if w is not None:
            w[a:b] = va
    return dot, dot_minus, terms


def minus_pass(w, p, lo, hi):
    """w = p - (w - p) over [lo, hi): the + step mirrored."""
    buf = np.empty(min(CHUNK, max(hi - lo, 0)))
    for a in range(lo, hi, CHUNK):
        b = min(a + CHUNK, hi)
        ws, ps, s = w[a:b], p[a:b], buf[:b - a]
        np.subtract(ws, ps, out=s)
        np.subtract(ps, s, out=ws)
    return ()
