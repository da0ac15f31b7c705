"""cs231n-style function pairs (gradcheck.adapters.pairs) from YAML with no Python, and from Python.

The module checked is tests/cs231n_layers (layers.py: correct pairs, buggy.py: planted bugs), copied
next to the case files as a package of the user's own, ``mycs231n``.
"""

import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gradcheck
from gradcheck.adapters import FunctionPair, ValueAndGradient, pair
from gradcheck.catalogue.case import load_file
from gradcheck.catalogue.runner import run_case, run_paths
from gradcheck.errors import CaseError, LayerContractError
from tests.cs231n_layers import buggy
from tests.cs231n_layers import layers as ok

HERE = Path(__file__).resolve().parent

# name -> (layer spec in mycs231n.layers, config, inputs): every correct layer of layers.py
LAYERS = {
    "affine": ("affine", {}, {"x": [3, 2, 3], "w": [6, 4], "b": [4]}),
    "relu": ("relu", {}, {"x": [3, 5]}),
    "conv-s1-p0": ("conv_forward_naive", {"conv_param": {"stride": 1, "pad": 0}},
                   {"x": [2, 2, 4, 5], "w": [3, 2, 3, 2], "b": [3]}),
    "conv-s2-p1": ("conv_forward_naive", {"conv_param": {"stride": 2, "pad": 1}},
                   {"x": [2, 3, 5, 5], "w": [2, 3, 3, 3], "b": [2]}),
    "pool-2x2-s2": ("max_pool_forward_naive",
                    {"pool_param": {"pool_height": 2, "pool_width": 2, "stride": 2}}, {"x": [2, 2, 4, 6]}),
    "pool-3x2-s1": ("max_pool_forward_naive",
                    {"pool_param": {"pool_height": 3, "pool_width": 2, "stride": 1}}, {"x": [2, 2, 5, 4]}),
    "batchnorm": ("batchnorm", {"bn_param": {"mode": "train", "eps": 1e-5, "momentum": 0.9}},
                  {"x": [5, 4], "gamma": [4], "beta": [4]}),
    "spatial-batchnorm": ("spatial_batchnorm", {"bn_param": {"mode": "train"}},
                          {"x": [2, 3, 2, 3], "gamma": [3], "beta": [3]}),
    "rnn-step": ("rnn_step", {}, {"x": [3, 4], "prev_h": [3, 5], "Wx": [4, 5], "Wh": [5, 5], "b": [5]}),
    "lstm-step": ("lstm_step", {}, {"x": [3, 4], "prev_h": [3, 3], "prev_c": [3, 3], "Wx": [4, 12],
                                   "Wh": [3, 12], "b": [12]}),
    "softmax-loss": ("softmax_loss", {}, {"x": [4, 5], "y": {"shape": [4], "init": "labels", "classes": 5}}),
    "svm-loss": ("svm_loss", {}, {"x": [4, 5], "y": {"shape": [4], "init": "labels", "classes": 5}}),
}
# bug -> the layer whose arrays it takes (buggy.PAIRS names the wrong gradients)
BUGS = {"affine_dw_reshaped": "affine", "affine_dw_last_sample": "affine", "conv_no_flip": "conv-s2-p1",
        "conv_pad_crop": "conv-s2-p1", "batchnorm_no_mean_term": "batchnorm", "rnn_dWh_missing": "rnn-step",
        "lstm_forget_gate": "lstm-step"}


def inputs_yaml(inputs):
    lines = []
    for name, spec in inputs.items():
        spec = {"shape": spec} if isinstance(spec, list) else spec
        fields = ", ".join(f"{k}: {v}" for k, v in spec.items())
        lines.append(f"  {name}: {{{fields}}}")
    return "\n".join(lines)


def case_text(name, spec, config, inputs, module="layers"):
    text = f"name: {name}\nsource: \"a cs231n-style pair\"\nlayer: \"mycs231n.{module}:{spec}\"\n"
    if config:
        text += f"config: {config}\n"
    return text + "inputs:\n" + inputs_yaml(inputs) + "\ncheck: {strategy: exhaustive}\n"


