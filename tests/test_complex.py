"""Complex arrays, under torch's convention: for the real L = Re(sum(conj(G) * y)), the gradient of a complex
array z is dL/dRe(z) + i dL/dIm(z) (for y = x * a: dx = dy * conj(a)). Both parts of every element are
checked, each perturbed on its own (central differences: complex step does not apply to complex inputs),
and G is complex for a complex output."""

import numpy as np
import pytest

import gradcheck
from gradcheck import LayerContractError
from gradcheck.engine.problem import cotangent

STRATEGIES = ["exhaustive", "sampled", "directional"]


def cn(shape, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


class ComplexMul:
    """y = x * a element-wise, x and a complex (N, D): dx = dy conj(a), da = dy conj(x)."""

    inputs = ("x", "a")
    complex_safe = True  # analytic: but complex step still cannot perturb a complex input

    def forward(self, x, a):
        return x * a, (x, a)

    def backward(self, dy, cache):
        x, a = cache
        return {"x": dy * np.conj(a), "a": dy * np.conj(x)}

    def structure(self, name, shapes):
        return (0, 1)


class ComplexMatmul:
    """y = x @ W, complex: dx = dy @ W^H, dW = x^H @ dy."""

    inputs = ("x", "W")

    def forward(self, x, W):
        return x @ W, (x, W)

    def backward(self, dy, cache):
        x, W = cache
        return {"x": dy @ W.conj().T, "W": x.conj().T @ dy}


class GarbageImaginary(ComplexMul):
    def backward(self, dy, cache):
        g = super().backward(dy, cache)
        return {**g, "x": g["x"] + 5j}


class Conjugated(ComplexMul):
    """dx = dy a: the conjugate forgotten (JAX's convention, not torch's)."""

    def backward(self, dy, cache):
        x, a = cache
        return {"x": dy * a, "a": dy * np.conj(x)}


def mul_arrays():
    return {"x": cn((3, 4), 0), "a": cn((3, 4), 1)}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_right_complex_layers_pass(strategy):
    matmul = {"x": cn((3, 4), 2), "W": cn((4, 2), 3)}
    for layer, arrays in ((ComplexMul(), mul_arrays()), (ComplexMatmul(), matmul)):
        report = gradcheck.check(layer, arrays, strategy=strategy)
        assert report.passed, str(report)
        assert report.method == "central"


def test_both_parts_of_every_element_are_checked_against_the_convention():
    arrays = mul_arrays()
    report = gradcheck.check(ComplexMul(), arrays, seed=3)
    x = report.arrays["x"]
    assert x.checked == 24 and x.shape == (3, 4) and x.dtype == "complex128"
    G = cotangent(arrays["x"] * arrays["a"], 3)
    assert np.iscomplexobj(G) and np.abs(G.imag).max() > 0.1
    np.testing.assert_allclose(x.numeric, G * np.conj(arrays["a"]), rtol=1e-8, atol=1e-9)
    np.testing.assert_array_equal(x.analytic, G * np.conj(arrays["a"]))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_garbage_imaginary_parts_fail_on_the_imaginary_parts(strategy):
    report = gradcheck.check(GarbageImaginary(), mul_arrays(), strategy=strategy, samples=24)
    x = report.arrays["x"]
    assert not report.passed and x.failed > 0 and report.arrays["a"].passed
    bad = [e for e in x.worst + x.located if e.failed and e.index is not None]
    assert bad and all(e.part == "im" for e in bad)
    assert f"x[{bad[0].index[0]}, {bad[0].index[1]}].im: analytic" in str(report)
    if strategy == "exhaustive":
        assert x.failed == 12


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_conjugated_gradient_fails(strategy):
    report = gradcheck.check(Conjugated(), mul_arrays(), strategy=strategy, samples=24)
    assert not report.passed and not report.arrays["x"].passed and report.arrays["a"].passed


def test_complex_step_does_not_apply_to_complex_inputs():
    with pytest.raises(ValueError, match="complex step does not apply to complex input x"):
        gradcheck.check(ComplexMul(), mul_arrays(), method="complex")


def test_a_complex_output_of_real_inputs_is_checked_with_a_complex_G():
    class RealTimesComplex:
        """y = x * a, x real, a complex: dx = Re(dy conj(a)) (a real array's gradient is real)."""

        inputs = ("x", "a")
        complex_safe = True

        def forward(self, x, a):
            return x * a, (x, a)

        def backward(self, dy, cache):
            x, a = cache
            return {"x": np.real(dy * np.conj(a)), "a": dy * x}

    arrays = {"x": np.random.default_rng(0).standard_normal((3, 4)), "a": cn((3, 4), 1)}
    report = gradcheck.check(RealTimesComplex(), arrays)
    assert report.passed and report.method == "central", str(report)  # complex step: y must be real


def test_a_complex_gradient_for_a_real_array_is_a_contract_error():
    class ComplexGradientOfReal(ComplexMul):
        def backward(self, dy, cache):
            x, a = cache
            return {"x": dy * np.conj(a), "a": dy * x}

    arrays = {"x": np.random.default_rng(0).standard_normal((3, 4)), "a": cn((3, 4), 1)}
    with pytest.raises(LayerContractError, match="gradient for x is complex128, but x is real"):
        gradcheck.check(ComplexGradientOfReal(), arrays)


def test_complex_cotangent_is_seeded():
    y = cn((2, 3), 0)
    np.testing.assert_array_equal(cotangent(y, 5), cotangent(y, 5))
    assert cotangent(y.astype(np.complex64), 5).dtype == np.complex64
    assert cotangent(np.ones(3), 5).dtype == np.float64


def test_complex64_arrays_are_checked_with_float32_tolerances():
    arrays = {k: v.astype(np.complex64) for k, v in mul_arrays().items()}
    report = gradcheck.check(ComplexMul(), arrays)
    assert report.passed and report.arrays["x"].rtol > 1e-5, str(report)


def test_explain_sweeps_a_complex_array():
    report = gradcheck.check(GarbageImaginary(), mul_arrays(), explain=0.5)
    x = report.arrays["x"]
    assert x.sweep is not None and x.diagnosis


def test_the_pictures_and_json_of_a_complex_array_show_both_parts():
    from gradcheck.output import json, pictures

    r = gradcheck.check(GarbageImaginary(), mul_arrays(), explain=0.5).arrays["x"]
    titles = [p.title for p in pictures.panels(r)]
    assert titles == ["x.re analytic", "x.re numeric", "x.re analytic - numeric",
                      "x.im analytic", "x.im numeric", "x.im analytic - numeric"]
    marked = [p for p in pictures.panels(r) if p.marks]
    assert marked and all(p.title.startswith("x.im") for p in marked)  # only the imaginary parts failed
    d = json.array_dict(r)
    assert d["shape"] == [3, 4] and d["dtype"] == "complex128" and d["worst"][0]["part"] == "im"
