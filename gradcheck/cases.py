"""YAML gradient-check cases: load and validate them, build their arrays, run them through the checker.

A case file holds one case, or a small family as several YAML documents separated by ``---``::

    name: fc-100-10-batch10
    source: 002 - "the last FC layer ... 100 inputs, 10 outputs ... batch_size=10"
    layer: fully_connected          # registry name, or "package.module:ClassName" next to the case file
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
import json
import math
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import yaml

from gradcheck import registry

SCHEMA_PATH = Path(__file__).with_name("case.schema.json")
CASE_SUFFIXES = (".yaml", ".yml")
DTYPES = {"float64": np.float64, "float32": np.float32, "complex128": np.complex128,
          "int64": np.int64, "int32": np.int32}


class CaseError(ValueError):
    """A malformed case. ``str()`` is one line: ``file:line: field: what was expected``."""

    def __init__(self, file: str | Path, line: int | None, field: str | None, message: str):
        self.file, self.line, self.field, self.message = str(file), line, field, message
        where = self.file if line is None else f"{self.file}:{line}"
        text = f"{where}: {field}: {message}" if field else f"{where}: {message}"
        super().__init__(" ".join(text.split("\n")))


# --- YAML: the safe loader, plus YAML 1.2 floats (PyYAML reads "1e-6" as a string) -------------------


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e-6`` and ``1E3`` as floats (YAML 1.2, what people write)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _parse(path: Path) -> list[tuple[yaml.Node, Any]]:
    """(node, data) per YAML document of ``path``; CaseError when unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseError(path, None, None, f"cannot read file: {exc}") from None
    loader = _Loader(text)
    docs = []
    try:
        while loader.check_node():
            node = loader.get_node()
            _no_duplicate_keys(path, node)
            docs.append((node, loader.construct_document(node)))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise CaseError(path, line, None, f"unreadable YAML: {problem}") from None
    finally:
        loader.dispose()
    docs = [(n, d) for n, d in docs if d is not None]
    if not docs:
        raise CaseError(path, None, None, "empty file: expected a case (a mapping with name, layer, inputs)")
    return docs


def _no_duplicate_keys(path: Path, node: yaml.Node) -> None:
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    raise CaseError(path, key.start_mark.line + 1, key.value,
                                    "duplicate key: each field may appear once")
                seen.add(key.value)
            _no_duplicate_keys(path, value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _no_duplicate_keys(path, item)


def _line(node: yaml.Node, path: Iterable) -> int:
    """1-based line of the field at ``path`` (a mapping entry's key line), or of its nearest parent."""
    line = node.start_mark.line + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if getattr(key, "value", None) == str(part) or getattr(key, "value", None) == part:
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def field_name(path: Iterable) -> str:
    """("inputs", "W", "shape", 1) -> "inputs.W.shape[1]"; ("stack", 2, "layer") -> "stack[2].layer"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(case)"


# --- schema --------------------------------------------------------------------------------------------


@cache
def schema() -> dict:
    """The published JSON Schema of a case."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


_JSON_TYPES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false", "null": "nothing"}


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _schema_problem(error: jsonschema.ValidationError) -> tuple[list, str]:
    """(path, message) in the case's own words for one jsonschema error."""
    path = list(error.absolute_path)
    kind, want, got = error.validator, error.validator_value, error.instance
    if kind == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        extra = [k for k in got if k not in allowed]
        key = extra[0]
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return path + [key], f"unknown key{hint}; expected one of: {', '.join(allowed)}"
    if kind == "required":
        missing = [k for k in want if k not in got][0]
        return path + [missing], "missing required field"
    if kind == "type":
        kinds = [want] if isinstance(want, str) else want
        expected = " or ".join(_JSON_TYPES[k] for k in kinds)
        return path, f"expected {expected}; got {_describe(got)}"
    if kind == "enum":
        return path, f"expected one of {', '.join(map(str, want))}; got {_describe(got)}"
    if kind == "pattern":
        last = path[-1] if path else None
        if last == "layer":
            expected = "a registry name (snake_case, e.g. fully_connected) or package.module:ClassName"
        elif last == "name" and len(path) == 1:
            expected = "a name of letters, digits, '-', '_', '.' starting with a letter or digit"
        else:
            expected = "a Python identifier"
        return path, f"expected {expected}; got {_describe(got)}"
    if kind in ("minimum", "exclusiveMinimum"):
        op = ">=" if kind == "minimum" else ">"
        number = "an integer" if isinstance(got, int) else "a number"
        return path, f"expected {number} {op} {want}; got {_describe(got)}"
    if kind == "minItems":
        return path, f"expected at least {want} item{'s' if want != 1 else ''}; got none"
    if kind == "minProperties":
        return path, "expected at least one array"
    if kind == "uniqueItems":
        return path, "expected each name once; got duplicates"
    if kind == "anyOf" and path and path[0] == "inputs":
        return path, "expected 'shape' or 'values' (or both)"
    if kind == "oneOf" and not path:
        if "layer" in got and "stack" in got:
            return ["stack"], "expected exactly one of 'layer' or 'stack'; got both"
        return ["layer"], "missing required field (or give 'stack')"
    return path, error.message


def _validate_schema(file: Path, node: yaml.Node, data: Any) -> None:
    if not isinstance(data, dict):
        raise CaseError(file, node.start_mark.line + 1, None,
                        f"expected a case (a mapping with name, layer, inputs); got {_describe(data)}")
    problems = []
    for error in _validator().iter_errors(data):
        path, message = _schema_problem(error)
        # Report the first problem in document order; the layer/stack choice only when nothing else is wrong.
        rank = (error.validator == "oneOf", _line(node, path), -len(path))
        problems.append((rank, path, message))
    if problems:
        _, path, message = min(problems, key=lambda p: p[0])
        raise CaseError(file, _line(node, path), field_name(path), message)


# --- the case ------------------------------------------------------------------------------------------


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

    def error(self, path: Iterable, message: str) -> CaseError:
        path = list(path)
        return CaseError(self.file, _line(self.node, path), field_name(path), message)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: _shape_of(spec) for name, spec in self.data["inputs"].items()}

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

    def options(self, seed: int | None = None) -> dict:
        """Keyword arguments for gradcheck.check (``seed`` overrides ``check.seed``)."""
        opts = self.check_options
        if seed is not None:
            opts["seed"] = seed
        opts.setdefault("seed", 0)
        opts["name"] = self.name
        return opts