@pytest.fixture
def folder(tmp_path):
    """tmp_path with the cs231n-style package next to the case files (a user's own module)."""
    package = tmp_path / "mycs231n"
    package.mkdir()
    for f in ("__init__.py", "layers.py", "buggy.py"):
        shutil.copy(HERE / "cs231n_layers" / f, package / f)
    return tmp_path


def write(folder, name, text):
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", LAYERS)
def test_every_correct_cs231n_layer_passes_from_yaml(folder, name):
    spec, config, inputs = LAYERS[name]
    (case,) = load_file(write(folder, name, case_text(name, spec, config, inputs)))
    report = run_case(case)
    assert report.passed, str(report)
    assert set(report.arrays) == {k for k, v in inputs.items() if isinstance(v, list)}  # y is a constant


def test_the_pairs_are_found_by_name_and_by_a_name_holding_forward(folder):
    spec, config, inputs = LAYERS["affine"]
    (case,) = load_file(write(folder, "a", case_text("a", "affine", config, inputs)))
    assert isinstance(case.layer, FunctionPair) and type(case.layer).__name__ == "affine"
    assert case.layer.inputs == ("x", "w", "b") and case.layer.constants == ()
    spec, config, inputs = LAYERS["conv-s1-p0"]
    (case,) = load_file(write(folder, "c", case_text("c", spec, config, inputs)))
    assert case.layer._backward.__name__ == "conv_backward_naive"
    assert case.layer.config == {"conv_param": {"stride": 1, "pad": 0}}
    assert case.layer.inputs == ("x", "w", "b")
    (case,) = load_file(write(folder, "s", case_text("s", *LAYERS["softmax-loss"])))
    assert isinstance(case.layer, ValueAndGradient)
    assert case.layer.inputs == ("x",) and case.layer.constants == ("y",)


def test_a_two_output_pair_names_its_outputs_after_backwards_parameters(folder):
    (case,) = load_file(write(folder, "l", case_text("l", *LAYERS["lstm-step"])))
    assert case.layer.outputs == ("next_h", "next_c")
    report = run_case(case)
    assert report.outputs == {"next_h": (3, 3), "next_c": (3, 3)}


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_every_planted_bug_fails_on_the_arrays_its_docstring_names(folder, bug):
    _, config, inputs = LAYERS[BUGS[bug]]
    (case,) = load_file(write(folder, bug, case_text(bug, bug, config, inputs, module="buggy")))
    report = run_case(case)
    assert not report.passed
    assert {n for n, r in report.arrays.items() if not r.passed} == set(buggy.PAIRS[bug][2])


def test_a_db_of_shape_1_by_M_is_a_contract_error_naming_b(folder):
    _, config, inputs = LAYERS["affine"]
    path = write(folder, "keepdims", case_text("keepdims", "affine_db_keepdims", config, inputs, "buggy"))
    (case,) = load_file(path)
    with pytest.raises(LayerContractError, match=r"gradient for b has shape \(1, 4\), expected \(4,\)"):
        run_case(case)
    (outcome,) = run_paths([path])  # the run reports it on one line and goes on
    assert outcome.status == "error" and "affine_db_keepdims: backward's gradient for b" in outcome.verdict


