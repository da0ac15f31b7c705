"""The layout's promises, checked on the code itself: one-way data flow (renderers never reach a layer or
the checker), modules small enough to read, a new differencing method as one registered module, a plugin
that costs nothing until a case is collected, and a project that cites nothing outside itself."""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradcheck
from gradcheck.engine import methods
from gradcheck.engine.differencing import split
from gradcheck.engine.methods.base import Along, Method
from layers import FullyConnected, Sigmoid
from tests.planted import OneWrongWeight

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gradcheck"


def imports(path: Path) -> set[str]:
    """Every module a file imports (at any depth: lazy imports inside functions count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


@pytest.mark.parametrize("path", sorted((PACKAGE / "output").glob("*.py")), ids=lambda p: p.name)
def test_renderers_never_import_a_layer_the_checker_or_the_runner(path):
    reached = imports(path)
    forbidden = ("gradcheck.checker", "gradcheck.strategies", "gradcheck.engine.differencing",
                 "gradcheck.engine.problem", "gradcheck.catalogue.runner", "layers")
    assert not [m for m in reached if m.startswith(forbidden)], path.name


def test_layers_never_import_gradcheck():
    for path in (ROOT / "layers").glob("*.py"):
        assert not [m for m in imports(path) if m.startswith("gradcheck")], path.name


def test_modules_stay_small_and_the_entry_point_short():
    sizes = {p.relative_to(ROOT): len(p.read_text(encoding="utf-8").splitlines())
             for p in PACKAGE.rglob("*.py")}
    assert not {p: n for p, n in sizes.items() if n > 420}
    assert sizes[Path("gradcheck/checker.py")] < 200


def test_nothing_in_the_project_cites_files_outside_it():
    outside = ("DESIGN" + ".md", "../" + "shared")  # spelled apart, so this file does not cite them
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in tracked.split():
        path = ROOT / name
        if path.suffix in (".py", ".md", ".yaml", ".toml", ".json", "") and path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            assert not [word for word in outside if word in text], name


def test_the_plugin_imports_no_numerics_until_a_case_is_collected():
    code = ("import sys, gradcheck.plugin, gradcheck; "
            "print(sorted(m for m in ('numpy', 'yaml', 'jsonschema', 'matplotlib', 'gradcheck.checker') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


class Forward(Method):
    """A test-only method, one-sided forward differences (L(a + h e) - L(a)) / h: first order, so the
    error model's truncation is TRUNCATION_BOUND * h / 2. It exists to show that a method is one module."""

    name = "forward-test"
    forwards = 1
    order = 1

    def default_eps(self, dtype=np.float64):
        return 1e-8

    def numeric_rtol(self, eps):
        return 1000.0 * eps / 2

    def rounding_atol(self, eps, S):
        return 8 * 2.0**-53 * S / eps

    def coordinates(self, diff, name, coords, labels, eps):
        y, stored = diff.perturbed(name, coords, eps)
        return split(diff.G * (y - diff.y0), labels, coords.size) / stored, None, None

    def direction(self, diff, parts, eps):
        yp, _, a_plus, _, terms = diff.pair(parts, eps)
        return Along(a_plus / eps, float(np.sum(diff.G * (yp - diff.y0))) / eps, terms)


@pytest.fixture
def forward_method(monkeypatch):
    monkeypatch.setitem(methods.METHODS, Forward.name, Forward())
    return Forward.name


def test_a_new_method_is_one_module_and_one_registration(forward_method):
    rng = np.random.default_rng(0)
    arrays = {"x": rng.standard_normal((4, 6)), "W": rng.standard_normal((6, 3)), "b": rng.standard_normal(3)}
    for strategy in ("exhaustive", "sampled", "directional"):
        report = gradcheck.check(FullyConnected(), arrays, method=forward_method, strategy=strategy)
        assert report.passed and report.method == forward_method, strategy
    wrong = gradcheck.check(OneWrongWeight(index=(2, 1), by=1e-3), arrays, method=forward_method)
    assert not wrong.passed and wrong.worst.index == (2, 1)
    smooth = gradcheck.check(Sigmoid(), {"x": rng.standard_normal((3, 4))}, method=forward_method)
    assert smooth.passed and smooth.arrays["x"].rtol == pytest.approx(1000 * 1e-8 / 2 + 1024 * 2.0**-53)


def test_an_unknown_method_names_the_registered_ones():
    with pytest.raises(ValueError, match="method must be one of complex, central"):
        gradcheck.check(FullyConnected(), {"x": np.ones((1, 2)), "W": np.ones((2, 2)), "b": np.ones(2)},
                        method="richardsn")
