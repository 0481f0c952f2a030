"""The blind noise level / spectrum statistics and their fusion into the detector's map."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import mahalanobis
from sklearn.metrics import roc_auc_score

from noisead.anomaly.detector import Detector, DetectorConfig
from noisead.anomaly.noise_statistics import (
    HIGHPASS_FILTERS,
    MAD_TO_SIGMA,
    _upsample,
    highpass_residuals,
    local_log_energy,
    noise_level_deviation,
    noise_spectrum_deviation,
    noise_statistics_map,
    trimmed_mahalanobis,
)
from noisead.models.registry import create_model

#: The evidence sources of the noise statistics.
NOISE = ("noise-level", "noise-spectrum")


def _ramp(h: int, w: int) -> np.ndarray:
    """A smooth colour image well inside (0, 1), so that added noise is never clipped."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    return np.stack([0.3 + 0.2 * x, 0.4 + 0.1 * y, 0.5 - 0.1 * x * y], axis=2)


def _square_mask(h: int, w: int) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    mask[h // 3: h // 3 + h // 4, w // 2: w // 2 + w // 4] = True
    return mask


def test_trimmed_mahalanobis_without_trimming_is_scipys_distance(rng) -> None:
    features = rng.normal(size=(3, 10, 12)) * np.array([1.0, 2.0, 0.5])[:, None, None]
    got = trimmed_mahalanobis(features, trim=0.0, refits=0, ridge=0.0)
    samples = features.reshape(3, -1).T
    inv = np.linalg.inv(np.cov(samples.T))
    want = np.array([mahalanobis(s, samples.mean(0), inv) ** 2 for s in samples])
    np.testing.assert_allclose(got.ravel(), want, rtol=1e-5)


def test_trimming_keeps_a_minority_of_outliers_from_setting_the_norm(rng) -> None:
    features = rng.normal(size=(2, 40, 40))
    features[:, :8, :8] += 6.0  # 4% outliers
    outliers = np.zeros((40, 40), bool)
    outliers[:8, :8] = True
    plain = trimmed_mahalanobis(features, trim=0.0, refits=0)
    trimmed = trimmed_mahalanobis(features, trim=0.2, refits=2)
    # after trimming the inliers' Gaussian is the norm: the outliers sit further from it
    assert np.median(trimmed[outliers]) > 2 * np.median(plain[outliers])
    assert np.quantile(trimmed[outliers], 0.05) > np.quantile(trimmed[~outliers], 0.95)


def test_trimmed_mahalanobis_of_a_single_sample_is_zero() -> None:
    assert np.array_equal(trimmed_mahalanobis(np.ones((7, 1, 1))), np.zeros((1, 1)))


def test_highpass_residuals_vanish_on_a_linear_ramp_and_are_named() -> None:
    residuals = highpass_residuals(_ramp(40, 50))
    assert residuals.shape == (len(HIGHPASS_FILTERS), 40, 50)
    inner = residuals[:, 4:-4, 4:-4]  # away from the reflected borders
    assert np.abs(inner).max() < 1e-3


def test_local_log_energy_sampling_takes_every_step_th_window() -> None:
    rng = np.random.default_rng(1)
    image = np.clip(_ramp(48, 40) + rng.normal(0, 0.02, (48, 40, 3)), 0, 1)
    dense = local_log_energy(image, window=8, step=1)
    sparse = local_log_energy(image, window=8, step=4)
    assert sparse.shape == (7, 12, 10)
    # only the floor (relative to each map's median) can differ between the two
    np.testing.assert_allclose(sparse, dense[:, ::4, ::4], atol=1e-2)


def test_upsample_is_exact_on_the_samples_and_linear_between() -> None:
    grid = np.arange(12, dtype=np.float32).reshape(3, 4)
    full = _upsample(grid, 9, 13, 4)
    assert full.shape == (9, 13)
    np.testing.assert_allclose(full[::4, ::4], grid)
    np.testing.assert_allclose(full[0, 2], 0.5)  # halfway between samples 0 and 1
    np.testing.assert_allclose(full[2, 0], 2.0)  # halfway between rows (0 and 4)
    np.testing.assert_allclose(full[8, 12], 11.0)  # the last sample


def _gray_host_colour_region(rng, h: int = 160, w: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """Host: the same noise in R, G and B. Region: independent noise in each channel,
    scaled so that its *luma* noise has exactly the host's variance. Only the spectrum
    (the colour Laplacians) can tell them apart; the luma level statistic cannot."""
    sigma = 3.0 / 255
    mask = _square_mask(h, w)
    gray = rng.normal(0, sigma, (h, w, 1)).repeat(3, axis=2)
    luma_gain = np.sqrt(0.299**2 + 0.587**2 + 0.114**2)
    colour = rng.normal(0, sigma / luma_gain, (h, w, 3))
    noise = np.where(mask[..., None], colour, gray)
    return _ramp(h, w) + noise, mask


def test_spectrum_finds_what_the_level_cannot(rng) -> None:
    image, mask = _gray_host_colour_region(rng)
    spectrum_auc = roc_auc_score(mask.ravel(), noise_spectrum_deviation(image).ravel())
    level_auc = roc_auc_score(mask.ravel(), noise_level_deviation(image).ravel())
    assert spectrum_auc > 0.9
    assert level_auc < 0.7
    fused = noise_statistics_map(image)
    assert roc_auc_score(mask.ravel(), fused.ravel()) > 0.85


def test_level_finds_a_noisier_region_and_the_fusion_keeps_it(rng) -> None:
    mask = _square_mask(160, 160)
    sigma = np.where(mask, 6.0, 2.0)[..., None] / 255
    image = _ramp(160, 160) + rng.normal(0, 1, (160, 160, 3)) * sigma
    assert roc_auc_score(mask.ravel(), noise_level_deviation(image).ravel()) > 0.95
    assert roc_auc_score(mask.ravel(), noise_statistics_map(image).ravel()) > 0.95


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (17, 9)])
def test_tiny_images_give_finite_maps_of_their_size(shape, rng) -> None:
    heat = noise_statistics_map(rng.random((*shape, 3)))
    assert heat.shape == shape and heat.dtype == np.float32 and np.isfinite(heat).all()