def _shape_of(spec: dict) -> tuple[int, ...]:
    if "values" in spec:
        return tuple(np.shape(spec["values"]))
    return tuple(spec["shape"])


def make_array(name: str, spec: dict, seed: int) -> np.ndarray:
    """Build one input array from its case entry (see the schema's ``init`` description)."""
    init = spec.get("init", "labels" if "classes" in spec else "normal")
    dtype = np.dtype(DTYPES[spec.get("dtype", "int64" if init == "labels" else "float64")])
    scale = spec.get("scale", 1.0)
    if "values" in spec:
        a = np.array(spec["values"], dtype=dtype)
        return a * dtype.type(scale) if "scale" in spec else a
    shape = tuple(spec["shape"])
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    if init == "labels":
        return rng.integers(0, spec["classes"], size=shape).astype(dtype, copy=False)
    if init == "zeros":
        return np.zeros(shape, dtype=dtype)
    if init == "ones":
        return np.full(shape, scale, dtype=dtype)
    if init == "arange":
        a = np.arange(math.prod(shape), dtype=np.float64).reshape(shape) * scale
        return a.astype(dtype, copy=False)
    real = np.float32 if dtype == np.float32 else np.float64
    if init == "uniform":
        a = rng.uniform(-1.0, 1.0, size=shape).astype(real, copy=False)
    else:
        a = rng.standard_normal(size=shape, dtype=real)
    if scale != 1:
        a *= real(scale)
    return a.astype(dtype, copy=False)


def _build_layer(file: Path, node: yaml.Node, data: dict) -> Any:
    if "stack" in data:
        if "config" in data:
            raise CaseError(file, _line(node, ["config"]), "config",
                            "top-level config belongs to 'layer'; give each stack entry its own config")
        from layers.sequential import Sequential

        parts, seen = [], set()
        for i, entry in enumerate(data["stack"]):
            if entry["name"] in seen:
                raise CaseError(file, _line(node, ["stack", i, "name"]), field_name(["stack", i, "name"]),
                                f"duplicate layer name '{entry['name']}'; expected each name once")
            seen.add(entry["name"])
            parts.append((entry["name"], _instantiate(file, node, ["stack", i], entry)))
        try:
            return Sequential(parts)
        except (TypeError, ValueError) as exc:
            raise CaseError(file, _line(node, ["stack"]), "stack",
                            f"Sequential refused the stack: {exc}") from None
    return _instantiate(file, node, [], data)


