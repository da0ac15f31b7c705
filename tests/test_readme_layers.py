"""README's "Your own layer" examples, as written: the two-output layer and every complete YAML case after
"### The layer contract" are run from the README's own text (so README and code cannot drift apart)."""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import gradcheck
from gradcheck.catalogue.runner import run_paths

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README[README.index("### The layer contract"):README.index("### A stateful layer object")]
PYTHON = re.findall(r"```python\n(.*?)```", SECTION, re.S)
YAML = [b for b in re.findall(r"```yaml\n(.*?)```", SECTION, re.S) if b.lstrip().startswith(("name:", "#"))]


def test_the_section_has_the_two_output_layer_the_pairs_and_cases():
    assert "class NormAndDirection" in PYTHON[0] and 'outputs = ("r", "u")' in PYTHON[0]
    assert "gradcheck.pair(affine_forward, affine_backward)" in PYTHON[1]
    assert len(PYTHON) == 2 and len(YAML) == 2


def test_the_python_pairs_run_as_written(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "cases" / "examples"))
    namespace = {}
    exec(compile(PYTHON[1], "README.md", "exec"), namespace)
    report = namespace["report"]
    assert report.passed and list(report.arrays) == ["x"]
    for name in ("affine", "conv"):
        layer = namespace[name]
        assert gradcheck.check(layer, {k: np.random.default_rng(1).standard_normal(s) for k, s in {
            "affine": {"x": (4, 6), "w": (6, 5), "b": (5,)},
            "conv": {"x": (2, 3, 4, 4), "w": (2, 3, 3, 3), "b": (2,)}}[name].items()}).passed


@pytest.fixture
def folder(tmp_path):
    """The README's layer as mylayers.py, next to the example pairs module."""
    (tmp_path / "mylayers.py").write_text(PYTHON[0], encoding="utf-8")
    shutil.copy(ROOT / "cases" / "examples" / "cs231n_style.py", tmp_path)
    return tmp_path


@pytest.mark.parametrize("i", range(len(YAML)))
def test_each_readme_case_runs_and_passes(folder, i):
    path = folder / f"readme_{i}.yaml"
    path.write_text(YAML[i], encoding="utf-8")
    (outcome,) = run_paths([path])
    assert outcome.status == "pass", outcome.verdict


def test_the_readme_layer_is_the_example_in_the_catalogue(folder):
    """cases/examples/mylayers.py holds the same NormAndDirection (the catalogue runs it in `make run`)."""
    import importlib.util

    def load(path, name):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.NormAndDirection

    readme = load(folder / "mylayers.py", "readme_layers")()
    catalogue = load(ROOT / "cases" / "examples" / "mylayers.py", "catalogue_layers")()
    x = np.random.default_rng(0).standard_normal((3, 4))
    (r1, u1), c1 = readme.forward(x)
    (r2, u2), c2 = catalogue.forward(x)
    np.testing.assert_array_equal(r1, r2)
    dy = (np.ones(3), np.ones((3, 4)))
    np.testing.assert_array_equal(readme.backward(dy, c1)["x"], catalogue.backward(dy, c2)["x"])
