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
"""

from __future__ import annotations


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
