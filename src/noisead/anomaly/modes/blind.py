"""Blind mode: Gaussians fitted on the test image itself, trimmed, refitted, then scored.

The way Noiseprint and Splicebuster localize: the image's own camera is the norm, so any
region with other traces stands out, even for cameras never seen in training. The fit is
shrunk towards the reference covariance when the detector has one (``blind_prior``).

Memory: every embedding is needed three times (fit, score, refit and score again after
trimming ``blind_trim`` of the most anomalous pixels), so the tiles' phase blocks are kept
in a cache, but only up to a budget (``noisead.runtime.blind_cache_bytes``, 512 MB unless
``NOISEAD_BLIND_CACHE_MB`` says otherwise). A larger image is fitted on an evenly spread
subset of its tiles that fits the budget (the default holds the embeddings of a couple of
megapixels, as many samples per position class as a whole image of that size gives), and
the other tiles are embedded once and scored with that fit. Up to the budget the result is
exactly the whole-image fit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from noisead.anomaly.gaussian import GaussianModel, StreamingGaussian, mask_to_blocks, phase_classes
from noisead.anomaly.modes import two_part
from noisead.anomaly.modes.canvas import Canvas, tile_distances
from noisead.anomaly.score import smooth
from noisead.anomaly.tiling import Tile
from noisead.runtime import blind_cache_bytes

if TYPE_CHECKING:
    from noisead.anomaly.detector import Detector

#: Phase blocks of the cached tiles, in the order they were embedded.
Cache = list[tuple[Tile, torch.Tensor]]


def blind_blocks(detector: Detector, canvas: Canvas, t: Tile
                 ) -> tuple[torch.Tensor, np.ndarray]:
    """Phase blocks for the blind cache: float16, centred on the reference means.

    The cache is float16 to bound memory, and float16 keeps 11 significant bits: an
    extractor whose activations are a large fixed pattern (a periodic grid trace of +-250,
    say) with small variations around it would lose those variations to the rounding, and
    every distance would read zero. Subtracting the reference Gaussian's mean of each
    block's phase class first (in float32, as the blocks are laid out) leaves only the
    variations to round; the same shift applies to the fit and to the scores, so the blind
    Gaussians and the distances are unchanged. Without a reference fit the blocks stay
    float32. The blocks stay on the device of the canvas' runner.
    """
    if detector.gaussian is None:
        return detector.embed_blocks(canvas.source, t, torch.float32, canvas.runner)
    return detector.embed_blocks(canvas.source, t, torch.float16, canvas.runner, center=True)


def fit_blind(detector: Detector, stats: StreamingGaussian) -> GaussianModel:
    """The image's own Gaussians from its sums, shrunk towards the reference covariance."""
    count = stats.count
    mean, cov = GaussianModel.covariance_from_sums(count.clamp_min(2), stats.sum, stats.outer)
    if detector.gaussian is not None and detector.config.blind_prior > 0:
        ref_cov = detector.gaussian.covariance().double()
        kappa = detector.config.blind_prior * cov.shape[-1]
        n = count[:, None, None]
        cov = (n * cov + kappa * ref_cov) / (n + kappa)
    return GaussianModel.from_covariance(mean, cov, count.clamp_min(2),
                                         detector.config.shrinkage)


def _sums(detector: Detector, cache: Cache, keep: dict[Tile, torch.Tensor]
          ) -> StreamingGaussian:
    """Sums of the kept pixels of every cached tile, by absolute phase class."""
    stats = StreamingGaussian(detector.n_classes, cache[0][1].shape[-1])
    period = detector.config.position_period
    for t, blocks in cache:
        stats.update_blocks(blocks, phase_classes(period, (t.y0, t.x0)), keep[t])
    return stats


