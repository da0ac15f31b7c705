"""Reading a case file: PyYAML's safe loader (plus YAML 1.2 floats), duplicate keys refused, and the line
of every field, so each error names file, line and field."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from gradcheck.errors import CaseError


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e-6`` and ``1E3`` as floats (YAML 1.2, what people write)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def parse(path: Path) -> list[tuple[yaml.Node, Any]]:
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


def line_of(node: yaml.Node, path: Iterable) -> int:
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


