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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from noisead.anomaly.embed import concat_maps, forward_with_taps
from noisead.anomaly.gaussian import GaussianModel, StreamingGaussian
from noisead.anomaly.score import Calibration, smooth
from noisead.anomaly.tiling import iter_tiles, pad_reflect, round_up, tile_input
from noisead.models.registry import (
    build_model,
    config_to_dict,
    load_tensors_with_sidecar,
    model_metadata,
    save_tensors_with_sidecar,
)
from noisead.runtime import resolve_precision

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
    mode: str = "blind"
    blind_trim: float = 0.2               # fraction of most anomalous pixels left out of refit
    blind_prior: float = 1.0              # weight of the reference covariance, in units of D
    threshold: float = 0.99               # on the calibrated heatmap
    image_quantile: float = 0.99          # image statistic: this quantile of the raw map
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
        if d.get("taps"):
            d["taps"] = tuple(d["taps"])
        return cls(**d)

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.patch_size % self.period:
            raise ValueError("period must divide patch_size")
        if self.crop_size < self.patch_size or (self.crop_size - self.patch_size) % 16:
            raise ValueError("crop_size - patch_size must be a non-negative multiple of 16 "
                             "(the kept patch stays on the 8x8 grid)")


@dataclass
class ScoreMaps:
    raw: np.ndarray          # smoothed squared Mahalanobis distance, H x W
    fingerprint: np.ndarray  # the extractor's output, H x W


@dataclass
class Detector:
    extractor: nn.Module
    config: DetectorConfig = field(default_factory=DetectorConfig)
    gaussian: GaussianModel | None = None
    calibration: Calibration | None = None
    image_calibration: Calibration | None = None
    channel_index: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)

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
        return round_up(int(getattr(self.extractor, "halo", 32)), 8)

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
    def embed_tensor(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(embedding B x D x H x W, fingerprint B x 1 x H x W) from one forward pass."""
        output, maps = forward_with_taps(self.extractor, x, self.taps,
                                         precision=self.config.precision)
        emb = concat_maps(maps, self.taps, channel_index=self.channel_index)
        return emb, output.mean(1, keepdim=True)

    def iter_embeddings(self, image: np.ndarray):
        """Yield (tile, embedding D x h x w, fingerprint h x w) over the whole image."""
        halo = self.halo
        padded = pad_reflect(image, halo)
        for t in iter_tiles(image.shape[0], image.shape[1], self.config.tile):
            emb, fp = self.embed_tensor(tile_input(padded, t, halo))
            h, w = t.y1 - t.y0, t.x1 - t.x0
            yield t, emb[0, :, halo:halo + h, halo:halo + w], fp[0, 0, halo:halo + h,
                                                                   halo:halo + w]

    # -- scoring -------------------------------------------------------------------
    def _score_with(self, gaussian: GaussianModel, emb: torch.Tensor, origin: tuple[int, int]
                    ) -> torch.Tensor:
        p = self.config.period
        maps = [gaussian.score_map(emb, p, (origin[0] - oy, origin[1] - ox))
                for oy, ox in self._offsets()]
        return torch.stack(maps).mean(0) if len(maps) > 1 else maps[0]

    def _score_tiles(self, gaussian: GaussianModel, tiles: list[tuple[Any, torch.Tensor]],
                     out: np.ndarray) -> None:
        # Blind Gaussians are indexed by the absolute phase, like the blind fit itself.
        for t, emb in tiles:
            out[t.y0:t.y1, t.x0:t.x1] = gaussian.score_map(emb.float(), self.config.period,
                                                           (t.y0, t.x0)).numpy()

    def _fit_blind(self, tiles: list[tuple[Any, torch.Tensor]],
                   exclude: np.ndarray | None) -> GaussianModel:
        stats = StreamingGaussian(self.n_classes, tiles[0][1].shape[0])
        for t, emb in tiles:
            ex = (None if exclude is None
                  else torch.from_numpy(exclude[t.y0:t.y1, t.x0:t.x1]))
            stats.update_map(emb.float(), self.config.period, (t.y0, t.x0), ex)
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

    def score_image(self, image: np.ndarray, mode: str | None = None) -> ScoreMaps:
        """Smoothed raw anomaly map and fingerprint of an H x W x 3 float image."""
        mode = mode or self.config.mode
        h, w = image.shape[:2]
        raw = np.empty((h, w), np.float32)
        fingerprint = np.empty((h, w), np.float32)
        if mode == "reference":
            if self.gaussian is None:
                raise ValueError("this detector has no reference fit: use mode='blind'")
            for t, emb, fp in self.iter_embeddings(image):
                raw[t.y0:t.y1, t.x0:t.x1] = self._score_with(self.gaussian, emb,
                                                             (t.y0, t.x0)).numpy()
                fingerprint[t.y0:t.y1, t.x0:t.x1] = fp.numpy()
        elif mode == "blind":
            tiles = []
            for t, emb, fp in self.iter_embeddings(image):
                tiles.append((t, emb.to(torch.float16)))
                fingerprint[t.y0:t.y1, t.x0:t.x1] = fp.numpy()
            g = self._fit_blind(tiles, None)
            self._score_tiles(g, tiles, raw)
            if self.config.blind_trim > 0:
                sm = smooth(raw, self.config.smoothing_sigma)
                exclude = sm > np.quantile(sm, 1 - self.config.blind_trim)
                g = self._fit_blind(tiles, exclude)
                self._score_tiles(g, tiles, raw)
        else:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        return ScoreMaps(smooth(raw, self.config.smoothing_sigma), fingerprint)

    def image_statistic(self, raw: np.ndarray) -> float:
        return float(np.quantile(raw, self.config.image_quantile))

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
        return cls(model, DetectorConfig.from_dict(meta["detector"]), gaussian,
                   Calibration(cal.double().numpy()) if cal is not None else None,
                   Calibration(icl.double().numpy()) if icl is not None else None,
                   tensors.get("channel_index"), info)

    def describe(self) -> dict[str, Any]:
        return {"architecture": model_metadata(self.extractor)["architecture"],
                "extractor_config": config_to_dict(self.extractor.config),
                "taps": list(self.taps), "mode": self.config.mode,
                "precision": resolve_precision(self.config.precision)}
