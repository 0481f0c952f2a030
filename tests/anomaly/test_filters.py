"""The OpenCV filters of noisead.anomaly.filters give SciPy's results: same windows, kernels
and borders, to float32 rounding (and SciPy's own where OpenCV would differ)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from noisead.anomaly.filters import box_mean, box_mean_of_squares, correlate, gaussian_blur
from noisead.anomaly.noise_statistics import _SECOND, LAPLACIAN, SPAM3

#: Shapes of every kind the statistics meet: wide, tall, odd, and smaller than a window.
SHAPES = [(40, 50), (33, 17), (17, 33), (120, 90), (5, 70), (3, 4)]


def _close(got: np.ndarray, want: np.ndarray, dtype) -> None:
    assert got.dtype == dtype and got.shape == want.shape
    scale = max(float(np.abs(want).max()), 1.0)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    assert float(np.abs(got - want).max()) <= tol * scale


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_box_means_are_scipys_uniform_filter(rng, shape, dtype):
    x = (rng.standard_normal(shape) * 20 + 5).astype(dtype)
    for window in (2, 3, 8, 16, 32):  # even windows reach one pixel further up and left
        _close(box_mean(x, window), ndimage.uniform_filter(x, window, mode="reflect"), dtype)
        _close(box_mean_of_squares(x, window),
               ndimage.uniform_filter(x * x, window, mode="reflect"), dtype)


@pytest.mark.parametrize("shape", SHAPES)
def test_correlations_are_scipys(rng, shape):
    x = (rng.standard_normal(shape) * 50).astype(np.float32)
    for kernel in (SPAM3[None, :], SPAM3[:, None], LAPLACIAN, _SECOND[None, :]):
        _close(correlate(x, kernel), ndimage.correlate(x, kernel, mode="reflect"), np.float32)
    # the even SPAM3 kernel is centred on its element size // 2, as in SciPy's correlate1d
    _close(correlate(x, SPAM3[None, :]),
           ndimage.correlate1d(x, SPAM3, axis=1, mode="reflect"), np.float32)


@pytest.mark.parametrize("shape", [*SHAPES, (300, 260)])
def test_gaussian_blur_is_scipys_gaussian_filter(rng, shape):
    x = (rng.random(shape) * 10).astype(np.float32)
    for sigma, truncate in ((8.0, 3.0), (4.0, 4.0), (1.5, 4.0)):
        want = ndimage.gaussian_filter(x, sigma, mode="reflect", truncate=truncate)
        _close(gaussian_blur(x, sigma, truncate), want, np.float32)


def test_filters_keep_a_constant_map_constant():
    x = np.full((64, 48), 3.25, np.float32)
    for out in (box_mean(x, 16), gaussian_blur(x, 8.0, 3.0), box_mean_of_squares(x, 4) ** 0.5):
        np.testing.assert_allclose(out, 3.25, rtol=1e-6)
    np.testing.assert_allclose(correlate(x, LAPLACIAN), 0.0, atol=1e-5)
