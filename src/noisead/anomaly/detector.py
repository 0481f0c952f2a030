"""The detector: a fingerprint extractor, its taps, and the fitted pristine statistics.

State worth keeping together (the extractor, which layers are tapped, the per-position
Gaussians, the calibrations of scores on pristine images) lives in one :class:`Detector`,
saved as one safetensors file with a JSON sidecar (:mod:`noisead.anomaly.persistence`),
that scores an image in one call, :meth:`Detector.score_image`:

1. the image is cut into tiles, each embedded with one extractor pass (PaDiM's feature
   extraction, :mod:`noisead.anomaly.embed`; PyTorch or ONNX Runtime, on the CPU or a GPU:
   :mod:`noisead.anomaly.backends`) and scored against per-position Gaussians by the
   chosen :class:`~noisead.anomaly.config.Mode` (:mod:`noisead.anomaly.modes`);
2. the squared distances are smoothed and, two-sided, turned into a robust deviation from
   the image's own median (:func:`noisead.anomaly.score.two_sided_deviation`);
3. the config's evidence sources are fused in (:mod:`noisead.anomaly.fusion`).

The result is the raw map; calibration into a heatmap and an image score is the caller's
(:func:`noisead.infer.analyze`), with :meth:`Detector.calibrations_for` and
:meth:`Detector.image_statistic`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from noisead.anomaly.backends import ExtractorRunner, TorchRunner, select_runner
from noisead.anomaly.config import MODES, DetectorConfig, Mode
from noisead.anomaly.embed import blocks_from_maps, concat_maps, forward_with_taps
from noisead.anomaly.evidence import EVIDENCE
from noisead.anomaly.fusion import fuse
from noisead.anomaly.gaussian import GaussianModel, phase_classes
from noisead.anomaly.modes import SCORERS, Canvas
from noisead.anomaly.persistence import read_detector, save_detector
from noisead.anomaly.score import Calibration, region_quantile, smooth, two_sided_deviation
from noisead.anomaly.tiling import Tile, TileSource, iter_tiles, round_up
from noisead.models.dncnn import DnCNN
from noisead.models.registry import config_to_dict, model_metadata
from noisead.runtime import prepare_cpu, resolve_precision, reuse_large_blocks

__all__ = ["EVIDENCE", "MODES", "Detector", "DetectorConfig", "Mode", "ScoreMaps"]


@dataclass
class ScoreMaps:
    """What :meth:`Detector.score_image` found, before calibration (H x W arrays)."""

    #: The raw (uncalibrated) anomaly map: the smoothed squared Mahalanobis distance with
    #: ``score_direction="upper"``; two-sided, its deviation from the image's median in MAD
    #: units, or with evidence sources fused, the maximum of the robust z-scores.
    raw: np.ndarray
    fingerprint: np.ndarray  # the extractor's output
    #: with evidence sources: uint8, the index into ``EVIDENCE`` of the source that set
    #: each pixel's raw score (which trace is inconsistent there); None otherwise
    evidence: np.ndarray | None = None
    #: the raw image statistic, where it is not simply a quantile of ``raw`` (with the JPEG
    #: lattice fused: a quantile of the map with the image discount); None otherwise
    image_statistic: float | None = None


@dataclass
class Detector:
    """An extractor with its fitted Gaussians and calibrations; scores whole images.

    ``calibration`` and ``image_calibration`` belong to ``config.mode``;
    ``mode_calibrations`` holds the (pixel, image) calibrations of the other modes. Blind
    and reference scores have different distributions, so each mode needs its own for a
    threshold (or the image score) to mean the same thing in both.
    """

    extractor: nn.Module
    config: DetectorConfig = field(default_factory=DetectorConfig)
    gaussian: GaussianModel | None = None
    calibration: Calibration | None = None
    image_calibration: Calibration | None = None
    channel_index: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)
    mode_calibrations: dict[Mode, tuple[Calibration, Calibration]] = field(
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
        """How many position classes, hence Gaussians: ``position_period²``."""
        return self.config.position_period ** 2

    # -- embeddings ----------------------------------------------------------------
    @property
    def precision(self) -> str:
        """The precision the extractor runs in: ``config.precision`` resolved for this CPU.

        ``"auto"`` gives bfloat16 only where it is native *and* this detector was validated
        in it (``info["bf16_validated"]``, set by whoever checked that bfloat16 heatmaps
        match float32 ones): bfloat16 activations can lose the faint traces a detector
        scores (docs/BENCHMARKS.md, bfloat16 against float32). ``"bf16"`` forces it;
        ``NOISEAD_PRECISION`` overrides ``"auto"``.
        """
        return resolve_precision(self.config.precision,
                                 bf16_ok=bool(self.info.get("bf16_validated", False)))

    def embed_tensor(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(embedding B x D x H x W, fingerprint B x 1 x H x W) from one forward pass."""
        output, maps = forward_with_taps(self.extractor, x, self.taps,
                                         precision=self.precision)
        emb = concat_maps(maps, self.taps, channel_index=self.channel_index)
        return emb, output.mean(1, keepdim=True)

    def embedding_dim(self) -> int:
        """D, from one small forward pass, remembered per choice of taps and channels."""
        key = (self.taps, None if self.channel_index is None
               else tuple(self.channel_index.tolist()))
        dims = self.__dict__.setdefault("_dims", {})
        if key not in dims:
            dims[key] = int(self.embed_tensor(torch.zeros(1, 3, 16, 16))[0].shape[1])
        return dims[key]

    def iter_embeddings(self, image: np.ndarray
                        ) -> Iterator[tuple[Tile, torch.Tensor, torch.Tensor]]:
        """Yield (tile, embedding D x h x w, fingerprint h x w) over the whole image."""
        halo = self.halo
        source = TileSource(image, halo)
        for t in iter_tiles(image.shape[0], image.shape[1], self.config.tile):
            emb, fp = self.embed_tensor(source.tile(t))
            h, w = t.y1 - t.y0, t.x1 - t.x0
            yield t, emb[0, :, halo:halo + h, halo:halo + w], fp[0, 0, halo:halo + h,
                                                                   halo:halo + w]

    def runner(self, device: str | torch.device = "cpu", backend: str = "torch"
               ) -> ExtractorRunner:
        """What runs the extractor on ``device`` with ``backend`` (see
        :mod:`noisead.anomaly.backends`); ``"torch"`` on the CPU is the extractor itself."""
        return select_runner(self.extractor, self.taps, device=torch.device(device),
                             backend=backend, precision=self.precision)

    def embed_blocks(self, source: TileSource, t: Tile, dtype: torch.dtype = torch.float32,
                     runner: ExtractorRunner | None = None, center: bool = False
                     ) -> tuple[torch.Tensor, np.ndarray]:
        """(phase blocks ``position_period² x n x D``, fingerprint h x w) of tile ``t``.

        The blocks are on the ``runner``'s device (default: PyTorch on the CPU), the
        fingerprint a NumPy array. ``center``: each block minus the reference Gaussian's
        mean of its phase class, in the same pass that lays the blocks out (the values
        of ``blocks - mean``, without a second pass over them).
        """
        runner = runner or TorchRunner(self.extractor, self.taps, self.precision)
        output, maps = runner(source.tile(t))
        halo, h, w = self.halo, t.y1 - t.y0, t.x1 - t.x0
        means = None
        if center and self.gaussian is not None:
            classes = phase_classes(self.config.position_period, (t.y0, t.x0))
            means = self.gaussian.mean[classes].to(output.device)
        blocks = blocks_from_maps(maps, self.taps, (halo, halo, h, w),
                                  self.config.position_period,
                                  channel_index=self.channel_index, dtype=dtype, center=means)
        fp = output[0, :, halo:halo + h, halo:halo + w]
        # one channel (DnCNN): the channel itself, which is what its mean is, bit for bit
        fp = fp[0] if fp.shape[0] == 1 else fp.mean(0)
        return blocks, fp.cpu().numpy()

    # -- scoring -------------------------------------------------------------------
    def score_image(self, image: np.ndarray, mode: str | None = None, *,
                    device: str | torch.device = "cpu", backend: str = "torch") -> ScoreMaps:
        """The raw anomaly map and the fingerprint of an H x W x 3 float image.

        ``device`` and ``backend`` say where the extractor runs (and, on a GPU, the
        Gaussians' scoring: :mod:`noisead.anomaly.backends`). The default, PyTorch on the
        CPU, is the reference that fitting and calibration use; ``analyze()`` asks for
        ``"auto"``.
        """
        mode = mode or self.config.mode
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        prepare_cpu()
        runner = self.runner(device, backend)
        canvas = Canvas(image, self.halo, self.config.tile, self.config.position_period,
                        runner)
        with reuse_large_blocks():
            try:
                SCORERS[Mode(mode)](self, canvas)
            finally:
                runner.release()
        smoothed = smooth(canvas.distances, self.config.smoothing_sigma)
        fingerprint = canvas.fingerprint
        del canvas
        if self.config.score_direction == "two-sided":
            smoothed = two_sided_deviation(smoothed)
        fused = fuse(smoothed, image, self.config)
        return ScoreMaps(fused.raw, fingerprint, fused.evidence, fused.image_statistic)

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
        """Save to ``path`` (safetensors) and its sidecar; ``info`` joins ``self.info``."""
        written = save_detector(self, path, info)
        self.info.update(info)
        return written

    @classmethod
    def load(cls, path: str | Path) -> Detector:
        """A detector saved by :meth:`save`, in any sidecar layout this code knows."""
        return cls(**read_detector(path))

    def describe(self) -> dict[str, Any]:
        return {"architecture": model_metadata(self.extractor)["architecture"],
                "extractor_config": config_to_dict(self.extractor.config),
                "taps": list(self.taps), "mode": self.config.mode,
                "precision": self.precision}
