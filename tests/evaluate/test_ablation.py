"""The fusion ablation (noisead.evaluate.ablation) and the web-like condition."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from noisead.anomaly.config import DetectorConfig
from noisead.anomaly.detector import Detector
from noisead.anomaly.score import Calibration
from noisead.evaluate.ablation import (
    FUSION_VARIANTS,
    LEARNED_ALONE,
    STATISTICS,
    prepare_variants,
    variants_of,
)
from noisead.evaluate.config import (
    WEB_LIKE,
    Condition,
    EvalConfig,
    apply_condition,
    conditions_for,
)
from noisead.evaluate.methods import METHODS, MethodContext
from noisead.evaluate.rows import detector_fingerprint
from noisead.infer import analyze
from noisead.io import to_uint8
from noisead.models.registry import create_model

VARIANTS = {v.key: v for v in FUSION_VARIANTS}


def _photo(seed: int, height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / 64.0
    base = 0.45 + 0.2 * np.sin(xx)[..., None] * np.cos(0.7 * yy)[..., None]
    return np.clip(base + rng.normal(0, 0.02, (height, width, 3)), 0, 1).astype(np.float32)


# ------------------------------------------------------------------ the web-like condition


@pytest.mark.parametrize(("height", "width"), [(1200, 1000), (900, 1600), (512, 512),
                                               (200, 240)])
def test_web_like_draws_stay_in_their_ranges(height, width):
    for seed in range(8):
        u8 = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
        new_w, new_h, quality = WEB_LIKE.draw(u8)
        assert 70 <= quality <= 90
        assert new_w <= math.ceil(0.9 * width) and new_h <= math.ceil(0.9 * height)
        assert abs(new_w / width - new_h / height) < 0.01  # aspect kept
        if height * width * 0.81 > 0.5e6:  # large enough to reach every drawn size
            assert 0.099e6 <= new_w * new_h <= 0.501e6


def test_web_like_is_seeded_by_the_image_and_moves_the_mask_with_it():
    rng = np.random.default_rng(1)
    image = np.clip(0.3 + rng.normal(0, 0.02, (600, 800, 3)), 0, 1).astype(np.float32)
    image[150:350, 200:520] += np.float32(0.4)  # a bright block on a grey image
    mask = np.zeros(image.shape[:2], bool)
    mask[150:350, 200:520] = True
    cond = Condition("web", "web")
    out, out_mask = apply_condition(image, mask, cond)
    again, _ = apply_condition(image.copy(), mask, cond)
    np.testing.assert_array_equal(out, again)  # same pixels, same draw
    other, _ = apply_condition(_photo(2, 600, 800), mask, cond)
    assert out.shape != other.shape or not np.array_equal(out, other)
    width, height, _ = WEB_LIKE.draw(to_uint8(image))
    assert out.shape == (height, width, 3) and out.dtype == np.float32
    assert out_mask.shape == (height, width) and out_mask.dtype == bool
    # the block, found again by its brightness, is where the resized mask says
    bright = out.mean(axis=2) > 0.5
    iou = (bright & out_mask).sum() / (bright | out_mask).sum()
    assert iou > 0.95


def test_web_like_is_the_recipe_it_states():
    image = _photo(3, 480, 640)
    width, height, quality = WEB_LIKE.draw(to_uint8(image))
    from noisead.io.jpeg import jpeg_round_trip

    small = np.asarray(Image.fromarray(to_uint8(image)).resize(
        (width, height), Image.Resampling.LANCZOS))
    want = jpeg_round_trip(small, quality, subsampling="4:2:0").astype(np.float32) / 255
    np.testing.assert_array_equal(WEB_LIKE.apply(image), want)
    assert "0.1-0.5 MP" in WEB_LIKE.label and "q70-90" in WEB_LIKE.label


def test_the_web_condition_is_asked_for_by_the_config():
    names = [c.name for c in conditions_for(EvalConfig(jpeg=(None, 90), web=True))]
    assert names == ["clean", "jpeg90", "web"]
    assert "web" not in [c.name for c in conditions_for(EvalConfig())]
    assert EvalConfig(web=True).to_dict()["web"] is True


# ------------------------------------------------------------------ the fusion variants


@pytest.fixture
def detector() -> Detector:
    det = Detector(create_model("dncnn-tiny"),
                   DetectorConfig(patch_size=32, crop_size=64, tile=64, mode="blind",
                                  evidence=("noise-level", "noise-spectrum", "jpeg-lattice")))
    det.calibration = Calibration(np.linspace(0.0, 6.0, 33))
    det.image_calibration = Calibration(np.linspace(0.0, 6.0, 33))
    return det


def test_each_variant_fuses_what_it_says(detector):
    config = detector.config
    assert VARIANTS["learned-alone"].config_for(config).evidence == ()
    assert VARIANTS["statistics-alone"].config_for(config).evidence == STATISTICS
    assert VARIANTS["statistics-alone"].config_for(config).learned_weight == 0
    assert VARIANTS["without-learned"].config_for(config).evidence == config.evidence
    assert VARIANTS["without-learned"].config_for(config).learned_weight == 0
    assert VARIANTS["fused"].config_for(config) == config
    assert VARIANTS["fused-w0.5"].config_for(config).learned_weight == 0.5


def test_the_variants_share_one_analysis_and_the_fused_one_is_the_detector(
        detector, monkeypatch):
    image = _photo(4, 96, 128)
    image[20:60, 30:90] = np.clip(image[20:60, 30:90]
                                  + np.random.default_rng(0).normal(0, 0.05, (40, 60, 3)), 0, 1)
    expected = analyze(image, detector)  # before counting
    calls = []
    score_image = Detector.score_image
    monkeypatch.setattr(Detector, "score_image",
                        lambda self, *a, **k: calls.append(1) or score_image(self, *a, **k))
    context = MethodContext(detector, 0.9, 0.99)
    outputs = {v.key: METHODS[v.method_name](image, context) for v in FUSION_VARIANTS}
    assert len(calls) == 1  # one extractor pass for every variant
    fused = outputs["fused"]
    np.testing.assert_array_equal(fused.heatmap, expected.heatmap)
    assert fused.score == expected.score
    learned = outputs["learned-alone"]
    assert not np.array_equal(learned.heatmap, fused.heatmap)
    outputs_again = METHODS["noisead-statistics-alone"](image.copy(), context)
    assert len(calls) == 1  # the same pixels: the same analysis
    np.testing.assert_array_equal(outputs_again.heatmap, outputs["statistics-alone"].heatmap)
    METHODS["noisead-statistics-alone"](_photo(5, 96, 128), context)
    assert len(calls) == 2  # other pixels: analysed again


def test_prepared_variants_have_their_own_calibrations(detector):
    before = detector_fingerprint(detector)
    pristine = [_photo(10 + i, 96, 96) for i in range(3)]
    prepared = prepare_variants(detector, pristine, progress=False)
    assert set(prepared.calibrations) == {v.key for v in FUSION_VARIANTS} - {"fused"}
    assert prepared is variants_of(detector)
    assert detector_fingerprint(detector) != before  # rows cached before are recomputed
    # the learned alone's own pixel calibration is the learned map's on those images
    learned_detector = prepared.detector_for(LEARNED_ALONE)
    maps = [learned_detector.score_image(p).raw for p in pristine]
    np.testing.assert_array_equal(prepared.calibrations["learned-alone"][0].quantiles,
                                  Calibration.fit(maps).quantiles)
    # the fused variant keeps the detector's own calibration
    pixel, image, own = prepared.calibrations_for(VARIANTS["fused"])
    assert own and pixel is detector.calibration and image is detector.image_calibration
    heat, score, _ = prepared.score(VARIANTS["without-learned"], _photo(20, 96, 96))
    assert heat.dtype == np.float32 and 0.0 <= heat.min() <= heat.max() <= 1.0
    assert 0.0 <= score <= 1.0


def test_the_targets_are_read_per_row():
    from noisead.evaluate.ablation_report import format_weights, row_targets

    def summary(learned, statistics, fused, without, mcc_gain):
        rows = {"learned-alone": (learned, 0.5), "statistics-alone": (statistics, 0.5),
                "fused": (fused, 0.5 + mcc_gain), "without-learned": (without, 0.5)}
        return {("clean", VARIANTS[k].method_name): {"auc": a, "mcc_best": m}
                for k, (a, m) in rows.items()}

    good = row_targets("splice-png", summary(0.93, 0.90, 0.97, 0.94, 0.06), "clean")
    assert good == ["learned ≥ 0.90: met", "learned > statistics: met",
                    "fused − without ≥ +0.02 / +0.05: met"]
    weak = row_targets("splice-jpeg", summary(0.70, 0.90, 0.97, 0.96, 0.06), "clean")
    assert all(t.endswith("not met") for t in weak)
    generative = row_targets("generative-png", summary(0.95, 0.90, 0.9, 0.9, 0), "clean")
    assert generative == ["learned > statistics: met"]  # the splicing targets do not apply
    table, preferred = format_weights({"a": {
        ("clean", VARIANTS[k].method_name): {"auc": auc, "mcc_best": 0.5}
        for k, auc in (("without-learned", 0.90), ("fused-w0.5", 0.92), ("fused-w0.75", 0.91),
                       ("fused", 0.92), ("fused-w1.25", 0.80))}})
    assert preferred == 0.5 and "| a | 0.900 / 0.500 | 0.920 / 0.500 |" in table