def test_the_relu_convention_is_a_kink_and_the_tied_maxima_bug_is_caught():
    """relu with x >= 0: at x = 0 the one-sided derivatives are 0 and dout and the bug gives one of them,
    so a per-coordinate check calls it a kink (a convention, not a value), exactly where x = 0. Max
    pooling that hands the full dout to every tied maximum is a kink too, element by element, but along
    the direction raising a window's tied elements together the max is differentiable (derivative dout):
    the tie group is checked there and fails with k dout (buggy.py), naming the elements of one window."""
    rng = np.random.default_rng(60)
    x = rng.standard_normal((4, 5))
    x.flat[[1, 7, 12]] = 0.0
    report = gradcheck.check(pair(*buggy.PAIRS["relu_mask_ge"][:2]), {"x": x})
    assert report.passed and [e.index for e in report.arrays["x"].kinks] == [(0, 1), (1, 2), (2, 2)]
    x = rng.integers(0, 3, (2, 2, 4, 6)).astype(np.float64)
    config = {"pool_param": {"pool_height": 2, "pool_width": 2, "stride": 2}}
    report = gradcheck.check(pair(*buggy.PAIRS["max_pool_ties_all"][:2], config=config), {"x": x})
    groups = [e for e in report.arrays["x"].worst if e.tied]
    assert not report.passed and groups, str(report)
    for g in groups:  # one 2x2 window of one sample and map, its k tied elements, analytic k x numeric
        assert len({(n, c, h // 2, w // 2) for n, c, h, w in g.tied}) == 1
        assert g.analytic == pytest.approx(len(g.tied) * g.numeric, rel=1e-6)


# ---------------------------------------------------------------- from Python


def test_python_pair_of_affine_and_the_planted_bug():
    rng = np.random.default_rng(0)
    arrays = {"x": rng.standard_normal((3, 2, 3)), "w": rng.standard_normal((6, 4)),
              "b": rng.standard_normal(4)}
    assert gradcheck.check(gradcheck.pair(ok.affine_forward, ok.affine_backward), arrays).passed
    wrong = gradcheck.pair(buggy.affine_dw_reshaped_forward, buggy.affine_dw_reshaped_backward)
    report = gradcheck.check(wrong, arrays)
    assert [n for n, r in report.arrays.items() if not r.passed] == ["w"]
    assert "FAIL" in str(report) and "in w" in report.headline()


def test_python_loss_with_integer_labels_checks_x_only_and_scales_dx_by_G():
    rng = np.random.default_rng(1)
    arrays = {"x": rng.standard_normal((4, 5)), "y": rng.integers(0, 5, 4)}
    for loss in (ok.softmax_loss, ok.svm_loss):
        report = gradcheck.check(gradcheck.pair(loss), arrays, seed=2)
        assert report.passed and list(report.arrays) == ["x"]
        G = float(np.random.default_rng(2).standard_normal(()))
        np.testing.assert_allclose(report.arrays["x"].analytic, G * loss(**arrays)[1], rtol=1e-15)

    def half_gradient(x, y):
        value, dx = ok.softmax_loss(x, y)
        return value, dx / 2

    assert not gradcheck.check(gradcheck.pair(half_gradient), arrays).passed


def test_config_is_a_fresh_copy_per_call_batchnorm_writes_into_its_own():
    rng = np.random.default_rng(3)
    arrays = {"x": 2 * rng.standard_normal((5, 4)) + 1, "gamma": rng.standard_normal(4),
              "beta": rng.standard_normal(4)}
    bn_param = {"mode": "train", "eps": 1e-5, "momentum": 0.9}
    layer = gradcheck.pair(ok.batchnorm_forward, ok.batchnorm_backward, config={"bn_param": bn_param})
    assert gradcheck.check(layer, arrays).passed
    assert bn_param == {"mode": "train", "eps": 1e-5, "momentum": 0.9}  # no running_mean written into it
    test_param = {"mode": "test", "running_mean": rng.standard_normal(4),
                  "running_var": rng.uniform(0.5, 2, 4)}
    layer = gradcheck.pair(ok.batchnorm_forward, ok.batchnorm_backward, config={"bn_param": test_param})
    assert gradcheck.check(layer, arrays).passed
    wrong = gradcheck.pair(buggy.batchnorm_no_mean_term_forward, buggy.batchnorm_no_mean_term_backward,
                           config={"bn_param": bn_param})
    report = gradcheck.check(wrong, arrays)
    assert [n for n, r in report.arrays.items() if not r.passed] == ["x"]


def test_a_pair_can_be_complex_safe():
    rng = np.random.default_rng(4)
    arrays = {"x": rng.standard_normal((3, 4)), "prev_h": rng.standard_normal((3, 2)),
              "Wx": rng.standard_normal((4, 2)), "Wh": rng.standard_normal((2, 2)),
              "b": rng.standard_normal(2)}
    layer = gradcheck.pair(ok.rnn_step_forward, ok.rnn_step_backward, complex_safe=True)
    report = gradcheck.check(layer, arrays)
    assert report.method == "complex" and report.passed


def test_backward_may_return_a_dict_or_a_gradient_per_array_parameter_constants_included():
    def scale_forward(x, t):
        return x * 2.0, None

    def scale_backward(dout, cache):
        return 2.0 * dout, None  # a None for the constant t

    arrays = {"x": np.ones((2, 3)), "t": np.arange(3)}
    assert gradcheck.check(gradcheck.pair(scale_forward, scale_backward), arrays).passed

    def dict_backward(dout, cache):
        return {"x": 2.0 * dout}

    assert gradcheck.check(gradcheck.pair(scale_forward, dict_backward), arrays).passed


def test_wrong_pairs_are_contract_errors_naming_the_pair():
    arrays = {"x": np.ones((2, 3)), "w": np.ones((3, 2)), "b": np.ones(2)}

    def two_backward(dout, cache):
        return ok.affine_backward(dout, cache)[:2]

    with pytest.raises(LayerContractError, match=r"affine: two_backward returned 2 gradients; expected one "
                                                 r"per differentiable array parameter of forward, in order: "
                                                 r"x, w, b"):
        gradcheck.check(gradcheck.pair(ok.affine_forward, two_backward), arrays)

    def no_cache_forward(x, w, b):
        return x @ w + b

    with pytest.raises(LayerContractError, match=r"no_cache: no_cache_forward returned a ndarray; expected "
                                                 r"\(out, cache\)"):
        gradcheck.check(gradcheck.pair(no_cache_forward, ok.affine_backward), arrays)
    with pytest.raises(LayerContractError, match="must return a scalar loss"):
        gradcheck.check(gradcheck.pair(lambda x: (x, x)), {"x": np.ones(3)})
    with pytest.raises(ValueError, match=r"config 'conv_parm' is not a parameter of "
                                         r"conv_forward_naive\(x, w, b, conv_param\)"):
        gradcheck.pair(ok.conv_forward_naive, ok.conv_backward_naive, config={"conv_parm": {}})


# ---------------------------------------------------------------- YAML errors


@pytest.mark.parametrize("spec, message", [
    ("mycs231n.layers:nothing", "module 'mycs231n.layers' has no attribute 'nothing' (nor a function pair "
                                "nothing_forward / nothing_backward)"),
    ("halves:lonely", "module 'halves' has lonely_forward but no lonely_backward"),
    ("halves:conv_forward_fast", "module 'halves' has conv_forward_fast but no conv_backward_fast to pair it "
                                 "with"),
    ("halves:CONSTANT", "'halves:CONSTANT' is neither a class nor a function"),
])
def test_a_layer_name_that_is_no_pair_is_a_one_line_case_error(folder, spec, message):
    (folder / "halves.py").write_text("def lonely_forward(x):\n    return x, None\n\n\n"
                                      "def conv_forward_fast(x):\n    return x, None\n\n\nCONSTANT = 3\n")
    path = write(folder, "bad", f"name: bad\nlayer: \"{spec}\"\ninputs: {{x: {{shape: [2]}}}}\n")
    with pytest.raises(CaseError) as info:
        load_file(path)
    assert str(info.value) == f"{path}:2: layer: {message}"


def test_a_config_key_the_forward_does_not_take_is_a_case_error(folder):
    spec, _, inputs = LAYERS["conv-s1-p0"]
    path = write(folder, "c", case_text("c", spec, {"conv_parm": {"stride": 1, "pad": 0}}, inputs))
    with pytest.raises(CaseError, match=r"c.yaml:4: config: conv_naive\(\*\*config\) failed: ValueError: "
                                        r"config 'conv_parm' is not a parameter of conv_forward_naive\(x, w, "
                                        r"b, conv_param\)"):
        load_file(path)


def test_a_missing_config_entry_is_a_missing_array(folder):
    spec, _, inputs = LAYERS["conv-s1-p0"]
    with pytest.raises(CaseError, match="missing array 'conv_param'; mycs231n.layers:conv_forward_naive "
                                        "takes x, w, b, conv_param"):
        load_file(write(folder, "c", case_text("c", spec, {}, inputs)))


def test_a_case_file_in_the_readme_style_runs_with_no_python(folder):
    """The README's function-pair example, literally: a module with affine_forward / affine_backward."""
    text = textwrap.dedent("""\
        name: my-affine
        source: "cs231n assignment 2, layers.py"
        layer: "mycs231n.layers:affine"
        inputs:
          x: {shape: [4, 3, 2]}
          w: {shape: [6, 5]}
          b: {shape: [5]}
        expect: {output_shape: [4, 5]}
        """)
    (outcome,) = run_paths([write(folder, "my_affine", text)])
    assert outcome.status == "pass", outcome.verdict
