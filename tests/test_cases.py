"""YAML cases: schema, one-line errors for malformed cases, array construction, registry, the catalogue."""

import json
import os
import textwrap
import zlib
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from gradcheck.catalogue import registry
from gradcheck.catalogue.arrays import make_array
from gradcheck.catalogue.case import load_file, load_paths
from gradcheck.catalogue.runner import first_forward, run_case
from gradcheck.catalogue.schema import SCHEMA_PATH, schema
from gradcheck.errors import CaseError
from layers import FullyConnected

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "cases"

FC_OK = """\
name: fc-ok
source: "002 - the last FC layer, 100 inputs, 10 outputs, batch_size=10"
layer: fully_connected
inputs:
  x: {shape: [10, 100]}
  W: {shape: [100, 10], scale: 0.1}
  b: {shape: [10]}
check: {strategy: exhaustive}
expect: {output_shape: [10, 10], parameters: 1010}
"""


def write(tmp_path, text, name="case.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def fc_message(x_shape, W_shape, b_shape):
    """FullyConnected's own ValueError text for these shapes (the case error must quote it verbatim)."""
    with pytest.raises(ValueError) as info:
        FullyConnected().forward(np.zeros(x_shape), np.zeros(W_shape), np.zeros(b_shape))
    return str(info.value)


KNOWN = ", ".join(registry.names())
CHECK_KEYS = "strategy, method, eps, rtol, atol, samples, directions, seed, timeout, wrt, residuals, infer"
TOP_KEYS = "name, source, layer, config, stack, inputs, check, expect, layout"

# (id, case text, line, field, what was expected). The text is FC_OK with one thing broken.
MALFORMED = [
    ("unknown-top-level-key", FC_OK + "tolerance: 1e-6\n", 10, "tolerance",
     f"unknown key; expected one of: {TOP_KEYS}"),
    ("unknown-check-key", FC_OK.replace("{strategy: exhaustive}", "{strategy: exhaustive, sample: 3}"), 8,
     "check.sample", f"unknown key (did you mean 'samples'?); expected one of: {CHECK_KEYS}"),
    ("unknown-array-key", FC_OK.replace("scale: 0.1", "std: 0.1"), 6, "inputs.W.std",
     "unknown key; expected one of: shape, init, scale, classes, values, dtype, layout"),
    ("unknown-layer", FC_OK.replace("layer: fully_connected", "layer: fully_conected"), 3, "layer",
     f"unknown layer 'fully_conected' (did you mean 'fully_connected'?); expected one of: {KNOWN}, "
     "or package.module:ClassName"),
    ("unimportable-user-layer", FC_OK.replace("layer: fully_connected", "layer: nowhere_pkg.mod:Layer"), 3,
     "layer", "cannot import module 'nowhere_pkg.mod' (looked in {folder} and sys.path): "
              "No module named 'nowhere_pkg'"),
    ("wrong-type-source", FC_OK.replace('"002 - the last FC layer, 100 inputs, 10 outputs, batch_size=10"',
                                        "002"), 2, "source", "expected a string; got 2"),
    ("wrong-type-shape", FC_OK.replace("b: {shape: [10]}", "b: {shape: 10}"), 7, "inputs.b.shape",
     "expected a list; got 10"),
    ("negative-dimension", FC_OK.replace("x: {shape: [10, 100]}", "x: {shape: [10, -100]}"), 5,
     "inputs.x.shape[1]", "expected an integer >= 0; got -100"),
    ("wrong-type-eps", FC_OK.replace("{strategy: exhaustive}", "{strategy: exhaustive, eps: small}"), 8,
     "check.eps", "expected a number; got 'small'"),
    ("unknown-strategy", FC_OK.replace("strategy: exhaustive", "strategy: everything"), 8, "check.strategy",
     "expected one of directional, sampled, exhaustive; got 'everything'"),
    ("unreadable-yaml", FC_OK.replace("x: {shape: [10, 100]}", "x: {shape: [10, 100]"), 6, None,
     "unreadable YAML: expected ',' or '}', but got '<scalar>'"),
    ("tab-indentation", FC_OK.replace("  x:", "\tx:"), 5, None,
     "unreadable YAML: found character '\\t' that cannot start any token"),
    ("duplicate-key", FC_OK + "layer: sigmoid\n", 10, "layer", "duplicate key: each field may appear once"),
    ("missing-inputs", FC_OK.replace("inputs:\n  x: {shape: [10, 100]}\n  W: {shape: [100, 10], scale: 0.1}\n"
                                     "  b: {shape: [10]}\n", ""), 1, "inputs", "missing required field"),
    ("missing-layer", FC_OK.replace("layer: fully_connected\n", ""), 1, "layer",
     "missing required field (or give 'stack')"),
    ("layer-and-stack", FC_OK + "stack: [{name: fc, layer: fully_connected}]\n", 10, "stack",
     "expected exactly one of 'layer' or 'stack'; got both"),
    ("missing-array", FC_OK.replace("  b: {shape: [10]}\n", ""), 4, "inputs",
     "missing array 'b'; fully_connected takes x, W, b"),
    ("unknown-array", FC_OK.replace("  b: {shape: [10]}\n", "  b: {shape: [10]}\n  bias: {shape: [10]}\n"), 8,
     "inputs.bias", "unknown array; fully_connected takes x, W, b"),
    ("shape-and-nothing-else", FC_OK.replace("b: {shape: [10]}", "b: {scale: 2}"), 7, "inputs.b",
     "expected 'shape' or 'values' (or both)"),
    ("values-disagree-with-shape",
     FC_OK.replace("b: {shape: [10]}", "b: {shape: [10], values: [1, 2, 3]}"), 7, "inputs.b.values",
     "expected values of shape [10]; got shape [3]"),
    ("bad-config",
     FC_OK.replace("layer: fully_connected\n", "layer: fully_connected\nconfig: {size: 3}\n"), 4, "config",
     "FullyConnected(**config) failed: TypeError: FullyConnected() takes no arguments"),
    ("unknown-wrt", FC_OK.replace("{strategy: exhaustive}", "{strategy: exhaustive, wrt: [W, V]}"), 8,
     "check.wrt", "unknown array 'V'; expected differentiable inputs of fully_connected: x, W, b"),
    ("residuals-on-a-single-layer", FC_OK.replace("{strategy: exhaustive}", "{residuals: [fc]}"), 8,
     "check.residuals", "residuals need a stack (a case with 'stack:'); this case has a single layer"),
    ("expect-parameters", FC_OK.replace("parameters: 1010", "parameters: 1000"), 9, "expect.parameters",
     "the case expects 1000; the inputs hold 1010 (W 1000 + b 10)"),
    ("labels-without-classes", FC_OK.replace("b: {shape: [10]}", "b: {shape: [10], init: labels}"), 7,
     "inputs.b", "missing 'classes': init: labels draws integers in [0, classes)"),
    ("integer-parameter", FC_OK.replace("b: {shape: [10]}", "b: {shape: [10], dtype: int64}"), 7,
     "inputs.b.dtype", "expected a float dtype for a differentiable input; got int64"),
    ("bad-case-name", FC_OK.replace("name: fc-ok", "name: fc ok"), 1, "name",
     "expected a name of letters, digits, '-', '_', '.' starting with a letter or digit; got 'fc ok'"),
    ("not-a-mapping", "- name: fc-ok\n- layer: fully_connected\n", 1, None,
     "expected a case (a mapping with name, layer, inputs); got a list"),
    ("empty-file", "# nothing here\n", None, None,
     "empty file: expected a case (a mapping with name, layer, inputs)"),
    ("duplicate-case-in-family", FC_OK + "---\n" + FC_OK, 11, "name",
     "duplicate case name 'fc-ok' in this file; expected unique names"),
]


@pytest.mark.parametrize("text, line, field, expected", [m[1:] for m in MALFORMED],
                         ids=[m[0] for m in MALFORMED])
def test_malformed_case_fails_with_one_line_naming_file_field_and_expectation(tmp_path, text, line, field,
                                                                              expected):
    path = write(tmp_path, text)
    with pytest.raises(CaseError) as info:
        load_file(path)
    expected = expected.replace("{folder}", str(tmp_path.resolve()))
    where = f"{path}:{line}" if line else str(path)
    assert str(info.value) == (f"{where}: {field}: {expected}" if field else f"{where}: {expected}")
    assert "\n" not in str(info.value)
    assert (info.value.file, info.value.line, info.value.field) == (str(path), line, field)


def test_missing_file_is_a_case_error(tmp_path):
    with pytest.raises(CaseError, match=r"nope\.yaml: cannot read file: .*No such file"):
        load_file(tmp_path / "nope.yaml")


def test_shape_the_layer_rejects_is_reported_with_the_layers_own_message(tmp_path):
    path = write(tmp_path, FC_OK.replace("x: {shape: [10, 100]}", "x: {shape: [10, 99]}"))
    (case,) = load_file(path)  # shapes are only known to be wrong once the layer sees them
    with pytest.raises(CaseError) as info:
        first_forward(case, case.arrays())
    assert str(info.value) == (f"{path}:4: inputs: the layer rejected the arrays on a first forward: "
                               + fc_message((10, 99), (100, 10), (10,)))


def test_expected_output_shape_is_checked_on_the_first_forward(tmp_path):
    path = write(tmp_path, FC_OK.replace("output_shape: [10, 10]", "output_shape: [10, 11]"))
    (case,) = load_file(path)
    with pytest.raises(CaseError) as info:
        first_forward(case, case.arrays())
    assert str(info.value) == (f"{path}:9: expect.output_shape: the case expects [10, 11]; "
                               "the forward gave [10, 10]")


def test_residual_names_must_be_inner_layers_of_the_stack(tmp_path):
    text = """\
    name: chain
    stack:
      - {name: fc, layer: fully_connected}
      - {name: f, layer: sigmoid}
    inputs:
      x: {shape: [2, 3]}
      fc.W: {shape: [3, 4]}
      fc.b: {shape: [4]}
    check: {residuals: [%s]}
    """
    with pytest.raises(CaseError) as info:
        load_file(write(tmp_path, text % "fc2"))
    assert str(info.value).endswith(":9: check.residuals: 'fc2' is not in the stack; expected one of: fc")
    with pytest.raises(CaseError) as info:
        load_file(write(tmp_path, text % "f"))
    assert str(info.value).endswith(
        ":9: check.residuals: 'f' is the last layer: its residual is the cotangent itself; "
        "expected one of: fc")
    with pytest.raises(CaseError) as info:
        load_file(write(tmp_path, (text % "fc").replace("name: f,", "name: fc,")))
    assert str(info.value).endswith(":4: stack[1].name: duplicate layer name 'fc'; expected each name once")
    (case,) = load_file(write(tmp_path, text % "fc"))
    assert case.layer.inputs == ("x", "fc.W", "fc.b")


def test_duplicate_case_names_across_files_are_reported(tmp_path):
    write(tmp_path, FC_OK, "a.yaml")
    write(tmp_path, FC_OK, "b.yaml")
    items = list(load_paths([tmp_path]))
    assert [type(i).__name__ for i in items] == ["Case", "CaseError"]
    assert str(items[1]) == (f"{tmp_path / 'b.yaml'}:1: name: duplicate case name 'fc-ok' "
                             f"(also {tmp_path / 'a.yaml'}:1); expected unique names")


# --- the schema and the loader ---------------------------------------------------------------------------


def test_schema_is_a_valid_published_json_schema():
    jsonschema.Draft202012Validator.check_schema(schema())
    assert json.loads(SCHEMA_PATH.read_text())["title"] == "gradcheck case"


def test_yaml_1_2_exponent_floats_are_numbers_and_the_loader_stays_safe(tmp_path):
    (case,) = load_file(write(tmp_path, FC_OK.replace("{strategy: exhaustive}", "{eps: 1e-6, atol: 1E-9}")))
    assert case.check_options == {"eps": 1e-6, "atol": 1e-9}
    evil = FC_OK.replace('"002 - the last FC layer, 100 inputs, 10 outputs, batch_size=10"',
                         "!!python/object/apply:os.system [echo pwned]")
    with pytest.raises(CaseError, match=r":2: unreadable YAML: could not determine a constructor"):
        load_file(write(tmp_path, evil))


def test_a_family_file_holds_several_cases_each_with_its_own_line(tmp_path):
    text = FC_OK + "---\n" + FC_OK.replace("name: fc-ok", "name: fc-ok-2")
    cases = load_file(write(tmp_path, text))
    assert [(c.name, c.line) for c in cases] == [("fc-ok", 1), ("fc-ok-2", 11)]


def test_check_fields_become_checker_options_and_a_seed_override_replaces_check_seed(tmp_path):
    text = FC_OK.replace("{strategy: exhaustive}", "{strategy: sampled, seed: 3}")
    (case,) = load_file(write(tmp_path, text))
    assert case.options() == {"strategy": "sampled", "seed": 3, "name": "fc-ok"}
    assert case.options(seed=11) == {"strategy": "sampled", "seed": 11, "name": "fc-ok"}
    assert np.array_equal(case.arrays()["W"], case.arrays(3)["W"])
    assert not np.array_equal(case.arrays()["W"], case.arrays(11)["W"])


# --- arrays ----------------------------------------------------------------------------------------------


def test_arrays_depend_on_the_seed_and_name_only():
    a = make_array("W", {"shape": [3, 4]}, seed=0)
    assert np.array_equal(a, make_array("W", {"shape": [3, 4]}, seed=0))
    assert not np.array_equal(a, make_array("W", {"shape": [3, 4]}, seed=1))
    assert not np.array_equal(a, make_array("V", {"shape": [3, 4]}, seed=0))
    rng = np.random.default_rng([5, zlib.crc32(b"k")])
    np.testing.assert_array_equal(make_array("k", {"shape": [2, 2], "scale": 3.0}, seed=5),
                                  3.0 * rng.standard_normal((2, 2)))


@pytest.mark.parametrize("spec", [{"shape": [50, 61], "scale": 0.5}, {"shape": [3050], "init": "uniform"},
                                  {"shape": [3050], "dtype": "float32"}])
def test_large_arrays_are_drawn_in_blocks_whatever_the_number_of_threads(monkeypatch, spec):
    from gradcheck.catalogue import arrays

    monkeypatch.setattr(arrays, "BLOCK", 1000)  # 4 blocks, the last one short
    drawn = {}
    for threads in (1, 2, 3):
        monkeypatch.setattr(arrays, "cpu_count", lambda n=threads: n)
        drawn[threads] = make_array("W", spec, seed=7)
    np.testing.assert_array_equal(drawn[1], drawn[2])
    np.testing.assert_array_equal(drawn[1], drawn[3])
    flat = drawn[1].reshape(-1)
    monkeypatch.setattr(arrays, "BLOCK", 1 << 20)  # one block: the first 1000 values are the same
    np.testing.assert_array_equal(make_array("W", {**spec, "shape": [1000]}, seed=7), flat[:1000])
    blocks = flat[:3000].reshape(3, 1000)
    assert not np.array_equal(blocks[0], blocks[1]) and not np.array_equal(blocks[1], blocks[2])
    assert not np.array_equal(make_array("W", spec, seed=8), drawn[1])
    assert not np.array_equal(make_array("V", spec, seed=7), drawn[1])


def test_array_inits_scales_and_dtypes():
    t = make_array("t", {"shape": [1000], "init": "labels", "classes": 7}, 0)
    assert t.dtype == np.int64 and t.min() == 0 and t.max() == 6
    u = make_array("u", {"shape": [1000], "init": "uniform", "scale": 0.5}, 0)
    assert u.dtype == np.float64 and -0.5 <= u.min() < -0.49 and 0.49 < u.max() <= 0.5
    n = make_array("n", {"shape": [100000], "scale": 0.1}, 0)
    assert abs(n.std() - 0.1) < 0.001
    f = make_array("f", {"shape": [3], "dtype": "float32"}, 0)
    assert f.dtype == np.float32
    np.testing.assert_array_equal(make_array("a", {"shape": [2, 3], "init": "arange", "scale": 2}, 0),
                                  [[0, 2, 4], [6, 8, 10]])
    np.testing.assert_array_equal(make_array("o", {"shape": [2], "init": "ones", "scale": 3}, 0), [3.0, 3.0])
    np.testing.assert_array_equal(make_array("z", {"shape": [2], "init": "zeros"}, 0), [0.0, 0.0])
    v = make_array("v", {"values": [[1, 2], [3, 4]], "scale": 0.5}, 0)
    assert v.dtype == np.float64
    np.testing.assert_array_equal(v, [[0.5, 1.0], [1.5, 2.0]])


# --- the registry ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("class_name, name", [
    ("FullyConnected", "fully_connected"), ("FullyConnectedAsConv", "fully_connected_as_conv"),
    ("Conv2D", "conv2d"), ("MaxPool", "max_pool"), ("MeanPool", "mean_pool"), ("ReLU", "relu"),
    ("SoftmaxCrossEntropy", "softmax_cross_entropy"), ("SquaredError", "squared_error"),
    ("FCLayer", "fc_layer"),
])
def test_snake_case(class_name, name):
    assert registry.snake_case(class_name) == name


