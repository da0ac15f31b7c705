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

    w None: the sums only, nothing written; g None: w only, sums 0. Each chunk of g is read before that
    chunk of w is written, so w may be g's own buffer (adopt): the pass that overwrites g takes the sums
    later passes along other directions need (Differencer.Lent). Chunk-sized scratch buffers only: a
    fresh temporary of a chunk's size is an mmap and its page faults.
    """
    if g is not None and w is None and not imag:
        return sums_pass([u, *later], p, g, h, lo, hi)
    scratch = np.empty((6, min(CHUNK, max(hi - lo, 0))))
    direct = w is not None and (g is None or not np.may_share_memory(w, g))  # write w in place
    dot = dot_minus = terms = 0.0
    more = np.zeros((len(later), 3))
    for a in range(lo, hi, CHUNK):
        b = min(a + CHUNK, hi)
        us, ga, va, t, s2, t2 = (buf[:b - a] for buf in scratch)
        _values(u, a, b, h, us)
        ps = p[a:b]
        if imag:
            if g is not None:
                gs = g[a:b]
                dot += float(np.dot(gs, us))
                terms += float(np.dot(np.abs(gs, out=ga), np.abs(us, out=va)))
            if w is not None:
                w[a:b].real = ps
                w[a:b].imag = us
            continue
        wp = w[a:b] if direct else va
        np.add(ps, us, out=wp)  # w+ = p + h u
        if g is not None:
            gs = g[a:b]  # read here, before w[a:b] is written (adopt: w is g)
            terms += float(np.dot(np.abs(gs, out=ga), np.abs(us, out=t)))
            np.subtract(wp, ps, out=us)  # step+ as stored
            dot += float(np.dot(gs, us))
            np.subtract(ps, us, out=t)  # w- = p - step+
            np.subtract(ps, t, out=t)  # step- as stored
            dot_minus += float(np.dot(gs, t))
            for i, v in enumerate(later):
                more[i] += _chunk_sums(v, a, b, h, ps, gs, ga, s2, t2, t)
        if not direct and w is not None:
            w[a:b] = wp
    return (dot, dot_minus, terms, *more.reshape(-1))


def _chunk_sums(u, a, b, h, ps, gs, ga, s, t, wp):
    """(<g, step+>, <g, step->, sum|g h u|) of chunk [a, b) along u (ga = |gs|; s, t, wp scratch)."""
    _values(u, a, b, h, s)
    np.add(ps, s, out=wp)  # w+ = p + h u
    terms = float(np.dot(ga, np.abs(s, out=t)))
    np.subtract(wp, ps, out=s)  # step+ as stored
    plus = float(np.dot(gs, s))
    np.subtract(ps, s, out=t)  # w- = p - step+
    np.subtract(ps, t, out=t)  # step- as stored
    return plus, float(np.dot(gs, t)), terms


def sums_pass(us, p, g, h, lo, hi):
    """The sums of plus_pass (nothing written) for several directions `us` in one pass over g and p:
    (<g, step+>, <g, step->, sum|g h u|) of each direction in turn, flattened; |g| once per chunk."""
    scratch = np.empty((4, min(CHUNK, max(hi - lo, 0))))
    sums = np.zeros((len(us), 3))
    for a in range(lo, hi, CHUNK):
        b = min(a + CHUNK, hi)
        s, ga, t, wp = (buf[:b - a] for buf in scratch)
        ps, gs = p[a:b], g[a:b]
        np.abs(gs, out=ga)
        for i, u in enumerate(us):
            sums[i] += _chunk_sums(u, a, b, h, ps, gs, ga, s, t, wp)
    return tuple(sums.reshape(-1))


def minus_pass(w, p, lo, hi):
    """w = p - (w - p) over [lo, hi): the + step mirrored."""
    buf = np.empty(min(CHUNK, max(hi - lo, 0)))
    for a in range(lo, hi, CHUNK):
        b = min(a + CHUNK, hi)
        ws, ps, s = w[a:b], p[a:b], buf[:b - a]
        np.subtract(ws, ps, out=s)
        np.subtract(ps, s, out=ws)
    return ()
