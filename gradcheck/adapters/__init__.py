"""The conventions of the field as layers of the layer contract (README, "Your own layer").

    gradcheck.pair(affine_forward, affine_backward)      cs231n's function pairs (adapters.pairs)
    gradcheck.pair(softmax_loss)                         f(x, y) -> (loss, dx): the gradient with the value
    gradcheck.stateful(Dense(W, b), params=("W", "b"))   forward(X) / backward(dLdy) objects (.stateful)

From YAML, ``layer: "module:affine"`` (a module with affine_forward and affine_backward and no class
``affine``) and ``layer: "module:conv_forward_naive"`` build a pair, the case's ``config`` entries passed
to forward by name (gradcheck.catalogue.registry resolves them through ``find``). Several outputs are the
checker's own (gradcheck.engine.outputs); a pair whose forward returns several arrays before the cache
declares them.
"""

from gradcheck.adapters.pairs import FunctionPair, PairSpec, ValueAndGradient, find, pair
from gradcheck.adapters.stateful import Stateful, stateful

__all__ = ["pair", "stateful", "find", "FunctionPair", "ValueAndGradient", "PairSpec", "Stateful"]
