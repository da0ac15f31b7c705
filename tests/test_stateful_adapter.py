"""gradcheck.stateful (gradcheck.adapters.stateful): objects with forward(X) that keeps its input and
backward(dLdy) that returns dX and leaves dW, db on the object; README's recipe run as written."""

import re
from pathlib import Path

import numpy as np
import pytest

import gradcheck
from gradcheck.errors import LayerContractError
from tests.stateful_layers import BatchNorm, Conv2D, Dense

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(heading):
    """The first ```python block after the README heading `heading`."""
    text = README.read_text(encoding="utf-8")
    start = text.index(heading)
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


def test_the_readme_recipe_runs_as_written():
    namespace = {}
    exec(compile(readme_block("### A stateful layer object"), "README.md", "exec"), namespace)
    report = namespace["report"]
    assert report.passed and set(report.arrays) == {"X", "W", "b"}
    assert namespace["layer"].inputs == ("X", "W", "b")


@pytest.mark.parametrize("method", ["central", "complex"])
def test_dense_passes_and_a_wrong_db_is_caught_on_b(method):
    rng = np.random.default_rng(0)
    dense = Dense(rng.standard_normal((5, 3)), rng.standard_normal(3))
    layer = gradcheck.stateful(dense, params=("W", "b"), complex_safe=method == "complex")
    X = rng.standard_normal((4, 5))
    assert gradcheck.check(layer, layer.arrays(X), method=method).passed

    class MeanBias(Dense):
        def backward(self, dLdy):
            dX = super().backward(dLdy)
            self.db = dLdy.mean(axis=0)  # should be the sum
            return dX

    layer = gradcheck.stateful(MeanBias(dense.W, dense.b), params=("W", "b"),
                               complex_safe=method == "complex")
    report = gradcheck.check(layer, layer.arrays(X), method=method)
    assert [n for n, r in report.arrays.items() if not r.passed] == ["b"]


@pytest.mark.parametrize("stride, pad", [(1, 0), (2, 1)])
def test_conv2d_with_its_own_names(stride, pad):
    rng = np.random.default_rng(1)
    conv = Conv2D(rng.standard_normal((2, 3, 3, 3)), rng.standard_normal(2), stride=stride, pad=pad)
    layer = gradcheck.stateful(conv, params={"k": "W", "bias": "b"}, grads={"k": "dW", "bias": "db"})
    arrays = layer.arrays(rng.standard_normal((2, 3, 5, 5)))
    assert set(arrays) == {"X", "k", "bias"}
    assert gradcheck.check(layer, arrays).passed


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_leaves_the_objects_running_statistics_alone(training):
    rng = np.random.default_rng(2)
    bn = BatchNorm(rng.standard_normal(4), rng.standard_normal(4))
    bn.training = training
    bn.running_mean, bn.running_var = rng.standard_normal(4), rng.uniform(0.5, 2, 4)
    before = bn.running_mean.copy(), bn.running_var.copy()
    layer = gradcheck.stateful(bn, params=("gamma", "beta"))
    assert gradcheck.check(layer, layer.arrays(2 * rng.standard_normal((6, 4)) + 1)).passed
    np.testing.assert_array_equal(bn.running_mean, before[0])
    np.testing.assert_array_equal(bn.running_var, before[1])
    assert bn.xhat is None and bn.dgamma is None  # nothing of the checker's forwards left on the object


def test_the_checkers_arrays_are_what_the_copy_uses_not_the_objects():
    """The perturbed W reaches forward: a numeric dW that disagreed with dW would fail (here it agrees)."""
    rng = np.random.default_rng(3)
    dense = Dense(rng.standard_normal((3, 2)), rng.standard_normal(2))
    layer = gradcheck.stateful(dense, params=("W", "b"))
    other = {"X": rng.standard_normal((4, 3)), "W": rng.standard_normal((3, 2)), "b": np.zeros(2)}
    y, clone = layer.forward(**other)
    np.testing.assert_allclose(y, other["X"] @ other["W"], rtol=1e-15)
    assert clone.W is other["W"] and dense.W is not other["W"]
    assert gradcheck.check(layer, other).passed


def test_a_missing_gradient_attribute_is_a_contract_error():
    rng = np.random.default_rng(4)
    layer = gradcheck.stateful(Dense(rng.standard_normal((3, 2)), rng.standard_normal(2)), params=("W", "b"),
                               grads={"W": "dW", "b": "grad_b"})
    with pytest.raises(LayerContractError, match="Dense: after backward the object has no 'grad_b'"):
        gradcheck.check(layer, layer.arrays(rng.standard_normal((4, 3))))
    with pytest.raises(ValueError, match="Dense has no attribute V"):
        gradcheck.stateful(Dense(np.ones((1, 1)), np.ones(1)), params=("W", "V"))
