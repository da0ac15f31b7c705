"""Kinks that coincide: tie groups, and points where finite differences cannot decide.

classify() judges each coordinate by the one-sided differences of L as a whole. Two cases need to know in
which output elements a coordinate's kink lives. Per coordinate j moved by +h and -h (steps as stored)::

    r_o = G_o (y+_o - y0_o) / h+,   l_o = G_o (y0_o - y-_o) / h-        its terms of right and left
    N_j = {o : |r_o - l_o| > kink_threshold(l_o, r_o, eps, rounding)}   where L is not smooth along e_j

(rounding: the whole L's rounding floor, so only a disagreement that is real counts).

tie groups   kinks whose N_j overlap: tied maxima of one max-pool window, each alone a valid subgradient
             value. Along 1_T, the direction that raises every element of the group T together, the
             output moves smoothly (the maximum rises with them), so when no output element is non-smooth
             along 1_T, L is differentiable along it and sum_{j in T} g_j must match that derivative
             (central differences, the error model's tolerance with terms sum |g_j|). Otherwise the
             group is left as kinks. A backward that hands the full dy to all k tied maxima gives k dy
             where dy is right: the group fails, and its members count as failed.
undecided    a mismatch whose one-sided differences disagree and whose kink lives in two or more output
             elements (FC -> ReLU with x = 0 and b = 0: x[n, d] moves every pre-activation of row n across
             0 at once). [left, right] then bounds no valid gradient (torch's own value lies outside it),
             so the element is Verdict.UNDECIDED: neither a pass nor a wrong gradient; move the point.
             A wrong value at a single kink (|N_j| <= 1, ReLU at 0) stays a mismatch.

Cost: nothing without kinks or kink-like mismatches. Otherwise two forwards per group of coordinates with
disjoint footprints (structure.pack with the layer's declaration, already probed by the plan; else one
coordinate per group), for at most ANALYSE_SINGLES or ANALYSE_PACKED coordinates per array, plus two per
batch of tie groups whose declared footprints are disjoint (two per tie group without a declaration).
"""

from __future__ import annotations

import numpy as np

from gradcheck.engine import structure
from gradcheck.engine.verdict import KINK, MISMATCH, UNDECIDED, Verdict, classify, disagreeing
from gradcheck.results import Element

# Coordinates whose output elements are analysed, per array: one coordinate a group without a declaration
# (two forwards each); packed by the declaration, as many as one pass over the output each allows
ANALYSE_SINGLES = 256
ANALYSE_WORK = 1 << 26  # output elements visited in packing, in all
ANALYSE_PACKED = (64, 4096)  # the packed limit's bounds


def _nonsmooth(check, coords, labels):
    """N_j (flat output indices) for each coordinate of one group perturbed together; 2 forwards."""
    diff, eps = check.diff, check.eps
    y0 = diff.y0
    yp, hp = diff.perturbed(check.name, coords, eps)
    ym, hm = diff.perturbed(check.name, coords, -eps)
    pos = np.zeros(np.size(y0), dtype=np.int64) if labels is None else np.asarray(labels)
    touched = np.flatnonzero(pos >= 0)
    p = pos[touched]
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        right = diff.weigh(yp - y0).reshape(-1)[touched] / hp[p]
        left = diff.weigh(y0 - ym).reshape(-1)[touched] / -hm[p]
    bad = disagreeing(left, right, eps, check.rounding) & np.isfinite(left) & np.isfinite(right)
    outs, owner = touched[bad], p[bad]
    order = np.argsort(owner, kind="stable")
    outs, owner = outs[order], owner[order]
    bounds = np.searchsorted(owner, np.arange(coords.size + 1))
    return [outs[bounds[i]:bounds[i + 1]] for i in range(coords.size)]