def test_registry_holds_every_reference_layer_of_the_issue():
    names = set(registry.names())
    assert {"fully_connected", "conv2d", "fully_connected_as_conv", "subsampling", "mean_pool", "max_pool",
            "sigmoid", "tanh", "relu", "squared_error", "softmax_cross_entropy"} <= names
    assert "sequential" not in names  # a stack is written with `stack:`
    assert registry.resolve("fully_connected") is FullyConnected
    assert registry.resolve("layers.fully_connected:FullyConnected") is FullyConnected


# --- the catalogue ---------------------------------------------------------------------------------------

CATALOGUE_CASES = list(load_paths([CATALOGUE]))
HUGE = 20_000_000  # elements: the 7x7x512 -> 4096 kernels (102.8M); the 4096 x 4096 1x1 (16.8M) are swept


def test_every_catalogue_case_loads_and_names_its_seed():
    """Every case names the seed it verifies, the issue that asked for it, or (under cases/examples/)
    that it is an example of a convention."""
    errors = [str(c) for c in CATALOGUE_CASES if isinstance(c, CaseError)]
    assert errors == []
    for case in CATALOGUE_CASES:
        example = case.file.parent == CATALOGUE / "examples"
        assert case.source, case.name
        seed = case.source[:3] in {"000", "001", "002", "003", "004"} or case.source.startswith("issue ")
        assert case.source.startswith("example - ") if example else seed, case.name


