"""The learned map's weight in the fusion (DetectorConfig.learned_weight): what 1, 0 and
other weights fuse, its checks, and files of the older layout that lack it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from noisead.anomaly.config import DetectorConfig
from noisead.anomaly.detector import Detector
from noisead.anomaly.evidence import EVIDENCE_SOURCES
from noisead.anomaly.fusion import evidence_deviations, fuse
from noisead.anomaly.noise_statistics import MAD_TO_SIGMA, noise_statistics_map
from noisead.anomaly.persistence import FORMAT_VERSION
from noisead.anomaly.score import Calibration
from noisead.io.jpeg import jpeg_round_trip
from noisead.models.registry import create_model, sidecar_path

ALL = tuple(s.key for s in EVIDENCE_SOURCES)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A once-JPEG photo-like image with a noisier, off-lattice square pasted in."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:96, 0:112] / 96.0
    base = 0.4 + 0.2 * np.sin(6 * xx)[..., None] * np.cos(4 * yy)[..., None]
    img = np.clip(base + rng.normal(0, 0.02, (96, 112, 3)), 0, 1)
    img = jpeg_round_trip(np.rint(img * 255).astype(np.uint8), 80).astype(np.float32) / 255
    img[32:72, 40:88] = np.clip(img[32:72, 40:88] + rng.normal(0, 0.04, (40, 48, 3)), 0, 1)
    return (np.rint(img * 255) / 255).astype(np.float32)  # saved losslessly after the edit


def _old_fuse(learned: np.ndarray, image: np.ndarray, config: DetectorConfig):
    """The fusion as it was before the weight existed: the reference for weight 1."""
    fused = learned / np.float32(MAD_TO_SIGMA)
    evidence = np.zeros(fused.shape, np.uint8)
    statistic = None
    for code, source in enumerate(EVIDENCE_SOURCES, start=1):
        if source.key not in config.evidence:
            continue
        values = source.deviation(image, config)
        if values is None:
            continue
        own = source.image_statistic(fused, values, config)
        statistic = own if own is not None else statistic
        source.discount_host(fused, values, config)
        evidence[values > fused] = code
        np.maximum(fused, values, out=fused)
    return fused, evidence, statistic


def test_weight_one_fuses_bit_for_bit_as_before(image, rng):
    learned = rng.random(image.shape[:2]).astype(np.float32) * 4
    config = DetectorConfig(evidence=ALL)
    assert config.learned_weight == 1.0
    raw, evidence, statistic = _old_fuse(learned.copy(), image, config)
    fused = fuse(learned.copy(), image, config)
    np.testing.assert_array_equal(fused.raw, raw)
    np.testing.assert_array_equal(fused.evidence, evidence)
    assert statistic is not None and fused.image_statistic == statistic
    # the sources' maps handed in, computed once, fuse the same
    again = fuse(learned.copy(), image, config, evidence_deviations(image, config))
    np.testing.assert_array_equal(again.raw, raw)


def test_weight_zero_is_the_evidence_sources_alone(image, rng):
    learned = rng.random(image.shape[:2]).astype(np.float32) * 100  # would win everywhere
    statistics = fuse(learned.copy(), image, DetectorConfig(
        evidence=("noise-level", "noise-spectrum"), learned_weight=0.0))
    np.testing.assert_array_equal(statistics.raw, noise_statistics_map(image))
    assert statistics.evidence.min() >= 1  # no pixel is the learned map's
    every = DetectorConfig(evidence=ALL, learned_weight=0.0)
    maps = evidence_deviations(image, every)
    assert maps["jpeg-lattice"] is not None  # the image has a lattice
    fused = fuse(learned.copy(), image, every, maps)
    want = np.maximum(noise_statistics_map(image), maps["jpeg-lattice"])
    np.testing.assert_array_equal(fused.raw, want)
    assert fused.image_statistic is not None  # the lattice's own image statistic
    assert np.array_equal(maps["jpeg-lattice"], evidence_deviations(image, every)[
        "jpeg-lattice"])  # the handed-in maps were not modified


def test_weight_zero_with_no_evidence_in_the_image_is_an_all_zero_map(rng):
    flat = rng.random((64, 64, 3)).astype(np.float32)  # never a JPEG: no lattice
    fused = fuse(rng.random((64, 64)).astype(np.float32), flat,
                 DetectorConfig(evidence=("jpeg-lattice",), learned_weight=0.0))
    assert fused.evidence is None and not fused.raw.any()


def test_other_weights_scale_the_learned_map(image, rng):
    learned = rng.random(image.shape[:2]).astype(np.float32) * 6
    fused = fuse(learned.copy(), image, DetectorConfig(evidence=("noise-level",),
                                                       learned_weight=0.5))
    level = evidence_deviations(image, DetectorConfig(evidence=("noise-level",)))["noise-level"]
    want = np.maximum(learned / np.float32(MAD_TO_SIGMA) * np.float32(0.5), level)
    np.testing.assert_array_equal(fused.raw, want)
    assert set(np.unique(fused.evidence)) == {0, 1}


@pytest.mark.parametrize(("weight", "evidence", "match"), [
    (-0.5, ALL, "learned_weight"), (float("nan"), ALL, "learned_weight"),
    (float("inf"), ALL, "learned_weight"), (0.0, (), "evidence source")])
def test_weights_that_cannot_work_are_refused(weight, evidence, match):
    with pytest.raises(ValueError, match=match):
        DetectorConfig(evidence=evidence, learned_weight=weight).validate()


def _detector(weight: float) -> Detector:
    det = Detector(create_model("dncnn-tiny"),
                   DetectorConfig(patch_size=32, crop_size=64, tile=64, mode="blind",
                                  evidence=ALL, learned_weight=weight))
    det.calibration = Calibration(np.linspace(0.0, 4.0, 9))
    det.image_calibration = Calibration(np.linspace(0.0, 4.0, 9))
    return det


def test_the_weight_is_saved_and_loaded(tmp_path):
    path = _detector(0.75).save(tmp_path / "d.safetensors")
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["format_version"] == FORMAT_VERSION and meta["detector"]["learned_weight"] == 0.75
    assert Detector.load(path).config.learned_weight == 0.75


def test_a_file_without_the_weight_loads_at_one_with_the_same_heatmaps(tmp_path, image):
    det = _detector(1.0)
    path = det.save(tmp_path / "d.safetensors")
    meta = json.loads(sidecar_path(path).read_text())
    del meta["detector"]["learned_weight"]
    meta["format_version"] = 2  # the layout before the weight
    sidecar_path(path).write_text(json.dumps(meta))
    old = Detector.load(path)
    assert old.config.learned_weight == 1.0 and old.config == det.config
    a, b = det.score_image(image), old.score_image(image)
    np.testing.assert_array_equal(a.raw, b.raw)
    np.testing.assert_array_equal(a.evidence, b.evidence)


def test_the_shipped_default_loads_at_weight_one():
    from noisead.infer import load_detector

    assert load_detector("default").config.learned_weight == 1.0