def _instantiate(file: Path, node: yaml.Node, at: list, entry: dict) -> Any:
    spec = entry["layer"]
    try:
        cls = registry.resolve(spec, file.parent)
    except registry.LayerNotFound as exc:
        raise CaseError(file, _line(node, at + ["layer"]), field_name(at + ["layer"]), str(exc)) from None
    except Exception as exc:  # the user's module failed while importing: still one line
        raise CaseError(file, _line(node, at + ["layer"]), field_name(at + ["layer"]),
                        f"importing '{spec}' failed: {type(exc).__name__}: {exc}") from None
    config = entry.get("config", {})
    try:
        layer = cls(**config)
    except Exception as exc:
        where = at + ["config"] if "config" in entry else at + ["layer"]
        raise CaseError(file, _line(node, where), field_name(at + ["config"]),
                        f"{cls.__name__}(**config) failed: {type(exc).__name__}: {exc}") from None
    inputs = getattr(layer, "inputs", None)
    methods = all(callable(getattr(layer, m, None)) for m in ("forward", "backward"))
    named = isinstance(inputs, tuple | list) and inputs and all(isinstance(n, str) for n in inputs)
    if not (named and methods):
        raise CaseError(file, _line(node, at + ["layer"]), field_name(at + ["layer"]),
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
        if "values" in spec:
            values_shape = np.shape(spec["values"])
            try:
                np.array(spec["values"], dtype=np.float64)
            except (ValueError, TypeError):
                raise case.error(at + ["values"], "expected a number or nested lists of numbers of one "
                                                  "rectangular shape") from None
            if "shape" in spec and tuple(spec["shape"]) != values_shape:
                raise case.error(at + ["values"], f"expected values of shape {list(spec['shape'])}; "
                                                  f"got shape {list(values_shape)}")
            if init is not None:
                raise case.error(at + ["init"], "expected either 'values' or 'init', not both")
        if init == "labels" and "classes" not in spec:
            raise case.error(at, "missing 'classes': init: labels draws integers in [0, classes)")
        if "classes" in spec and init not in (None, "labels"):
            raise case.error(at + ["classes"], "expected only with init: labels")
        dtype = spec.get("dtype")
        is_labels = init == "labels" or "classes" in spec
        if is_labels and dtype is not None and not dtype.startswith("int"):
            raise case.error(at + ["dtype"], f"expected int64 or int32 for labels; got {dtype}")
        if name in inputs and dtype is not None and dtype.startswith("int"):
            raise case.error(at + ["dtype"],
                             f"expected a float dtype for a differentiable input; got {dtype}")
    check = data.get("check", {})
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
    """Every case in one YAML file, validated; CaseError on the first problem."""
    file = Path(path)
    cases = []
    for node, data in _parse(file):
        _validate_schema(file, node, data)
        case = Case(name=data["name"], file=file, data=data, node=node, layer=_build_layer(file, node, data))
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


# --- running -------------------------------------------------------------------------------------------


def first_forward(case: Case, arrays: dict) -> tuple:
    """Run the layer once: its ValueError on a bad shape, or an unmet expect.output_shape, is a CaseError."""
    try:
        y, _ = case.layer.forward(**arrays)
    except ValueError as exc:
        raise case.error(["inputs"], f"the layer rejected the arrays on a first forward: {exc}") from None
    expected = case.data.get("expect", {}).get("output_shape")
    shape = tuple(np.shape(y))
    if expected is not None and tuple(expected) != shape:
        raise case.error(["expect", "output_shape"], f"the case expects {list(expected)}; the forward gave "
                                                     f"{list(shape)}")
    return shape


def run_case(case: Case, seed: int | None = None):
    """Build the arrays, check the first forward against ``expect``, run gradcheck.check -> Report."""
    from gradcheck import check

    arrays = case.arrays(seed)
    first_forward(case, arrays)
    return check(case.layer, arrays, **case.options(seed))


# --- machine-readable report ---------------------------------------------------------------------------


def _number(v: Any) -> Any:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else str(v)


def element_dict(e: Any) -> dict | None:
    if e is None:
        return None
    return {"array": e.array, "index": None if e.index is None else [int(i) for i in e.index],
            "analytic": _number(e.analytic), "numeric": _number(e.numeric), "error": _number(e.error),
            "tolerance": _number(e.tolerance), "kind": e.kind}


def array_dict(a: Any) -> dict:
    return {"shape": [int(s) for s in a.shape], "dtype": str(a.dtype), "strategy": a.strategy,
            "method": a.method, "eps": _number(a.eps), "rtol": _number(a.rtol), "atol": _number(a.atol),
            "checked": int(a.checked), "failed": int(a.failed), "kinks": len(a.kinks),
            "margin": _number(a.margin), "passed": bool(a.passed),
            "worst": [element_dict(e) for e in a.worst], "forwards": int(a.forwards),
            "seconds": _number(a.seconds), "joint": list(a.joint)}


def report_dict(case: Case, report: Any) -> dict:
    """A Report as plain JSON data (no arrays), with the case's file and source."""
    return {"case": case.name, "file": str(case.file), "line": case.line, "source": case.source,
            "status": "pass" if report.passed else "fail", "passed": bool(report.passed),
            "seed": int(report.seed), "strategy": report.strategy, "method": report.method,
            "margin": _number(report.margin), "worst": element_dict(report.worst),
            "seconds": _number(report.seconds), "forwards": int(report.forwards),
            "arrays": {n: array_dict(a) for n, a in report.arrays.items()},
            "residuals": {n: array_dict(a) for n, a in report.residuals.items()},
            "verdict": str(report)}


def error_dict(error: CaseError, case: Case | None = None) -> dict:
    return {"case": case.name if case else None, "file": error.file, "line": error.line,
            "status": "malformed", "passed": False, "field": error.field, "error": str(error)}


# --- running many cases (the CLI's engine) -------------------------------------------------------------


@dataclass
class Outcome:
    """What one case (or one malformed file) came to, without the Report's big arrays.

    status: "pass" | "fail" (gradients disagree) | "error" (the layer or checker raised) | "malformed".
    """

    name: str
    file: str
    status: str
    data: dict
    verdict: str = ""
    seconds: float = 0.0

    @property
    def cells(self) -> list[str]:
        """The table row: case, strategy, arrays, max error / tolerance, worst index, verdict, seconds."""
        d = self.data
        if self.status in ("malformed", "error"):
            strategy = d.get("strategy") or "-"
            return [self.name, strategy, "-", "-", "-", self.status.upper(), f"{self.seconds:.2f}"]
        arrays = ", ".join(d["arrays"])
        if d["residuals"]:
            arrays += "; residuals " + ", ".join(d["residuals"])
        worst = d["worst"]
        where = "-"
        if worst is not None:
            index = "" if worst["index"] is None else "[" + ", ".join(map(str, worst["index"])) + "]"
            where = f"{worst['array']}{index}"
        margin = d["margin"]
        margin = f"{margin:.3g}" if isinstance(margin, float) else str(margin)
        return [self.name, d["strategy"], arrays, margin, where, self.status.upper(), f"{self.seconds:.2f}"]


COLUMNS = ["case", "strategy", "arrays", "max error / tolerance", "worst index", "verdict", "seconds"]


def run_paths(paths: Iterable[str | Path], seed: int | None = None,
              started: Callable[[str], None] | None = None) -> Iterator[Outcome]:
    """Load and run every case under ``paths`` in order, one Outcome each (malformed files included).

    ``started(name)`` is called before each case runs (progress display).
    """
    import time

    for item in load_paths(paths):
        if isinstance(item, CaseError):
            name = Path(item.file).stem
            yield Outcome(name, item.file, "malformed", error_dict(item), verdict=str(item))
            continue
        case, start = item, time.perf_counter()
        if started is not None:
            started(case.name)
        try:
            report = run_case(case, seed)
        except CaseError as exc:
            yield Outcome(case.name, str(case.file), "malformed", {**error_dict(exc, case),
                          "strategy": case.strategy}, verdict=str(exc), seconds=time.perf_counter() - start)
            continue
        except Exception as exc:  # the layer or the checker raised: a failing case, reported on one line
            text = f"{case.file}:{case.line}: {case.name}: {type(exc).__name__}: {exc}"
            data = {"case": case.name, "file": str(case.file), "line": case.line, "status": "error",
                    "passed": False, "strategy": case.strategy, "error": " ".join(text.split("\n"))}
            yield Outcome(case.name, str(case.file), "error", data, verdict=data["error"],
                          seconds=time.perf_counter() - start)
            continue
        data = report_dict(case, report)
        status = "pass" if report.passed else "fail"
        yield Outcome(case.name, str(case.file), status, data, verdict=data["verdict"],
                      seconds=time.perf_counter() - start)
        del report


def exit_code(outcomes: Iterable[Outcome]) -> int:
    """0 when every case passed, 2 when any case is malformed, else 1 when any failed or raised."""
    statuses = {o.status for o in outcomes}
    if "malformed" in statuses:
        return 2
    if statuses & {"fail", "error"}:
        return 1
    return 0