def test_detector_config_refuses_evidence_with_one_sided_scores() -> None:
    with pytest.raises(ValueError, match="two-sided"):
        DetectorConfig(evidence=NOISE, score_direction="upper").validate()


def test_detector_fuses_the_maximum_of_its_learned_map_and_the_noise_statistics(rng) -> None:
    image, _ = _gray_host_colour_region(rng, 96, 96)
    image = image.astype(np.float32)
    config = dict(patch_size=32, crop_size=64, tile=64, mode="blind")
    learned = Detector(create_model("dncnn-tiny"), DetectorConfig(**config))
    fused = Detector(learned.extractor, DetectorConfig(**config, evidence=NOISE))
    plain = learned.score_image(image).raw
    both = fused.score_image(image).raw
    want = np.maximum(plain / np.float32(MAD_TO_SIGMA), noise_statistics_map(image))
    np.testing.assert_allclose(both, want, rtol=1e-5, atol=1e-5)
    assert plain.min() >= 0  # a two-sided deviation, before the fusion rescales it


def test_evidence_says_which_statistic_set_the_score(rng) -> None:
    image, _ = _gray_host_colour_region(rng, 96, 96)
    image = image.astype(np.float32)
    config = DetectorConfig(patch_size=32, crop_size=64, tile=64, mode="blind",
                            evidence=NOISE)
    maps = Detector(create_model("dncnn-tiny"), config).score_image(image)
    assert maps.evidence is not None and maps.evidence.shape == image.shape[:2]
    level, spectrum = noise_level_deviation(image), noise_spectrum_deviation(image)
    code2 = maps.evidence == 2
    np.testing.assert_allclose(maps.raw[code2], spectrum[code2], rtol=1e-6)
    code1 = maps.evidence == 1
    np.testing.assert_allclose(maps.raw[code1], level[code1], rtol=1e-6)
    assert (spectrum[code1] <= level[code1]).all()
    assert code2.any()  # the colour-noise region is a spectrum inconsistency
    learned_only = Detector(create_model("dncnn-tiny"), DetectorConfig(
        patch_size=32, crop_size=64, tile=64, mode="blind"))
    assert learned_only.score_image(image).evidence is None


def test_evidence_shares_count_only_the_masked_pixels() -> None:
    from noisead.infer import evidence_shares

    evidence = np.array([[0, 1, 2, 2]], np.uint8)
    mask = np.array([[False, True, True, True]])
    shares = evidence_shares(evidence, mask)
    assert shares == {"learned fingerprint": 0.0, "noise level": round(1 / 3, 4),
                      "noise spectrum": round(2 / 3, 4), "JPEG lattice": 0.0}
    assert evidence_shares(evidence, np.zeros_like(mask)) == {}
    assert evidence_shares(None, mask) == {}
