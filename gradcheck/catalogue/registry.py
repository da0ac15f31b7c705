"""Layer names a case may use: the reference layers by snake_case name, a user's "package.module:Class",
or a user's function pair "module:affine" (affine_forward, affine_backward; gradcheck.adapters.pairs).

The registry is built from ``layers.__all__`` each time it is asked (other modules add classes to it), so
``Conv2D`` is ``conv2d``, ``FullyConnectedAsConv`` is ``fully_connected_as_conv``, ``ReLU`` is ``relu``.
A spec with a colon is imported from the case file's folder first, then from ``sys.path``.
"""

from __future__ import annotations

import difflib
import importlib
import re
import sys
from pathlib import Path

# "MaxPool" splits before the capital, "FCLayer" after the acronym; "Conv2D" and "ReLU" stay whole.
_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z][a-z])|(?<=[A-Z])(?=[A-Z][a-z])")


class LayerNotFound(LookupError):
    """A layer spec that names no registered layer or no importable class; str() is one line."""


def snake_case(class_name: str) -> str:
    """``FullyConnectedAsConv`` -> ``fully_connected_as_conv``, ``Conv2D`` -> ``conv2d``, ``ReLU`` -> ``relu``

    A boundary is a lower-case letter or digit, or an acronym, followed by a Capital and a lower-case letter.
    """
    return _BOUNDARY.sub("_", class_name).lower()


def registry() -> dict[str, type]:
    """snake_case name -> class, for every layer class in ``layers.__all__``."""
    import layers

    table = {}
    for name in layers.__all__:
        obj = getattr(layers, name)
        # Layers declare ``inputs`` on the class; Sequential (built from ``stack:``) and helpers do not.
        if isinstance(obj, type) and isinstance(getattr(obj, "inputs", None), tuple):
            table[snake_case(name)] = obj
    return table


def names() -> list[str]:
    """The registered layer names, sorted."""
    return sorted(registry())


def _purge_foreign(module_name: str, folder: Path) -> None:
    """Forget a cached top-level module when the case's folder holds a different file of that name.

    Two case folders may each ship their own ``mylayers.py``; without this the first one imported wins.
    """
    top = module_name.split(".")[0]
    local = [folder / f"{top}.py", folder / top / "__init__.py"]
    if not any(p.is_file() for p in local):
        return
    cached = sys.modules.get(top)
    cached_file = getattr(cached, "__file__", None) if cached is not None else None
    if cached is None or (cached_file and Path(cached_file).resolve() in {p.resolve() for p in local}):
        return
    for key in [k for k in sys.modules if k == top or k.startswith(top + ".")]:
        del sys.modules[key]


def import_class(spec: str, folder: Path | None = None):
    """Import ``"package.module:ClassName"``, looking in ``folder`` (the case file's folder) first.

    A name that is not a class may name a function pair (``module:affine`` for affine_forward and
    affine_backward, ``module:conv_forward_naive``) or a function returning its gradient with its value
    (``module:softmax_loss``): then the result is a gradcheck.adapters.PairSpec, called with the case's
    config like a class.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr or ":" in attr:
        raise LayerNotFound(f"'{spec}' is not of the form package.module:ClassName")
    added = False
    if folder is not None:
        folder = Path(folder).resolve()
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
            added = True
        _purge_foreign(module_name, folder)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        where = f" (looked in {folder} and sys.path)" if folder is not None else ""
        raise LayerNotFound(f"cannot import module '{module_name}'{where}: {exc}") from exc
    finally:
        if added:
            sys.path.remove(str(folder))
    obj = getattr(module, attr, None)
    if isinstance(obj, type):
        return obj
    from gradcheck.adapters import pairs

    found = pairs.find(module, attr)
    if isinstance(found, str):
        raise LayerNotFound(found)
    return found


def resolve(spec: str, folder: Path | None = None):
    """Class for a registry name or a ``package.module:ClassName`` spec (or the PairSpec of a function
    pair, see import_class): either is called with the case's config to build the layer."""
    if ":" in spec:
        return import_class(spec, folder)
    table = registry()
    if spec in table:
        return table[spec]
    close = difflib.get_close_matches(spec, table, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise LayerNotFound(f"unknown layer '{spec}'{hint}; expected one of: {', '.join(sorted(table))}, "
                        "or package.module:ClassName")
