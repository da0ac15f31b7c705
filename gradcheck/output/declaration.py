"""Structure declarations as Python source: what ``gradcheck structure CASE`` prints, a ``structure``
method to paste into the layer (gradcheck.engine.inference.declarations finds them)::

    def structure(self, name, shapes):
        return {
            'x': (0, None, (2, 1, -2, 5), (3, 1, -2, 5)),  # inferred: 75 groups for 49,152 coordinates
            'b': (1,),  # inferred: 1 group for 10 coordinates
        }.get(name)
"""

from __future__ import annotations


def python_source(found) -> str:
    """A ``structure(self, name, shapes)`` method returning the declarations of `found` (Found each: name,
    entries, source, groups, coordinates), ready to paste into a layer."""
    lines = ["def structure(self, name, shapes):",
             '    """Which output slice each input coordinate touches (gradcheck.engine.structure)."""',
             "    return {"]
    for f in found:
        groups = f"{f.groups:,} group{'s' if f.groups != 1 else ''}"
        lines.append(f"        {f.name!r}: {tuple(f.entries)!r},  # {f.source}: {groups} for "
                     f"{f.coordinates:,} coordinates")
    lines.append("    }.get(name)")
    return "\n".join(lines)


__all__ = ["python_source"]
