"""Choosing and measuring the decision's operating point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noisead.evaluate.false_alarms import (
    CONDITIONS,
    PhotoScore,
    append_score,
    choose_threshold,
    operating_point,
    read_scores,
    score_photos,
)
from noisead.io import save_png

scores = st.lists(st.floats(0, 1, allow_nan=False, width=32), min_size=1, max_size=300)


@settings(max_examples=200, deadline=None)
@given(scores, st.floats(0, 0.2))
def test_threshold_keeps_the_rate_on_its_own_scores(values: list[float], target: float
                                                    ) -> None:
    threshold = choose_threshold(values, target)
    flagged = sum(v >= threshold for v in values)
    assert flagged <= np.floor(target * len(values))


@settings(max_examples=200, deadline=None)
@given(scores)
def test_threshold_is_the_lowest_such(values: list[float]) -> None:
    """One step lower, one more photo would be flagged (unless all already are)."""
    threshold = choose_threshold(values, 0.05)
    below = [v for v in values if v < threshold]
    if below:
        assert sum(v >= max(below) for v in values) > np.floor(0.05 * len(values))


def test_floor_is_respected() -> None:
    assert choose_threshold([0.1, 0.2, 0.3], 0.5, floor=0.99) == 0.99


def test_unjudgeable_photos_count_but_are_never_flagged() -> None:
    point = operating_point([0.999, None, 0.2, None], 0.99, "x")
    assert (point.false_alarms, point.pristine_images) == (1, 4)


def test_scores_resume_from_the_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    photo = tmp_path / "p.png"
    save_png(photo, rng.uniform(0, 1, (200, 300, 3)).astype(np.float32))
    seen = []

    def analyse(image):
        seen.append(image.pixels.shape)
        return 0.5, True, 3.0

    out = tmp_path / "scores.jsonl"
    for row in score_photos([("test", "cam", photo)], CONDITIONS[:1], analyse):
        append_score(out, row)
    done = {(r.path, r.condition) for r in read_scores(out)}
    rows = list(score_photos([("test", "cam", photo)], CONDITIONS, analyse, done))
    assert [r.condition for r in rows] == [c.name for c in CONDITIONS[1:]]
    assert len(seen) == len(CONDITIONS)
    assert read_scores(out) == [PhotoScore("test", "cam", str(photo), CONDITIONS[0].name, 0.5, 3.0)]


def test_web_condition_downscales_and_recompresses(tmp_path: Path) -> None:
    photo = tmp_path / "big.png"
    save_png(photo, np.random.default_rng(1).uniform(0, 1, (1000, 1200, 3)).astype(np.float32))
    web = CONDITIONS[2].apply(photo, None)
    h, w = web.pixels.shape[:2]
    assert h * w <= 0.3e6 * 1.01 and abs(w / h - 1.2) < 0.01
    assert web.jpeg_quality_tables


def _rows(pool: str, statistics, forged: bool = False, condition: str = "as taken"):
    return [PhotoScore(pool, "cam", f"{pool}{i}{forged}{condition}", condition, None, s, forged)
            for i, s in enumerate(statistics)]


def test_fit_decision_calibrates_on_validation_and_measures_on_test() -> None:
    from noisead.evaluate.false_alarms import fit_decision

    val = _rows("val", np.arange(1.0, 201.0))                    # 200 untouched photos
    test = _rows("test", [5.0, 50.0, 150.0, 199.5, 500.0]) + _rows("test", [None])
    forged = _rows("test", [300.0, 2.0], forged=True) + _rows("val", [250.0], forged=True)
    fit = fit_decision(val + test + forged, target_rate=0.01)
    assert fit.stated.false_alarms <= 2 and fit.stated.pristine_images == 200
    assert float(fit.calibration([100.5])[0]) == pytest.approx(0.5, abs=0.01)
    # 199.5 and 500 are above all but the top two validation statistics: flagged
    assert (fit.test["all"].false_alarms, fit.test["all"].pristine_images) == (2, 6)
    assert fit.stated.held_out == (2, 6)
    assert fit.detection == {"val": (1, 1), "test": (1, 2)}


def test_apply_decision_is_what_analysis_reads(tmp_path: Path) -> None:
    from noisead.evaluate.false_alarms import apply_decision, fit_decision
    from noisead.infer import analyze, load_detector
    from noisead.verdict import operating_point_for

    detector = load_detector()
    mode = detector.config.mode
    fit = fit_decision(_rows("val", np.linspace(0.0, 40.0, 300)) + _rows("test", [1.0]), 0.01)
    apply_decision(detector, mode, fit)
    path = detector.save(tmp_path / "d.safetensors")
    reloaded = load_detector(path)
    point = operating_point_for(reloaded.info, mode)
    assert point == fit.stated
    image = np.random.default_rng(0).uniform(0, 1, (256, 256, 3)).astype(np.float32)
    result = analyze(image, reloaded)
    assert result.score == pytest.approx(float(fit.calibration([result.image_statistic])[0]))
    assert result.verdict.operating_point == fit.stated
