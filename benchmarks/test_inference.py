"""Issue 11's targets: undeclared user layers (tests/user_layers.py), grouped by an inferred structure.

The yardstick: a user's im2col convolution with no `structure`, seed 003's shape (x 16 x 3 x 32 x 32, ten
5 x 5 filters, pad 2; 49,912 coordinates), checked exhaustively with the checker's defaults, against
layers.Conv2D with its declaration on the same arrays. The defaults differ by method: the user layer is not
declared complex-safe, so it gets richardson (4 forwards a group), Conv2D complex step (1 a group). What
inference owns is the grouping, so the forwards ratio is asserted at the same method: Conv2D declared and
checked with richardson too, within 1.5x (issue 11 asked for 3x with central against complex step, 2
forwards a group against 1: the same 1.5x of groups). The defaults' forwards and time ratios are recorded
beside it. One coordinate per forward, the path before inference, took 2 x 49,912 + 1 forwards (central).

Then each user layer with no declaration: forwards against coordinates, and the verdict of a correct layer.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from benchmarks.conftest import conv_problem
from benchmarks.test_strategies import cost, run
from gradcheck import check
from gradcheck.checker import default_method
from layers import Conv2D
from tests import user_layers as U

GROUP = "issue 11: exhaustive conv seed 003, user im2col (inferred) vs Conv2D (declared)"
FORWARDS_RATIO = 1.5  # target: the inferred check within 1.5x the declared check's forwards, same method
TIME_RATIO = 4.0  # target (recorded, not asserted: a shared 2-core machine's times wander)


def plain(entries):
    """A declaration as JSON data (extra_info), None when none was inferred."""
    return None if entries is None else [e if e is None or isinstance(e, int) else list(e) for e in entries]


def test_inferred_user_conv_against_declared_conv2d(benchmark):
    benchmark.group = GROUP
    arrays = conv_problem()
    user, reference = U.Im2colConv(stride=1, pad=2), Conv2D(stride=1, pad=2)
    runs = {"inferred": [], "declared": [], "declared-default": []}

    def both():
        same = default_method(user, arrays, "exhaustive", None)
        for key, layer, method in (("declared-default", reference, None), ("declared", reference, same),
                                   ("inferred", user, None)):
            t0 = time.perf_counter()
            report = check(layer, arrays, strategy="exhaustive", method=method)
            runs[key].append((time.perf_counter() - t0, report))
        return runs["inferred"][-1][1]

    report = benchmark.pedantic(both, rounds=1, iterations=1, warmup_rounds=0)
    best = {key: min(r, key=lambda r: r[0]) for key, r in runs.items()}
    for key, (seconds, r) in best.items():
        assert r.passed, str(r)
        benchmark.extra_info[f"{key}_forwards"] = r.forwards
        benchmark.extra_info[f"{key}_seconds"] = round(seconds, 3)
        benchmark.extra_info[f"{key}_method"] = r.method
    inferred, declared, default = best["inferred"], best["declared"], best["declared-default"]
    assert inferred[1].method == declared[1].method == "richardson" and default[1].method == "complex"
    forwards_ratio = inferred[1].forwards / declared[1].forwards
    benchmark.extra_info.update(
        coordinates=sum(r.checked for r in report.arrays.values()),
        forwards_ratio=round(forwards_ratio, 3), time_ratio=round(inferred[0] / declared[0], 3),
        defaults_forwards_ratio=round(inferred[1].forwards / default[1].forwards, 3),
        defaults_time_ratio=round(inferred[0] / default[0], 3), one_per_forward_forwards=2 * 49_912 + 1,
        inferred={n: plain(r.inferred) for n, r in report.arrays.items()})
    assert report.arrays["x"].inferred == (0, None, (2, 1, -2, 5), (3, 1, -2, 5))
    assert report.arrays["k"].inferred == (1, None, None, None)
    assert forwards_ratio <= FORWARDS_RATIO, benchmark.extra_info


def user_problems():
    """name -> (layer, arrays): each user layer at a size where one coordinate per forward would hurt."""
    rng = np.random.default_rng(11)
    n = rng.standard_normal
    return {
        "where-maxpool 2x2": (U.WhereMaxPool(), {"x": n((16, 8, 32, 32))}),
        "batchnorm": (U.BatchNorm(), {"x": n((16, 8, 12, 12)), "gamma": n(8), "beta": n(8)}),
        "swish": (U.Swish(), {"x": n((16, 8, 32, 32))}),
        "dense 800->500": (U.Dense(), {"x": n((16, 800)), "W": n((800, 500)) / np.sqrt(800), "b": n(500)}),
        "sparse-mask 400": (U.SparseMask(400, 400), {"x": n((16, 400)), "W": n((400, 400))}),
        "global-scale": (U.GlobalScale(), {"x": n((2, 4, 16, 16))}),
    }


PROBLEMS = user_problems()


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_user_layer_is_grouped(benchmark, name):
    benchmark.group = "issue 11: undeclared user layers, exhaustive"
    layer, arrays = PROBLEMS[name]
    report = run(benchmark, layer, arrays, rounds=1, strategy="exhaustive")
    per = cost(benchmark, report)
    benchmark.extra_info["arrays"] = {
        k: {"coordinates": r.checked, "forwards": r.forwards, "rechecked": r.rechecked,
            "inferred": plain(r.inferred)}
        for k, r in report.arrays.items()}
    assert per < 0.5, benchmark.extra_info  # forwards well below coordinates, probes included