def test_the_examples_show_each_convention():
    """cases/examples/: a user class that declares no structure, function pairs (one output, a config
    dict, a loss with integer labels, two outputs), a user class with two outputs, channels-last maps."""
    from gradcheck.adapters import FunctionPair, ValueAndGradient

    cases = {c.name: c for c in CATALOGUE_CASES if c.file.parent == CATALOGUE / "examples"}
    swish = cases["example-swish-no-structure"].layer
    assert not hasattr(swish, "structure") and not hasattr(swish, "outputs")
    assert isinstance(cases["example-affine-pair"].layer, FunctionPair)
    assert cases["example-conv-forward-naive"].layer.config == {"conv_param": {"stride": 2, "pad": 1}}
    loss = cases["example-softmax-loss"].layer
    assert isinstance(loss, ValueAndGradient) and loss.constants == ("y",)
    assert cases["example-lstm-step-pair"].layer.outputs == ("next_h", "next_c")
    assert cases["example-norm-and-direction"].layer.outputs == ("r", "u")
    assert cases["example-channels-last-scale"].options()["layouts"] == {"x": "NHWC"}
    for case in cases.values():
        report = run_case(case)
        assert report.passed, str(report)
    lstm = run_case(cases["example-lstm-step-pair"])
    assert lstm.outputs == {"next_h": (3, 3), "next_c": (3, 3)}
    assert run_case(cases["example-channels-last-scale"]).arrays["x"].layout == "NHWC"


