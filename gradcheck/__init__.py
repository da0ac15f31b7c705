"""gradcheck: finite-difference verification of hand-derived backward passes.

    gradcheck.check(layer, arrays, ...) -> Report         the verdict, never raises on a mismatch
    gradcheck.assert_gradients(layer, arrays, ...)        raises GradientMismatch unless it passed
    gradcheck.pair(affine_forward, affine_backward)       a cs231n-style function pair as a layer
    gradcheck.stateful(obj, params=("W", "b"))            a forward(X)/backward(dLdy) object as a layer

The layer contract, the checked quantity (the VJP against a seeded random G) and the architecture are in
README.md and docs/architecture.md. Names are imported on first use, so ``import gradcheck`` (the pytest
plugin's) costs nothing until a check runs.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "check": "gradcheck.checker",
    "assert_gradients": "gradcheck.checker",
    "GradientMismatch": "gradcheck.errors",
    "LayerContractError": "gradcheck.errors",
    "CaseError": "gradcheck.errors",
    "Report": "gradcheck.results",
    "ArrayResult": "gradcheck.results",
    "Element": "gradcheck.results",
    "Verdict": "gradcheck.engine.verdict",
    "load_file": "gradcheck.catalogue.case",
    "run_case": "gradcheck.catalogue.runner",
    "pair": "gradcheck.adapters",
    "stateful": "gradcheck.adapters",
}

__all__ = list(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gradcheck' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_WHERE])
