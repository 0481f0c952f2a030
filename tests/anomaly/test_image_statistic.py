"""The image statistic: the quantile of a smoothed map (score.region_quantile)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from noisead.anomaly.detector import DetectorConfig
from noisead.anomaly.score import region_quantile


def test_no_smoothing_is_the_plain_quantile():
    rng = np.random.default_rng(0)
    score = rng.normal(size=(64, 80)).astype(np.float32)
    assert region_quantile(score, 0.99, 0.0) == pytest.approx(float(np.quantile(score, 0.99)))


def test_a_compact_region_outscores_the_same_pixels_scattered():
    """Why the image score smooths: a forged region is a blob, pristine highs are scattered."""
    rng = np.random.default_rng(1)
    base = rng.normal(size=(256, 256)).astype(np.float32)
    blob, scattered = base.copy(), base.copy()
    blob[100:132, 100:132] += 4.0                      # 1024 pixels in one square
    flat = rng.choice(base.size, 1024, replace=False)  # the same number, anywhere
    scattered.ravel()[flat] += 4.0
    # unsmoothed, the two are alike (the same raised values, only placed differently)
    assert abs(region_quantile(blob, 0.99, 0) - region_quantile(scattered, 0.99, 0)) < 0.5
    assert region_quantile(blob, 0.99, 16) > region_quantile(scattered, 0.99, 16) + 1.0


@pytest.mark.parametrize("sigma", [8.0, 16.0, 32.0])
def test_block_reduction_matches_the_full_gaussian(sigma):
    """The fast path (block means, then a narrower Gaussian) is the same low-pass."""
    rng = np.random.default_rng(2)
    score = ndimage.gaussian_filter(rng.normal(size=(300, 420)), 2).astype(np.float32)
    score[120:200, 150:260] += 1.0
    exact = np.quantile(ndimage.gaussian_filter(score, sigma, truncate=3.0), [0.9, 0.99])
    fast = [region_quantile(score, q, sigma) for q in (0.9, 0.99)]
    np.testing.assert_allclose(fast, exact, atol=0.03)


def test_tiny_maps_are_smoothed_without_reduction():
    score = np.arange(30, dtype=np.float32).reshape(5, 6)
    value = region_quantile(score, 0.5, 16.0)
    assert np.isfinite(value)
    assert score.min() <= value <= score.max()


def test_config_default_smooths():
    # (a detector saved before the option: tests/anomaly/test_persistence.py)
    assert DetectorConfig().image_smoothing > 0
    with pytest.raises(ValueError, match="image_smoothing"):
        DetectorConfig(image_smoothing=-1.0).validate()