def test_the_lstm_step_is_in_the_catalogue_with_one_shape_per_output():
    (case,) = [c for c in CATALOGUE_CASES if c.name == "lstm-step-batch10-d8-h6"]
    assert case.layer.outputs == ("h", "c")
    assert first_forward(case, case.arrays()) == {"h": (10, 6), "c": (10, 6)}


def test_expect_output_shape_of_several_outputs_is_checked(tmp_path):
    text = (CATALOGUE / "lstm_step.yaml").read_text(encoding="utf-8")
    (case,) = load_file(write(tmp_path, text.replace("c: [10, 6]}", "c: [10, 7]}"), "lstm.yaml"))
    with pytest.raises(CaseError, match=r"lstm.yaml:18: expect.output_shape: the case expects "
                                        r"\{'h': \[10, 6\], 'c': \[10, 7\]\}; the forward gave "
                                        r"\{'h': \[10, 6\], 'c': \[10, 6\]\} \(one shape per output\)"):
        first_forward(case, case.arrays())
    (case,) = load_file(write(tmp_path, text.replace("{h: [10, 6], c: [10, 6]}", "[10, 6]"), "lstm1.yaml"))
    with pytest.raises(CaseError, match="expect.output_shape: the case expects"):
        first_forward(case, case.arrays())
    broken = text.replace("{h: [10, 6], c: [10, 6]}", "7")
    with pytest.raises(CaseError, match=r"expect.output_shape: expected a shape \(a list of integers\) or, "
                                        r"for several outputs, a mapping output name -> shape; got 7"):
        load_file(write(tmp_path, broken, "lstm2.yaml"))


