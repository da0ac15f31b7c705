"""gradcheck: finite-difference verification of hand-derived backward passes.

    gradcheck.check(layer, arrays, ...) -> Report         the verdict, never raises on a mismatch
    gradcheck.assert_gradients(layer, arrays, ...)        raises GradientMismatch unless it passed

The layer contract and the checked quantity (the VJP against a seeded random G) are in DESIGN.md.
"""

from gradcheck.cases import CaseError, load_file, run_case
from gradcheck.check import assert_gradients, check
from gradcheck.errors import GradientMismatch, LayerContractError
from gradcheck.report import ArrayResult, Element, Report

__all__ = [
    "check",
    "assert_gradients",
    "GradientMismatch",
    "LayerContractError",
    "Report",
    "ArrayResult",
    "Element",
    "CaseError",
    "load_file",
    "run_case",
]
