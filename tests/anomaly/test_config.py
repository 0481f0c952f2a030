"""The detector's settings and modes (noisead.anomaly.config)."""

from __future__ import annotations

import json

import pytest

from noisead.anomaly.config import MODES, DetectorConfig, Mode


def test_modes_are_the_strings_saved_and_typed():
    assert Mode("blind") is Mode.BLIND and Mode.REFERENCE == "reference"
    assert f"noisead-{Mode.BLIND}" == "noisead-blind"
    assert json.dumps({"mode": Mode.REFERENCE}) == '{"mode": "reference"}'
    assert {Mode.BLIND: 1}["blind"] == 1  # a str key finds the member
    assert "blind" in MODES and "sideways" not in MODES


def test_config_round_trips_through_its_dict():
    config = DetectorConfig(taps=("a", "b"), evidence=["noise-level"], mode="reference",
                            position_period=16, patch_size=32, crop_size=64)
    assert config.mode is Mode.REFERENCE and config.evidence == ("noise-level",)
    d = json.loads(json.dumps(config.to_dict()))
    assert d["mode"] == "reference" and d["evidence"] == ["noise-level"]
    assert DetectorConfig.from_dict(d) == config
    assert config.untied is False and DetectorConfig(patch_size=16, position_period=16).untied


def test_from_dict_refuses_another_layout():
    """A missing key would silently take today's default: the file's scores would change."""
    d = DetectorConfig().to_dict()
    del d["image_smoothing"]
    d["period"] = 8
    with pytest.raises(ValueError, match="unknown: period; missing: image_smoothing"):
        DetectorConfig.from_dict(d)


@pytest.mark.parametrize(("settings", "message"), [
    ({"mode": "sideways"}, "mode must be one of"),
    ({"score_direction": "lower"}, "score_direction"),
    ({"evidence": ("noise-level", "tea-leaves")}, "evidence must name distinct sources"),
    ({"evidence": ("noise-level", "noise-level")}, "evidence must name distinct sources"),
    ({"evidence": ("jpeg-lattice",), "score_direction": "upper"}, "two-sided"),
    ({"jpeg_window": 0}, "jpeg_window"),
    ({"position_period": 5}, "position_period must divide patch_size"),
    ({"crop_size": 72}, "crop_size"),
])
def test_settings_that_cannot_work_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        DetectorConfig(**settings).validate()
