"""A stack of layers obeying the layer contract itself (conv -> sigmoid -> subsample -> fc -> E).

Forward chains the layers, each layer's data input (its ``inputs[0]``) being the previous output::

    a_0 = x,    a_l = layer_l(a_{l-1}, params_l),    output = a_L

Backward is the chain rule run in reverse, Bouvrie's residual propagation::

    delta_L = dy,    delta_{l-1} = d a_l / d a_{l-1} applied to delta_l   (layer_l.backward)

and it returns, beside one gradient per input, ``"<name>.delta"`` = delta_l = dE/d(output of layer
<name>) for every layer. When a Sigmoid layer follows a conv layer, ``"conv.delta"`` is dE/du of the
conv's pre-activation u, the residual of seed 004. The same residual is the "x" gradient of
``tail("conv")``, so it can itself be checked numerically.

Names: ``"x"`` is the first layer's data input; every other differentiable input is
``"<name>.<input>"`` (e.g. ``"conv.k"``, ``"sub.beta"``), every constant ``"<name>.<constant>"``
(e.g. ``"loss.t"``). Sub-stacks from ``head``/``tail`` keep these names, so the full arrays dict,
filtered by a sub-stack's ``inputs + constants``, feeds the sub-stack.

Structure: ``structure(name, shapes)`` composes the layers' own declarations (see ``compose``); a layer on
the way that declares nothing makes it None, and the checker then infers the stack's as a whole. The
shapes between the layers come from one forward of all but the last layer on zeros, run once per set of
array shapes and kept (SHAPES_KEPT sets): a check asks for every array's structure, and at 100M weights
that forward costs 0.45 s. forward and backward keep nothing.
"""

from __future__ import annotations

import numpy as np

SHAPES_KEPT = 8  # sets of array shapes whose shapes between the layers structure() keeps


def compose(first, then):
    """One axis of a declaration carried through the next layer: `first` maps an input axis onto axis a
    of the intermediate output (None, an axis, or (a, stride, start, size)); `then` is the next layer's
    declaration for its data input. Identities keep the window; windows compose to stride s1 s2, start
    st1 + s1 st2, size sz1 + s1 (sz2 - 1) (the inputs of sz2 consecutive windows of the first); anything
    that reaches an unrestricted axis is unrestricted."""
    if first is None:
        return None
    a, s1, st1, sz1 = (first, 1, 0, 1) if isinstance(first, int | np.integer) else first
    nxt = then[a]
    if nxt is None:
        return None
    b, s2, st2, sz2 = (nxt, 1, 0, 1) if isinstance(nxt, int | np.integer) else nxt
    s, st, sz = s1 * s2, st1 + s1 * st2, sz1 + s1 * (sz2 - 1)
    return int(b) if (s, st, sz) == (1, 0, 1) else (int(b), int(s), int(st), int(sz))


