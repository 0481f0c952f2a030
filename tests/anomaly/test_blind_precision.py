"""Blind mode keeps small variations around a large fixed activation pattern.

The blind cache is float16 (11 significant bits). An extractor whose output is a large
periodic pattern with small content-dependent variations (what the CPU-trained Restormer
learnt: a +-250 grid trace) once lost those variations to the rounding, and the blind map
was exactly zero everywhere. The cache is now centred on the reference means first.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from sklearn.metrics import roc_auc_score
from torch import nn

from noisead.anomaly.detector import DetectorConfig
from noisead.anomaly.fit import fit_detector


class OffsetResidual(nn.Module):
    """A small high-pass residual (1e-4 - 1e-3) riding on a large 8x8-periodic offset
    (250-313): float16 steps there are 0.125-0.25, float32 steps 1.5e-5-3e-5."""

    default_taps = ("fingerprint",)

    def __init__(self) -> None:
        super().__init__()
        self.fingerprint = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gray = x.mean(1, keepdim=True)
        residual = gray - F.avg_pool2d(F.pad(gray, (1, 1, 1, 1), mode="reflect"), 3, 1)
        h, w = x.shape[-2:]
        phase = (torch.arange(h)[:, None] % 8) * 8 + torch.arange(w)[None, :] % 8
        return self.fingerprint(250.0 + phase.float() + 0.01 * residual)


def _image(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    content = ndimage.gaussian_filter(rng.random((size, size, 3)), (8, 8, 0))
    return np.clip(0.3 + 0.4 * content + rng.normal(0, sigma, (size, size, 1)), 0, 1
                   ).astype(np.float32)


def test_blind_map_sees_small_variations_on_a_large_offset():
    rng = np.random.default_rng(0)
    pristine = [_image(rng, 128, 0.01) for _ in range(6)]
    config = DetectorConfig(patch_size=32, crop_size=64, tile=96, mode="reference",
                            taps=("fingerprint",))
    detector = fit_detector(OffsetResidual(), pristine, config, progress=False)
    test = _image(rng, 160, 0.01)
    mask = np.zeros(test.shape[:2], bool)
    mask[48:112, 48:112] = True
    test[mask] = _image(rng, 160, 0.04)[mask]          # another noise level pasted in
    for mode in ("reference", "blind"):
        raw = detector.score_image(test, mode=mode).raw
        assert np.ptp(raw) > 0, mode                   # not a constant map
        assert roc_auc_score(mask.ravel(), raw.ravel()) > 0.9, mode
