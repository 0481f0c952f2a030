"""From squared Mahalanobis distances to a heatmap in [0, 1], a mask and one image score.

Raw distances have no fixed scale: they depend on the model, the layers and the image. A
forensic threshold must mean the same thing on every image, so the heatmap is *calibrated*:
a value ``v`` means "a fraction ``v`` of pixels of pristine validation images scored lower".
A threshold of 0.99 therefore flags about 1% of the pixels of a pristine image.

The per-pixel distance is first averaged over a Gaussian window: a noise residual is a
statistic of a neighbourhood, not of one pixel (PaDiM smooths its score map the same way).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from noisead.anomaly.filters import gaussian_blur
from noisead.runtime import run_concurrently

N_QUANTILES = 1025
_CHUNK = 1 << 20  # pixels per np.interp call when calibrating a large map


def smooth(score: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of a raw score map (reflecting borders, the kernel truncated at
    3 sigma), in float32 (:func:`noisead.anomaly.filters.gaussian_blur`); ``sigma=0`` is a
    no-op."""
    if sigma <= 0:
        return score.astype(np.float32, copy=False)
    return gaussian_blur(score.astype(np.float32, copy=False), sigma, truncate=3.0)


def region_quantile(score: np.ndarray, quantile: float, sigma: float) -> float:
    """The ``quantile`` of ``score`` smoothed by a Gaussian of ``sigma`` pixels.

    Why smooth before the image statistic: a forged region is a compact blob of high
    scores, while the high scores of a pristine image are mostly scattered texture, which
    the smoothing averages away (the gain on the validation sets is in docs/BENCHMARKS.md,
    "the image score summarises a smoothed map").

    For speed on large maps, a ``sigma`` of 8 or more is applied to the map reduced by
    block means of ``f = sigma // 4`` pixels with ``sigma / f`` (the same low-pass to
    within the block size, at a fraction of the cost). ``sigma=0``: the plain quantile.
    """
    score = score.astype(np.float32, copy=False)
    if sigma <= 0:
        return float(np.quantile(score, quantile))
    factor = int(sigma // 4) if sigma >= 8 else 1
    h, w = score.shape
    if factor > 1 and min(h, w) >= 4 * factor:
        hh, ww = h - h % factor, w - w % factor
        score = score[:hh, :ww].reshape(hh // factor, factor, ww // factor, factor).mean(
            axis=(1, 3))
        sigma = sigma / factor
    return float(np.quantile(smooth(score, sigma), quantile))


def two_sided_deviation(score: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Robust distance of the log score from the image's own median, in MAD units.

    Why: a Mahalanobis distance is one-sided. A region whose traces are *weaker* than the
    model's (a smoother, denoised or re-synthesized region, a flat splice) sits near the
    Gaussian's centre and scores low, as measured on our benchmarks (the sign-agnostic AUC
    was far above the plain one). Under the model, the local mean of the squared distance
    stays near its typical level; a departure either way is suspicious. The median and MAD
    are the image's own, so the majority of the image sets the norm.
    """
    # In place on one working copy (the same arithmetic): a 24 MP map is 96 MB a copy.
    score = np.asarray(score)
    x = np.maximum(score, 0, dtype=np.result_type(score.dtype, np.float32))
    x += eps
    np.log(x, out=x)
    med = np.median(x)
    x -= med
    np.abs(x, out=x)
    mad = np.median(x) + eps
    x /= mad
    return x.astype(np.float32, copy=False)


@dataclass
class Calibration:
    """Empirical distribution of smoothed scores on pristine images (quantile table)."""

    quantiles: np.ndarray  # increasing values at probabilities linspace(0, 1, N_QUANTILES)

    @classmethod
    def fit(cls, pristine_scores: list[np.ndarray], max_samples: int = 2_000_000,
            seed: int = 0) -> Calibration:
        values = np.concatenate([s.ravel() for s in pristine_scores]).astype(np.float64)
        if values.size == 0:
            raise ValueError("calibration needs at least one pristine score map")
        if values.size > max_samples:
            values = np.random.default_rng(seed).choice(values, max_samples, replace=False)
        q = np.quantile(values, np.linspace(0.0, 1.0, N_QUANTILES))
        return cls(np.maximum.accumulate(q).astype(np.float64))

    def __call__(self, score: np.ndarray) -> np.ndarray:
        """Map scores to [0, 1] by the pristine CDF (linear between quantiles)."""
        probs = np.linspace(0.0, 1.0, len(self.quantiles))
        q = self.quantiles
        # Flat stretches of the table (ties) would make interp ill-defined: nudge them.
        q = q + np.arange(len(q)) * 1e-12 * max(1.0, abs(q[-1]))
        score = np.asarray(score)
        if score.size <= _CHUNK:
            return np.interp(score, q, probs).astype(np.float32)
        # By chunks: np.interp works in float64, a 24 MP map would need 200 MB at once.
        # The chunks are shared out between threads (np.interp releases the GIL).
        flat = np.ascontiguousarray(score).reshape(-1)
        out = np.empty(flat.shape, np.float32)

        def chunk(a: int) -> None:
            out[a:a + _CHUNK] = np.interp(flat[a:a + _CHUNK], q, probs)

        run_concurrently([functools.partial(chunk, a) for a in range(0, flat.size, _CHUNK)])
        return out.reshape(score.shape)


def threshold_mask(calibrated: np.ndarray, threshold: float) -> np.ndarray:
    """Binary mask: True where the calibrated heatmap reaches the threshold."""
    return calibrated >= threshold
