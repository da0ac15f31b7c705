"""Heat maps laid out by meaning (checked on the arrays drawn, not pixels), summarising of large arrays,
the diagnosis of planted bugs, and PNGs that decode."""

import io

import matplotlib.image
import numpy as np
import pytest

import gradcheck
from gradcheck.engine import diagnosis
from gradcheck.output import explain, pictures
from layers import Sigmoid
from tests import sweeps
from tests.planted import AveragedBias, KernelNotRotated, OneWrongWeight, SubsamplingWithoutBeta
from tests.test_planted_bugs import conv_arrays, fc_arrays


def decode(data: bytes) -> np.ndarray:
    return matplotlib.image.imread(io.BytesIO(data), format="png")


def tiles(panel, F, C, kh, kw):
    """The (F, C, kh, kw) tiles back out of a kernel-grid picture (1-pixel NaN gaps between tiles)."""
    return np.array([[panel.data[f * (kh + 1):f * (kh + 1) + kh, c * (kw + 1):c * (kw + 1) + kw]
                      for c in range(C)] for f in range(F)])


@pytest.fixture(scope="module")
def rot180_report():
    return gradcheck.check(KernelNotRotated(mode="convolution"), conv_arrays(F=3, C=2, kh=3, kw=3),
                           method="central", name="conv-no-rot180", explain=0.5)


