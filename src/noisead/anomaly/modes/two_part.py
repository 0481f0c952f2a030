"""Blind mode's two-part explanation: one camera plus outliers, or two cameras?

Blind mode fits the image's own Gaussians, trims its most anomalous pixels and refits: a
model of *one camera plus outliers*. A region from another camera that covers a quarter to
a half of the image is no outlier: the first fit mixes both cameras and the map is weak.
Noiseprint's and Splicebuster's blind localization fit a two-class model to local
features of the fingerprint and let two parts win when the data say so; this is that step.

Each window of ``window`` pixels (whole 8 x 8 cells) gets a descriptor of its embeddings
whitened by the first blind fit: the mean whitened vector and the log of each channel's
mean energy. The descriptors are standardized and reduced by PCA to a few dimensions, and
a one- and a two-component Gaussian mixture (scikit-learn, seeded) are compared by BIC.
Two parts win only when BIC prefers them by ``min_gain`` per window and the smaller part
holds at least ``min_part`` of the windows; then the blind Gaussians are refitted on the
larger part only (variant ``"refit"``: the map keeps its units, distances to the host's
own camera), or the learned map becomes the smaller part's posterior (``"posterior"``).
When one part wins, nothing changes: the map is exactly blind mode's.

Cost: one more pass of whitening products over the cached embeddings (the cost of one
scoring pass), and a mixture fit on a few hundred windows; nothing of image size with the
embedding's channels is added to the blind cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from noisead.anomaly.gaussian import GaussianModel, phase_classes, single_thread
from noisead.anomaly.tiling import Tile

if TYPE_CHECKING:
    from noisead.anomaly.detector import Detector
    from noisead.anomaly.modes.canvas import Canvas

__all__ = ["SETTINGS", "TwoPartSettings", "TwoParts", "decide_parts", "find_two_parts",
           "posterior_distances", "window_features"]

#: Fewer windows than this (an image too small to say anything about two parts): one part.
MIN_WINDOWS = 16


@dataclass(frozen=True)
class TwoPartSettings:
    """How the two-part explanation is looked for (chosen on validation data)."""

    window: int = 32          # window side in pixels (a multiple of the position period)
    features: str = "both"    # "mean", "energy" or "both" (see window_features)
    dims: int = 4             # PCA dimensions the mixtures are fitted in
    min_gain: float = 0.0     # BIC gain per window two parts must reach
    min_part: float = 0.05    # the smaller part's least share of the windows
    variant: str = "refit"    # "refit" (host Gaussians) or "posterior" (smaller part's)
    content: bool = True      # regress the window's content (brightness, texture) out first
    n_init: int = 4           # mixture initialisations


#: The settings blind mode uses.
SETTINGS = TwoPartSettings()


@dataclass
class TwoParts:
    """Where two parts won: per cached tile, the larger part's pixels as phase-block masks
    (``K x n`` bool, the layout of the cache) and the smaller part's posterior on the
    tile's window grid; ``gain``: BIC's preference for two parts, per window."""

    host: dict[Tile, torch.Tensor]
    foreign: dict[Tile, np.ndarray]
    window: int
    gain: float


@dataclass
class _TileWindows:
    """One tile's window grid: descriptors of every window with a cell inside the image,
    and which of them are whole enough (at least half their cells inside) to fit on."""

    tile: Tile
    grid: tuple[int, int]        # windows per column and per row
    index: np.ndarray            # flat grid index of each described window
    features: np.ndarray         # one row per described window
    whole: np.ndarray            # bool, per described window


def _tile_windows(g: GaussianModel, blocks: torch.Tensor, inside: torch.Tensor, t: Tile,
                  period: int, cells: int, features: str) -> _TileWindows:
    """Descriptors of tile ``t``'s windows of ``cells`` x ``cells`` period cells."""
    k_all, n, d = blocks.shape
    h8, w8 = (t.y1 - t.y0) // period, (t.x1 - t.x0) // period
    classes = phase_classes(period, (t.y0, t.x0))
    mean = g.mean[classes].to(blocks.device)
    wt = g.whitener[classes].to(blocks.device).transpose(1, 2)
    zsum = torch.zeros(n, d, dtype=torch.float32, device=blocks.device)
    z2sum = torch.zeros_like(zsum)
    step = max(1, (16 << 20) // max(1, n * d * 4))
    with single_thread():
        for a in range(0, k_all, step):
            z = torch.bmm(blocks[a:a + step].float() - mean[a:a + step, None, :],
                          wt[a:a + step])
            zsum += z.sum(0)
            z2sum += z.square_().sum(0)
    # a cell counts when all its pixels are inside the image
    full = inside.to(blocks.device).all(0).float()
    hw, ww = -(-h8 // cells), -(-w8 // cells)

    def by_window(values: torch.Tensor) -> np.ndarray:
        grid = torch.zeros(hw * cells, ww * cells, values.shape[-1], dtype=torch.float64)
        grid[:h8, :w8] = (values * full[:, None]).reshape(h8, w8, -1).double().cpu()
        return grid.reshape(hw, cells, ww, cells, -1).sum((1, 3)).reshape(hw * ww, -1).numpy()

    count = by_window(torch.ones(n, 1, device=blocks.device))[:, 0]
    described = np.flatnonzero(count > 0)
    pixels = count[described, None] * k_all
    parts = []
    if features in ("mean", "both"):
        parts.append(by_window(zsum)[described] / pixels)
    if features in ("energy", "both"):
        parts.append(np.log(by_window(z2sum)[described] / pixels + 1e-12))
    if not parts:
        raise ValueError(f"unknown two-part features {features!r}")
    return _TileWindows(t, (hw, ww), described, np.concatenate(parts, axis=1),
                        count[described] >= cells * cells / 2)


def window_features(detector: Detector, g: GaussianModel,
                    cache: list[tuple[Tile, torch.Tensor]], keep: dict[Tile, torch.Tensor],
                    settings: TwoPartSettings) -> list[_TileWindows]:
    """Window descriptors of every cached tile under the blind fit ``g``."""
    period = detector.config.position_period
    if settings.window % period or settings.window < period:
        raise ValueError(f"window must be a multiple of the position period {period}")
    cells = settings.window // period
    return [_tile_windows(g, blocks, keep[t], t, period, cells, settings.features)
            for t, blocks in cache]


def content_covariates(image: np.ndarray, tiles: list[_TileWindows], window: int
                       ) -> np.ndarray:
    """Per described window: its mean luma, that squared, and the log of its luma's
    standard deviation (what a window's content does to its noise statistics)."""
    luma = image.mean(2)
    rows = []
    for w in tiles:
        for flat in w.index:
            iy, ix = divmod(int(flat), w.grid[1])
            y0, x0 = w.tile.y0 + iy * window, w.tile.x0 + ix * window
            patch = luma[y0:y0 + window, x0:x0 + window]
            m = float(patch.mean())
            rows.append((m, m * m, np.log(float(patch.std()) + 1e-4)))
    return np.asarray(rows)


def without_content(features: np.ndarray, covariates: np.ndarray, fit_on: np.ndarray
                    ) -> np.ndarray:
    """``features`` minus their least-squares fit on ``covariates`` (fitted on the rows
    ``fit_on``), so that a split by content alone no longer looks like two parts."""
    design = np.column_stack([np.ones(len(covariates)), covariates])
    coef, *_ = np.linalg.lstsq(design[fit_on], features[fit_on], rcond=None)
    return features - design @ coef


def decide_parts(features: np.ndarray, settings: TwoPartSettings, seed: int,
                 fit_on: np.ndarray | None = None) -> tuple[np.ndarray | None, float]:
    """(posterior of the smaller part per row of ``features``, or None where one part
    wins; BIC's gain of two parts per window). ``fit_on``: the rows the mixtures are
    fitted on (the others are only given a posterior)."""
    fit_on = np.ones(len(features), bool) if fit_on is None else fit_on
    x = features[fit_on]
    if len(x) < MIN_WINDOWS or not np.isfinite(features).all():
        return None, 0.0
    mu, sd = x.mean(0), x.std(0)
    useful = sd > 1e-9 * (1 + np.abs(mu))
    if not useful.any():
        return None, 0.0
    # scikit-learn is the [train] extra: needed only where blind_parts="auto" looks for
    # two parts, so the core install (which never does by default) does not need it
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    pca = PCA(n_components=min(settings.dims, int(useful.sum()), len(x) - 1),
              random_state=seed)
    y = pca.fit_transform((x[:, useful] - mu[useful]) / sd[useful])
    one = GaussianMixture(1, covariance_type="full", reg_covar=1e-4, random_state=seed).fit(y)
    two = GaussianMixture(2, covariance_type="full", reg_covar=1e-4, n_init=settings.n_init,
                          random_state=seed).fit(y)
    gain = float((one.bic(y) - two.bic(y)) / len(y))
    labels = two.predict(y)
    smaller = int(np.argmin(np.bincount(labels, minlength=2)))
    share = float(np.mean(labels == smaller))
    if gain < settings.min_gain or share < settings.min_part:
        return None, gain
    everything = pca.transform((features[:, useful] - mu[useful]) / sd[useful])
    return two.predict_proba(everything)[:, smaller], gain


def find_two_parts(detector: Detector, canvas: Canvas, g: GaussianModel,
                   cache: list[tuple[Tile, torch.Tensor]], keep: dict[Tile, torch.Tensor],
                   settings: TwoPartSettings | None = None) -> TwoParts | None:
    """The two parts of the cached tiles under the first blind fit ``g``, or None when
    one camera plus outliers explains them (or there are too few windows to tell)."""
    settings = settings or SETTINGS
    tiles = window_features(detector, g, cache, keep, settings)
    features = np.concatenate([w.features for w in tiles])
    fit_on = np.concatenate([w.whole for w in tiles])
    if settings.content and fit_on.sum() >= MIN_WINDOWS:
        covariates = content_covariates(canvas.source.image, tiles, settings.window)
        features = without_content(features, covariates, fit_on)
    posterior, gain = decide_parts(features, settings, detector.config.seed, fit_on)
    if posterior is None:
        return None
    period = detector.config.position_period
    cells = settings.window // period
    host, foreign, start = {}, {}, 0
    for w, (t, blocks) in zip(tiles, cache, strict=True):
        grid = np.ones(w.grid[0] * w.grid[1])  # windows wholly outside: not host
        grid[w.index] = posterior[start:start + len(w.index)]
        start += len(w.index)
        grid = grid.reshape(w.grid)
        foreign[t] = grid
        h8, w8 = (t.y1 - t.y0) // period, (t.x1 - t.x0) // period
        cell_host = np.repeat(np.repeat(grid < 0.5, cells, 0), cells, 1)[:h8, :w8]
        host[t] = torch.from_numpy(np.ascontiguousarray(cell_host).reshape(1, -1)).expand(
            blocks.shape[0], -1).to(keep[t].device)
    return TwoParts(host, foreign, settings.window, gain)


def posterior_distances(canvas: Canvas, parts: TwoParts) -> None:
    """Fill ``canvas.distances`` with ``exp(logit)`` of the smaller part's posterior: the
    detector's log, median and MAD then make it a robust z of the logit."""
    for t, grid in parts.foreign.items():
        p = np.clip(grid, 1e-9, 1 - 1e-9)
        values = np.exp(np.log(p) - np.log1p(-p)).astype(np.float32)
        pixels = np.repeat(np.repeat(values, parts.window, 0), parts.window, 1)
        canvas.put(canvas.distances, t, pixels[:t.y1 - t.y0, :t.x1 - t.x0])
