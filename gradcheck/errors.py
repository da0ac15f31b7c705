"""Errors the checker raises: a wrong gradient (an assertion) versus a layer that breaks the contract."""

from __future__ import annotations


class GradientMismatch(AssertionError):
    """Raised by ``assert_gradients`` when a check fails; ``.report`` holds the Report, str() its verdict.

    The verdict names the case, each failing array with its failed count, the worst elements
    (``W[123, 45]: analytic .. numeric .. |diff| .. > tol ..``), and method, eps, rtol, atol and seed.
    """

    def __init__(self, report):
        super().__init__(str(report))
        self.report = report

    def __str__(self) -> str:
        return str(self.report)


class LayerContractError(ValueError):
    """The layer or the arrays break the layer contract (missing/extra/wrong-shaped gradient, missing
    array, unknown name in wrt): not a wrong gradient, so not a GradientMismatch."""
