"""Reading a case file: PyYAML's safe loader (plus YAML 1.2 floats), duplicate keys refused, and the line
of every field, so each error names file, line and field.

Hostile documents are refused as one-line CaseErrors before anything walks their data: control bytes
(NUL, BEL, ...), nesting deeper than the parser's recursion allows, an alias that contains its own anchor
(a cyclic structure), and aliases that expand the document by more than ALIAS_NODES nodes (the "billion
laughs" bomb: 9 levels of 9 aliases are 9**9 = 387M nodes written in 10 lines). The expansion is counted
once per distinct node (a shared node is measured once), so refusing a bomb takes milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from gradcheck.errors import CaseError

ALIAS_NODES = 1_000_000  # nodes aliases may add to a document (what it expands to beyond what is written)


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
    docs = []
    loader = None
    try:
        loader = _Loader(text)  # the reader refuses control bytes here
        while loader.check_node():
            node = loader.get_node()
            _check_nodes(path, node)
            docs.append((node, loader.construct_document(node)))
    except yaml.reader.ReaderError as exc:
        where = text[:exc.position]
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise CaseError(path, where.count("\n") + 1, None,
                        f"unreadable YAML: control character U+{code:04X} at column "
                        f"{len(where) - where.rfind(chr(10))}; expected printable text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise CaseError(path, line, None, f"unreadable YAML: {problem}") from None
    except RecursionError:
        raise CaseError(path, None, None, "unreadable YAML: nested too deeply; expected a case of a few "
                                          "levels") from None
    finally:
        if loader is not None:
            loader.dispose()
    docs = [(n, d) for n, d in docs if d is not None]
    if not docs:
        raise CaseError(path, None, None, "empty file: expected a case (a mapping with name, layer, inputs)")
    return docs


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_nodes(path: Path, root: yaml.Node) -> None:
    """Refuse duplicate keys, cyclic aliases and alias bombs, visiting each distinct node once.

    expanded(node) = 1 + sum(expanded(child)): the nodes the document holds once every alias is copied out,
    computed bottom-up with one entry per distinct node (a depth-first walk on an explicit stack).
    """
    expanded: dict[int, int] = {}
    on_path: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            on_path.discard(key)
            expanded[key] = 1 + sum(expanded[id(c)] for c in children)
            continue
        if key in expanded:
            continue
        if key in on_path:
            raise CaseError(path, node.start_mark.line + 1, None, "an alias refers to the node that contains "
                            "it (a cyclic structure); expected plain data")
        on_path.add(key)
        _no_duplicate_keys(path, node)
        stack.append((node, True))
        for child in reversed(children):
            if id(child) in on_path:
                raise CaseError(path, child.start_mark.line + 1, None, "an alias refers to the node that "
                                "contains it (a cyclic structure); expected plain data")
            if id(child) not in expanded:
                stack.append((child, False))
    total, written = expanded[id(root)], len(expanded)
    if total - written > ALIAS_NODES:
        raise CaseError(path, root.start_mark.line + 1, None,
                        f"YAML aliases expand this document to {total} nodes ({written} written); expected "
                        f"aliases to add at most {ALIAS_NODES} (an alias bomb?)")


def _no_duplicate_keys(path: Path, node: yaml.Node) -> None:
    """One mapping's keys (its children are visited by _check_nodes)."""
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    raise CaseError(path, key.start_mark.line + 1, key.value,
                                    "duplicate key: each field may appear once")
                seen.add(key.value)


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


