"""The detector: a fingerprint extractor, its taps, and the fitted pristine statistics.

State worth keeping together — the extractor, which layers are tapped, the per-position
Gaussians, the calibration of scores on pristine images — lives in one object that is
saved as one safetensors file with a JSON sidecar, and scores an image in one call.

Two ways to say what "pristine" is:
- ``reference``: the Gaussians fitted on a set of pristine images (the thesis' method);
- ``blind``: Gaussians fitted on the test image itself, trimmed of its most anomalous
  pixels and refitted (the way Noiseprint and Splicebuster localize), shrunk towards the
  reference covariance when there is one. The image's own camera is then the norm and any
  region with other traces stands out, even for cameras never seen in training.

With ``noise_statistics`` on, the learned map is fused with two training-free blind
statistics of the image's noise, its local level and its local spectrum
(:mod:`noisead.anomaly.noise_statistics`): the pixel-wise maximum of the three robust
z-scores is the raw map, calibrated like any other. Why: on unseen cameras those two
statistics localize better than the learned Gaussians alone (docs/BENCHMARKS.md). With
``jpeg_traces`` on as well, an image that was once a JPEG is also checked block by block
against its own quantization lattice (:mod:`noisead.anomaly.jpeg_traces`): blocks off the
lattice raise the score, blocks on it lower the other statistics' suspicion.

Cost and memory of ``score_image``: one extractor pass per tile in both modes, and nothing
of image size with D channels is ever held. Blind mode needs every embedding three times
(fit, score, refit and score again after trimming), so it keeps the tiles' embeddings
(float16) — but only up to a memory budget (``noisead.runtime.blind_cache_bytes``, 512 MB
unless ``NOISEAD_BLIND_CACHE_MB`` says otherwise). A larger image is fitted on an evenly
spread subset of its tiles that fits the budget (at the default 512 MB, about 2 MP of
DnCNN embeddings: some 30,000 samples per position class for 129 dimensions, as many as
a whole 2 MP image gives), and the other tiles are embedded once and scored with that fit.
Up to the budget the result is exactly the whole-image fit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from noisead.anomaly.embed import blocks_from_maps, concat_maps, forward_with_taps
from noisead.anomaly.gaussian import (
    GaussianModel,
    StreamingGaussian,
    from_blocks,
    mask_to_blocks,
    phase_classes,
)
from noisead.anomaly.jpeg_traces import jpeg_lattice_deviation
from noisead.anomaly.noise_statistics import (
    MAD_TO_SIGMA,
    noise_level_deviation,
    noise_spectrum_deviation,
)
from noisead.anomaly.score import Calibration, region_quantile, smooth, two_sided_deviation
from noisead.anomaly.tiling import Tile, TileSource, iter_tiles, plan_tiles, round_up
from noisead.models.dncnn import DnCNN
from noisead.models.registry import (
    build_model,
    config_to_dict,
    load_tensors_with_sidecar,
    model_metadata,
    save_tensors_with_sidecar,
)
from noisead.runtime import (
    blind_cache_bytes,
    prepare_cpu,
    resolve_precision,
    reuse_large_blocks,
)

MODES = ("reference", "blind")


@dataclass
class DetectorConfig:
    """Settings of the anomaly model; saved in the sidecar of every fitted detector."""

    taps: tuple[str, ...] | None = None   # None: the extractor's default taps
    patch_size: int = 64                  # P
    crop_size: int = 128                  # C (fit: C x C crops, central P x P kept)
    crops_per_image: int = 4              # 1 = only the top-left crop, as in the thesis
    period: int = 8                       # position classes; = patch_size: untied (thesis)
    stride: int | None = None             # deployment stride (matters only when untied)
    n_features: int | None = None         # random subset of embedding channels (PaDiM)
    shrinkage: float | str = "oas"
    smoothing_sigma: float = 8.0
    score_direction: str = "two-sided"    # or "upper": only high distances are suspicious
    noise_statistics: bool = False        # fuse the blind level/spectrum map (two-sided only)
    jpeg_traces: bool = False             # fuse the JPEG lattice map (needs noise_statistics)
    jpeg_window: int = 3                  # blocks per side of the lattice evidence window
    jpeg_host_discount: float = 0.0       # how much host-lattice evidence lowers the others
    jpeg_image_discount: float = 1.0      # the same, for the image score's map only
    jpeg_image_weight: float = 2.0        # weight of the lattice evidence in that map
    mode: str = "blind"
    blind_trim: float = 0.2               # fraction of most anomalous pixels left out of refit
    blind_prior: float = 1.0              # weight of the reference covariance, in units of D
    threshold: float = 0.99               # on the calibrated heatmap
    # image statistic: this quantile of the raw map smoothed by a Gaussian of
    # image_smoothing pixels (see score.region_quantile). 0.95 rather than 0.99 since
    # session 8: on validation, equal clean and after JPEG, better on resized images
    # (mean detection AUC x0.9 / x1.1: 0.749 / 0.747 -> 0.773 / 0.779; docs/BENCHMARKS.md)
    image_quantile: float = 0.95
    image_smoothing: float = 16.0
    tile: int = 512
    precision: str = "auto"
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["taps"] = list(self.taps) if self.taps else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DetectorConfig:
        d = dict(d)
        d.setdefault("score_direction", "upper")  # files saved before the option existed
        d.setdefault("image_smoothing", 0.0)      # ditto: their calibration is unsmoothed
        if d.get("taps"):
            d["taps"] = tuple(d["taps"])
        return cls(**d)

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.score_direction not in ("two-sided", "upper"):
            raise ValueError("score_direction must be 'two-sided' or 'upper', "
                             f"got {self.score_direction!r}")
        if self.noise_statistics and self.score_direction != "two-sided":
            raise ValueError("noise_statistics fuses robust z-scores: it needs "
                             "score_direction='two-sided'")
        if self.jpeg_traces and not self.noise_statistics:
            raise ValueError("jpeg_traces is fused with the noise statistics: it needs "
                             "noise_statistics=True")
        if (self.jpeg_window < 1 or self.jpeg_host_discount < 0
                or self.jpeg_image_discount < 0 or self.jpeg_image_weight <= 0):
            raise ValueError("jpeg_window must be >= 1, the JPEG discounts >= 0 and "
                             "jpeg_image_weight > 0")
        if self.image_smoothing < 0:
            raise ValueError("image_smoothing must be >= 0")
        if self.patch_size % self.period:
            raise ValueError("period must divide patch_size")
        if self.crop_size < self.patch_size or (self.crop_size - self.patch_size) % 16:
            raise ValueError("crop_size - patch_size must be a non-negative multiple of 16 "
                             "(the kept patch stays on the 8x8 grid)")


#: The statistics fused with ``noise_statistics``, in the order of ``ScoreMaps.evidence`` codes.
EVIDENCE = ("learned fingerprint", "noise level", "noise spectrum", "JPEG lattice")

#: Gaussian smoothing (pixels) of the blockwise JPEG lattice evidence before fusion.
JPEG_SMOOTHING_SIGMA = 4.0


def lattice_evidence(image: np.ndarray, window: int = 3) -> np.ndarray | None:
    """The JPEG lattice evidence as the detector fuses it: the signed per-pixel z of
    ``jpeg_lattice_deviation`` smoothed by ``JPEG_SMOOTHING_SIGMA``; None without a lattice."""
    z = jpeg_lattice_deviation(image, window=window)
    return None if z is None else ndimage.gaussian_filter(z, JPEG_SMOOTHING_SIGMA)


def image_score_map(fused: np.ndarray, z: np.ndarray, discount: float, weight: float
                    ) -> np.ndarray:
    """The map whose smoothed quantile is the image statistic of an image with a lattice:
    ``max(fused - discount * host, weight * z)``, where ``host = max(-z, 0)`` is the
    evidence that a block sits on the image's own lattice (see Detector._fuse_jpeg)."""
    host = np.maximum(-z, np.float32(0.0))
    return np.maximum(fused - np.float32(discount) * host, np.float32(weight) * z)


