"""Whole-image embedding by overlapping tiles, so memory does not grow with the image.

Cutting an image into P x P patches and embedding each with its C x C context, as the
method describes, gives exactly the same values as running the convolutional extractor on
the whole image and reading the P x P windows, as long as the context covers the receptive
field (DnCNN: ``depth`` pixels each side). So the image is processed in large tiles, each
with a halo of context that is computed and thrown away: the overlapping regions of
neighbouring patches are computed once, not once per patch. Borders are covered by
reflecting the image by the halo. (Restormer's attention sees a whole tile, so for it the
tile size matters slightly; its halo is a setting.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Tile:
    """Output window ``[y0:y1, x0:x1]`` of the image, computed from the padded input
    window that starts ``halo`` pixels earlier on each side."""

    y0: int
    y1: int
    x0: int
    x1: int


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def iter_tiles(height: int, width: int, tile: int) -> Iterator[Tile]:
    """Non-overlapping output tiles covering the image (the last row/column may be smaller)."""
    for y0 in range(0, height, tile):
        for x0 in range(0, width, tile):
            yield Tile(y0, min(y0 + tile, height), x0, min(x0 + tile, width))


def pad_reflect(image: np.ndarray, halo: int) -> np.ndarray:
    """Reflect-pad an H x W x C image by ``halo`` (repeatedly for images smaller than it)."""
    out = image
    remaining = halo
    while remaining > 0:
        step = min(remaining, out.shape[0] - 1, out.shape[1] - 1)
        if step <= 0:
            return np.pad(image, ((halo, halo), (halo, halo), (0, 0)), mode="edge")
        out = np.pad(out, ((step, step), (step, step), (0, 0)), mode="reflect")
        remaining -= step
    return out


def tile_input(padded: np.ndarray, t: Tile, halo: int) -> torch.Tensor:
    """The 1 x 3 x h x w tensor that produces tile ``t`` (padded image coordinates)."""
    crop = padded[t.y0:t.y1 + 2 * halo, t.x0:t.x1 + 2 * halo]
    return torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))[None].float()
