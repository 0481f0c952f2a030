"""The rendered outputs: colour map, overlay, fingerprint view."""

import numpy as np
from matplotlib import colormaps

from noisead import infer


def test_colorize_matches_matplotlib_within_one_level():
    rng = np.random.default_rng(0)
    heat = rng.random((40, 50)).astype(np.float32)
    heat[0, :3] = (0.0, 1.0, np.nan)
    got = infer.colorize(heat)
    assert got.dtype == np.uint8 and got.shape == (40, 50, 3)
    want = np.rint(colormaps["inferno"](np.nan_to_num(heat))[..., :3] * 255)
    # one LUT level apart at most: the inferno map moves < 6 units of 255 per level
    assert np.abs(got.astype(int) - want).max() <= 6
    assert (got[0, 0] == np.rint(np.array(colormaps["inferno"](0.0)[:3]) * 255)).all()
    assert (got[0, 1] == np.rint(np.array(colormaps["inferno"](1.0)[:3]) * 255)).all()


def test_overlay_in_bands_equals_the_whole_image_formula(monkeypatch):
    monkeypatch.setattr(infer, "_OVERLAY_ROWS", 7)  # many bands, the last one partial
    rng = np.random.default_rng(1)
    image = rng.random((30, 20, 3)).astype(np.float32)
    heat = rng.random((30, 20)).astype(np.float32)
    mask = np.zeros((30, 20), bool)
    mask[10:25, 5:15] = True
    got = infer.overlay(image, heat, mask, alpha=0.5)

    gray = image.mean(axis=2, keepdims=True)
    colour = infer.colorize(heat).astype(np.float32) / 255
    weight = 0.5 * np.clip(2 * heat - 1, 0, 1)[..., None]
    want = np.rint(np.clip((1 - weight) * gray + weight * colour, 0, 1) * 255).astype(np.uint8)
    inside = mask.copy()
    inside[10:25, 5:15] = False
    inside[12:23, 7:13] = True  # the interior (outline is 2 px wide)
    untouched = ~mask | inside
    assert np.abs(got[untouched].astype(int) - want[untouched]).max() <= 1
    outline = mask & ~inside
    assert (got[outline] == (0, 255, 255)).all()
    # pixels below the middle of the scale keep the gray image exactly
    low = (heat <= 0.5) & untouched
    assert np.abs(got[low].astype(int) - np.rint(gray[low] * 255).astype(int)).max() <= 1


def test_evidence_in_words_largest_first_and_in_the_batch_report(tmp_path) -> None:
    from noisead.batch.report import write_report
    from noisead.batch.state import BatchState, InputRecord
    from noisead.infer import evidence_text

    shares = {"learned fingerprint": 0.001, "noise level": 0.22, "noise spectrum": 0.779}
    assert evidence_text(shares) == "noise spectrum 78%, noise level 22%"
    assert evidence_text({}) == ""
    with BatchState(tmp_path) as state:
        for name, decision, score, evidence in (
                ("a", "flagged", 0.999, evidence_text(shares)),
                ("b", "not flagged", 0.2, "")):
            state.save(InputRecord(tmp_path / f"{name}.png", f"{name}.png", "done", stem=name,
                                   decision=decision, score=score, evidence=evidence,
                                   verdict=f"{decision}.", seconds=1.0))
        page = write_report(state, tmp_path, model="m")[0].read_text()
    assert "set by: noise spectrum 78%, noise level 22%" in page
    assert page.count("set by:") == 1  # nothing for an image without a flagged region