def _cached_tiles(detector: Detector, canvas: Canvas) -> list[Tile]:
    """The tiles whose embeddings fit the cache budget: all, or an evenly spread subset."""
    tiles = canvas.tiles
    # the cache: float16, or float32 without a reference fit (see blind_blocks)
    per_pixel = detector.embedding_dim() * (2 if detector.gaussian is not None else 4)
    budget = blind_cache_bytes()
    if sum((t.y1 - t.y0) * (t.x1 - t.x0) for t in tiles) * per_pixel <= budget:
        return list(tiles)
    biggest = max((t.y1 - t.y0) * (t.x1 - t.x0) for t in tiles)
    # At least two tiles: each fitted tile is scored by the others' fit (score_blind).
    return pick_spread(tiles, max(2, int(budget // (biggest * per_pixel))))


def _trimmed(detector: Detector, canvas: Canvas, g: GaussianModel, cache: Cache,
             fitted: list[Tile], whole: bool) -> dict[Tile, torch.Tensor]:
    """Per fitted tile, the phase-block mask of the ``blind_trim`` most anomalous pixels
    under the first fit ``g`` (their smoothed distances above one shared quantile)."""
    cfg = detector.config
    period = cfg.position_period
    first = {t: tile_distances(g, b, t, period) for t, b in cache}
    if whole:  # exactly the whole-image rule: smooth the map, one quantile
        for t, d2 in first.items():
            canvas.put(canvas.distances, t, d2)
        sm = smooth(canvas.distances, cfg.smoothing_sigma)
        excluded = sm > np.quantile(sm, 1 - cfg.blind_trim)
        del sm
        crops = {t: excluded[t.y0:t.y1, t.x0:t.x1] for t in fitted}
    else:  # a subset of tiles: smooth each on its own, one shared threshold
        sms = {}
        for t, d2 in first.items():
            h, w = canvas.inside(t)
            sms[t] = smooth(d2[:h, :w], cfg.smoothing_sigma)
        thr = np.quantile(np.concatenate([v.ravel() for v in sms.values()]),
                          1 - cfg.blind_trim)
        crops = {t: v > thr for t, v in sms.items()}
    del first
    trimmed: dict[Tile, torch.Tensor] = {}
    for t in fitted:
        ex = torch.zeros(t.y1 - t.y0, t.x1 - t.x0, dtype=torch.bool)
        c = crops[t]
        ex[:c.shape[0], :c.shape[1]] = torch.from_numpy(np.ascontiguousarray(c))
        trimmed[t] = mask_to_blocks(ex, period)
    return trimmed


def score_blind(detector: Detector, canvas: Canvas) -> None:
    """Fill ``canvas``: fit on the cached tiles, trim, refit, then score every tile."""
    cfg = detector.config
    period = cfg.position_period
    fitted = _cached_tiles(detector, canvas)
    whole = len(fitted) == len(canvas.tiles)

    cache: Cache = []
    keep: dict[Tile, torch.Tensor] = {}
    for t in fitted:
        blocks, fingerprint = blind_blocks(detector, canvas, t)
        canvas.put(canvas.fingerprint, t, fingerprint)
        cache.append((t, blocks))
        del blocks
        inside = torch.zeros(t.y1 - t.y0, t.x1 - t.x0, dtype=torch.bool)
        h, w = canvas.inside(t)
        inside[:h, :w] = True
        keep[t] = mask_to_blocks(inside, period)
    # Blind Gaussians are indexed by the absolute phase, like the blind fit itself.
    stats = _sums(detector, cache, keep)
    g = fit_blind(detector, stats)
    parts = None
    if cfg.blind_parts == "auto":  # two cameras rather than one plus outliers?
        parts = two_part.find_two_parts(detector, canvas, g, cache, keep)
        if parts is not None:  # the larger part is the image's camera: refit on it
            keep = {t: keep[t] & parts.host[t] for t in fitted}
            stats = _sums(detector, cache, keep)
            g = fit_blind(detector, stats)
    if cfg.blind_trim > 0:
        trimmed = _trimmed(detector, canvas, g, cache, fitted, whole)
        trimmed = {t: trimmed[t] & keep[t] for t in fitted}
        if whole:  # refit without the trimmed pixels: only they are summed again
            removed = StreamingGaussian(detector.n_classes, stats.dim)
            for t, blocks in cache:
                if trimmed[t].any():
                    removed.update_blocks(blocks, phase_classes(period, (t.y0, t.x0)),
                                          trimmed[t])
            stats = stats.subtract(removed)
        keep = {t: keep[t] & ~trimmed[t] for t in fitted}
    if whole:
        g = fit_blind(detector, stats) if cfg.blind_trim > 0 else g
        for t, blocks in cache:
            canvas.put(canvas.distances, t, tile_distances(g, blocks, t, period))
    else:
        g = _score_out_of_sample(detector, canvas, cache, keep, stats.dim)
    if parts is not None and whole and two_part.SETTINGS.variant == "posterior":
        two_part.posterior_distances(canvas, parts)
    cache.clear()
    fitted_set = set(fitted)
    for t in canvas.tiles:
        if t not in fitted_set:
            # Rounded like the fitted tiles were: channels that are nearly constant
            # are exactly constant in float16, and the fit has learnt them so.
            blocks, fingerprint = blind_blocks(detector, canvas, t)
            canvas.put(canvas.fingerprint, t, fingerprint)
            canvas.put(canvas.distances, t, tile_distances(g, blocks, t, period))
            del blocks


def _score_out_of_sample(detector: Detector, canvas: Canvas, cache: Cache,
                         keep: dict[Tile, torch.Tensor], dim: int) -> GaussianModel:
    """Score each cached tile with the Gaussians of the *other* cached tiles; return the
    fit of them all (for the tiles outside the cache).

    The fitted tiles' own pixels would score lower than the others' (in-sample), a
    tile-shaped bias that the two-sided score reads as an anomaly.
    """
    period = detector.config.position_period
    own = {}
    for t, blocks in cache:
        own[t] = StreamingGaussian(detector.n_classes, dim)
        own[t].update_blocks(blocks, phase_classes(period, (t.y0, t.x0)), keep[t])
    stats = StreamingGaussian(detector.n_classes, dim)
    for st in own.values():
        stats.merge(st)
    g = fit_blind(detector, stats)
    for t, blocks in cache:
        canvas.put(canvas.distances, t,
                   tile_distances(fit_blind(detector, stats.subtract(own[t])), blocks, t,
                                  period))
    return g


def pick_spread(tiles: list[Tile], count: int) -> list[Tile]:
    """``count`` tiles spread evenly over the image (all of them if ``count`` is enough).

    A golden-ratio lattice over the tile grid: rows evenly spaced, columns by the
    golden-ratio sequence, so that no row or column of the image is favoured.
    """
    if count >= len(tiles):
        return list(tiles)
    ys = sorted({t.y0 for t in tiles})
    xs = sorted({t.x0 for t in tiles})
    grid = {(t.y0, t.x0): t for t in tiles}
    golden = (5 ** 0.5 - 1) / 2
    chosen: list[Tile] = []
    for i in range(count):
        iy = min(len(ys) - 1, int((i + 0.5) / count * len(ys)))
        ix = min(len(xs) - 1, int(((i * golden + 0.5) % 1.0) * len(xs)))
        t = grid[(ys[iy], xs[ix])]
        if t in chosen:  # rare collision: the next free tile in raster order
            t = next(u for u in tiles if u not in chosen)
        chosen.append(t)
    return chosen
