"""Shared fixtures of the benchmarks: seeded arrays of the issue's problems and the catalogue's cases.

Run as benchmarks (`make bench`: pytest benchmarks --benchmark-only --benchmark-autosave, then
`--benchmark-compare` against the saved run) or as plain tests (`pytest benchmarks --benchmark-disable`:
every benchmarked call runs once and its asserts hold; the 100M-weight ones are skipped there).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from gradcheck.catalogue.case import load_paths
from gradcheck.errors import CaseError

CATALOGUE = Path(__file__).resolve().parent.parent / "cases"
HUGE = 5_000_000  # elements: the 7x7x512 -> 4096 kernels (102.8M) and the 4096 x 4096 1x1 kernels (16.8M)


def catalogue():
    """Every well-formed case of cases/, in file order."""
    return [c for c in load_paths([CATALOGUE]) if not isinstance(c, CaseError)]


def fc_problem(N=16, D=800, F=500, seed=0):
    """Seed 000's LeNet FC layer 800 -> 500, batch 16: x (N, D), W (D, F) ~ 1/sqrt(D), b (F,)."""
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((N, D)), "W": rng.standard_normal((D, F)) / np.sqrt(D),
            "b": rng.standard_normal(F)}


def conv_problem(seed=0):
    """Seed 003's conv: x 16 x 3 x 32 x 32, ten 5 x 5 x 3 filters (stride 1, pad 2), b (10,)."""
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((16, 3, 32, 32)), "k": 0.1 * rng.standard_normal((10, 3, 5, 5)),
            "b": rng.standard_normal(10)}


def vgg_fc_problem(seed=0):
    """Seeds 000/001: VGG-16's FC 7x7x512 -> 4096, batch 16 (W is 102.8M float64, 0.82 GB)."""
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((16, 512, 7, 7)),
            "W": rng.standard_normal((25088, 4096)) * 0.0063, "b": rng.standard_normal(4096)}


BIG_SKIP = "100M-weight benchmark: runs under `make bench` only"


def pytest_collection_modifyitems(config, items):
    """Skip the 100M-element benchmarks (fixture `big`) at collection when timing is off: under
    --benchmark-disable or pytest-xdist (where pytest-benchmark turns itself off), as in `make test`.
    Deciding here, not in the fixture, spares pytest-benchmark's "fixture not used" warning."""
    disabled = (config.getoption("benchmark_disable", False) or config.getoption("numprocesses", None)
                or os.environ.get("PYTEST_XDIST_WORKER"))
    if disabled:
        for item in items:
            if "big" in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.skip(reason=BIG_SKIP))


@pytest.fixture
def big(benchmark):
    """A benchmark of a 100M-element problem; skipped when benchmarks are disabled (plain runs stay quick)."""
    if benchmark.disabled:
        pytest.skip(BIG_SKIP)
    return benchmark
