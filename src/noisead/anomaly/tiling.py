"""Whole-image embedding by overlapping tiles, so memory does not grow with the image.

Cutting an image into P x P patches and embedding each with its C x C context, as the
method describes, gives exactly the same values as running the convolutional extractor on
the whole image and reading the P x P windows, as long as the context covers the receptive
field (DnCNN: ``depth`` pixels each side). So the image is processed in large tiles, each
with a halo of context that is computed and thrown away: the overlapping regions of
neighbouring patches are computed once, not once per patch. Borders are covered by
reflecting the image by the halo. (Restormer's attention sees a whole tile, so for it the
tile size matters slightly; its halo is a setting.)

Memory: the reflected border is never materialised as a padded copy of the whole image (a
copy as large as the image itself): :class:`TileSource` keeps the row and column *indices*
of the reflected image (:func:`reflect_indices`) and cuts each tile's input straight from
the image.
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


def plan_tiles(height: int, width: int, tile: int, multiple: int = 1) -> list[Tile]:
    """Tiles of ``tile`` (rounded up to ``multiple``) covering the image rounded up to
    ``multiple``: every tile's height and width are multiples of ``multiple``, so the
    bottom and right tiles may reach up to ``multiple - 1`` pixels past the image (those
    pixels are computed from reflected context and then ignored).

    Why: with the 8 x 8 position classes laid out as whole blocks, each tile's pixels can be
    regrouped by phase with one reshape instead of 64 strided gathers.
    """
    tile = round_up(max(tile, multiple), multiple)
    return list(iter_tiles(round_up(height, multiple), round_up(width, multiple), tile))


def reflect_indices(height: int, width: int, halo: int) -> tuple[np.ndarray, np.ndarray]:
    """Source row and column of every pixel of the image reflect-padded by ``halo``.

    NumPy's ``reflect`` padding (the border pixel is not repeated), repeated for images
    smaller than the halo, and edge replication for images one pixel high or wide; applied
    to index vectors, so ``image[np.ix_(rows, cols)]`` is the padded image without a copy.
    """
    rows, cols = np.arange(height), np.arange(width)
    remaining = halo
    while remaining > 0:
        step = min(remaining, rows.size - 1, cols.size - 1)
        if step <= 0:
            return (np.pad(np.arange(height), halo, mode="edge"),
                    np.pad(np.arange(width), halo, mode="edge"))
        rows = np.pad(rows, step, mode="reflect")
        cols = np.pad(cols, step, mode="reflect")
        remaining -= step
    return rows, cols


class TileSource:
    """Cuts tile inputs (with their halo of reflected context) from an unpadded image.

    ``extra`` pixels beyond the bottom and right edges are also available (reflected), for
    tiles planned by :func:`plan_tiles` that reach past the image.
    """

    def __init__(self, image: np.ndarray, halo: int, extra: int = 0) -> None:
        self.image, self.halo = image, halo
        rows, cols = reflect_indices(image.shape[0], image.shape[1], halo + extra)
        # Drop the leading ``extra`` so that index 0 is the first pixel of the halo.
        self.rows, self.cols = rows[extra:], cols[extra:]

    def tile(self, t: Tile) -> torch.Tensor:
        """The 1 x 3 x h x w float32 tensor (channels-last memory) that produces tile ``t``."""
        r = self.rows[t.y0:t.y1 + 2 * self.halo]
        c = self.cols[t.x0:t.x1 + 2 * self.halo]
        crop = _take(_take(self.image, r, 0), c, 1)
        x = torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32))
        return x.permute(2, 0, 1)[None]


def _take(a: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray:
    """``np.take`` that is a view when the indices are a contiguous run (tiles inside the image)."""
    if idx.size and idx[-1] - idx[0] == idx.size - 1 and (np.diff(idx) == 1).all():
        sl = [slice(None)] * a.ndim
        sl[axis] = slice(int(idx[0]), int(idx[-1]) + 1)
        return a[tuple(sl)]
    return np.take(a, idx, axis=axis)

