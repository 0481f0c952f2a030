"""Choosing and measuring the decision's operating point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
