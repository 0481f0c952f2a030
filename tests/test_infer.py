"""analyze(): the fields of an Analysis, the modes, the inputs it takes and its refusals."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from noisead.anomaly.config import Mode
from noisead.anomaly.detector import EVIDENCE, Detector
from noisead.infer import (
    WEIGHTS_DIR,
    Analysis,
    ImageTooSmallError,
    analyze,
    evidence_shares,
    evidence_text,
    list_models,
    load_detector,
)
from noisead.io import ImageLoadError, load_image
from noisead.verdict import Decision

SIZE = 160  # large enough for the texture check, small enough to be quick


@pytest.fixture(scope="module")
def detector() -> Detector:
    return load_detector()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A noisy mid-grey image with a brighter, noisier square: texture to judge."""
    rng = np.random.default_rng(7)
    img = 0.45 + 0.03 * rng.standard_normal((SIZE, SIZE, 3))
    img[50:110, 60:120] = 0.6 + 0.08 * rng.standard_normal((60, 60, 3))
    return np.clip(img, 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def analysis(photo: np.ndarray, detector: Detector) -> Analysis:
    return analyze(photo, detector)


def test_maps_are_image_sized_and_calibrated(analysis: Analysis, detector: Detector) -> None:
    assert analysis.heatmap.shape == analysis.mask.shape == analysis.raw.shape == (SIZE, SIZE)
    assert analysis.fingerprint.shape == (SIZE, SIZE)
    assert analysis.heatmap.dtype == np.float32
    assert 0.0 <= float(analysis.heatmap.min()) <= float(analysis.heatmap.max()) <= 1.0
    assert analysis.mask.dtype == bool
    assert analysis.threshold == detector.config.threshold
    assert np.array_equal(analysis.mask, analysis.heatmap >= analysis.threshold)
    assert analysis.mode == detector.config.mode and analysis.model == "default"
    assert analysis.evidence is not None and analysis.evidence.shape == (SIZE, SIZE)
    assert int(analysis.evidence.max()) < len(EVIDENCE)


def test_score_calibrates_the_image_statistic(analysis: Analysis, detector: Detector) -> None:
    _, image_calibration, _ = detector.calibrations_for(analysis.mode)
    assert analysis.image_statistic is not None and np.isfinite(analysis.image_statistic)
    assert 0.0 <= analysis.score <= 1.0
    assert analysis.score == pytest.approx(float(image_calibration([analysis.image_statistic])[0]))


def test_verdict_and_texture_of_a_textured_image(analysis: Analysis) -> None:
    assert analysis.texture is not None and analysis.texture.judgeable
    verdict = analysis.verdict
    assert verdict is not None and verdict.score == analysis.score
    assert verdict.decision in (Decision.FLAGGED, Decision.NOT_FLAGGED)
    assert verdict.text and isinstance(verdict.text, str)
    summary = analysis.summary()
    assert summary["decision"] == verdict.to_dict()
    assert summary["texture"] == analysis.texture.to_dict()
    assert summary["score"] == round(analysis.score, 6)
    assert (summary["width"], summary["height"]) == (SIZE, SIZE)
    assert set(summary["raw_quantiles"]) == {50, 90, 99, 100}
    json.dumps(summary, allow_nan=False)  # strict JSON as it is


def test_a_flat_image_is_not_judged(detector: Detector) -> None:
    flat = analyze(np.full((SIZE, SIZE, 3), 0.5, np.float32), detector)
    assert flat.texture is not None and not flat.texture.judgeable
    assert flat.verdict is not None and flat.verdict.decision is Decision.NO_TEXTURE
    assert flat.verdict.score is None
    assert flat.summary()["score"] is None  # no number that could be read as a judgement


def test_modes_by_name_or_member(photo: np.ndarray, detector: Detector) -> None:
    blind = analyze(photo, detector, mode="blind")
    assert blind.mode == Mode.BLIND
    assert np.array_equal(blind.heatmap, analyze(photo, detector, mode=Mode.BLIND).heatmap)
    reference = analyze(photo, detector, mode=Mode.REFERENCE)
    assert reference.mode == Mode.REFERENCE
    assert not np.array_equal(blind.raw, reference.raw)
    with pytest.raises(ValueError, match="mode must be one of"):
        analyze(photo, detector, mode="sideways")


def test_a_mode_without_its_own_calibration_says_so(photo: np.ndarray,
                                                    detector: Detector) -> None:
    other = Mode.BLIND if detector.config.mode == Mode.REFERENCE else Mode.REFERENCE
    single = dataclasses.replace(detector, mode_calibrations={})
    result = analyze(photo, single, mode=other)
    assert any("calibrated in" in note for note in result.notes)
    assert not any("calibrated in" in note for note in analyze(photo, detector,
                                                                mode=other).notes)


def test_threshold_sets_the_mask(photo: np.ndarray, detector: Detector) -> None:
    strict = analyze(photo, detector, threshold=0.999)
    assert strict.threshold == 0.999
    assert np.array_equal(strict.mask, strict.heatmap >= 0.999)


def test_path_loaded_image_and_array_give_the_same_maps(photo: np.ndarray, detector: Detector,
                                                        tmp_path: Path) -> None:
    u8 = np.rint(photo * 255).astype(np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(u8).save(path)
    from_path = analyze(path, detector)
    from_loaded = analyze(load_image(path), detector)
    from_array = analyze(u8, detector)
    assert np.array_equal(from_path.heatmap, from_loaded.heatmap)
    assert np.array_equal(from_path.heatmap, from_array.heatmap)
    assert from_path.score == from_array.score


def test_an_image_smaller_than_a_patch_is_refused(detector: Detector, tmp_path: Path) -> None:
    p = detector.config.patch_size
    with pytest.raises(ImageTooSmallError, match=f"at least {p}x{p}"):
        analyze(np.zeros((p - 1, 3 * p, 3), np.float32), detector)
    Image.new("RGB", (p, p - 1)).save(tmp_path / "thin.png")
    with pytest.raises(ImageTooSmallError):
        analyze(tmp_path / "thin.png", detector)
    assert issubclass(ImageTooSmallError, ValueError)


def test_bad_inputs_are_refused_clearly(detector: Detector, tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ImageLoadError, match="notes.png"):
        analyze(tmp_path / "notes.png", detector)
    with pytest.raises(ValueError, match="divide by 255"):
        analyze(np.full((SIZE, SIZE, 3), 200.0), detector)
    Image.new("RGB", (300, 300)).save(tmp_path / "big.png")
    with pytest.raises(ImageLoadError, match="limit"):
        analyze(tmp_path / "big.png", detector, max_pixels=10_000)


def test_models_by_name_and_path(tmp_path: Path) -> None:
    assert "default" in list_models()
    with pytest.raises(FileNotFoundError, match="no model named 'nope'.*default"):
        load_detector("nope")
    with pytest.raises(FileNotFoundError, match="model file not found"):
        load_detector(tmp_path / "missing.safetensors")
    (tmp_path / "garbage.safetensors").write_bytes(b"not tensors")
    with pytest.raises(FileNotFoundError, match="no JSON sidecar"):
        load_detector(tmp_path / "garbage.safetensors")
    (tmp_path / "garbage.json").write_text("{}")
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        load_detector(tmp_path / "garbage.safetensors")
    with pytest.raises(ValueError, match="only .safetensors"):
        load_detector(tmp_path / "garbage.json")
    copy = tmp_path / "mine.safetensors"
    shutil.copy(WEIGHTS_DIR / "default.safetensors", copy)
    shutil.copy(WEIGHTS_DIR / "default.json", tmp_path / "mine.json")
    assert isinstance(load_detector(copy), Detector)
    with pytest.raises(FileNotFoundError, match="no model named"):
        analyze(np.zeros((SIZE, SIZE, 3), np.float32), "nope")


def test_evidence_shares_in_the_mask_and_in_words() -> None:
    evidence = np.array([[0, 1], [1, 1]], np.uint8)
    mask = np.array([[True, True], [False, True]])
    shares = evidence_shares(evidence, mask)
    assert shares[EVIDENCE[0]] == pytest.approx(1 / 3, abs=1e-4)
    assert shares[EVIDENCE[1]] == pytest.approx(2 / 3, abs=1e-4)
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    assert evidence_text(shares) == f"{EVIDENCE[1]} 67%, {EVIDENCE[0]} 33%"
    assert evidence_shares(evidence, np.zeros((2, 2), bool)) == {}
    assert evidence_shares(None, mask) == {}