def test_catalogue_covers_the_issue():
    cases = {c.name: c for c in CATALOGUE_CASES}
    shapes = {name: c.shapes() for name, c in cases.items()}
    assert shapes["fc-100-10-batch10"]["W"] == (100, 10) and shapes["fc-100-10-batch10"]["x"][0] == 10
    assert shapes["fc-800-500-batch16"]["W"] == (800, 500)
    assert cases["fc-800-500-batch16"].strategy == "exhaustive"
    for prefix, kernel in [("fc-7x7x512-4096-batch16", (25088, 4096)),
                           ("fc-as-conv-7x7x512-4096-batch16", (4096, 512, 7, 7)),
                           ("fc-as-conv-4096-4096-1x1-batch16", (4096, 4096, 1, 1))]:
        for strategy in ("directional", "sampled"):
            case = cases[f"{prefix}-{strategy}"]
            assert case.strategy == strategy and kernel in case.shapes().values()
            assert case.shapes()["x"][0] == 16
    modes = {cases[n].data["config"]["mode"] for n in cases if n.startswith("conv-bouvrie-2maps")}
    assert modes == {"convolution", "correlation"}
    assert cases["conv-seed003-7x7-k3-stride2-pad1"].data["config"] == {"stride": 2, "pad": 1}
    assert cases["conv-seed003-32x32x3-ten-5x5-stride1-pad2"].parameters() == 760
    assert "connections" in cases["conv-bouvrie-connection-table"].data["config"]
    pools = {cases[n].data["layer"] for n in cases if "of-4x4" in n}
    assert pools == {"subsampling", "mean_pool", "max_pool"}
    chain = cases["chain-bouvrie-conv-sigmoid-subsampling-sigmoid"]
    assert [e["layer"] for e in chain.data["stack"]] == ["conv2d", "sigmoid", "subsampling", "sigmoid"]
    assert chain.data["check"]["residuals"] == ["conv", "sub"]
    cnn = cases["chain-seed003-conv-relu-pool-fc-softmax-sampled"]
    assert [e["layer"] for e in cnn.data["stack"]] == ["conv2d", "relu", "max_pool", "fully_connected",
                                                       "softmax_cross_entropy"]
    assert {c.shapes()["x"][0] for c in cases.values()} >= {10, 16}
    assert cases["fc-100-10-batch10-float32"].arrays()["W"].dtype == np.float32