def nonsmooth_outputs(check, coords, packed=True, cache=None):
    """{flat coordinate: N_j} for the coordinates `coords`, as many as the limits allow (packed: by the
    layer's structure declaration, already probed). cache: coordinate -> N_j, reused and filled."""
    cache = {} if cache is None else cache
    todo = np.array([c for c in np.asarray(coords, dtype=np.int64) if int(c) not in cache], dtype=np.int64)
    groups = None
    if packed and todo.size > 1 and not check.diff.parts(check.name):
        diff = check.diff
        low, high = ANALYSE_PACKED
        todo = todo[:min(high, max(low, ANALYSE_WORK // max(diff.G.size, 1)))]  # a pass over y per coordinate
        groups = structure.pack(diff.layer, check.name, diff.arrays(), diff.G.shape, todo, check.rng,
                                probes=0)
    if groups:
        plan = [(g.coords, g.labels) for g in groups]
    else:
        plan = [(todo[i:i + 1], None) for i in range(min(todo.size, ANALYSE_SINGLES))]
    for c, labels in plan:
        for j, n in zip(c, _nonsmooth(check, c, labels), strict=True):
            cache[int(j)] = n
    return {int(c): cache[int(c)] for c in coords if int(c) in cache}


def _components(members, sets):
    """Groups (lists of positions) of members whose output sets overlap, of two or more members."""
    parent = {i: i for i in members}

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner = {}
    for i in members:
        for o in sets[i].tolist():
            if o in owner:
                parent[root(i)] = root(owner[o])
            else:
                owner[o] = i
    groups = {}
    for i in members:
        groups.setdefault(root(i), []).append(i)
    return [sorted(g) for g in groups.values() if len(g) > 1]


def _batches(check, groups, packed):
    """Tie groups (arrays of flat coordinates) in batches raised in the same two forwards: (groups, labels)
    with labels the flat output -> position of the group whose declared footprint holds it (-1: none), or
    one group a batch with labels None (no declaration, or not packed)."""
    diff = check.diff
    footprint = (structure.footprints(diff.layer, check.name, diff.arrays(), diff.G.shape)
                 if packed and not diff.parts(check.name) else None)
    if footprint is None or len(groups) < 2:
        return [([g], None) for g in groups]
    batches = []  # (groups, used outputs, labels)
    for g in groups:
        mask = np.logical_or.reduce([footprint(j) for j in g])
        for members, used, labels in batches:
            if not (used & mask).any():
                labels[mask] = len(members)
                members.append(g)
                used |= mask
                break
        else:
            labels = np.full(mask.size, -1, dtype=np.int64)
            labels[mask] = 0
            batches.append(([g], mask.copy(), labels))
    return [(members, labels) for members, _, labels in batches]


def _joint(check, groups, analytic_of, packed):
    """Each tie group (flat coordinates) raised together, by 1_T: a failing Element per group that fails,
    None per group that matches or along which some output element is not smooth (no decision)."""
    diff, eps, shape = check.diff, check.eps, check.shape
    y0 = diff.y0
    out = []
    for members, labels in _batches(check, groups, packed):
        c = np.concatenate(members)
        yp, hp = diff.perturbed(check.name, c, eps)
        ym, hm = diff.perturbed(check.name, c, -eps)
        wp, wm = diff.weigh(yp - y0).reshape(-1), diff.weigh(y0 - ym).reshape(-1)
        at = np.cumsum([0, *(g.size for g in members)])
        for i, g in enumerate(members):
            sel = slice(None) if labels is None else labels == i
            p, m = wp[sel], wm[sel]
            if disagreeing(m / eps, p / eps, eps, check.rounding).any():
                out.append(None)
                continue
            ga = analytic_of(g)
            a = (float(ga @ hp[at[i]:at[i + 1]]) - float(ga @ hm[at[i]:at[i + 1]])) / (2 * eps)
            n = (float(np.sum(p)) + float(np.sum(m))) / (2 * eps)
            atol = check.direction_atol(float(np.sum(np.abs(ga))))
            codes, error, tolerance = classify([a], [n], None, None, rtol=check.rtol, atol=atol, eps=eps,
                                               rounding=check.rounding)
            if codes[0] != MISMATCH:
                out.append(None)
                continue
            tied = tuple(tuple(int(v) for v in np.unravel_index(int(j), shape)) for j in g)
            out.append(Element(check.key, tied[0], a, n, float(error[0]), float(tolerance[0]),
                               Verdict.MISMATCH, float(np.sum(m)) / eps, float(np.sum(p)) / eps, tied=tied))
    return out


def refine(check, coords, analytic, left, right, codes, packed=True, cache=None):
    """(codes, tie_elements, warnings) for coordinates `coords` (flat, of check's array) with their
    analytic values and one-sided differences, after classify(): kink-like mismatches in several output
    elements become UNDECIDED; tie groups of kinks that fail raised together become MISMATCH, each group
    also one Element (tie_elements). Costs nothing unless there are kinks or kink-like mismatches."""
    codes = np.array(codes)
    rough = np.isfinite(left) & np.isfinite(right) & disagreeing(left, right, check.eps, check.rounding)
    suspects = np.flatnonzero((codes == MISMATCH) & rough)
    kinks = np.flatnonzero(codes == KINK)
    if suspects.size == 0 and kinks.size < 2:
        return codes, [], []
    todo = np.concatenate([suspects, kinks]) if kinks.size >= 2 else suspects
    found = nonsmooth_outputs(check, coords[todo], packed, cache)
    sets = {int(i): found[int(coords[i])] for i in todo if int(coords[i]) in found}
    warnings = []
    if len(sets) < todo.size:
        warnings.append(f"{check.key}: the output elements of only {len(sets)} of {todo.size} kink(s) were "
                        f"analysed (the analysis' limit): tie groups among the rest were "
                        f"not checked")
    several = [int(i) for i in suspects if int(i) in sets and sets[int(i)].size >= 2]
    codes[several] = UNDECIDED
    if several:  # a degenerate point: the unanalysed suspects are as likely degenerate as not
        codes[[int(i) for i in suspects if int(i) not in sets]] = UNDECIDED
    ties = []
    groups = _components([int(i) for i in kinks if int(i) in sets], sets)
    analytic = np.asarray(analytic, dtype=np.float64)
    position = {int(c): i for i, c in enumerate(coords)}
    found = _joint(check, [coords[g] for g in groups], lambda c: analytic[[position[int(j)] for j in c]],
                   packed)
    for group, e in zip(groups, found, strict=True):
        if e is not None:
            codes[group] = MISMATCH
            ties.append(e)
    return codes, ties, warnings


def with_ties(worst, ties, limit):
    """The worst list with the failing tie groups first (largest ratio first), their members dropped."""
    members = {i for e in ties for i in e.tied}
    rest = [e for e in worst if e.index not in members]
    return (sorted(ties, key=lambda e: -e.ratio) + rest)[:limit]


__all__ = ["ANALYSE_PACKED", "ANALYSE_SINGLES", "nonsmooth_outputs", "refine", "with_ties"]
