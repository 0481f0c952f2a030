"""A detector on disk: save/load, the sidecar's format_version, and older layouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from noisead.anomaly.config import DetectorConfig, Mode
from noisead.anomaly.detector import Detector
from noisead.anomaly.persistence import FORMAT_VERSION, migrate_sidecar
from noisead.anomaly.score import Calibration
from noisead.infer import WEIGHTS_DIR, list_models
from noisead.models.registry import create_model, save_extractor, sidecar_path


def _detector() -> Detector:
    det = Detector(create_model("dncnn-tiny"),
                   DetectorConfig(patch_size=32, crop_size=64, evidence=("noise-level",),
                                  mode="reference"))
    det.calibration = Calibration(np.linspace(0.0, 1.0, 5))
    det.image_calibration = Calibration(np.linspace(0.0, 2.0, 5))
    det.mode_calibrations[Mode.BLIND] = (Calibration(np.linspace(1.0, 3.0, 5)),
                                         Calibration(np.linspace(2.0, 3.0, 5)))
    return det


def _sidecar(path: Path) -> dict:
    return json.loads(sidecar_path(path).read_text())


def _write_sidecar(path: Path, meta: dict) -> None:
    sidecar_path(path).write_text(json.dumps(meta))


def test_save_and_load_keep_everything(tmp_path):
    det = _detector()
    path = det.save(tmp_path / "d.safetensors", name="tiny")
    meta = _sidecar(path)
    assert meta["format_version"] == FORMAT_VERSION and meta["kind"] == "detector"
    assert meta["detector"]["evidence"] == ["noise-level"] and meta["name"] == "tiny"
    back = Detector.load(path)
    assert back.config == det.config and back.info["name"] == "tiny"
    assert set(back.mode_calibrations) == {Mode.BLIND}
    np.testing.assert_array_equal(back.mode_calibrations["blind"][1].quantiles,
                                  det.mode_calibrations[Mode.BLIND][1].quantiles)
    np.testing.assert_array_equal(back.image_calibration.quantiles,
                                  det.image_calibration.quantiles)
    for a, b in zip(back.extractor.state_dict().values(), det.extractor.state_dict().values(),
                    strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_a_version_1_sidecar_is_migrated(tmp_path):
    path = _detector().save(tmp_path / "d.safetensors")
    meta = _sidecar(path)
    old = dict(meta["detector"])
    old["period"] = old.pop("position_period")
    del old["evidence"]
    old.update(noise_statistics=True, jpeg_traces=True)
    _write_sidecar(path, {**meta, "format_version": 1, "detector": old})
    config = Detector.load(path).config
    assert config.evidence == ("noise-level", "noise-spectrum", "jpeg-lattice")
    assert config.position_period == 8 and config.image_smoothing == 16.0
    # the oldest files: no fusion, one-sided scores, the unsmoothed image statistic
    for key in ("noise_statistics", "jpeg_traces", "image_smoothing", "score_direction"):
        del old[key]
    settings = migrate_sidecar({**meta, "format_version": 1, "detector": old},
                               path)["detector"]
    assert settings["evidence"] == [] and settings["score_direction"] == "upper"
    assert settings["image_smoothing"] == 0.0
    DetectorConfig.from_dict(settings).validate()


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, "2", 0, True])
def test_a_newer_or_unreadable_format_is_refused(tmp_path, version):
    path = _detector().save(tmp_path / "d.safetensors")
    _write_sidecar(path, {**_sidecar(path), "format_version": version})
    match = "update noisead" if version == FORMAT_VERSION + 1 else "format_version"
    with pytest.raises(ValueError, match=match):
        Detector.load(path)


def test_an_extractor_file_is_not_a_detector(tmp_path):
    path = save_extractor(create_model("dncnn-tiny"), tmp_path / "e.safetensors")
    with pytest.raises(ValueError, match="not a detector"):
        Detector.load(path)


@pytest.mark.parametrize("name", list_models())
def test_shipped_models_load_in_the_current_layout(name):
    det = Detector.load(WEIGHTS_DIR / f"{name}.safetensors")
    det.config.validate()
    saved = _sidecar(WEIGHTS_DIR / f"{name}.safetensors")
    assert DetectorConfig.from_dict(migrate_sidecar(saved, name)["detector"]) == det.config
    if name == "default":
        assert det.config.evidence == ("noise-level", "noise-spectrum", "jpeg-lattice")
        assert det.config.mode is Mode.REFERENCE