SWEPT = [c for c in CATALOGUE_CASES if not isinstance(c, CaseError) and c.elements() <= HUGE]
SEEDS = range(1, 21)
HEAVY = 1_000_000  # elements: the 4096 x 4096 1x1 cases (16.8M, smooth, ~4 s a seed) get HEAVY_SEEDS here
HEAVY_SEEDS = range(1, 6)
ALL_SEEDS = bool(os.environ.get("GRADCHECK_SWEEP_HUGE"))
SWEEP = [(c, seed) for c in SWEPT for seed in (SEEDS if c.elements() <= HEAVY or ALL_SEEDS else HEAVY_SEEDS)]


@pytest.mark.parametrize(("case", "seed"), SWEEP, ids=[f"{c.name}-{seed}" for c, seed in SWEEP])
def test_no_false_alarms_over_20_seeds(case, seed):
    """Every catalogue case, with its own strategy, method and tolerances, passes for seeds 1..20: new
    arrays and a new cotangent G each time. One item per (case, seed) so pytest-xdist spreads them.
    The cases over HEAVY elements (the 16.8M-weight 1x1 convolutions: smooth layers, no kinks) run seeds
    1..5 in make test and all 20 in `make sweep` (together ~110 s of CPU, a third of the sweep); the
    102.8M-weight cases (over HUGE elements) are swept by test_no_false_alarms_over_20_seeds_huge."""
    from gradcheck import check

    report = check(case.layer, case.arrays(seed), **case.options(seed=seed))
    assert report.passed, str(report)


