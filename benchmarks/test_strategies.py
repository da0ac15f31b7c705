"""Each checker strategy on each catalogue case, grouped per case, plus the issue's targets.

extra_info of every benchmark holds the cost model: forwards (Report.forwards), coordinates or directions
checked, and forwards per coordinate checked. The checks must pass: a speed-up that breaks a verdict fails
here (also under --benchmark-disable, where each runs once).
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.conftest import HUGE, catalogue, conv_problem, fc_problem, vgg_fc_problem
from gradcheck import check
from gradcheck.strategies import STRATEGIES
from layers import Conv2D, FullyConnected

CASES = catalogue()
SMALL = [c for c in CASES if c.elements() <= HUGE]
LARGE = [c for c in CASES if c.elements() > HUGE]


def cost(benchmark, report):
    """Record the cost model in the benchmark's extra_info; returns forwards per coordinate."""
    checked = sum(r.checked for r in (*report.arrays.values(), *report.residuals.values()))
    per = report.forwards / max(checked, 1)
    benchmark.extra_info.update(forwards=report.forwards, checked=checked, forwards_per_coordinate=per)
    return per


def run(benchmark, layer, arrays, rounds=3, warmup=0, **options):
    report = benchmark.pedantic(check, args=(layer, arrays), kwargs=options, rounds=rounds, iterations=1,
                                warmup_rounds=warmup)
    cost(benchmark, report)
    assert report.passed, str(report)
    return report


SWEEP = [(c, s) for c in SMALL for s in STRATEGIES if s != "exhaustive" or c.strategy == "exhaustive"]


@pytest.mark.parametrize(("case", "strategy"), SWEEP, ids=[f"{c.name}-{s}" for c, s in SWEEP])
def test_catalogue_case(benchmark, case, strategy):
    """The case's arrays and method, checked with each strategy (its own samples/directions, else defaults).
    Exhaustive only where the case itself is exhaustive (a chain's sampled case has no column structure
    for x through ReLU and max pooling: one forward per coordinate)."""
    benchmark.group = f"case {case.name}"
    options = case.options()
    options["strategy"] = strategy
    if strategy != case.strategy:
        options.pop("samples", None)
        options.pop("directions", None)
    run(benchmark, case.layer, case.arrays(), **options)


@pytest.mark.parametrize("case", LARGE, ids=[c.name for c in LARGE])
def test_catalogue_large_case(big, case):
    """The 100M- and 17M-weight cases with their own strategy (directional or sampled), one round."""
    big.group = f"case {case.name}"
    run(big, case.layer, case.arrays(), rounds=1, **case.options())


# -- the targets (times are read from the benchmark table; no timing asserts) --------------------

@pytest.mark.parametrize("method", ["complex", "central"])
def test_target1_exhaustive_fc_800_500(benchmark, method):
    """Target 1: every coordinate of x, W and b (413,300) of FC 800 -> 500, batch 16."""
    benchmark.group = "target 1: exhaustive FC 800->500 batch 16"
    report = run(benchmark, FullyConnected(), fc_problem(), method=method)
    assert sum(r.checked for r in report.arrays.values()) == 16 * 800 + 800 * 500 + 500


@pytest.mark.parametrize("method", ["complex", "central"])
def test_target2_exhaustive_conv_seed003(benchmark, method):
    """Target 2: every coordinate of x, k and b (49,912) of seed 003's conv, batch 16."""
    benchmark.group = "target 2: exhaustive conv 32x32x3 ten 5x5 pad 2 batch 16"
    report = run(benchmark, Conv2D(stride=1, pad=2), conv_problem(), method=method)
    assert sum(r.checked for r in report.arrays.values()) == 16 * 3 * 32 * 32 + 750 + 10


def test_target3_directional_vgg_fc(big):
    """Target 3: one random direction spanning x, W and b of FC 7x7x512 -> 4096 (102.8M weights), with the
    default method (central differences at this size)."""
    big.group = "target 3: directional FC 7x7x512->4096 batch 16"
    # warm, as its yardstick below: a process's first 0.8 GB allocations pay page faults either way
    report = run(big, FullyConnected(), vgg_fc_problem(), rounds=2, warmup=1, strategy="directional",
                 directions=1)
    assert report.method == "central" and report.forwards == 3  # the analytic forward + one joint pair


def test_target3_reference_forward_backward(big):
    """Target 3's yardstick: one forward + backward of the same layer."""
    big.group = "target 3: directional FC 7x7x512->4096 batch 16"
    layer, arrays = FullyConnected(), vgg_fc_problem()

    def forward_backward():
        y, cache = layer.forward(**arrays)
        return layer.backward(y, cache)

    big.pedantic(forward_backward, rounds=3, iterations=1, warmup_rounds=1)


def test_target3_directional_vgg_fc_default_options(big):
    """Issue 13: the same with the default options (3 joint directions), as a user who writes
    `strategy: directional` gets it; against the yardstick above (make bench-peers takes the ratio)."""
    big.group = "target 3: directional FC 7x7x512->4096 batch 16"
    report = run(big, FullyConnected(), vgg_fc_problem(), rounds=2, warmup=1, strategy="directional")
    assert report.method == "central" and report.forwards == 1 + 2 * 3


@pytest.mark.parametrize("how", ["make_array", "numpy-one-thread"])
def test_drawing_a_102m_case_array(big, how):
    """Issue 13: a case's 102.8M-element array (blocks on a thread pool) against numpy's one-thread
    standard_normal of the same shape."""
    from gradcheck.catalogue.arrays import make_array

    big.group = "drawing a 25088 x 4096 case array"
    spec = {"shape": [25088, 4096], "scale": 0.0063}
    if how == "make_array":
        big.pedantic(make_array, args=("W", spec, 0), rounds=3, iterations=1, warmup_rounds=1)
    else:
        big.pedantic(lambda: np.random.default_rng(0).standard_normal((25088, 4096)), rounds=3, iterations=1,
                     warmup_rounds=1)
