"""The case schema (case.schema.json, next to this module) and its errors in the case's own words."""

from __future__ import annotations

import difflib
import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from gradcheck.catalogue.yaml_io import field_name, line_of
from gradcheck.errors import CaseError

SCHEMA_PATH = Path(__file__).with_name("case.schema.json")



@cache
def schema() -> dict:
    """The JSON Schema of a case: case.schema.json, with the strategies and methods the checker registers
    as the enums of check.strategy and check.method (so a new method or strategy is registered once)."""
    from gradcheck.engine import methods
    from gradcheck.strategies import STRATEGIES

    data = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    check = data["properties"]["check"]["properties"]
    check["strategy"]["enum"] = list(STRATEGIES)
    check["method"]["enum"] = list(methods.names())
    return data


def _is_integer(checker, instance) -> bool:
    """An int, not a float with a zero fraction (JSON Schema's "integer" admits 2.0; a shape may not)."""
    return isinstance(instance, int) and not isinstance(instance, bool)


@cache
def _validator() -> jsonschema.Draft202012Validator:
    base = jsonschema.Draft202012Validator
    types = base.TYPE_CHECKER.redefine("integer", _is_integer)
    strict = jsonschema.validators.extend(base, type_checker=types)
    return strict(schema())


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
    if isinstance(value, str):  # a whole non-YAML file parses as one string: quote its start only
        return repr(value) if len(value) <= 60 else f"{value[:40]!r}... (a text of {len(value)} characters)"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")
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
    if kind == "maximum":
        why = f" ({error.schema['description']})" if "description" in error.schema else ""
        return path, f"expected at most {want}{why}; got {_describe(got)}"
    if kind == "minItems":
        return path, f"expected at least {want} item{'s' if want != 1 else ''}; got none"
    if kind == "minProperties":
        return path, "expected at least one array"
    if kind == "uniqueItems":
        return path, "expected each name once; got duplicates"
    if kind == "anyOf" and path[-2:] == ["expect", "output_shape"]:
        return path, ("expected a shape (a list of integers) or, for several outputs, a mapping output name "
                      f"-> shape; got {_describe(got)}")
    if kind == "anyOf" and path and path[0] == "inputs":
        return path, "expected 'shape' or 'values' (or both)"
    if kind == "oneOf" and not path:
        if "layer" in got and "stack" in got:
            return ["stack"], "expected exactly one of 'layer' or 'stack'; got both"
        return ["layer"], "missing required field (or give 'stack')"
    return path, error.message


def validate(file: Path, node: yaml.Node, data: Any) -> None:
    if not isinstance(data, dict):
        raise CaseError(file, node.start_mark.line + 1, None,
                        f"expected a case (a mapping with name, layer, inputs); got {_describe(data)}")
    problems = []
    for error in _validator().iter_errors(data):
        path, message = _schema_problem(error)
        # Report the first problem in document order; the layer/stack choice only when nothing else is wrong.
        rank = (error.validator == "oneOf", line_of(node, path), -len(path))
        problems.append((rank, path, message))
    if problems:
        _, path, message = min(problems, key=lambda p: p[0])
        raise CaseError(file, line_of(node, path), field_name(path), message)


