"""Reference NumPy layers, each a forward and a hand-derived backward, nothing else.

The layer contract (README.md, "The layer contract"), honoured by every class here and by a user's own layer:

    layer.inputs                -> ("x", "W", "b")       names of the differentiable arrays
    layer.forward(**arrays)     -> (y, cache)
    layer.backward(dy, cache)   -> {"x": dx, "W": dW, "b": db}   one gradient per input, same shapes

Optional members the checker uses when present:

    layer.constants             -> ("t",)   non-differentiable arrays forward also takes (loss targets)
    layer.complex_safe          -> True when forward is analytic, so complex-step differencing applies
    layer.structure(name, shapes) -> per-axis map of which output slice each coordinate of `name` can
                                   touch (plain data; gradcheck.engine.structure groups perturbations
                                   with it; without it the checker infers one from forward)
    layer.outputs               -> ("h", "c")  several outputs: forward returns ((h, c), cache), backward
                                   takes dy = (dh, dc), structure takes a third argument, the output
                                   (layers.lstm.LSTMStep); absent means one output, "y"

Layers are stateless: hyper-parameters are fixed at construction, nothing is kept between calls, and
forward is a function of its arrays (the checker calls it from several threads at once, and confirms
after any failure or kink that a second call at the same point gives the same output).
Arrays are batch-first and channels-first, float64 unless the caller passes another dtype; a forward
keeps the dtype it is given (float32 stays float32, complex stays complex).
"""

from layers.activations import ReLU, Sigmoid, Tanh
from layers.conv import Conv2D, output_size, rot180
from layers.fc_as_conv import FullyConnectedAsConv, conv_to_fc, fc_to_conv
from layers.fully_connected import FullyConnected
from layers.losses import SoftmaxCrossEntropy, SquaredError
from layers.lstm import LSTMStep
from layers.sequential import Sequential
from layers.subsampling import MaxPool, MeanPool, Subsampling, down, up

__all__ = [
    "FullyConnected",
    "Conv2D", "output_size", "rot180",
    "FullyConnectedAsConv", "fc_to_conv", "conv_to_fc",
    "Subsampling", "MeanPool", "MaxPool", "down", "up",
    "Sigmoid", "Tanh", "ReLU",
    "SquaredError", "SoftmaxCrossEntropy",
    "Sequential",
    "LSTMStep",
]
