"""The image cut into tiles, and the two full-size maps that scoring fills tile by tile."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from noisead.anomaly.backends import ExtractorRunner
from noisead.anomaly.gaussian import GaussianModel, from_blocks, phase_classes
from noisead.anomaly.tiling import Tile, TileSource, plan_tiles


class Canvas:
    """Tiles of an H x W image and its ``distances`` and ``fingerprint`` maps (float32).

    Tiles are planned on the image rounded up to the position period (see
    :func:`~noisead.anomaly.tiling.plan_tiles`), so the bottom and right tiles may reach past
    the image; :meth:`put` writes only their pixels inside it. ``runner`` runs the
    extractor on each tile (None: PyTorch on the CPU); the modes embed with it.
    """

    def __init__(self, image: np.ndarray, halo: int, tile: int, period: int,
                 runner: ExtractorRunner | None = None) -> None:
        self.runner = runner
        self.height, self.width = image.shape[:2]
        self.source = TileSource(image, halo, extra=period - 1)
        self.tiles: list[Tile] = plan_tiles(self.height, self.width, tile, period)
        self.distances = np.empty((self.height, self.width), np.float32)
        self.fingerprint = np.empty((self.height, self.width), np.float32)

    def inside(self, t: Tile) -> tuple[int, int]:
        """Height and width of the part of tile ``t`` that lies inside the image."""
        return min(t.y1, self.height) - t.y0, min(t.x1, self.width) - t.x0

    def put(self, out: np.ndarray, t: Tile, values: np.ndarray) -> None:
        """Write tile ``t``'s ``values`` into the full-size map ``out``."""
        h, w = self.inside(t)
        out[t.y0:t.y0 + h, t.x0:t.x0 + w] = values[:h, :w]


def tile_distances(gaussian: GaussianModel, blocks: torch.Tensor, t: Tile, period: int,
                   offsets: Sequence[tuple[int, int]] = ((0, 0),), *,
                   centered: bool = False) -> np.ndarray:
    """h x w squared distances of tile ``t``'s phase blocks, averaged over patch-grid
    ``offsets`` (only an untied model has more than one). ``centered``: the blocks are
    already minus ``gaussian``'s means (one offset only; see ``Detector.embed_blocks``)."""
    if centered and len(offsets) != 1:
        raise ValueError("centered blocks belong to one patch-grid offset")
    total = None
    for oy, ox in offsets:
        d2 = gaussian.score_blocks(blocks, phase_classes(period, (t.y0 - oy, t.x0 - ox)),
                                   centered=centered)
        total = d2 if total is None else total.add_(d2)
    if len(offsets) > 1:
        total /= len(offsets)
    return from_blocks(total, period, t.y1 - t.y0, t.x1 - t.x0).cpu().numpy()
