"""The detection floors of benchmarks/detection.py, in the order claimed: richardson catches 1e-10 on one
element of a layer that is not complex-safe, central differences only ~1e-7..1e-8, complex step (where it
applies) finer still, and torch.autograd.gradcheck (default tolerances) no better than ~1e-3 (its rows
skipped without torch).

One scan of every checker costs ~1.5 min, so it runs under `make bench-detection` (GRADCHECK_DETECTION=1:
the full scan, whose tables it prints and writes to .benchmarks/detection.md), not in `make test`, where
tests/test_richardson.py asserts the 1e-10 point itself."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from benchmarks import detection

pytestmark = pytest.mark.skipif(not os.environ.get("GRADCHECK_DETECTION"),
                                reason="the detection scan (~1.5 min): `make bench-detection` runs it")


@pytest.fixture(scope="module")
def floors():
    rows, have_torch = detection.measure(quick=False)
    text = detection.summary(rows) + "\n\n" + detection.table(rows, have_torch, False) + "\n"
    out = Path(detection.ROOT) / ".benchmarks" / "detection.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print("\n" + text)
    table = {(row["layer"][:3], row["element"].split(" W")[0], row["checker"]): row for row in rows}
    return table, have_torch


def floor(table, layer, element, checker):
    return table[(layer, element, checker)]["floor"]


@pytest.mark.parametrize("element", ["largest |dW|", "median |dW|"])
def test_richardson_catches_1e_10_where_central_cannot(floors, element):
    table, _ = floors
    rich = floor(table, "(a)", element, "ours, richardson")
    central = floor(table, "(a)", element, "ours, central")
    assert rich is not None and rich <= 1e-10
    assert central is not None and central >= 1e-8 and central > rich
    # the complex-safe FC: complex step still the finest; richardson between it and central
    assert floor(table, "(b)", element, "ours, complex") <= floor(table, "(b)", element, "ours, richardson")
    assert floor(table, "(b)", element, "ours, richardson") < floor(table, "(b)", element, "ours, central")
    assert all(row["clean"] in (None, True) for row in table.values())  # right layers pass


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="torch (the oracle extra) is not installed")
def test_torch_gradcheck_floor_is_coarser(floors):
    table, have_torch = floors
    assert have_torch
    for layer in ("(a)", "(b)"):
        for element in ("largest |dW|", "median |dW|"):
            default = floor(table, layer, element, "torch gradcheck (default tolerances)")
            fast = floor(table, layer, element, "torch gradcheck fast_mode=True")
            rich = floor(table, layer, element, "ours, richardson")
            assert default is None or default >= 1e-4
            assert rich < (default or 1.0)
            assert fast is None or fast >= (default or 1.0)
