"""Heat maps of analytic, numeric and their difference laid out by the array's meaning; error-vs-eps plots.

Layouts (by the array's name, the part after the last "." of a Sequential name, and its number of axes):

    kernel  k (F, C, kh, kw)      a grid of kh x kw tiles: row f = output map, column c = input map
    maps    (N, C, H, W)          a grid of H x W tiles: row n = sample, column c = map (x, residuals)
    matrix  (R, C)                the matrix itself (FC weights W (D, F): row = input, column = output)
    strip   (n,)                  one row (biases, beta)

A 4-D array whose result names its layout (ArrayResult.layout, gradcheck.layout) is drawn by it, not by its
name: NHWC maps and HWIO kernels are transposed into the grids above (channels-last arrays as maps).

Every panel is at most MAX_PIXELS on a side: a grid with too many tiles keeps the rows and columns whose
difference is largest (in index order, labelled); tiles or matrices that are still too large are reduced
in blocks, by the block mean for analytic and numeric and by the block's largest |value| (with its sign)
for the difference, so one wrong element stays visible. Worst elements are marked with a red square.

Panel.data is the exact array drawn (NaN = a gap between tiles, or an element the strategy did not
compute): tests check it, not pixels. matplotlib runs on the Agg backend (no display).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field, replace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gradcheck import layout as layouts  # noqa: E402

MAX_PIXELS = 320  # per side of a panel
MAX_MARKS = 5
DPI = 100


@dataclass
class Layout:
    """How an array maps onto a 2-D picture (shared by its analytic, numeric and difference panels)."""

    kind: str  # "kernel" | "maps" | "matrix" | "strip" | "scalar"
    shape: tuple[int, ...]
    rows: np.ndarray | None = None  # selected tile rows (grids)
    cols: np.ndarray | None = None  # selected tile columns (grids)
    block: tuple[int, int] = (1, 1)  # reduction factor inside a tile / of the matrix
    description: str = ""
    axes: str | None = None  # the array's own layout (gradcheck.layout) when not the canonical order

    def canonical(self, a):
        """The array in the order `shape` describes (NCHW maps, OIHW kernels)."""
        return layouts.canonical(a, self.axes) if self.kind in ("kernel", "maps") else a

    def place(self, index) -> tuple[int, int] | None:
        """Pixel (row, col) of an array index, or None when the layout left it out."""
        index = tuple(int(i) for i in index)
        if self.kind in ("kernel", "maps"):
            index = layouts.canonical_index(index, self.axes)
        fr, fc = self.block
        if self.kind in ("kernel", "maps"):
            a, b, h, w = _as4(index, self.shape)
            _, _, H, W = _shape4(self.shape)
            hb, wb = math.ceil(H / fr), math.ceil(W / fc)
            ra, cb = np.flatnonzero(self.rows == a), np.flatnonzero(self.cols == b)
            if not ra.size or not cb.size:
                return None
            return int(ra[0]) * (hb + 1) + h // fr, int(cb[0]) * (wb + 1) + w // fc
        if self.kind == "matrix":
            return index[0] // fr, index[1] // fc
        if self.kind == "strip":
            return 0, index[0] // fc
        return 0, 0


@dataclass
class Panel:
    """One heat map: data is what is drawn (2-D, NaN = gap / not computed)."""

    title: str
    data: np.ndarray
    marks: list[tuple[int, int]] = field(default_factory=list)
    layout: Layout | None = None
    symmetric: bool = True


def _shape4(shape):
    """Any >= 3-axis shape as (A, B, H, W): leading axes merged; 3 axes as (A, 1, H, W)."""
    if len(shape) == 3:
        return shape[0], 1, shape[1], shape[2]
    return int(np.prod(shape[:-3])), shape[-3], shape[-2], shape[-1]


def _as4(index, shape):
    if len(shape) == 3:
        return index[0], 0, index[1], index[2]
    lead = int(np.ravel_multi_index(index[:-3], shape[:-3])) if len(shape) > 4 else index[0]
    return lead, index[-3], index[-2], index[-1]


def _basename(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _reduce(a2, fr, fc, how):
    """Block-reduce a 2-D array by (fr, fc): "mean" (NaN-aware) or "maxabs" (the value of largest |.|).

    One band of fr rows at a time: a 25088 x 4096 kernel never gets an array-sized temporary.
    """
    a2 = np.asarray(a2)
    if fr == 1 and fc == 1:
        return np.array(a2, dtype=np.float64)
    R, C = a2.shape
    Rb, Cb = math.ceil(R / fr), math.ceil(C / fc)
    out = np.empty((Rb, Cb))
    for i in range(Rb):
        band = np.full((fr, Cb * fc), np.nan)
        rows = a2[i * fr:(i + 1) * fr]
        band[:rows.shape[0], :C] = rows
        blocks = band.reshape(fr, Cb, fc).transpose(1, 0, 2).reshape(Cb, fr * fc)
        finite = np.isfinite(blocks)
        if how == "mean":
            n = finite.sum(axis=1)
            total = np.where(finite, blocks, 0.0).sum(axis=1)
            out[i] = np.where(n > 0, total / np.maximum(n, 1), np.nan)
        else:
            pick = np.argmax(np.where(finite, np.abs(blocks), -1.0), axis=1)
            picked = np.take_along_axis(blocks, pick[:, None], axis=1)[:, 0]
            out[i] = np.where(finite.any(axis=1), picked, np.nan)
    return out


def _top(scores, k):
    """Indices of the k largest scores (NaN lowest), in increasing index order."""
    if scores.size <= k:
        return np.arange(scores.size)
    s = np.where(np.isfinite(scores), scores, -np.inf)
    return np.sort(np.argsort(-s, kind="stable")[:k])


def layout_for(name: str, shape, importance: np.ndarray | None = None, layout: str | None = None) -> Layout:
    """The Layout of an array `name` of `shape`; importance (same shape, e.g. |difference|) chooses which
    tile rows and columns a grid keeps when it has too many. layout: the array's axis layout (a 4-D
    array: gradcheck.layout), else its kind comes from its name and number of axes."""
    shape = tuple(int(s) for s in shape)
    given = shape
    if layout is not None and len(shape) == 4:
        shape = layouts.canonical_shape(shape, layout)
        importance = None if importance is None else layouts.canonical(importance, layout)
    else:
        layout = None
    if len(shape) == 0:
        return Layout("scalar", shape, description="a scalar")
    if len(shape) == 1:
        fc = math.ceil(shape[0] / MAX_PIXELS)
        extra = f", blocks of {fc}" if fc > 1 else ""
        return Layout("strip", shape, block=(1, fc), description=f"{shape[0]} elements in one strip{extra}")
    if len(shape) == 2:
        fr, fc = math.ceil(shape[0] / MAX_PIXELS), math.ceil(shape[1] / MAX_PIXELS)
        what = ("rows: input d, columns: output f" if _basename(name) == "W"
                else "rows: sample n, columns: element")
        extra = f"; blocks of {fr} x {fc}" if fr * fc > 1 else ""
        return Layout("matrix", shape, block=(fr, fc),
                      description=f"{shape[0]} x {shape[1]} matrix, {what}{extra}")
    A, B, H, W = _shape4(shape)
    kind = layouts.kind(layout) or ("kernel" if _basename(name) == "k" and len(shape) == 4 else "maps")
    fr, fc = math.ceil(H / MAX_PIXELS), math.ceil(W / MAX_PIXELS)
    hb, wb = math.ceil(H / fr), math.ceil(W / fc)
    max_rows, max_cols = max(1, (MAX_PIXELS + 1) // (hb + 1)), max(1, (MAX_PIXELS + 1) // (wb + 1))
    if importance is not None:
        imp = np.abs(np.asarray(importance, dtype=np.float64)).reshape(A, B, H * W)
        imp = np.where(np.isfinite(imp), imp, -1.0)
        row_scores, col_scores = imp.max(axis=(1, 2)), imp.max(axis=(0, 2))
    else:
        row_scores, col_scores = -np.arange(A, dtype=float), -np.arange(B, dtype=float)
    rows, cols = _top(row_scores, max_rows), _top(col_scores, max_cols)
    if kind == "kernel":
        what = f"rows: output map f, columns: input map c, each tile a {H} x {W} kernel"
    else:
        what = f"rows: sample n, columns: map c, each tile a {H} x {W} map"
    kept = ""
    if rows.size < A or cols.size < B:
        which = "with the largest difference" if importance is not None else "first"
        kept = f"; showing the {rows.size} of {A} rows and {cols.size} of {B} columns, {which}"
    block = f"; tiles reduced in blocks of {fr} x {fc}" if fr * fc > 1 else ""
    own = "" if layout in (None, "NCHW", "OIHW") else f" ({layout} {given}, drawn channels-first)"
    return Layout(kind, shape, rows=rows, cols=cols, block=(fr, fc), description=what + own + kept + block,
                  axes=layout)


def arrange(layout: Layout, a, how: str = "mean") -> np.ndarray:
    """The 2-D picture of array `a` under `layout` (NaN gaps between tiles)."""
    a = np.real(np.asarray(a, dtype=np.complex128 if np.iscomplexobj(a) else np.float64))
    fr, fc = layout.block
    if layout.kind == "scalar":
        return a.reshape(1, 1)
    if layout.kind == "strip":
        return _reduce(a.reshape(1, -1), 1, fc, how)
    if layout.kind == "matrix":
        return _reduce(a, fr, fc, how)
    A, B, H, W = _shape4(layout.shape)
    a4 = layout.canonical(a).reshape(A, B, H, W)
    hb, wb = math.ceil(H / fr), math.ceil(W / fc)
    out = np.full((layout.rows.size * (hb + 1) - 1, layout.cols.size * (wb + 1) - 1), np.nan)
    for i, r in enumerate(layout.rows):
        for j, c in enumerate(layout.cols):
            r0, c0 = i * (hb + 1), j * (wb + 1)
            out[r0:r0 + hb, c0:c0 + wb] = _reduce(a4[r, c], fr, fc, how)
    return out


def panels(result) -> list[Panel]:
    """analytic, numeric and difference (analytic - numeric) panels of an ArrayResult, one layout.

    The directional strategy has no per-element numeric values: then only the analytic panel, with the
    elements bisection located marked. A complex array: these panels for its real parts, then its
    imaginary parts (each marked where that part failed).
    """
    if getattr(result, "parts", False):
        out = []
        for part, take in (("re", np.real), ("im", np.imag)):
            one = replace(result, analytic=take(result.analytic),
                          numeric=None if result.numeric is None else take(result.numeric), parts=False,
                          worst=[e for e in result.worst if e.part == part],
                          located=[e for e in result.located if e.part == part])
            out += [replace(p, title=p.title.replace(result.name, f"{result.name}.{part}", 1))
                    for p in panels(one)]
        return out
    name, g = result.name, np.asarray(result.analytic)
    numeric = None if result.numeric is None else np.asarray(result.numeric, dtype=np.float64)
    diff = None if numeric is None else np.real(g).astype(np.float64) - numeric
    lay = layout_for(name, g.shape, importance=diff, layout=getattr(result, "layout", None))
    bad = [e for e in [*result.worst, *getattr(result, "located", [])] if e.failed and e.index is not None]
    marks = []
    for e in bad[:MAX_MARKS]:
        p = lay.place(e.index)
        if p is not None and p not in marks:
            marks.append(p)
    out = [Panel(f"{name} analytic", arrange(lay, g), marks, lay)]
    if numeric is not None:
        out.append(Panel(f"{name} numeric", arrange(lay, numeric), marks, lay))
        out.append(Panel(f"{name} analytic - numeric", arrange(lay, diff, "maxabs"), marks, lay))
    return out


def _tile_ticks(ax, lay: Layout, pic):
    if lay.kind not in ("kernel", "maps"):
        return
    _, _, H, W = _shape4(lay.shape)
    fr, fc = lay.block
    hb, wb = math.ceil(H / fr), math.ceil(W / fc)
    if lay.rows.size <= 16:
        ax.set_yticks([i * (hb + 1) + (hb - 1) / 2 for i in range(lay.rows.size)],
                      [str(r) for r in lay.rows], fontsize=7)
    else:
        ax.set_yticks([])
    if lay.cols.size <= 16:
        ax.set_xticks([j * (wb + 1) + (wb - 1) / 2 for j in range(lay.cols.size)],
                      [str(c) for c in lay.cols], fontsize=7)
    else:
        ax.set_xticks([])
    ax.set_ylabel("output map f" if lay.kind == "kernel" else "sample n", fontsize=8)
    ax.set_xlabel("input map c" if lay.kind == "kernel" else "map c", fontsize=8)


def heatmap_figure(ps: list[Panel], suptitle: str = ""):
    """One row of heat maps; analytic and numeric share a symmetric colour scale, the difference its own."""
    fig, axes = plt.subplots(1, len(ps), figsize=(3.6 * len(ps), 3.6), dpi=DPI, squeeze=False)
    shared = max([float(np.nanmax(np.abs(p.data))) for p in ps
                  if " - " not in p.title and np.isfinite(p.data).any()] or [0.0])
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="#dddddd")  # grey: gaps, elements not computed
    for ax, p in zip(axes[0], ps, strict=True):
        is_diff = " - " in p.title
        m = (np.nanmax(np.abs(p.data)) if np.isfinite(p.data).any() else 0.0) if is_diff else shared
        m = m if m > 0 else 1.0
        lay = p.layout
        fr, fc = lay.block if lay is not None and lay.kind in ("matrix", "strip") else (1, 1)
        R, C = p.data.shape
        # matrices and strips are drawn in element coordinates (a block covers fr x fc elements)
        extent = (-0.5, C * fc - 0.5, R * fr - 0.5, -0.5)
        im = ax.imshow(np.ma.masked_invalid(p.data), cmap=cmap, vmin=-m, vmax=m, interpolation="nearest",
                       extent=extent, aspect="equal" if R > 1 else "auto")
        if p.marks:
            rows, cols = zip(*p.marks, strict=True)
            ax.scatter([c * fc + (fc - 1) / 2 for c in cols], [r * fr + (fr - 1) / 2 for r in rows], s=70,
                       facecolors="none", edgecolors="red", linewidths=1.3,
                       marker="s" if fr * fc == 1 else "o")
        ax.set_title(p.title, fontsize=9)
        if lay is not None and lay.kind in ("kernel", "maps"):
            _tile_ticks(ax, lay, p.data)
        elif R == 1:
            ax.set_yticks([])
            ax.set_xlabel("index", fontsize=8)
        elif lay is not None and lay.kind == "matrix":
            W_like = _basename(p.title.split()[0]) == "W"
            ax.set_ylabel("input d" if W_like else "row", fontsize=8)
            ax.set_xlabel("output f" if W_like else "column", fontsize=8)
        fig.colorbar(im, ax=ax, shrink=0.75)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig


def sweep_figure(curves, case_eps: float | None = None, title: str = ""):
    """Error vs step size on log axes: one curve per (label, Convergence); the case's eps as a vertical
    line, an eps^p reference through each converging curve's largest step (p: its method's order, 2 or 4),
    rounding floors dotted."""
    fig, ax = plt.subplots(figsize=(5.6, 4.0), dpi=DPI)
    for label, c in curves:
        if c.errors.size == 0:
            continue
        e = np.where(c.errors > 0, c.errors, np.nan)
        order = "n/a" if c.order is None else f"{abs(c.order) if abs(c.order) < 0.05 else c.order:.1f}"
        (line,) = ax.loglog(c.steps, e, "o-", markersize=3, label=f"{label}: order {order}, {c.verdict}")
        ax.loglog(c.steps, c.floors, ":", color=line.get_color(), linewidth=0.8)
        if c.verdict == "converges" and np.isfinite(e[0]):
            ref = e[0] * (c.steps / c.steps[0]) ** c.expected
            above = ref >= 0.1 * np.min(c.floors)  # down to the rounding floor, not beyond
            ax.loglog(c.steps[above], ref[above], "--", color="gray", linewidth=0.7)
    if case_eps is not None:
        ax.axvline(case_eps, color="black", linewidth=0.8, linestyle="-.")
        ax.text(case_eps, ax.get_ylim()[1], f" case eps {case_eps:.3g}", fontsize=7, va="top")
    ax.invert_xaxis()
    ax.set_xlabel("step eps (shrinking to the right)")
    ax.set_ylabel("|analytic - numeric| along u")
    ax.grid(True, which="major", linewidth=0.3)
    ax.legend(fontsize=7, loc="best")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def png(fig) -> bytes:
    """The figure as PNG bytes (and the figure closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