HUGE_CASES = [c for c in CATALOGUE_CASES if not isinstance(c, CaseError) and c.elements() > HUGE]


@pytest.mark.skipif(not os.environ.get("GRADCHECK_SWEEP_HUGE"),
                    reason="20 seeds of a 102.8M-weight case take ~6 min in all: `make sweep` runs them "
                           "(make test runs each at seed 0 through the plugin)")
@pytest.mark.parametrize("case", HUGE_CASES, ids=[c.name for c in HUGE_CASES])
def test_no_false_alarms_over_20_seeds_huge(case):
    """The same sweep for the 102.8M-weight cases: drawing the arrays and checking cost ~17 s a seed for
    the four of them, which would double `make test` (issue 4 keeps it under 5 minutes)."""
    from gradcheck import check

    for seed in SEEDS:
        report = check(case.layer, case.arrays(seed), **case.options(seed=seed))
        assert report.passed, f"seed {seed}: {report}"


# --- a user's own layer ----------------------------------------------------------------------------------

USER_PACKAGE = '''
"""A user's layer outside the repository: y = a * x + c, broadcast over the batch."""


class ScaleShift:
    inputs = ("x", "a", "c")
    complex_safe = True

    def __init__(self, bug=False):
        self.bug = bug

    def forward(self, x, a, c):
        return x * a + c, (x, a)

    def backward(self, dy, cache):
        x, a = cache
        da = (dy * x)[0] if self.bug else (dy * x).sum(axis=0)  # the bug: one sample instead of the batch
        return {"x": dy * a, "a": da, "c": dy.sum(axis=0)}
'''

USER_CASE = """\
name: user-scale-shift{suffix}
source: "a user's own layer, next to its case file"
layer: mylayers.scale:ScaleShift
config: {{bug: {bug}}}
inputs:
  x: {{shape: [5, 4]}}
  a: {{shape: [4]}}
  c: {{shape: [4]}}
check: {{strategy: exhaustive}}
expect: {{output_shape: [5, 4], parameters: 8}}
"""


def test_a_users_layer_next_to_the_case_file_is_loaded_and_checked(tmp_path):
    package = tmp_path / "mylayers"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "scale.py").write_text(USER_PACKAGE)
    good = write(tmp_path, USER_CASE.format(suffix="", bug="false"), "good.yaml")
    bad = write(tmp_path, USER_CASE.format(suffix="-planted", bug="true"), "bad.yaml")
    (case,) = load_file(good)
    assert type(case.layer).__module__ == "mylayers.scale" and case.layer.bug is False
    assert run_case(case).passed
    (case,) = load_file(bad)
    report = run_case(case)
    assert not report.passed
    assert [n for n, a in report.arrays.items() if not a.passed] == ["a"]


def test_a_users_module_of_the_same_name_in_another_folder_is_not_mixed_up(tmp_path):
    for folder, factor in [("one", 2.0), ("two", 3.0)]:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "samename.py").write_text(
            f"class Times:\n    inputs = ('x',)\n\n"
            f"    def forward(self, x):\n        return {factor} * x, None\n\n"
            f"    def backward(self, dy, cache):\n        return {{'x': {factor} * dy}}\n")
        write(tmp_path / folder, "name: t\nlayer: samename:Times\ninputs: {x: {shape: [2]}}\n")
    one = load_file(tmp_path / "one" / "case.yaml")[0].layer
    two = load_file(tmp_path / "two" / "case.yaml")[0].layer
    assert one.forward(np.ones(1))[0][0] == 2.0 and two.forward(np.ones(1))[0][0] == 3.0
