"""Write the README's pictures under docs/: one of each kind, each from a planted bug (``make docs``).

    docs/kernel_grid_rot180.png        conv kernel k (F, C, kh, kw) whose dk forgot its rot180
    docs/fc_matrix_wrong_element.png   FC weights 800 x 500 (seed 000) with one wrong element
    docs/subsampling_missing_beta.png  Bouvrie's subsampling x (N, C, H, W) with beta forgotten in up()
    docs/error_vs_eps.png              error vs step size: right (central), right (complex step), wrong

Deterministic (fixed seeds); run from anywhere: ``python docs/make_pictures.py [OUT_DIR]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import gradcheck  # noqa: E402
from gradcheck.engine import tolerance  # noqa: E402
from gradcheck.output import pictures  # noqa: E402
from layers import Sigmoid  # noqa: E402
from tests import sweeps  # noqa: E402
from tests.planted import (  # noqa: E402
    KernelNotRotated,
    OneWrongWeight,
    SigmoidWithoutOneMinusF,
    SubsamplingWithoutBeta,
)


def heat_maps(layer, arrays, key, title, **options) -> bytes:
    report = gradcheck.check(layer, arrays, wrt=[key], **options)
    result = report.arrays[key]
    assert not result.passed, f"{title}: the planted bug was not caught"
    ps = pictures.panels(result)
    return pictures.png(pictures.heatmap_figure(ps, f"{title}: {ps[0].layout.description}"))


def main(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    written = {}
    written["kernel_grid_rot180.png"] = heat_maps(
        KernelNotRotated(mode="convolution"),
        {"x": rng.standard_normal((2, 3, 9, 9)), "k": rng.standard_normal((4, 3, 5, 5)),
         "b": rng.standard_normal(4)},
        "k", "conv dk without rot180", method="central")
    written["fc_matrix_wrong_element.png"] = heat_maps(
        OneWrongWeight(),
        {"x": rng.standard_normal((16, 800)), "W": 0.05 * rng.standard_normal((800, 500)),
         "b": rng.standard_normal(500)},
        "W", "FC 800 -> 500, W[123, 45] off by 1")
    written["subsampling_missing_beta.png"] = heat_maps(
        SubsamplingWithoutBeta(2),
        {"x": rng.standard_normal((2, 4, 8, 8)), "beta": np.array([0.5, 1.5, 2.0, 3.0]),
         "b": rng.standard_normal(4)},
        "x", "subsampling dx without beta (beta = 0.5, 1.5, 2, 3)")
    x = {"x": rng.standard_normal((4, 6))}
    curves = []
    for label, layer, method in (("right, central", Sigmoid(), "central"),
                                 ("right, complex step", Sigmoid(), "complex"),
                                 ("wrong (f, not f(1-f)), central", SigmoidWithoutOneMinusF(), "central")):
        report = gradcheck.check(layer, x, method=method)
        curves.append((label, sweeps.sweep(layer, x, report, "x")))
    written["error_vs_eps.png"] = pictures.png(pictures.sweep_figure(
        curves, tolerance.default_eps("central"), "sigmoid: |analytic - numeric| vs step"))
    paths = []
    for name, data in written.items():
        (out / name).write_bytes(data)
        paths.append(out / name)
    return paths


if __name__ == "__main__":
    for p in main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs"):
        print(f"wrote {p}")