@dataclass
class ScoreMaps:
    raw: np.ndarray          # smoothed squared Mahalanobis distance, H x W
    fingerprint: np.ndarray  # the extractor's output, H x W
    # with noise_statistics: H x W uint8, index into EVIDENCE of the statistic that set
    # each pixel's raw score (which trace is inconsistent there); None otherwise
    evidence: np.ndarray | None = None
    # the raw image statistic, where it is not simply a quantile of ``raw`` (with the JPEG
    # lattice fused: a quantile of the map with the image discount); None otherwise
    image_statistic: float | None = None


@dataclass
class Detector:
    extractor: nn.Module
    config: DetectorConfig = field(default_factory=DetectorConfig)
    gaussian: GaussianModel | None = None
    calibration: Calibration | None = None
    image_calibration: Calibration | None = None
    channel_index: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)
    # calibrations of the *other* mode(s), by mode: (pixel, image). Blind and reference
    # scores have different distributions, so each mode needs its own calibration for a
    # threshold (or the image score) to mean the same thing in both
    mode_calibrations: dict[str, tuple[Calibration, Calibration]] = field(
        default_factory=dict)

    def __post_init__(self) -> None:
        self.config.validate()
        self.extractor.eval()
        self.extractor.to(memory_format=torch.channels_last)

    # -- geometry ------------------------------------------------------------------
    @property
    def taps(self) -> tuple[str, ...]:
        return tuple(self.config.taps or self.extractor.default_taps)

    @property
    def halo(self) -> int:
        """Context carried by each tile: DnCNN's exact receptive radius (a purely
        convolutional net takes any size); other extractors rounded up to 8."""
        halo = int(getattr(self.extractor, "halo", 32))
        return halo if isinstance(self.extractor, DnCNN) else round_up(halo, 8)

    @property
    def n_classes(self) -> int:
        return self.config.period ** 2

    def _offsets(self) -> list[tuple[int, int]]:
        """Patch-grid offsets to average over: one when positions are tied to the 8x8 phase."""
        c = self.config
        if c.period < c.patch_size:
            return [(0, 0)]
        s = c.stride or c.patch_size // 2
        return [(oy, ox) for oy in range(0, c.period, s) for ox in range(0, c.period, s)]

    # -- embeddings ----------------------------------------------------------------
    @property
    def precision(self) -> str:
        """The precision the extractor runs in: ``config.precision`` resolved for this CPU.

        ``"auto"`` gives bfloat16 only where it is native *and* this detector was validated
        in it (``info["bf16_validated"]``, set by whoever checked that bfloat16 heatmaps
        match float32 ones): measured on the shipped model, bfloat16 activations lose the
        faint traces (pixel AUC 0.9999 → 0.51 on a synthetic splice, reference mode).
        ``"bf16"`` forces it; ``NOISEAD_PRECISION`` overrides ``"auto"``.
        """
        return resolve_precision(self.config.precision,
                                 bf16_ok=bool(self.info.get("bf16_validated", False)))

    def embed_tensor(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(embedding B x D x H x W, fingerprint B x 1 x H x W) from one forward pass."""
        output, maps = forward_with_taps(self.extractor, x, self.taps,
                                         precision=self.precision)
        emb = concat_maps(maps, self.taps, channel_index=self.channel_index)
        return emb, output.mean(1, keepdim=True)

    def iter_embeddings(self, image: np.ndarray):
        """Yield (tile, embedding D x h x w, fingerprint h x w) over the whole image."""
        halo = self.halo
        source = TileSource(image, halo)
        for t in iter_tiles(image.shape[0], image.shape[1], self.config.tile):
            emb, fp = self.embed_tensor(source.tile(t))
            h, w = t.y1 - t.y0, t.x1 - t.x0
            yield t, emb[0, :, halo:halo + h, halo:halo + w], fp[0, 0, halo:halo + h,
                                                                   halo:halo + w]

    def _embed_blocks(self, source: TileSource, t: Tile, dtype: torch.dtype = torch.float32
                      ) -> tuple[torch.Tensor, np.ndarray]:
        """(phase blocks period² x n x D, fingerprint h x w) of tile ``t``."""
        output, maps = forward_with_taps(self.extractor, source.tile(t), self.taps,
                                         precision=self.precision)
        halo, h, w = self.halo, t.y1 - t.y0, t.x1 - t.x0
        blocks = blocks_from_maps(maps, self.taps, (halo, halo, h, w), self.config.period,
                                  channel_index=self.channel_index, dtype=dtype)
        fp = output[0, :, halo:halo + h, halo:halo + w].mean(0)
        return blocks, fp.numpy()

    def _blind_blocks(self, source: TileSource, t: Tile) -> tuple[torch.Tensor, np.ndarray]:
        """Phase blocks for the blind cache: float16, centred on the reference means.

        The cache is float16 to bound memory, and float16 keeps 11 significant bits: an
        extractor whose activations are a large fixed pattern (a periodic grid trace of
        +-250, say) with small variations around it would lose those variations to the
        rounding, and every distance would read zero. Subtracting the reference Gaussian's
        mean of each block's phase class first leaves only the variations to round; the
        same shift applies to the fit and to the scores, so the blind Gaussians and the
        distances are unchanged. Without a reference fit the blocks stay float32.
        """
        blocks, fp = self._embed_blocks(source, t, torch.float32)
        if self.gaussian is None:
            return blocks, fp
        classes = phase_classes(self.config.period, (t.y0, t.x0))
        blocks -= self.gaussian.mean[classes][:, None, :]
        return blocks.to(torch.float16), fp

    # -- scoring -------------------------------------------------------------------
    def _score_with(self, gaussian: GaussianModel, emb: torch.Tensor, origin: tuple[int, int]
                    ) -> torch.Tensor:
        p = self.config.period
        maps = [gaussian.score_map(emb, p, (origin[0] - oy, origin[1] - ox))
                for oy, ox in self._offsets()]
        return torch.stack(maps).mean(0) if len(maps) > 1 else maps[0]

    def _score_blocks(self, gaussian: GaussianModel, blocks: torch.Tensor, t: Tile,
                      offsets: list[tuple[int, int]]) -> np.ndarray:
        """h x w squared distances of tile ``t``'s phase blocks, averaged over ``offsets``."""
        p = self.config.period
        total = None
        for oy, ox in offsets:
            d2 = gaussian.score_blocks(blocks, phase_classes(p, (t.y0 - oy, t.x0 - ox)))
            total = d2 if total is None else total.add_(d2)
        if len(offsets) > 1:
            total /= len(offsets)
        return from_blocks(total, p, t.y1 - t.y0, t.x1 - t.x0).numpy()

    def _fit_blind(self, stats: StreamingGaussian) -> GaussianModel:
        count = stats.count
        mean, cov = GaussianModel.covariance_from_sums(count.clamp_min(2), stats.sum,
                                                       stats.outer)
        if self.gaussian is not None and self.config.blind_prior > 0:
            ref_cov = self.gaussian.covariance().double()
            kappa = self.config.blind_prior * cov.shape[-1]
            n = count[:, None, None]
            cov = (n * cov + kappa * ref_cov) / (n + kappa)
        return GaussianModel.from_covariance(mean, cov, count.clamp_min(2),
                                             self.config.shrinkage)

    def _blind_stats(self, cache: list[tuple[Tile, torch.Tensor]],
                     keep: dict[Tile, torch.Tensor]) -> StreamingGaussian:
        stats = StreamingGaussian(self.n_classes, cache[0][1].shape[-1])
        p = self.config.period
        for t, blocks in cache:
            stats.update_blocks(blocks, phase_classes(p, (t.y0, t.x0)), keep[t])
        return stats

    def score_image(self, image: np.ndarray, mode: str | None = None) -> ScoreMaps:
        """Smoothed raw anomaly map and fingerprint of an H x W x 3 float image."""
        mode = mode or self.config.mode
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "reference" and self.gaussian is None:
            raise ValueError("this detector has no reference fit: use mode='blind'")
        prepare_cpu()
        h, w = image.shape[:2]
        p = self.config.period
        raw = np.empty((h, w), np.float32)
        fingerprint = np.empty((h, w), np.float32)
        source = TileSource(image, self.halo, extra=p - 1)
        tiles = plan_tiles(h, w, self.config.tile, p)

        def put(out: np.ndarray, t: Tile, values: np.ndarray) -> None:
            y1, x1 = min(t.y1, h), min(t.x1, w)
            out[t.y0:y1, t.x0:x1] = values[:y1 - t.y0, :x1 - t.x0]

        with reuse_large_blocks():
            if mode == "reference":
                offsets = self._offsets()
                for t in tiles:
                    blocks, fp = self._embed_blocks(source, t)
                    put(fingerprint, t, fp)
                    put(raw, t, self._score_blocks(self.gaussian, blocks, t, offsets))
                    del blocks
            else:
                self._score_blind(source, tiles, (h, w), raw, fingerprint, put)
        smoothed = smooth(raw, self.config.smoothing_sigma)
        del raw
        if self.config.score_direction == "two-sided":
            smoothed = two_sided_deviation(smoothed)
        evidence = None
        if self.config.noise_statistics:
            # Same units for all three maps (robust z of a log statistic), then the
            # pixel-wise maximum: whichever trace is inconsistent there raises the score.
            smoothed /= np.float32(MAD_TO_SIGMA)
            evidence = np.zeros(smoothed.shape, np.uint8)
            for code, statistic in ((1, noise_level_deviation), (2, noise_spectrum_deviation)):
                values = statistic(image)
                evidence[values > smoothed] = code
                np.maximum(smoothed, values, out=smoothed)
                del values
            if self.config.jpeg_traces:
                image_stat = self._fuse_jpeg(image, smoothed, evidence)
                return ScoreMaps(smoothed, fingerprint, evidence, image_stat)
        return ScoreMaps(smoothed, fingerprint, evidence)

    def _fuse_jpeg(self, image: np.ndarray, fused: np.ndarray, evidence: np.ndarray
                   ) -> float | None:
        """Fold the JPEG lattice evidence into the fused map, in place; return the image
        statistic (``None``: no lattice, the plain quantile of the map).

        Where the image shows a JPEG lattice, a block off it is evidence of a foreign region
        (the map takes the larger of the two scores), and a block on it is evidence of the
        host, which can lower the other statistics' scores there by ``jpeg_host_discount``
        times that evidence. Images without a lattice are left as they are. The discount is
        0 by default, chosen on the validation sets (docs/BENCHMARKS.md, session 6): 0.25
        localizes better in images saved losslessly after the edit (pixel AUC +0.013) but
        worse after a recompression (-0.05 at quality 90), where the last compression puts
        the pasted region on the host's lattice too and the discount hides it.

        The image score is another matter: there a discount separates forged from
        pristine images better in every condition tried on the validation sets,
        recompressed ones included: on a pristine JPEG the noise statistics' tails are
        content, which the lattice vouches for. The image statistic is the quantile of
        ``max(fused - jpeg_image_discount * host, jpeg_image_weight * z)``; discount 1 and
        weight 2, chosen on validation (docs/BENCHMARKS.md, session 6), raise the mean
        detection AUC over the six validation sets from 0.865 to 0.964 clean, 0.690 to
        0.868 at quality 95 and 0.657 to 0.759 at quality 90 (against no discount and
        weight 1), while the heatmap keeps ``jpeg_host_discount``.
        """
        cfg = self.config
        z = lattice_evidence(image, window=cfg.jpeg_window)
        if z is None:
            return None
        image_map = image_score_map(fused, z, cfg.jpeg_image_discount, cfg.jpeg_image_weight)
        statistic = region_quantile(image_map, cfg.image_quantile, cfg.image_smoothing)
        del image_map
        if cfg.jpeg_host_discount:  # 0 in the shipped default: no pass over the map
            fused -= np.float32(cfg.jpeg_host_discount) * np.maximum(-z, np.float32(0.0))
        evidence[z > fused] = EVIDENCE.index("JPEG lattice")
        np.maximum(fused, z, out=fused)
        return statistic

    def _embedding_dim(self) -> int:
        """D, from one small forward pass, remembered per choice of taps and channels."""
        key = (self.taps, None if self.channel_index is None
               else tuple(self.channel_index.tolist()))
        dims = self.__dict__.setdefault("_dims", {})
        if key not in dims:
            dims[key] = int(self.embed_tensor(torch.zeros(1, 3, 16, 16))[0].shape[1])
        return dims[key]

    def _score_blind(self, source: TileSource, tiles: list[Tile], size: tuple[int, int],
                     raw: np.ndarray, fingerprint: np.ndarray, put) -> None:
        """Blind mode: fit on the cached tiles, trim, refit, then score every tile."""
        h, w = size
        p, cfg = self.config.period, self.config
        # the cache: float16, or float32 without a reference fit (see _blind_blocks)
        per_pixel = self._embedding_dim() * (2 if self.gaussian is not None else 4)
        budget = blind_cache_bytes()
        if sum((t.y1 - t.y0) * (t.x1 - t.x0) for t in tiles) * per_pixel <= budget:
            fitted = list(tiles)
        else:
            biggest = max((t.y1 - t.y0) * (t.x1 - t.x0) for t in tiles)
            # At least two tiles: each fitted tile is scored by the others' fit (below).
            fitted = pick_spread(tiles, max(2, int(budget // (biggest * per_pixel))))
        whole = len(fitted) == len(tiles)

        cache: list[tuple[Tile, torch.Tensor]] = []
        keep: dict[Tile, torch.Tensor] = {}
        for t in fitted:
            blocks, fp = self._blind_blocks(source, t)
            put(fingerprint, t, fp)
            cache.append((t, blocks))
            del blocks
            inside = torch.zeros(t.y1 - t.y0, t.x1 - t.x0, dtype=torch.bool)
            inside[:min(t.y1, h) - t.y0, :min(t.x1, w) - t.x0] = True
            keep[t] = mask_to_blocks(inside, p)
        # Blind Gaussians are indexed by the absolute phase, like the blind fit itself.
        stats = self._blind_stats(cache, keep)
        g = self._fit_blind(stats)
        if cfg.blind_trim > 0:
            first = {t: self._score_blocks(g, b, t, [(0, 0)]) for t, b in cache}
            if whole:  # exactly the whole-image rule: smooth the map, one quantile
                for t, d2 in first.items():
                    put(raw, t, d2)
                sm = smooth(raw, cfg.smoothing_sigma)
                excluded = sm > np.quantile(sm, 1 - cfg.blind_trim)
                del sm
                crops = {t: excluded[t.y0:t.y1, t.x0:t.x1] for t in fitted}
            else:  # a subset of tiles: smooth each on its own, one shared threshold
                sms = {t: smooth(d2[:min(t.y1, h) - t.y0, :min(t.x1, w) - t.x0],
                                 cfg.smoothing_sigma) for t, d2 in first.items()}
                thr = np.quantile(np.concatenate([v.ravel() for v in sms.values()]),
                                  1 - cfg.blind_trim)
                crops = {t: v > thr for t, v in sms.items()}
            del first
            trimmed: dict[Tile, torch.Tensor] = {}
            for t in fitted:
                ex = torch.zeros(t.y1 - t.y0, t.x1 - t.x0, dtype=torch.bool)
                c = crops[t]
                ex[:c.shape[0], :c.shape[1]] = torch.from_numpy(np.ascontiguousarray(c))
                trimmed[t] = mask_to_blocks(ex, p) & keep[t]
            if whole:  # refit without the trimmed pixels: only they are summed again
                removed = StreamingGaussian(self.n_classes, stats.dim)
                for t, blocks in cache:
                    if trimmed[t].any():
                        removed.update_blocks(blocks, phase_classes(p, (t.y0, t.x0)),
                                              trimmed[t])
                stats = stats.subtract(removed)
            keep = {t: keep[t] & ~trimmed[t] for t in fitted}
        if whole:
            g = self._fit_blind(stats) if cfg.blind_trim > 0 else g
            for t, blocks in cache:
                put(raw, t, self._score_blocks(g, blocks, t, [(0, 0)]))
        else:
            # The fitted tiles' own pixels would score lower than the others' (in-sample),
            # a tile-shaped bias that the two-sided score reads as an anomaly: each fitted
            # tile is scored with the Gaussians of the *other* fitted tiles.
            own = {}
            for t, blocks in cache:
                own[t] = StreamingGaussian(self.n_classes, stats.dim)
                own[t].update_blocks(blocks, phase_classes(p, (t.y0, t.x0)), keep[t])
            stats = StreamingGaussian(self.n_classes, stats.dim)
            for st in own.values():
                stats.merge(st)
            g = self._fit_blind(stats)
            for t, blocks in cache:
                put(raw, t, self._score_blocks(self._fit_blind(stats.subtract(own[t])),
                                               blocks, t, [(0, 0)]))
            del own
        cache.clear()
        fitted_set = set(fitted)
        for t in tiles:
            if t not in fitted_set:
                # Rounded like the fitted tiles were: channels that are nearly constant
                # are exactly constant in float16, and the fit has learnt them so.
                blocks, fp = self._blind_blocks(source, t)
                put(fingerprint, t, fp)
                put(raw, t, self._score_blocks(g, blocks, t, [(0, 0)]))
                del blocks

    def image_statistic(self, maps: ScoreMaps | np.ndarray) -> float:
        """The raw image statistic that the image calibration maps to a score: the
        ``image_quantile`` of the raw map smoothed by ``image_smoothing`` pixels, unless
        the fusion computed its own (from another map, summarised the same way)."""
        if isinstance(maps, ScoreMaps):
            if maps.image_statistic is not None:
                return maps.image_statistic
            maps = maps.raw
        return region_quantile(maps, self.config.image_quantile, self.config.image_smoothing)

    def calibrations_for(self, mode: str) -> tuple[Calibration | None, Calibration | None, bool]:
        """(pixel calibration, image calibration, whether they were fitted in ``mode``).

        A detector saved before per-mode calibration has only its own mode's; scores of
        the other mode are then calibrated with it (the third value says so).
        """
        if mode == self.config.mode:
            return self.calibration, self.image_calibration, True
        if mode in self.mode_calibrations:
            pixel, image = self.mode_calibrations[mode]
            return pixel, image, True
        return self.calibration, self.image_calibration, False

    # -- persistence ---------------------------------------------------------------
    def save(self, path: str | Path, **info: Any) -> Path:
        tensors = {f"extractor.{k}": v for k, v in self.extractor.state_dict().items()}
        if self.gaussian is not None:
            tensors.update(self.gaussian.state_dict())
        if self.channel_index is not None:
            tensors["channel_index"] = self.channel_index
        for name, cal in (("calibration", self.calibration),
                          ("image_calibration", self.image_calibration)):
            if cal is not None:
                tensors[name] = torch.from_numpy(cal.quantiles)
        for mode, (pixel, image) in self.mode_calibrations.items():
            tensors[f"calibration.{mode}"] = torch.from_numpy(pixel.quantiles)
            tensors[f"image_calibration.{mode}"] = torch.from_numpy(image.quantiles)
        meta = {"kind": "detector", "extractor": model_metadata(self.extractor),
                "detector": self.config.to_dict(), **self.info, **info}
        self.info.update(info)
        return save_tensors_with_sidecar(path, tensors, meta)

    @classmethod
    def load(cls, path: str | Path) -> Detector:
        tensors, meta = load_tensors_with_sidecar(path)
        if meta.get("kind") != "detector":
            raise ValueError(f"{path} is a {meta.get('kind', 'unknown')!r} file, not a detector "
                             "(fit one with `noisead fit-detector`)")
        ext = meta["extractor"]
        model = build_model(ext["architecture"], ext["config"])
        model.load_state_dict({k[10:]: v for k, v in tensors.items()
                               if k.startswith("extractor.")})
        gaussian = (GaussianModel.from_state_dict(tensors) if "gaussian.mean" in tensors
                    else None)
        cal = tensors.get("calibration")
        icl = tensors.get("image_calibration")
        info = {k: v for k, v in meta.items()
                if k not in {"kind", "extractor", "detector", "format_version"}}
        per_mode = {m: (Calibration(tensors[f"calibration.{m}"].double().numpy()),
                        Calibration(tensors[f"image_calibration.{m}"].double().numpy()))
                    for m in MODES if f"calibration.{m}" in tensors
                    and f"image_calibration.{m}" in tensors}
        return cls(model, DetectorConfig.from_dict(meta["detector"]), gaussian,
                   Calibration(cal.double().numpy()) if cal is not None else None,
                   Calibration(icl.double().numpy()) if icl is not None else None,
                   tensors.get("channel_index"), info, per_mode)

    def describe(self) -> dict[str, Any]:
        return {"architecture": model_metadata(self.extractor)["architecture"],
                "extractor_config": config_to_dict(self.extractor.config),
                "taps": list(self.taps), "mode": self.config.mode,
                "precision": self.precision}


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
