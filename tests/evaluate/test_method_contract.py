"""The contract every registered method keeps, with every shipped model.

image -> heatmap (H x W, float32, finite, in [0, 1]), mask (the heatmap at the
threshold), a finite detection score (noisead's in [0, 1]), and the same answer twice.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from noisead.anomaly.config import Mode
from noisead.anomaly.evidence import EVIDENCE
from noisead.evaluate.methods import METHODS, MethodContext
from noisead.infer import analyze, list_models, load_detector

THRESHOLD = 0.7


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """96 x 112 textured photo with a noisier square pasted in (float32 RGB)."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:96, 0:112] / 96.0
    base = 0.4 + 0.2 * np.sin(6 * xx)[..., None] * np.cos(4 * yy)[..., None]
    img = base + rng.normal(0, 0.01, (96, 112, 3))
    img[30:70, 40:90] += rng.normal(0, 0.05, (40, 50, 3))
    return np.clip(img, 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def detectors() -> dict:
    return {name: load_detector(name) for name in list_models()}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


CASES = [(name, model) for name, m in METHODS.items()
         for model in (list_models() if m.uses_detector else [None])]


@pytest.mark.parametrize(("name", "model"), CASES)
def test_method_contract(name, model, image, detectors):
    method = METHODS[name]
    context = MethodContext(detectors[model] if model else None, THRESHOLD, 0.99)
    out = method(image, context)
    assert out.heatmap.shape == image.shape[:2] and out.heatmap.dtype == np.float32
    assert np.isfinite(out.heatmap).all()
    assert out.heatmap.min() >= 0.0 and out.heatmap.max() <= 1.0
    assert out.mask.dtype == bool
    np.testing.assert_array_equal(out.mask, out.heatmap >= np.float32(THRESHOLD))
    assert np.isfinite(out.score)
    if method.uses_detector:
        assert 0.0 <= out.score <= 1.0
        assert out.fingerprint.shape == image.shape[:2] and np.isfinite(out.fingerprint).all()
    again = method(image.copy(), context)
    np.testing.assert_array_equal(again.heatmap, out.heatmap)
    assert again.score == out.score


@pytest.mark.parametrize("model", list_models())
def test_shipped_models_say_which_evidence_set_each_pixel(model, image, detectors):
    det = detectors[model]
    for mode in Mode:
        a = analyze(image, det, mode=mode)
        assert np.isfinite(a.raw).all() and a.raw.shape == image.shape[:2]
        if det.config.evidence:
            assert a.evidence.dtype == np.uint8 and a.evidence.max() < len(EVIDENCE)
        else:
            assert a.evidence is None
