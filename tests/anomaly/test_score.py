"""Calibration of raw scores (noisead.anomaly.score.Calibration)."""

from __future__ import annotations

import numpy as np

from noisead.anomaly.score import Calibration


def test_calibration_by_chunks_equals_one_call(monkeypatch, rng):
    from noisead.anomaly import score

    cal = Calibration.fit([rng.gamma(2.0, size=5000)])
    x = rng.gamma(2.0, size=(37, 53)).astype(np.float32)
    whole = cal(x)
    monkeypatch.setattr(score, "_CHUNK", 100)
    np.testing.assert_array_equal(cal(x), whole)
    assert cal([0.5]).shape == (1,)
