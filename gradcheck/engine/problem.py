"""The checked quantity, set up once: the layer at the base point, its seeded cotangent G, its backward.

For a seeded standard-normal G of the output's shape, L(arrays) = sum(G * layer.forward(**arrays)[0]);
a layer with several outputs is seen as one with their flat concatenation (gradcheck.engine.outputs).
The analytic side is layer.backward(G, cache), run in the arrays' own dtype on read-only views (float32
arrays give a float32 backward); the numeric side (gradcheck.engine.differencing) always runs in float64
on exact copies. S = sum(|G * y|) is the size of L's terms, which the rounding bounds scale with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradcheck.engine import outputs
from gradcheck.engine.differencing import Differencer, read_only
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


def cotangent(y, seed) -> np.ndarray:
    """G: seeded standard normal of y's shape (float32 for a float32 output: the same values)."""
    G = np.asarray(np.random.default_rng(int(seed)).standard_normal(np.shape(y)))
    return G.astype(y.dtype) if y.dtype.kind == "f" else G


def terms_size(G64, y) -> float:
    """S = sum(|G * y|) over the finite terms."""
    with np.errstate(invalid="ignore", over="ignore"):
        terms = np.abs(G64 * np.real(y).astype(np.float64))
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

    @classmethod
    def build(cls, layer, arrays, seed) -> Problem:
        validate_arrays(layer, arrays)
        views = {k: read_only(v) for k, v in arrays.items()}
        y, cache = layer.forward(**views)
        layer, y = outputs.flattened(layer, y)  # several outputs: one flat y (gradcheck.engine.outputs)
        y = np.asarray(y)
        G = cotangent(y, seed)
        grads = layer.backward(G, cache)
        del cache  # the layer's intermediates (an im2col matrix, say) are not needed again
        validate_grads(layer, arrays, grads)
        G64 = G.astype(np.float64)
        # our own dict: a gradient the layer keeps (in its returned dict too) stays shared
        return cls(layer, arrays, views, y, G, G64, terms_size(G64, y), int(seed), dict(grads))

    def differencer(self, method, eps, layer=None, arrays=None) -> Differencer:
        """A Differencer of L (or of a tail's L for a residual: its layer and arrays, the same G and S)."""
        return Differencer(self.layer if layer is None else layer, self.arrays if arrays is None else arrays,
                           self.G64, method, eps, self.S)

    def backward_again(self) -> dict:
        """The gradients once more (a buffer lent to a working copy is gone): one forward and backward."""
        self.forwards += 1
        return dict(self.layer.backward(self.G, self.layer.forward(**self.views)[1]))

    def require_deterministic(self) -> None:
        """Raise LayerContractError when forward at the base point no longer gives y: the layer draws random
        numbers of its own (a dropout mask) or keeps state between calls, and any mismatch (or kink) is
        noise. Run only after a failure or a kink (one forward): such a layer is neither reported as a wrong
        gradient nor passed on one-sided differences that disagree for no reason but the noise."""
        self.forwards += 1
        again = np.asarray(self.layer.forward(**self.views)[0])
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
