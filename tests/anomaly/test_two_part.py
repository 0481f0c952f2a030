"""Blind mode's two-part explanation: two cameras win over one plus outliers when the data
say so, and nothing changes when they do not."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from toy_extractors import ImageAsEmbedding

from noisead.anomaly.config import DetectorConfig
from noisead.anomaly.detector import Detector
from noisead.anomaly.modes import two_part
from noisead.models.registry import create_model, sidecar_path


def _detector(parts: str) -> Detector:
    return Detector(ImageAsEmbedding(), DetectorConfig(mode="blind", blind_parts=parts,
                                                  patch_size=32, crop_size=64, tile=256))


def _noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    return np.clip(0.5 + rng.normal(0.0, sigma, (*shape, 3)), 0, 1).astype(np.float32)


def _spliced(seed: int = 0, size: tuple[int, int] = (320, 480)) -> tuple[np.ndarray, np.ndarray]:
    """The left 40 % drawn from another Gaussian: the same noise and brightness, its mean
    moved by 0.9 sigma along a colour axis. One camera plus outliers hardly sees it (its
    fit sits between the two)."""
    rng = np.random.default_rng(seed)
    image = _noise(rng, size, 0.02)
    mask = np.zeros(size, bool)
    mask[:, :int(0.4 * size[1])] = True
    image[mask] += np.array([0.007, -0.014, 0.007], np.float32)  # luma unchanged
    return image, mask


def _parts_found(detector: Detector, image: np.ndarray, monkeypatch) -> list:
    """Run blind mode and return what find_two_parts answered."""
    answers = []
    find = two_part.find_two_parts

    def recording(*args, **kwargs):
        answers.append(find(*args, **kwargs))
        return answers[-1]

    monkeypatch.setattr(two_part, "find_two_parts", recording)
    detector.score_image(image)
    return answers


def test_two_parts_win_and_the_map_separates_them(monkeypatch):
    image, mask = _spliced()
    answers = _parts_found(_detector("auto"), image, monkeypatch)
    assert len(answers) == 1 and answers[0] is not None  # two parts won
    raw = _detector("auto").score_image(image).raw
    assert roc_auc_score(mask.ravel(), raw.ravel()) > 0.9
    today = _detector("one").score_image(image).raw  # what the two parts are needed for
    assert roc_auc_score(mask.ravel(), today.ravel()) < 0.85


def test_both_variants_separate_the_parts(monkeypatch):
    image, mask = _spliced(seed=1)
    for variant in ("refit", "posterior"):
        monkeypatch.setattr(two_part, "SETTINGS",
                            dataclasses.replace(two_part.SETTINGS, variant=variant))
        raw = _detector("auto").score_image(image).raw
        assert roc_auc_score(mask.ravel(), raw.ravel()) > 0.9, variant


def test_one_camera_keeps_todays_map_exactly(monkeypatch):
    image = _noise(np.random.default_rng(2), (320, 480), 0.02)
    answers = _parts_found(_detector("auto"), image, monkeypatch)
    assert answers == [None]  # one part won
    np.testing.assert_array_equal(_detector("auto").score_image(image).raw,
                                  _detector("one").score_image(image).raw)


def test_switched_off_never_looks_for_two_parts(monkeypatch):
    image, _ = _spliced()
    assert _parts_found(_detector("one"), image, monkeypatch) == []


def test_an_image_too_small_for_the_windows_falls_back_to_one_part(monkeypatch):
    image, _ = _spliced(size=(96, 96))  # four windows of 64 px at most
    assert _parts_found(_detector("auto"), image, monkeypatch) == [None]
    np.testing.assert_array_equal(_detector("auto").score_image(image).raw,
                                  _detector("one").score_image(image).raw)


def test_decide_parts_needs_enough_finite_windows():
    rng = np.random.default_rng(3)
    settings = two_part.TwoPartSettings()
    few = rng.normal(size=(two_part.MIN_WINDOWS - 1, 6))
    assert two_part.decide_parts(few, settings, 0) == (None, 0.0)
    bad = rng.normal(size=(100, 6))
    bad[0, 0] = np.nan
    assert two_part.decide_parts(bad, settings, 0)[0] is None
    flat = np.ones((100, 6))
    assert two_part.decide_parts(flat, settings, 0)[0] is None


def test_window_must_be_whole_cells():
    with pytest.raises(ValueError, match="multiple of the position period"):
        two_part.window_features(_detector("auto"), None, [], {},
                                 two_part.TwoPartSettings(window=60))


def test_blind_parts_is_checked_and_survives_save_and_load(tmp_path):
    with pytest.raises(ValueError, match="blind_parts"):
        DetectorConfig(blind_parts="two").validate()
    det = Detector(create_model("dncnn-tiny"), DetectorConfig(patch_size=32, crop_size=64,
                                                              blind_parts="auto"))
    path = det.save(tmp_path / "d.safetensors")
    assert Detector.load(path).config.blind_parts == "auto"
    # a file saved before the setting existed (format 2) loads as it scored: one part
    meta = json.loads(sidecar_path(path).read_text())
    del meta["detector"]["blind_parts"]
    meta["format_version"] = 2
    sidecar_path(path).write_text(json.dumps(meta))
    assert Detector.load(path).config.blind_parts == "one"
