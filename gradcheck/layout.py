"""Axis layouts of 4-D arrays: which axis is the sample (or output map), the channel, the height, the width.

gradcheck's own order, the one pictures and diagnoses work in, is channels-first::

    maps     NCHW   (N, C, H, W)      sample n, map c, rows, columns          (the default for 4-D arrays)
    kernel   OIHW   (F, C, kh, kw)    output map f, input map c, kernel rows, kernel columns

A case (or check(layouts=...)) may say an array is laid out otherwise; the layout travels with the result
(ArrayResult.layout), and canonical() transposes it into the order above (a view, no copy)::

    NHWC     (N, H, W, C)      channels-last maps (TensorFlow, JAX's default)
    HWIO     (kh, kw, C, F)    channels-last kernels (TensorFlow's conv2d filters)
"""

from __future__ import annotations

import numpy as np

from gradcheck.errors import LayerContractError

# layout -> (kind, axes of the array in the canonical order: canonical = a.transpose(axes))
LAYOUTS = {
    "NCHW": ("maps", (0, 1, 2, 3)),
    "NHWC": ("maps", (0, 3, 1, 2)),
    "OIHW": ("kernel", (0, 1, 2, 3)),
    "HWIO": ("kernel", (3, 2, 0, 1)),
}
CASE_DEFAULTS = ("NCHW", "NHWC")  # what a case-level ``layout:`` may say (maps; kernels name their own)


def check(name: str, layout: str, shape) -> None:
    """ValueError unless `layout` is known and `shape` has the 4 axes it names."""
    if layout not in LAYOUTS:
        raise ValueError(f"{name}: unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    if len(tuple(shape)) != 4:
        raise ValueError(f"{name}: layout {layout} needs a 4-D array; {name} has shape {tuple(shape)}")


def of_inputs(kind_of_layer: str, inputs, arrays, layouts) -> dict:
    """check()'s ``layouts`` validated: names of the layer's inputs, known layouts, 4-D arrays (ValueError;
    LayerContractError for a name that is not an input)."""
    layouts = dict(layouts or {})
    for k, lay in layouts.items():
        if k not in inputs:
            raise LayerContractError(f"{kind_of_layer}: layouts names {k}, not an input of the layer "
                                     f"(inputs: {', '.join(inputs)})")
        check(k, lay, np.shape(arrays[k]))
    return layouts


def kind(layout: str | None) -> str | None:
    """"maps" or "kernel" for a layout, None for none given."""
    return None if layout is None else LAYOUTS[layout][0]


def canonical(a, layout: str | None):
    """`a` in gradcheck's axis order (NCHW maps, OIHW kernels); as given when layout is None."""
    if layout is None:
        return a
    return np.asarray(a).transpose(LAYOUTS[layout][1])


def canonical_shape(shape, layout: str | None) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    return shape if layout is None else tuple(shape[i] for i in LAYOUTS[layout][1])


def canonical_index(index, layout: str | None) -> tuple[int, ...]:
    """An index of the array as given -> its index in the canonical order."""
    index = tuple(int(i) for i in index)
    return index if layout is None else tuple(index[i] for i in LAYOUTS[layout][1])