def test_missing_rot180_difference_map_is_the_mirror_of_the_expected_pattern(rot180_report):
    k = rot180_report.arrays["k"]
    assert not k.passed and rot180_report.arrays["x"].passed
    analytic, numeric, difference = pictures.panels(k)
    assert analytic.layout.kind == "kernel" and "output map f" in analytic.layout.description
    assert difference.data.shape == (3 * 4 - 1, 2 * 4 - 1)  # 3 x 2 tiles of 3 x 3, gaps of one pixel
    assert np.isnan(difference.data[3]).all() and np.isnan(difference.data[:, 3]).all()
    A, N, D = (tiles(p, 3, 2, 3, 3) for p in (analytic, numeric, difference))
    np.testing.assert_array_equal(N, k.numeric)  # tile (f, c) is k[f, c]: output map x input map
    np.testing.assert_array_equal(A, k.analytic)
    # analytic is the mirror of the right dk in every tile, so the difference is mirror minus original
    np.testing.assert_allclose(A, N[..., ::-1, ::-1], rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(D, N[..., ::-1, ::-1] - N, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(D[..., ::-1, ::-1], -D, atol=1e-7)  # odd under the mirror: the signature
    assert abs(D[:, :, 1, 1]).max() < 1e-7  # the centre of an odd kernel maps onto itself
    assert diagnosis.diagnose(k)[0].startswith("k: analytic is numeric rotated 180 degrees in every tile")


def test_marks_sit_on_the_worst_elements(rot180_report):
    k = rot180_report.arrays["k"]
    panel = pictures.panels(k)[2]
    worst = [e for e in k.worst if e.failed][:pictures.MAX_MARKS]
    assert panel.marks == [(e.index[0] * 4 + e.index[2], e.index[1] * 4 + e.index[3]) for e in worst]
    for (r, c), e in zip(panel.marks, worst, strict=True):
        assert panel.data[r, c] == pytest.approx(e.analytic - e.numeric)


def test_large_fc_weights_are_block_reduced_and_the_wrong_element_stays_visible():
    rng = np.random.default_rng(3)
    arrays = {"x": rng.standard_normal((4, 700)), "W": 0.05 * rng.standard_normal((700, 40)),
              "b": rng.standard_normal(40)}
    report = gradcheck.check(OneWrongWeight((613, 17), 3.0), arrays, wrt=["W"])
    W = report.arrays["W"]
    analytic, numeric, difference = pictures.panels(W)
    assert analytic.layout.kind == "matrix" and analytic.layout.block == (3, 1)
    assert difference.data.shape == (234, 40) and max(difference.data.shape) <= pictures.MAX_PIXELS
    # block mean for the values, largest |value| for the difference: the one wrong weight is not diluted
    np.testing.assert_allclose(analytic.data[10, 7], W.analytic[30:33, 7].mean())
    expected = np.zeros((234, 40))
    expected[613 // 3, 17] = 3.0
    np.testing.assert_allclose(difference.data, expected, atol=1e-9)
    assert difference.marks == [(613 // 3, 17)]
    assert diagnosis.diagnose(W)[0].startswith("W: only 1 element(s) wrong")


def test_subsampling_missing_beta_per_map_and_its_diagnosis():
    rng = np.random.default_rng(2)
    beta = np.array([0.5, 2.0, 1.25])
    arrays = {"x": rng.standard_normal((2, 3, 4, 6)), "beta": beta, "b": rng.standard_normal(3)}
    x = gradcheck.check(SubsamplingWithoutBeta(2), arrays, method="central").arrays["x"]
    analytic, numeric, _ = pictures.panels(x)
    assert analytic.layout.kind == "maps" and "sample n" in analytic.layout.description
    A, N = tiles(analytic, 2, 3, 4, 6), tiles(numeric, 2, 3, 4, 6)
    np.testing.assert_allclose(A * beta[None, :, None, None], N, rtol=1e-7, atol=1e-8)  # per map: beta
    text = diagnosis.diagnose(x)[0]
    assert "one factor per map" in text and "0.5, 2, 1.25" in text


def test_a_uniform_scale_is_named_with_its_factor():
    b = gradcheck.check(AveragedBias(), fc_arrays()).arrays["b"]  # mean over the batch of 4, not the sum
    assert pictures.panels(b)[0].layout.kind == "strip" and pictures.panels(b)[0].data.shape == (1, 3)
    assert "analytic = 0.25 x numeric everywhere" in diagnosis.diagnose(b)[0]


def test_large_map_grids_keep_the_rows_and_columns_with_the_largest_difference():
    shape = (64, 40, 8, 8)
    diff = np.zeros(shape)
    diff[50, 33, 2, 5] = 1.0
    lay = pictures.layout_for("x", shape, importance=diff)
    assert 50 in lay.rows and 33 in lay.cols and lay.rows.size < 64 and lay.cols.size < 40
    pic = pictures.arrange(lay, diff, "maxabs")
    assert max(pic.shape) <= pictures.MAX_PIXELS
    r, c = lay.place((50, 33, 2, 5))
    assert pic[r, c] == 1.0 and np.nansum(np.abs(pic)) == 1.0
    assert lay.place((0, 0, 0, 0)) is None or 0 in lay.rows
    big = pictures.layout_for("x", (1, 1, 1000, 900))  # one tile bigger than a screen: blocks
    assert big.block == (4, 3) and max(pictures.arrange(big, np.ones((1, 1, 1000, 900))).shape) <= 320


def test_directional_result_has_only_the_analytic_panel_with_located_marks():
    report = gradcheck.check(OneWrongWeight(index=(1, 2), by=0.5), fc_arrays(N=5, D=40, F=6), wrt=["W"],
                             strategy="directional")
    W = report.arrays["W"]
    ps = pictures.panels(W)
    assert len(ps) == 1 and ps[0].marks == [(1, 2)]
    assert "bisection located W[1, 2]" in diagnosis.diagnose(W)[0]


def test_pngs_decode_and_the_sweep_plot_draws_right_wrong_and_complex(rot180_report):
    figs = explain.figures(rot180_report)
    assert [f.filename for f in figs] == ["conv-no-rot180-k-maps.png", "conv-no-rot180-error-vs-eps.png"]
    for f in figs:
        image = decode(f.data)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    x = {"x": np.random.default_rng(0).standard_normal((3, 4))}
    curves = []
    for method in ("central", "complex"):
        report = gradcheck.check(Sigmoid(), x, method=method)
        curves.append((method, sweeps.sweep(Sigmoid(), x, report, "x")))
    image = decode(pictures.png(pictures.sweep_figure(curves, 6.06e-6)))
    assert image.shape[0] == 400 and image.shape[1] == 560  # 5.6 x 4 inches at 100 dpi
