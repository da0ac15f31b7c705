"""Errors: a wrong gradient (an assertion), a layer that breaks the contract, a malformed case."""

from __future__ import annotations

from pathlib import Path


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


class CaseError(ValueError):
    """A malformed case. ``str()`` is one line: ``file:line: field: what was expected``."""

    def __init__(self, file: str | Path, line: int | None, field: str | None, message: str):
        self.file, self.line, self.field, self.message = str(file), line, field, message
        where = self.file if line is None else f"{self.file}:{line}"
        text = f"{where}: {field}: {message}" if field else f"{where}: {message}"
        super().__init__(" ".join(text.split("\n")))