class Sequential:
    """Layers applied in order; parameters named ``<layer>.<input>``.

    layers: a list of (name, layer) pairs; names unique, without ".".
    inputs:    ("x", "<name>.<input>" for every layer's inputs[1:], in layer order)
    constants: ("<name>.<constant>" for every layer's constants)
    cache: one cache per layer, in order.
    Complex-safe when every layer is.
    """

    def __init__(self, layers):
        layers = list(layers)
        if not layers:
            raise ValueError("Sequential: layers must hold at least one (name, layer) pair, got none")
        names = []
        for item in layers:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
                raise ValueError(f"Sequential: each entry must be a (name, layer) pair, got {item!r}")
            name = item[0]
            if not name or "." in name:
                raise ValueError(f"Sequential: layer names must be non-empty and without '.', got {name!r}")
            if name in names:
                raise ValueError(f"Sequential: duplicate layer name {name!r}")
            names.append(name)
        self._layers = tuple(layers)
        self.inputs = ("x",) + tuple(f"{n}.{p}" for n, layer in layers for p in layer.inputs[1:])
        self.constants = tuple(f"{n}.{c}" for n, layer in layers for c in getattr(layer, "constants", ()))
        self.complex_safe = all(getattr(layer, "complex_safe", False) for _, layer in layers)
        self._between = {}  # the arrays' shapes -> the shape of every layer's data input (see structure)

    @property
    def layer_names(self):
        """The layer names, in order."""
        return tuple(n for n, _ in self._layers)

    @property
    def layers(self):
        """The (name, layer) pairs, in order."""
        return self._layers

    def _index(self, name):
        names = self.layer_names
        if name not in names:
            raise ValueError(f"Sequential: no layer named {name!r}; layers are {', '.join(names)}")
        return names.index(name)

    def head(self, name):
        """The stack of the layers up to and including `name` (same parameter names)."""
        return Sequential(self._layers[: self._index(name) + 1])

    def tail(self, name):
        """The stack of the layers after `name`; its data input "x" is the output of `name`."""
        i = self._index(name)
        if i == len(self._layers) - 1:
            raise ValueError(f"Sequential: no layers after {name!r}, the last layer, so the tail is empty")
        return Sequential(self._layers[i + 1:])

    def structure(self, name, shapes):
        """Which output slice each coordinate of `name` touches (gradcheck's structure declaration), composed
        from the layers' own declarations: `name`'s layer maps it onto its output, and every later layer's
        declaration for its data input carries it on (compose). None when a layer on the way declares
        nothing, or the shapes between the layers cannot be had (see _shapes_between)."""
        owner, own = (0, self._layers[0][1].inputs[0]) if name == "x" else self._owner(name)
        if owner is None or any(getattr(lay, "structure", None) is None for _, lay in self._layers[owner:]):
            return None  # before any forward on zeros
        between = self._shapes_between(shapes)
        if between is None:
            return None
        entries = None
        for i, (lname, layer) in enumerate(self._layers[owner:], owner):
            names = (*layer.inputs, *getattr(layer, "constants", ()))
            mine = {p: tuple(shapes[f"{lname}.{p}"]) for p in names[1:]}
            mine[layer.inputs[0]] = between[i]
            if entries is None:
                entries = layer.structure(own, mine)
            else:
                then = layer.structure(layer.inputs[0], mine)
                entries = None if then is None else tuple(compose(e, then) for e in entries)
            if entries is None:
                return None
        return tuple(entries)

    def _owner(self, name):
        """(index of the layer whose input `name` is, its own name for it), or (None, None)."""
        lname, _, own = name.partition(".")
        for i, (n, layer) in enumerate(self._layers):
            if n == lname and own in (*layer.inputs[1:], *getattr(layer, "constants", ())):
                return i, own
        return None, None

    def _key(self, shapes):
        return tuple(tuple(shapes[k]) if k in shapes else None for k in (*self.inputs, *self.constants))

    def _record(self, key, between):
        kept = dict(self._between)  # copied, then swapped in: the checker runs on several threads
        kept.pop(key, None)
        while len(kept) >= SHAPES_KEPT:
            kept.pop(next(iter(kept)))
        kept[key] = tuple(between)
        self._between = kept

    def _shapes_between(self, shapes):
        """The shape of every layer's data input at these array shapes, from one forward of all but the
        last layer on zeros (np.zeros: pages only read stay the system's zero page), made once per set of
        shapes and kept; None when a layer refuses the zeros (not kept: it is tried again)."""
        key = self._key(shapes)
        if key in self._between:
            return self._between[key]
        out, a = [tuple(shapes["x"])], np.zeros(tuple(shapes["x"]))
        try:
            for lname, layer in self._layers[:-1]:
                kwargs = {layer.inputs[0]: a}
                for p in (*layer.inputs[1:], *getattr(layer, "constants", ())):
                    kwargs[p] = np.zeros(tuple(shapes[f"{lname}.{p}"]))
                a = np.asarray(layer.forward(**kwargs)[0])
                out.append(a.shape)
        except Exception:
            return None
        self._record(key, out)
        return out

    def forward(self, **arrays):
        expected = set(self.inputs) | set(self.constants)
        missing = [k for k in self.inputs + self.constants if k not in arrays]
        unknown = sorted(set(arrays) - expected)
        if missing or unknown:
            raise ValueError(
                f"Sequential: arrays must be exactly {', '.join(self.inputs + self.constants)}; "
                f"missing {missing or 'none'}, unknown {unknown or 'none'}"
            )
        a = arrays["x"]
        caches = []
        for name, layer in self._layers:
            kwargs = {layer.inputs[0]: a}
            for p in layer.inputs[1:] + tuple(getattr(layer, "constants", ())):
                kwargs[p] = arrays[f"{name}.{p}"]
            a, cache = layer.forward(**kwargs)
            caches.append(cache)
        return a, caches

    def backward(self, dy, cache):
        grads = {}
        delta = dy
        for (name, layer), c in zip(reversed(self._layers), reversed(cache), strict=True):
            grads[f"{name}.delta"] = delta
            g = layer.backward(delta, c)
            for p in layer.inputs[1:]:
                grads[f"{name}.{p}"] = g[p]
            # a nested stack's own residuals, under this stack's name for it
            for k, v in g.items():
                if k.endswith(".delta"):
                    grads[f"{name}.{k}"] = v
            delta = g[layer.inputs[0]]
        grads["x"] = delta
        return grads
