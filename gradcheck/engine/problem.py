"""The checked quantity, set up once: the layer at the base point, its seeded cotangent G, its backward.

For a seeded standard-normal G of the output's shape, L(arrays) = sum(G * layer.forward(**arrays)[0]);
a layer with several outputs is seen as one with their flat concatenation (gradcheck.engine.outputs).
The analytic side is layer.backward(G, cache), run in the arrays' own dtype on read-only views (float32
arrays give a float32 backward); the numeric side (gradcheck.engine.differencing) always runs in float64
on exact copies. S = sum(|G * y|) is the size of L's terms, which the rounding bounds scale with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gradcheck.engine import outputs
from gradcheck.engine.differencing import Differencer, read_only, write_attempt
from gradcheck.errors import LayerContractError


def layer_name(layer) -> str:
    return type(layer).__name__


def validate_arrays(layer, arrays) -> None:
    names = (*layer.inputs, *getattr(layer, "constants", ()))
    missing = [k for k in names if k not in arrays]
    extra = sorted(set(arrays) - set(names))
    if missing or extra:
        raise LayerContractError(
            f"{layer_name(layer)}: arrays must hold exactly {', '.join(names)}; "
            f"missing {', '.join(missing) or 'none'}, unexpected {', '.join(extra) or 'none'}")


def validate_grads(layer, arrays, grads) -> None:
    kind = layer_name(layer)
    if not isinstance(grads, dict):
        raise LayerContractError(
            f"{kind}: backward must return a dict name -> gradient, got {type(grads).__name__}")
    missing = [k for k in layer.inputs if k not in grads]
    if missing:
        raise LayerContractError(f"{kind}: backward returned no gradient for {', '.join(missing)}")
    extra = sorted(k for k in grads if k not in layer.inputs and not k.endswith(".delta"))
    if extra:
        raise LayerContractError(
            f"{kind}: backward returned a gradient for {', '.join(extra)}, which is not an input "
            f"(inputs: {', '.join(layer.inputs)})")
    for k in layer.inputs:
        got, want = np.shape(grads[k]), np.shape(arrays[k])
        if got != want:
            raise LayerContractError(
                f"{kind}: backward's gradient for {k} has shape {got}, expected {want} (the shape of {k})")
        g, a = np.asarray(grads[k]), np.asarray(arrays[k])
        if g.dtype.kind == "c" and a.dtype.kind != "c":
            raise LayerContractError(
                f"{kind}: backward's gradient for {k} is {g.dtype}, but {k} is real ({a.dtype}): the "
                f"gradient of a real array is real, dL/d{k} = Re(...) under L = Re(sum(conj(G) * y))")


_KINDS = {"U": "str", "S": "bytes", "O": "object", "M": "datetime64", "m": "timedelta64", "V": "void"}


def _what(y) -> str:
    if y is None:
        return "None"
    if not isinstance(y, np.ndarray):
        return f"a {type(y).__name__}"
    return f"an array of {_KINDS.get(y.dtype.kind, str(y.dtype))} (dtype {y.dtype})"


def call_forward(layer, views):
    """(y, cache) = layer.forward(**views), y as an array (for a layer with several outputs, a tuple of
    arrays, one per name in layer.outputs: gradcheck.engine.outputs); LayerContractError when forward does
    not return a (y, cache) pair with y numeric, or tries to make one of its read-only inputs writeable."""
    kind = layer_name(layer)
    try:
        out = layer.forward(**views)
    except ValueError as e:
        text = write_attempt(layer, views, e, e.__traceback__)
        if text is None:
            raise
        raise LayerContractError(text) from e
    names = outputs.names_of(layer)
    form = "y" if names is None else f"({', '.join(names)})"
    if not (isinstance(out, tuple | list) and len(out) == 2):
        got = f"a {len(out)}-tuple" if isinstance(out, tuple | list) else _what(out)
        raise LayerContractError(f"{kind}: forward must return ({form}, cache), got {got}")
    y, cache = out
    if names is None:
        return _numeric(kind, y, "y", "(y, cache) with y an array"), cache
    outputs.values_of(layer, names, y)  # one value per name, else LayerContractError
    each = f"({form}, cache) with each an array"
    return tuple(_numeric(kind, v, n, each) for n, v in zip(names, y, strict=True)), cache


def _numeric(kind, y, name, form) -> np.ndarray:
    """Output `y` (named `name`) as a numeric array; LayerContractError (forward must return `form`) else."""
    numeric = "biufc"
    bad = y is None or isinstance(y, str | bytes)
    bad = bad or (isinstance(y, np.ndarray) and y.dtype.kind not in numeric)
    if not bad:
        y = np.asarray(y)
    if bad or y.dtype.kind not in numeric:
        raise LayerContractError(f"{kind}: forward's output {name} is {_what(y)}, not a numeric array: "
                                 f"forward must return {form} of numbers (float or complex)")
    return y


def nonfinite_output(y, layer=None) -> str | None:
    """The verdict's cause when y has NaN or inf at the base point (L = sum(G * y) is then NaN, and so is
    every difference of L through those outputs: not a wrong gradient), or None when y is finite. For
    several outputs (layer: the Flattened layer of gradcheck.engine.outputs) the element is named in its own
    output's terms."""
    bad = ~np.isfinite(y)
    if not bad.any():
        return None
    o = int(np.flatnonzero(bad)[0])
    if isinstance(layer, outputs.Flattened):
        (name, index), what = layer.element(o), f"outputs {', '.join(layer.output_shapes)} are"
        loss = "L = sum_k sum(G_k * y_k)"
    else:
        name, index, what, loss = "y", np.unravel_index(o, y.shape), "output y is", "L = sum(G * y)"
    where = f"{name}[{', '.join(str(int(i)) for i in index)}]" if len(index) else name
    return (f"forward's {what} not finite at the base point: {int(bad.sum())} of {y.size} elements are "
            f"NaN or inf ({where} = {y.reshape(-1)[o]}), so {loss} is not finite and the numeric derivatives "
            f"through them are NaN (the output's fault, not the gradient's); fix forward, or choose arrays "
            f"where it is finite")


