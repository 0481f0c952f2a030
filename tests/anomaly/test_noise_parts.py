"""The noise statistics' two-part explanation: a second noise covering nearly half the
image is found and measured against the host's noise; the one-part statistics are
unchanged wherever no host is given."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import roc_auc_score
from toy_extractors import ImageAsEmbedding

from noisead.anomaly.config import DetectorConfig
from noisead.anomaly.detector import Detector
from noisead.anomaly.fusion import evidence_deviations, fuse
from noisead.anomaly.noise_parts import find_noise_parts, statistics_host
from noisead.anomaly.noise_statistics import (
    local_log_energy,
    noise_level_deviation,
    noise_spectrum_deviation,
    noise_statistics_map,
    trimmed_mahalanobis,
)
from noisead.anomaly.persistence import migrate_sidecar
from noisead.anomaly.score import region_quantile

NOISE = ("noise-level", "noise-spectrum")


def _two_noises(seed: int = 0, share: float = 0.45) -> tuple[np.ndarray, np.ndarray]:
    """A textured scene whose right ``share`` carries another camera's noise, 10 % stronger:
    against a norm that mixes both halves, neither stands out much."""
    rng = np.random.default_rng(seed)
    h, w = 256, 384
    scene = ndimage.gaussian_filter(rng.random((h, w, 3)), (6, 6, 0)) * 0.6 + 0.2
    mask = np.zeros((h, w), bool)
    mask[:, int((1 - share) * w):] = True
    sigma = np.where(mask, 0.011, 0.01)[..., None]
    return np.clip(scene + rng.normal(0, 1, (h, w, 3)) * sigma, 0, 1), mask


def _auc(mask: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(mask.ravel(), score.ravel()))


def test_two_noises_are_found_and_the_host_is_the_larger_part():
    image, mask = _two_noises()
    parts = find_noise_parts(image)
    assert parts is not None
    assert parts.host.shape == mask.shape
    assert (parts.host == ~mask).mean() > 0.9
    assert parts.foreign_share == pytest.approx(mask.mean(), abs=0.08)


def test_measured_against_the_host_the_second_noise_stands_out():
    image, mask = _two_noises()
    one = noise_statistics_map(image)
    two = noise_statistics_map(image, host=find_noise_parts(image).host)
    assert _auc(mask, two) > 0.93
    assert _auc(mask, two) > _auc(mask, one) + 0.15  # against a mixed norm it hardly does


def test_a_host_of_every_pixel_changes_nothing(rng):
    image = np.clip(0.5 + rng.normal(0, 0.02, (96, 128, 3)), 0, 1)
    everything = np.ones(image.shape[:2], bool)
    np.testing.assert_array_equal(noise_level_deviation(image, host=everything),
                                  noise_level_deviation(image))
    np.testing.assert_array_equal(noise_spectrum_deviation(image, host=everything),
                                  noise_spectrum_deviation(image))
    features = local_log_energy(image, 16, 4)
    np.testing.assert_array_equal(
        trimmed_mahalanobis(features, fit_on=np.ones(features.shape[1:], bool)),
        trimmed_mahalanobis(features))


def test_the_gaussian_is_fitted_on_the_host_only(rng):
    features = rng.normal(0, 1, (2, 20, 20))
    features[:, :, 10:] += 6.0  # the right half is another population
    host = np.zeros((20, 20), bool)
    host[:, :10] = True
    d = trimmed_mahalanobis(features, fit_on=host)
    assert d[:, 10:].min() > d[:, :10].max() * 0.5
    assert np.median(d[:, :10]) < 3 < np.median(d[:, 10:])


def test_only_the_two_part_setting_with_a_noise_statistic_looks_for_them():
    image, _ = _two_noises()
    for config in (DetectorConfig(evidence=NOISE),
                   DetectorConfig(statistics_parts="auto", evidence=("jpeg-lattice",))):
        assert statistics_host(image, config) is None
    for mode in ("reference", "blind"):  # the statistics are the image's own in both
        host = statistics_host(image, DetectorConfig(mode=mode, statistics_parts="auto",
                                                     evidence=NOISE))
        assert host is not None and host.shape == image.shape[:2]


def test_too_small_an_image_is_one_part(rng):
    tiny = np.clip(0.5 + rng.normal(0, 0.02, (24, 24, 3)), 0, 1)
    assert find_noise_parts(tiny) is None
    config = DetectorConfig(statistics_parts="auto", evidence=NOISE)
    learned = np.zeros((24, 24), np.float32)
    np.testing.assert_array_equal(fuse(learned.copy(), tiny, config).raw,
                                  fuse(learned.copy(), tiny, DetectorConfig(evidence=NOISE)).raw)


def test_the_map_takes_the_host_norm_and_the_image_statistic_stays_one_part():
    image, mask = _two_noises(seed=1)
    two_cfg = DetectorConfig(statistics_parts="auto", evidence=NOISE)
    one_cfg = DetectorConfig(evidence=NOISE)
    learned = np.zeros(mask.shape, np.float32)
    two = fuse(learned.copy(), image, two_cfg)
    one = fuse(learned.copy(), image, one_cfg)
    assert _auc(mask, two.raw) > _auc(mask, one.raw) + 0.15
    want = region_quantile(one.raw, one_cfg.image_quantile, one_cfg.image_smoothing)
    assert two.image_statistic == pytest.approx(want, rel=1e-6)
    # maps computed beforehand (one part, as evidence_deviations gives them) agree
    given = fuse(learned.copy(), image, two_cfg, evidence_deviations(image, one_cfg))
    np.testing.assert_array_equal(given.raw, two.raw)
    assert given.image_statistic == two.image_statistic


def test_a_detector_with_two_part_statistics():
    """The heatmap separates the second noise and the image statistic is the one-part
    detector's, bit for bit (its calibration and verdict still hold)."""
    image, mask = _two_noises()
    kw = dict(mode="blind", patch_size=32, crop_size=64, tile=256, evidence=NOISE)
    one = Detector(ImageAsEmbedding(0.0), DetectorConfig(**kw))
    two = Detector(ImageAsEmbedding(0.0), DetectorConfig(statistics_parts="auto", **kw))
    maps_one, maps_two = one.score_image(image), two.score_image(image)
    assert _auc(mask, maps_two.raw) > 0.93 > _auc(mask, maps_one.raw) + 0.15
    assert two.image_statistic(maps_two) == one.image_statistic(maps_one)


def test_the_setting_is_checked_and_older_files_get_one_part(tmp_path):
    with pytest.raises(ValueError, match="statistics_parts"):
        DetectorConfig(statistics_parts="two").validate()
    meta = migrate_sidecar({"format_version": 3, "kind": "detector",
                            "detector": {**DetectorConfig().to_dict()}}, "old.json")
    assert meta["detector"]["statistics_parts"] == "one"
    assert DetectorConfig.from_dict(meta["detector"]).statistics_parts == "one"
