"""The detector's algorithms written plainly, as the references its fast paths must match.

Nothing here is fast or memory-bounded: whole-image padding and embeddings, per-phase
strided gathers, float64 sums. The package computes the same things by tiles and batched
phase blocks; the tests compare the two.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from noisead.anomaly.detector import Detector
from noisead.anomaly.embed import concat_maps, forward_with_taps
from noisead.anomaly.gaussian import GaussianModel, StreamingGaussian
from noisead.anomaly.modes.blind import fit_blind
from noisead.anomaly.modes.reference import patch_offsets
from noisead.anomaly.score import smooth


def pad_reflect(image: np.ndarray, halo: int) -> np.ndarray:
    """Reflect-pad an H x W x C image by ``halo`` (repeatedly for images smaller than it;
    edge replication for images one pixel high or wide)."""
    out = image
    remaining = halo
    while remaining > 0:
        step = min(remaining, out.shape[0] - 1, out.shape[1] - 1)
        if step <= 0:
            return np.pad(image, ((halo, halo), (halo, halo), (0, 0)), mode="edge")
        out = np.pad(out, ((step, step), (step, step), (0, 0)), mode="reflect")
        remaining -= step
    return out


def embed(model: torch.nn.Module, images: torch.Tensor, taps: Sequence[str], *,
          channel_index: torch.Tensor | None = None) -> torch.Tensor:
    """B x 3 x H x W images -> B x D x H' x W' embeddings in one pass (float32)."""
    _, maps = forward_with_taps(model, images, taps)
    return concat_maps(maps, taps, channel_index=channel_index)


def squared_mahalanobis(g: GaussianModel, features: torch.Tensor, classes: torch.Tensor
                        ) -> torch.Tensor:
    """Squared distances of N x D ``features`` to the Gaussians of their ``classes``."""
    x = features.float() - g.mean[classes]
    z = torch.einsum("nd,ned->ne", x, g.whitener[classes])
    return (z * z).sum(1)


def score_map(g: GaussianModel, embedding: torch.Tensor, period: int,
              origin: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """H x W squared distances of a D x H x W map, pixel by pixel of each phase."""
    d, h, w = embedding.shape
    out = torch.empty(h, w, dtype=torch.float32)
    emb = embedding.float()
    for py in range(min(period, h)):
        for px in range(min(period, w)):
            k = ((py + origin[0]) % period) * period + (px + origin[1]) % period
            block = emb[:, py::period, px::period]
            x = block.reshape(d, -1).T - g.mean[k]
            z = x @ g.whitener[k].T
            out[py::period, px::period] = (z * z).sum(1).reshape(block.shape[1:])
    return out


def reference_maps(det: Detector, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(smoothed distances, fingerprint) of reference mode: whole-tile embeddings scored
    per phase, averaged over the patch-grid offsets."""
    period = det.config.position_period
    raw = np.empty(image.shape[:2], np.float32)
    fp = np.empty(image.shape[:2], np.float32)
    for t, emb, f in det.iter_embeddings(image):
        maps = [score_map(det.gaussian, emb, period, (t.y0 - oy, t.x0 - ox))
                for oy, ox in patch_offsets(det.config)]
        raw[t.y0:t.y1, t.x0:t.x1] = torch.stack(maps).mean(0).numpy()
        fp[t.y0:t.y1, t.x0:t.x1] = f.numpy()
    return smooth(raw, det.config.smoothing_sigma), fp


def blind_map(det: Detector, image: np.ndarray) -> np.ndarray:
    """Blind mode: whole-image embeddings (rounded to float16 as the cache rounds them),
    per-phase strided sums in float64, the smoothed first-pass map trimmed at one quantile,
    refit, rescore; smoothed."""
    h, w = image.shape[:2]
    period, cfg = det.config.position_period, det.config
    tiles = [(t, emb.half().float()) for t, emb, _ in det.iter_embeddings(image)]

    def fit(exclude: np.ndarray | None) -> GaussianModel:
        stats = StreamingGaussian(det.n_classes, tiles[0][1].shape[0])
        for t, emb in tiles:
            ex = None if exclude is None else torch.from_numpy(exclude[t.y0:t.y1, t.x0:t.x1])
            stats.update_map(emb, period, (t.y0, t.x0), ex)
        return fit_blind(det, stats)

    def score(g: GaussianModel) -> np.ndarray:
        raw = np.empty((h, w), np.float32)
        for t, emb in tiles:
            raw[t.y0:t.y1, t.x0:t.x1] = score_map(g, emb, period, (t.y0, t.x0)).numpy()
        return raw

    raw = score(fit(None))
    sm = smooth(raw, cfg.smoothing_sigma)
    raw = score(fit(sm > np.quantile(sm, 1 - cfg.blind_trim)))
    return smooth(raw, cfg.smoothing_sigma)
