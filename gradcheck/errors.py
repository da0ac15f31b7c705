"""Errors: a wrong gradient (an assertion), a layer that breaks the contract, a malformed case; and where an
exception from the user's layer came from (one_line, raised_in)."""

from __future__ import annotations

import sys
import sysconfig
import traceback
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


# -- where a user's exception came from ----------------------------------------------------------------------

_OURS = Path(__file__).resolve().parent  # the gradcheck package


def _libraries() -> tuple[Path, ...]:
    """Folders of the standard library and installed packages (numpy's frames are not the user's)."""
    paths = sysconfig.get_paths()
    keys = ("stdlib", "platstdlib", "purelib", "platlib")
    return tuple({Path(paths[k]).resolve() for k in keys if k in paths})


def is_users_code(filename: str) -> bool:
    """A frame of the user's code: not gradcheck, not the standard library or an installed package (the
    reference layers count as the user's even when installed: they are the layer under test)."""
    if filename.startswith("<"):  # <frozen importlib._bootstrap>, <string>
        return False
    path = Path(filename).resolve()
    if path.is_relative_to(_OURS):
        return False
    layers = sys.modules.get("layers")
    if layers is not None and getattr(layers, "__file__", None):
        if path.is_relative_to(Path(layers.__file__).resolve().parent):
            return True
    return not any(path.is_relative_to(lib) for lib in _libraries())


def _shown(filename: str) -> str:
    path = Path(filename).resolve()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def raised_in(exc: BaseException) -> str | None:
    """Where in the user's code ``exc`` was raised, in words: ``Broken.backward (cases/mine.py:13)``, or
    ``Broken.forward (cases/mine.py:7, in helper)`` when a function it called raised; None without a user
    frame (gradcheck itself raised).

    The first user frame of the traceback is the method the checker called (forward or backward, named with
    its layer's class); the last is the line that raised. Frames of a forward run on a checker thread are in
    the traceback too (concurrent.futures re-raises the worker's exception with its frames).
    """
    frames = [(frame, line) for frame, line in traceback.walk_tb(exc.__traceback__)
              if is_users_code(frame.f_code.co_filename)]
    if not frames:
        return None
    (entry, _), (site, line) = frames[0], frames[-1]
    owner = entry.f_locals.get("self")
    method = entry.f_code.co_name
    name = f"{type(owner).__name__}.{method}" if owner is not None else method
    where = f"{_shown(site.f_code.co_filename)}:{line}"
    if site is not entry and site.f_code.co_name != method:
        where += f", in {site.f_code.co_name}"
    return f"{name} ({where})"


def one_line(exc: BaseException) -> str:
    """``ValueError in Broken.backward (cases/mine.py:13): operands could not be broadcast ...`` on one line:
    the exception's type, where the user's code raised it (when it did) and its message."""
    origin = raised_in(exc)
    head = type(exc).__name__ + (f" in {origin}" if origin else "")
    message = f"sys.exit({exc.code!r}) was called" if isinstance(exc, SystemExit) else str(exc)
    text = f"{head}: {message}" if message else head
    return " ".join(text.split())
