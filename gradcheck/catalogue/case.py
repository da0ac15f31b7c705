"""YAML gradient-check cases: load and validate them into Case objects (the layer built, arrays described).

A case file holds one case, or a small family as several YAML documents separated by ``---``::

    name: fc-100-10-batch10
    source: 002 - "the last FC layer ... 100 inputs, 10 outputs ... batch_size=10"
    layer: fully_connected          # registry name, "package.module:ClassName" next to the case file, or
                                    # "module:affine", a function pair affine_forward / affine_backward
    config: {}                      # constructor keyword arguments
    inputs:                         # one entry per array the layer takes (inputs and constants)
      x: {shape: [10, 100]}
      W: {shape: [100, 10], scale: 0.1}
      b: {shape: [10]}
    check: {strategy: exhaustive}   # options for gradcheck.check
    expect: {output_shape: [10, 10], parameters: 1010}

The schema (``case.schema.json``, next to this module) fixes the fields. Everything that is wrong with a
case - unreadable YAML, an unknown key, a wrong type, an unknown layer, a missing or unknown array, a
shape the layer rejects on its first forward, an expectation the layer does not meet - raises
:class:`CaseError`, whose text is one line ``file:line: field: what was expected``.

Arrays are drawn from ``numpy.random.default_rng([seed, crc32(name)])``: the case seed (``check.seed``,
default 0, or an override from the command line) changes every array and the checker's cotangent G, and
each array's values do not depend on which other arrays the case lists.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from gradcheck.catalogue import registry, schema
from gradcheck.catalogue.arrays import dtype_of, make_array, shape_of, spec_problem, yaml_number
from gradcheck.catalogue.yaml_io import field_name, line_of, parse
from gradcheck.errors import CaseError, one_line

CASE_SUFFIXES = (".yaml", ".yml")



@dataclass
class Case:
    """One validated case: the layer built from it, and how to build its arrays and check options."""

    name: str
    file: Path
    data: dict
    node: yaml.Node = field(repr=False)
    layer: Any = field(repr=False)

    @property
    def source(self) -> str | None:
        return self.data.get("source")

    @property
    def line(self) -> int:
        return self.node.start_mark.line + 1

    @property
    def check_options(self) -> dict:
        return dict(self.data.get("check", {}))

    @property
    def strategy(self) -> str | None:
        return self.check_options.get("strategy")

    @property
    def seed(self) -> int:
        return int(self.check_options.get("seed", 0))

    @property
    def timeout(self) -> float | None:
        """check.timeout: seconds the case may take (None: no limit of its own)."""
        value = self.check_options.get("timeout")
        return None if value is None else float(value)

    def error(self, path: Iterable, message: str) -> CaseError:
        path = list(path)
        return CaseError(self.file, line_of(self.node, path), field_name(path), message)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: shape_of(spec) for name, spec in self.data["inputs"].items()}

    def parameters(self) -> int:
        """Total size of the differentiable inputs except the data input (the layer's first input, "x")."""
        shapes = self.shapes()
        return sum(math.prod(shapes[n]) for n in self.layer.inputs[1:])

    def elements(self) -> int:
        """Total size of every array: what building the case costs in memory (elements)."""
        return sum(math.prod(s) for s in self.shapes().values())

    def arrays(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """The case's arrays, drawn from ``seed`` (default: the case's ``check.seed``)."""
        seed = self.seed if seed is None else seed
        return {name: make_array(name, spec, seed) for name, spec in self.data["inputs"].items()}

    def layouts(self) -> dict[str, str]:
        """Axis layouts of the 4-D differentiable inputs: their own ``layout``, else the case's ``layout``
        (NCHW, the canonical order, is left out)."""
        default = self.data.get("layout")
        shapes, out = self.shapes(), {}
        for name, spec in self.data["inputs"].items():
            lay = spec.get("layout", default if len(shapes[name]) == 4 else None)
            if lay is not None and lay not in ("NCHW", "OIHW") and name in self.layer.inputs:
                out[name] = lay
        return out

    def options(self, seed: int | None = None) -> dict:
        """Keyword arguments for gradcheck.check (``seed`` overrides ``check.seed``)."""
        opts = self.check_options
        opts.pop("timeout", None)  # the runner's, not the checker's
        if seed is not None:
            opts["seed"] = seed
        opts.setdefault("seed", 0)
        opts["name"] = self.name
        if self.layouts():
            opts["layouts"] = self.layouts()
        return opts


def _build_layer(file: Path, node: yaml.Node, data: dict) -> Any:
    if "stack" in data:
        if "config" in data:
            raise CaseError(file, line_of(node, ["config"]), "config",
                            "top-level config belongs to 'layer'; give each stack entry its own config")
        from layers.sequential import Sequential

        parts, seen = [], set()
        for i, entry in enumerate(data["stack"]):
            if entry["name"] in seen:
                raise CaseError(file, line_of(node, ["stack", i, "name"]), field_name(["stack", i, "name"]),
                                f"duplicate layer name '{entry['name']}'; expected each name once")
            seen.add(entry["name"])
            parts.append((entry["name"], _instantiate(file, node, ["stack", i], entry)))
        try:
            return Sequential(parts)
        except (TypeError, ValueError) as exc:
            raise CaseError(file, line_of(node, ["stack"]), "stack",
                            f"Sequential refused the stack: {exc}") from None
    return _instantiate(file, node, [], data)


def _instantiate(file: Path, node: yaml.Node, at: list, entry: dict) -> Any:
    spec = entry["layer"]
    try:
        cls = registry.resolve(spec, file.parent)
    except registry.LayerNotFound as exc:
        raise CaseError(file, line_of(node, at + ["layer"]), field_name(at + ["layer"]), str(exc)) from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: B036  (the user's module failed or called sys.exit() while importing)
        raise CaseError(file, line_of(node, at + ["layer"]), field_name(at + ["layer"]),
                        f"importing '{spec}' failed: {one_line(exc)}") from None
    config = entry.get("config", {})
    try:
        layer = cls(**config)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: B036
        where = at + ["config"] if "config" in entry else at + ["layer"]
        raise CaseError(file, line_of(node, where), field_name(at + ["config"]),
                        f"{cls.__name__}(**config) failed: {one_line(exc)}") from None
    inputs = getattr(layer, "inputs", None)
    methods = all(callable(getattr(layer, m, None)) for m in ("forward", "backward"))
    named = isinstance(inputs, tuple | list) and inputs and all(isinstance(n, str) for n in inputs)
    if not (named and methods):
        raise CaseError(file, line_of(node, at + ["layer"]), field_name(at + ["layer"]),
                        f"'{spec}' does not follow the layer contract: expected a tuple 'inputs' of array "
                        "names and methods forward(**arrays) and backward(dy, cache)")
    return layer


def _check_semantics(case: Case) -> None:
    data, layer = case.data, case.layer
    label = data.get("layer", "the stack")
    inputs = tuple(layer.inputs)
    constants = tuple(getattr(layer, "constants", ()) or ())
    takes = inputs + constants
    given = data["inputs"]
    for name in given:
        if name not in takes:
            close = difflib.get_close_matches(name, takes, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise case.error(["inputs", name], f"unknown array{hint}; {label} takes {', '.join(takes)}")
    for name in takes:
        if name not in given:
            raise case.error(["inputs"], f"missing array '{name}'; {label} takes {', '.join(takes)}")
    for name, spec in given.items():
        at = ["inputs", name]
        init = spec.get("init")
        problem = spec_problem(spec, name in inputs)
        if problem is not None:
            raise case.error(at + problem[0], problem[1])
        if "values" in spec:
            values_shape = np.shape(spec["values"])
            if "shape" in spec and tuple(spec["shape"]) != values_shape:
                raise case.error(at + ["values"], f"expected values of shape {list(spec['shape'])}; "
                                                  f"got shape {list(values_shape)}")
            if init is not None:
                raise case.error(at + ["init"], "expected either 'values' or 'init', not both")
        if "classes" in spec and init not in (None, "labels"):
            raise case.error(at + ["classes"], "expected only with init: labels")
        dtype = spec.get("dtype")
        is_labels = init == "labels" or "classes" in spec
        if is_labels and dtype is not None and not dtype.startswith("int"):
            raise case.error(at + ["dtype"], f"expected int64 or int32 for labels; got {dtype}")
        if name in inputs and dtype is not None and dtype.startswith("int"):
            raise case.error(at + ["dtype"],
                             f"expected a float dtype for a differentiable input; got {dtype}")
        if "layout" in spec and len(shape_of(spec)) != 4:
            raise case.error(at + ["layout"], f"expected a 4-D array for layout {spec['layout']}; {name} has "
                                              f"shape {list(shape_of(spec))}")
    check = data.get("check", {})
    for key in ("eps", "rtol", "atol", "timeout"):  # JSON has no .inf or .nan: the schema lets them through
        if key in check and not math.isfinite(check[key]):
            raise case.error(["check", key], f"expected a finite number; got {yaml_number(check[key])}")
    for name in check.get("wrt", []):
        if name not in inputs:
            raise case.error(["check", "wrt"], f"unknown array '{name}'; expected differentiable inputs of "
                                               f"{label}: {', '.join(inputs)}")
    if "residuals" in check:
        if "stack" not in data:
            raise case.error(["check", "residuals"], "residuals need a stack (a case with 'stack:'); "
                                                     "this case has a single layer")
        names = [e["name"] for e in data["stack"]]
        for name in check["residuals"]:
            if name not in names[:-1]:
                what = ("is the last layer: its residual is the cotangent itself" if name == names[-1]
                        else "is not in the stack")
                raise case.error(["check", "residuals"],
                                 f"'{name}' {what}; expected one of: {', '.join(names[:-1])}")
    expect = data.get("expect", {})
    if "parameters" in expect:
        shapes = case.shapes()
        counted = case.parameters()
        if counted != expect["parameters"]:
            parts = " + ".join(f"{n} {math.prod(shapes[n])}" for n in inputs[1:]) or "none"
            raise case.error(["expect", "parameters"],
                             f"the case expects {expect['parameters']}; the inputs hold {counted} ({parts})")


def load_file(path: str | Path) -> list[Case]:
    """Every case in one YAML file, validated; CaseError on the first problem (and on anything unforeseen
    that goes wrong while loading it: a malformed file never stops the other files)."""
    try:
        return _load_file(Path(path))
    except (CaseError, KeyboardInterrupt):
        raise
    except BaseException as exc:  # noqa: B036  (a layer's class attribute may even call sys.exit())
        raise CaseError(path, None, None, f"could not load the case: {one_line(exc)}") from None


def _load_file(file: Path) -> list[Case]:
    cases = []
    for node, data in parse(file):
        schema.validate(file, node, data)
        case = Case(name=data["name"], file=file, data=data, node=node, layer=_build_layer(file, node, data))
        if hasattr(case.layer, "with_dtypes"):  # a function pair: its integer arrays (labels) are constants
            case.layer = case.layer.with_dtypes({n: dtype_of(spec) for n, spec in data["inputs"].items()})
        _check_semantics(case)
        if any(c.name == case.name for c in cases):
            raise case.error(["name"],
                             f"duplicate case name '{case.name}' in this file; expected unique names")
        cases.append(case)
    return cases


def case_files(paths: Iterable[str | Path]) -> list[Path]:
    """YAML files named directly, or found under the folders named (recursive, sorted, no hidden folders)."""
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            found = (f for f in p.rglob("*") if f.suffix in CASE_SUFFIXES and f.is_file()
                     and not any(part.startswith(".") for part in f.relative_to(p).parts))
            files.extend(sorted(found))
        else:
            files.append(p)
    return files


def load_paths(paths: Iterable[str | Path]) -> Iterator[Case | CaseError]:
    """Cases from files and folders, in order; a malformed file yields its CaseError instead of cases."""
    names: dict[str, Case] = {}
    for file in case_files(paths):
        try:
            loaded = load_file(file)
        except CaseError as exc:
            yield exc
            continue
        for case in loaded:
            if case.name in names:
                other = names[case.name]
                yield case.error(["name"], f"duplicate case name '{case.name}' (also {other.file}:"
                                           f"{other.line}); expected unique names")
                continue
            names[case.name] = case
            yield case


def find_cases(case: str, paths) -> list:
    """The cases CASE names: every case of a YAML file, or the case of that name under `paths`.

    Raises CaseError for a malformed file on the way, LookupError when nothing matches.
    """
    p = Path(case)
    if p.is_file():
        return load_file(p)
    names, broken = [], []
    for f in case_files(paths):
        try:
            cases = load_file(f)
        except CaseError as exc:  # a malformed neighbour does not hide the case asked for ...
            broken.append((f, exc))
            continue
        for c in cases:
            if c.name == case:
                return [c]
            names.append(c.name)
    for f, exc in broken:  # ... but a malformed file that declares it is the answer
        if re.search(rf"^name:\s*['\"]?{re.escape(case)}['\"]?\s*(#.*)?$", _text(f), re.MULTILINE):
            raise exc
    import difflib

    close = difflib.get_close_matches(case, names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    unread = f"; {len(broken)} case file(s) did not load, first {broken[0][1]}" if broken else ""
    raise LookupError(f"no case named {case!r} under {', '.join(map(str, paths))}{hint}{unread}")


def _text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


