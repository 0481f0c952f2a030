"""The one decision: what it reads, what it says, and the rate it states."""

from __future__ import annotations

import math

import pytest
from scipy.stats import binomtest

from noisead.verdict import Decision, OperatingPoint, TextureCheck, decide, operating_point_for
from noisead.verdict.decision import NOMINAL

JUDGEABLE = TextureCheck(True, 1.0, None)
FLAT = TextureCheck(False, 0.0, "the image is flat: too few areas carry camera noise")
POINT = OperatingPoint(0.995, 1, 59, "held-out real cameras")


def test_flagged_only_at_or_above_the_operating_threshold() -> None:
    assert decide(0.995, JUDGEABLE, POINT).decision is Decision.FLAGGED
    assert decide(0.9949, JUDGEABLE, POINT).decision is Decision.NOT_FLAGGED


def test_flagged_text_states_the_false_alarm_rate() -> None:
    text = decide(0.999, JUDGEABLE, POINT).text
    assert text.startswith("Flagged")
    assert "threshold 0.995, which about 1 in 59 untouched photos reach (1 of 59" in text
    assert "at 95% confidence" in text


def test_no_texture_gives_no_score_even_when_the_score_is_high() -> None:
    verdict = decide(1.0, FLAT, POINT)
    assert verdict.decision is Decision.NO_TEXTURE and verdict.score is None
    assert "Not enough texture to judge" in verdict.text and "flat" in verdict.text


@pytest.mark.parametrize("score", [None, math.nan, math.inf])
def test_missing_score_is_not_a_finding(score: float | None) -> None:
    assert decide(score, JUDGEABLE, POINT).decision is Decision.NO_TEXTURE


def test_not_flagged_with_caveat_says_weak_evidence() -> None:
    text = decide(0.3, JUDGEABLE, POINT, caveat="JPEG, quality 90").text
    assert text.startswith("Not flagged") and "JPEG, quality 90" in text
    assert "Weak evidence of authenticity" in text


@pytest.mark.parametrize("k,n", [(0, 59), (1, 59), (3, 120), (10, 10)])
def test_upper_bound_is_clopper_pearson(k: int, n: int) -> None:
    point = OperatingPoint(0.99, k, n, "x")
    expected = binomtest(k, n).proportion_ci(confidence_level=0.90, method="exact").high
    assert point.rate_upper == pytest.approx(expected, abs=1e-9)


def test_zero_false_alarms_phrase() -> None:
    phrase = OperatingPoint(0.99, 0, 59, "x").phrase()
    assert phrase.startswith("none of 59 untouched photos reached") and "at most 5.0%" in phrase


def test_held_out_measurement_is_stated_beside_the_rate() -> None:
    phrase = OperatingPoint(0.99, 2, 246, "val", held_out=(3, 175)).phrase()
    assert phrase.endswith("on cameras the model never saw, 3 of 175)")


def test_operating_point_read_from_sidecar_info_per_mode() -> None:
    info = {"decision": {"reference": POINT.to_dict()}}
    assert operating_point_for(info, "reference") == POINT
    assert operating_point_for(info, "blind") is NOMINAL
    assert "not measured on other cameras" in decide(0.2, JUDGEABLE, NOMINAL).text


def test_verdict_dict_round_trips_its_operating_point() -> None:
    d = decide(0.999, JUDGEABLE, POINT).to_dict()
    assert d["decision"] == "flagged"
    assert OperatingPoint.from_dict(d["operating_point"]) == POINT
