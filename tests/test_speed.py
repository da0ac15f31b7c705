"""The speed machinery keeps results exact: chunked directions, threaded groups, BLAS thread limits.

No timing asserts here (benchmarks/ measures); these pin down that the fast paths compute the same values.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck
from gradcheck.engine import threads
from gradcheck.engine.differencing import Differencer
from gradcheck.strategies import directional, plans
from layers import Conv2D, FullyConnected
from tests.planted import OneWrongWeight


def test_a_chunked_direction_gives_the_same_values_for_any_slice():
    size = directional.Direction.EXACT_NORM + 123_457  # above EXACT_NORM: generated, never stored
    u = directional.random_direction(np.random.default_rng(0), size)
    whole = u[0:size]
    for a, b in [(0, 1), (1, 2), (3, 70_001), (65_535, 65_537), (size - 5, size), (999_999, 1_100_000)]:
        np.testing.assert_array_equal(u[a:b], whole[a:b])
    assert np.all(whole != 0) and np.all(np.abs(whole) * np.sqrt(size) < np.sqrt(3) + 1e-6)
    assert np.linalg.norm(whole) == pytest.approx(1.0, abs=5e-3)  # E|u|^2 = 1, within ~1/sqrt(size)
    again = directional.random_direction(np.random.default_rng(0), size)
    np.testing.assert_array_equal(again[10:20], whole[10:20])  # seeded by the array's rng
    other = directional.random_direction(np.random.default_rng(1), size)
    assert not np.array_equal(other[10:20], whole[10:20])


def test_small_directions_stay_normalised_standard_normals():
    rng, same = np.random.default_rng(3), np.random.default_rng(3)
    u = directional.random_direction(rng, 50)
    expected = same.standard_normal(50)
    np.testing.assert_allclose(u[0:50], expected / np.linalg.norm(expected), rtol=0, atol=0)


def test_a_direction_through_the_chunked_path_matches_the_materialised_one():
    rng = np.random.default_rng(0)
    arrays = {"x": rng.standard_normal((2, 1100)), "W": rng.standard_normal((1100, 1000)) / 33,
              "b": rng.standard_normal(1000)}
    G = rng.standard_normal((2, 1000))
    y, cache = FullyConnected().forward(**arrays)
    g = FullyConnected().backward(G, cache)["W"].reshape(-1)
    u = directional.random_direction(np.random.default_rng(5), g.size)
    assert u._u is None  # the generated path
    lazy = Differencer(FullyConnected(), arrays, G, "central", 1e-6).direction("W", u, g)
    dense = Differencer(FullyConnected(), arrays, G, "central", 1e-6).direction("W", u[0:g.size], g)
    assert lazy.analytic == pytest.approx(dense.analytic, rel=1e-12)
    assert lazy.numeric == pytest.approx(dense.numeric, rel=1e-12)
    assert lazy.numeric == pytest.approx(float(np.dot(g, u[0:g.size])), rel=1e-7)  # the numeric derivative


def test_one_wrong_weight_of_1_1m_is_located_by_bisection_over_a_generated_direction():
    rng = np.random.default_rng(0)
    arrays = {"x": rng.standard_normal((2, 1100)), "W": rng.standard_normal((1100, 1000)) / 33,
              "b": rng.standard_normal(1000)}
    layer = OneWrongWeight(index=(777, 321), by=1.0)
    W = gradcheck.check(layer, arrays, strategy="directional", wrt=["W"], directions=1).arrays["W"]
    assert not W.passed and [e.index for e in W.located if e.failed] == [(777, 321)]


def test_working_copies_are_restored_lazily_but_always_before_they_are_read():
    rng = np.random.default_rng(0)
    arrays = {"x": rng.standard_normal((3, 4)), "W": rng.standard_normal((4, 5)), "b": rng.standard_normal(5)}
    d = Differencer(FullyConnected(), arrays, np.ones((3, 5)), "central", 1e-3)
    d.direction("W", np.ones(20) / np.sqrt(20), np.zeros(20))
    assert "W" in d._dirty  # left perturbed along -h u ...
    y = d.forward()  # ... and restored before the next forward at the base point
    np.testing.assert_array_equal(y, arrays["x"] @ arrays["W"] + arrays["b"])
    assert not d._dirty


@pytest.mark.parametrize("method", ["complex", "central"])
def test_threaded_groups_give_the_same_numerics_as_serial_ones(monkeypatch, method):
    rng = np.random.default_rng(0)
    arrays = {"x": rng.standard_normal((4, 3, 9, 9)), "k": rng.standard_normal((5, 3, 3, 3)),
              "b": rng.standard_normal(5)}
    monkeypatch.setattr(plans, "PARALLEL_AFTER", 0.0)
    monkeypatch.setattr(threads, "cpu_count", lambda: 2)
    monkeypatch.setattr(plans, "cpu_count", lambda: 2)
    threaded = gradcheck.check(Conv2D(pad=1), arrays, method=method)
    monkeypatch.setattr(plans, "PARALLEL_AFTER", float("inf"))
    serial = gradcheck.check(Conv2D(pad=1), arrays, method=method)
    assert threaded.passed and serial.passed
    for name in ("x", "k", "b"):
        np.testing.assert_array_equal(threaded.arrays[name].numeric, serial.arrays[name].numeric)
        assert threaded.arrays[name].forwards == serial.arrays[name].forwards


def test_blas_threads_are_restored_after_the_block():
    blas = [lib for lib in threads.blas_controller().lib_controllers if lib.user_api == "blas"]
    if not blas:
        pytest.skip("no BLAS library loaded")
    before = [lib.get_num_threads() for lib in blas]
    with threads.blas_threads(1):
        assert all(lib.get_num_threads() == 1 for lib in blas)
        with threads.blas_threads(1):
            pass
        assert all(lib.get_num_threads() == 1 for lib in blas)  # a nested block restores the outer's limit
    assert [lib.get_num_threads() for lib in blas] == before


def test_a_small_check_runs_every_forward_on_one_blas_thread_and_a_large_one_keeps_blas_threads(monkeypatch):
    """Structure probes and convergence sweeps too, not only the grouped plans (threads.SMALL_BYTES)."""
    blas = [lib for lib in threads.blas_controller().lib_controllers if lib.user_api == "blas"]
    if not blas:
        pytest.skip("no BLAS library loaded")
    before = [lib.get_num_threads() for lib in blas]
    seen = []

    class Recording(FullyConnected):
        def forward(self, x, W, b):
            seen.append(max(lib.get_num_threads() for lib in blas))
            return super().forward(x, W, b)

    rng = np.random.default_rng(0)
    arrays = {"x": rng.standard_normal((4, 6)), "W": rng.standard_normal((6, 3)), "b": rng.standard_normal(3)}
    assert gradcheck.check(Recording(), arrays).passed
    assert seen and set(seen) == {1}
    assert [lib.get_num_threads() for lib in blas] == before
    if max(before) > 1:  # above the limit (made small here), the caller's BLAS threads are kept
        monkeypatch.setattr(threads, "SMALL_BYTES", 1)
        seen.clear()
        gradcheck.check(Recording(), arrays, wrt=["b"], strategy="directional")
        assert max(before) in seen
