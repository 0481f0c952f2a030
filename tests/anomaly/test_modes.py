"""The scoring modes: each fast path computes what the plain algorithm computes.

The plain algorithms are in ``plain_algorithms.py``; the modes score by tiles of cached
phase blocks, batched over position classes, and (blind) within a memory budget.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from plain_algorithms import blind_map, reference_maps

from noisead.anomaly.config import Mode
from noisead.anomaly.detector import Detector, DetectorConfig
from noisead.anomaly.fit import fit_detector
from noisead.anomaly.modes import SCORERS
from noisead.anomaly.modes.blind import pick_spread
from noisead.anomaly.tiling import plan_tiles
from noisead.models.registry import create_model


@pytest.fixture(autouse=True)
def one_thread():
    """Many tiny tensor operations: on a busy 2-core machine each multi-threaded one waits
    for a descheduled thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_detector() -> Detector:
    torch.manual_seed(0)
    rng = np.random.default_rng(5)
    pristine = [rng.random((72, 80, 3)).astype(np.float32) for _ in range(5)]
    config = DetectorConfig(patch_size=32, crop_size=64, tile=40, score_direction="upper")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fit_detector(create_model("dncnn-tiny"), pristine, config, progress=False)
    finally:
        torch.set_num_threads(before)


def test_every_mode_has_a_scorer():
    assert set(SCORERS) == set(Mode)


def test_blind_scoring_equals_the_plain_algorithm(tiny_detector, rng, monkeypatch):
    monkeypatch.delenv("NOISEAD_BLIND_CACHE_MB", raising=False)
    image = rng.random((90, 109, 3)).astype(np.float32)  # not multiples of 8 or the tile
    got = tiny_detector.score_image(image, "blind").raw
    want = blind_map(tiny_detector, image)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))


def test_reference_scoring_equals_the_plain_algorithm(tiny_detector, rng):
    image = rng.random((90, 109, 3)).astype(np.float32)
    maps = tiny_detector.score_image(image, Mode.REFERENCE)
    want, fp = reference_maps(tiny_detector, image)
    np.testing.assert_allclose(maps.raw, want, rtol=1e-5, atol=1e-5 * float(want.max()))
    np.testing.assert_allclose(maps.fingerprint, fp, rtol=1e-5, atol=1e-6)


def test_untied_reference_averages_the_patch_grid_offsets(rng):
    """One Gaussian per patch pixel (the thesis' model), scored at stride offsets."""
    torch.manual_seed(0)
    pristine = [rng.random((64, 64, 3)).astype(np.float32) for _ in range(4)]
    config = DetectorConfig(patch_size=16, crop_size=48, tile=40, position_period=16,
                            stride=8, score_direction="upper", mode="reference")
    det = fit_detector(create_model("dncnn-tiny"), pristine, config, progress=False)
    assert config.untied and det.n_classes == 256
    image = rng.random((56, 70, 3)).astype(np.float32)
    want, _ = reference_maps(det, image)
    got = det.score_image(image).raw
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(want.max()))


def test_blind_mode_over_budget_fits_a_spread_subset(tiny_detector, rng, monkeypatch):
    monkeypatch.setenv("NOISEAD_BLIND_CACHE_MB", "0.2")  # 2 of the 12 tiles (40 x 40, D=33)
    image = rng.random((120, 130, 3)).astype(np.float32)
    maps = tiny_detector.score_image(image, "blind")
    assert maps.raw.shape == image.shape[:2] and np.isfinite(maps.raw).all()
    whole = blind_map(tiny_detector, image)
    # Not equal (another fit), but the same map.
    assert np.corrcoef(maps.raw.ravel(), whole.ravel())[0, 1] > 0.8


def test_pick_spread_takes_distinct_tiles_over_rows_and_columns():
    tiles = plan_tiles(200, 320, 40, 8)  # 5 x 8 tiles
    chosen = pick_spread(tiles, 6)
    assert len(set(chosen)) == 6
    assert len({t.y0 for t in chosen}) >= 4 and len({t.x0 for t in chosen}) >= 4
    assert pick_spread(tiles, 100) == tiles


def test_reference_mode_needs_a_reference_fit(rng):
    det = Detector(create_model("dncnn-tiny"), DetectorConfig(patch_size=32, crop_size=64))
    with pytest.raises(ValueError, match="no reference fit"):
        det.score_image(rng.random((40, 40, 3)).astype(np.float32), "reference")
    with pytest.raises(ValueError, match="mode must be one of"):
        det.score_image(rng.random((40, 40, 3)).astype(np.float32), "sideways")


def test_bf16_scoring_is_close_to_fp32(tiny_detector, rng):
    image = rng.random((64, 72, 3)).astype(np.float32)
    det = tiny_detector
    before = det.config.precision
    try:
        det.config.precision = "fp32"
        a = det.score_image(image, "reference").raw
        det.config.precision = "bf16"
        b = det.score_image(image, "reference").raw
    finally:
        det.config.precision = before
    assert np.isfinite(b).all()
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.98