def dy_warning(G, dy) -> str | None:
    """The warning when backward changed the dy it was handed (a copy of G), or None."""
    if dy.shape == G.shape and np.array_equal(dy, G, equal_nan=True):
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        gap = float(np.nanmax(np.abs(dy - G))) if dy.shape == G.shape and G.size else float("nan")
    return (f"backward modified its dy in place (by up to {gap:.3g}): harmless here (backward gets a copy; "
            f"the numerics use the checker's own G), but in a network where dy is shared it corrupts the "
            f"gradient of the other layers that read it")


def cotangent(y, seed) -> np.ndarray:
    """G: seeded standard normal of y's shape (float32 for a float32 output: the same values); for a
    complex output complex, G = N1 + i N2 with N1 the real draw and N2 the next one (complex64 for a
    complex64 output): L = Re(sum(conj(G) * y))."""
    rng = np.random.default_rng(int(seed))
    G = np.asarray(rng.standard_normal(np.shape(y)))
    if y.dtype.kind == "c":
        return (G + 1j * np.asarray(rng.standard_normal(np.shape(y)))).astype(y.dtype)
    return G.astype(y.dtype) if y.dtype.kind == "f" else G


def terms_size(G64, y) -> float:
    """S = sum(|G| |y|) over the finite terms (sum(|G * y|) for real G and y)."""
    with np.errstate(invalid="ignore", over="ignore"):
        terms = np.abs(G64) * np.abs(y).astype(np.float64)
    return float(np.sum(terms[np.isfinite(terms)]))


@dataclass
class Problem:
    """layer, arrays (never modified), views (read-only), y = forward(views) at the base point, G (the
    output's dtype) and G64, S, grads (our own dict of the backward's gradients), forwards spent."""

    layer: object
    arrays: dict
    views: dict
    y: np.ndarray
    G: np.ndarray
    G64: np.ndarray
    S: float
    seed: int
    grads: dict
    forwards: int = 1
    warnings: list = field(default_factory=list)  # contract remarks for the Report (backward wrote into dy)
    cause: str | None = None  # y not finite at the base point: the cause of any NaN numerics, not a pass

    @classmethod
    def build(cls, layer, arrays, seed) -> Problem:
        validate_arrays(layer, arrays)
        views = {k: read_only(v) for k, v in arrays.items()}
        y, cache = call_forward(layer, views)
        layer, y = outputs.flattened(layer, y)  # several outputs: one flat y (gradcheck.engine.outputs)
        G = cotangent(y, seed)
        G.flags.writeable = False  # the checker's own: backward gets a copy, the numerics use this one
        dy = G.copy()
        grads = layer.backward(dy, cache)
        del cache  # the layer's intermediates (an im2col matrix, say) are not needed again
        validate_grads(layer, arrays, grads)
        warnings = [w for w in (dy_warning(G, dy),) if w]
        del dy
        G64 = G.astype(np.complex128 if G.dtype.kind == "c" else np.float64)
        # our own dict: a gradient the layer keeps (in its returned dict too) stays shared
        return cls(layer, arrays, views, y, G, G64, terms_size(G64, y), int(seed), dict(grads),
                   warnings=warnings, cause=nonfinite_output(y, layer))

    def differencer(self, method, eps, layer=None, arrays=None) -> Differencer:
        """A Differencer of L (or of a tail's L for a residual: its layer and arrays, the same G and S); L's
        own knows the output at the base point (y, one forward fewer)."""
        if layer is None and arrays is None:
            return Differencer(self.layer, self.arrays, self.G64, method, eps, self.S, y0=self.y)
        return Differencer(self.layer if layer is None else layer, self.arrays if arrays is None else arrays,
                           self.G64, method, eps, self.S)

    def backward_again(self) -> dict:
        """The gradients once more (a buffer lent to a working copy is gone): one forward and backward."""
        self.forwards += 1
        return dict(self.layer.backward(self.G.copy(), call_forward(self.layer, self.views)[1]))

    def require_deterministic(self) -> None:
        """Raise LayerContractError when forward at the base point no longer gives y: the layer draws random
        numbers of its own (a dropout mask) or keeps state between calls, and any mismatch (or kink) is
        noise. Run only after a failure or a kink (one forward): such a layer is neither reported as a wrong
        gradient nor passed on one-sided differences that disagree for no reason but the noise."""
        self.forwards += 1
        again = call_forward(self.layer, self.views)[0]
        y = self.y
        if again.shape == y.shape and np.array_equal(again, y, equal_nan=True):
            return
        with np.errstate(invalid="ignore", over="ignore"):
            gap = float(np.nanmax(np.abs(again - y))) if again.shape == y.shape and y.size else float("nan")
        raise LayerContractError(
            f"{layer_name(self.layer)}: forward is not a function of its arrays: two calls with the same "
            f"arrays differ (by up to {gap:.3g}), so the mismatch found is noise; fix its random numbers "
            f"(seed a dropout mask per call) and keep no state between calls (the checker calls forward from "
            f"several threads)")
