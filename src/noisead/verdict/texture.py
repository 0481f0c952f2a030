"""Is there enough noise-bearing content in an image to judge it at all?

A noise-trace detector reads the small, random variations of the pixels. A flat, black,
blown-out or synthetic image has none (or only the rounding of 8-bit values), and a tiny
image has too few of them: on such inputs any score is an artefact of the input, not
evidence. :func:`check_texture` says so up front, so the verdict can be "not enough
texture to judge" instead of a number that reads like a finding.

A block of the luminance counts as *usable* when at most half of it is clipped at black
or white and its high-pass residual varies by more than 8-bit rounding does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: Side of the square blocks the image is judged in, pixels.
BLOCK = 32
#: The smallest side of an image that gets a score.
MIN_SIDE = 128
#: Usable area needed to judge, pixels: as much as one 128 x 128 square, wherever it is
#: (a small textured region in a flat photo is exactly where a splice would show).
MIN_USABLE_PIXELS = 128 * 128
#: A block's robust residual spread (8-bit grey levels) above which it carries noise.
#: The 8-bit rounding of a smooth synthetic gradient stays below it; camera photos,
#: flat-field shots included, are above it almost everywhere.
MIN_RESIDUAL_SPREAD = 0.25
#: Share of clipped pixels (<= 1 or >= 254 of 255) above which a block is saturated.
MAX_CLIPPED_SHARE = 0.5
#: Rows of pixels processed at a time (a multiple of ``BLOCK``).
_BAND = 16 * BLOCK


@dataclass(frozen=True)
class TextureCheck:
    """Whether an image can be judged, and why not when it cannot.

    ``usable_pixels`` counts the pixels of usable blocks found before the scan stopped: the
    scan stops as soon as there are enough (``MIN_USABLE_PIXELS``), so on a judgeable image
    it is a lower bound, not the image's total.
    """

    judgeable: bool
    usable_pixels: int
    reason: str | None       # a short phrase when not judgeable ("the image is flat")

    def to_dict(self) -> dict[str, object]:
        return {"judgeable": self.judgeable, "usable_pixels": self.usable_pixels,
                "reason": self.reason}


def check_texture(image: np.ndarray) -> TextureCheck:
    """Judge whether ``image`` (H x W x 3 or H x W, floats in [0, 1]) has noise to read.

    Examples:
        >>> import numpy as np
        >>> check_texture(np.zeros((512, 512, 3), np.float32)).judgeable
        False
        >>> rng = np.random.default_rng(0)
        >>> noisy = np.clip(0.5 + 0.02 * rng.standard_normal((512, 512, 3)), 0, 1)
        >>> check_texture(noisy.astype(np.float32)).judgeable
        True
    """
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE:
        return TextureCheck(False, 0, f"the image is too small ({w}x{h} pixels; "
                                      f"at least {MIN_SIDE}x{MIN_SIDE} are needed)")
    usable = 0
    for band in usable_block_bands(image):
        usable += int(band.sum()) * BLOCK * BLOCK
        if usable >= MIN_USABLE_PIXELS:
            return TextureCheck(True, usable, None)
    clipped = _clipped_share(image)
    if clipped > MAX_CLIPPED_SHARE:
        reason = f"{round(100 * clipped)}% of the image is pure black or white"
    else:
        reason = "the image is flat: too few areas carry camera noise"
    return TextureCheck(False, usable, reason)


def usable_block_bands(image: np.ndarray) -> Iterator[np.ndarray]:
    """Boolean rows of the block grid, a band of rows at a time, one entry per full
    ``BLOCK`` x ``BLOCK`` block: True where the block is not mostly clipped and the spread
    of its luminance residual exceeds rounding.

    The residual is the luminance (0-255) minus its 3 x 3 mean; its spread is the median
    absolute deviation scaled to a standard deviation, so edges (a minority of a block's
    pixels) do not make a flat block look noisy. Bands keep the work space a few MB.
    """
    h, w = (image.shape[0] // BLOCK) * BLOCK, (image.shape[1] // BLOCK) * BLOCK
    for r0 in range(0, h, _BAND):
        top = 1 if r0 > 0 else 0  # one row of context above, for the 3 x 3 mean
        luma = _luma_255(image[r0 - top:min(r0 + _BAND + 1, h), :w])
        residual = luma - ndimage.uniform_filter(luma, size=3, mode="reflect")
        rows = min(_BAND, h - r0)
        residual, luma = residual[top:top + rows], luma[top:top + rows]
        blocks = _as_blocks(residual)
        med = np.median(blocks, axis=2, keepdims=True)
        spread = 1.4826 * np.median(np.abs(blocks - med), axis=2)
        clipped = _as_blocks(((luma <= 1.0) | (luma >= 254.0)).astype(np.float32)).mean(axis=2)
        yield (spread > MIN_RESIDUAL_SPREAD) & (clipped <= MAX_CLIPPED_SHARE)


def _as_blocks(a: np.ndarray) -> np.ndarray:
    """(H, W) → (H/B, W/B, B*B) view-copy of non-overlapping blocks."""
    rows, cols = a.shape[0] // BLOCK, a.shape[1] // BLOCK
    return (a.reshape(rows, BLOCK, cols, BLOCK).swapaxes(1, 2)
            .reshape(rows, cols, BLOCK * BLOCK))


def _luma_255(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 3:
        a = a[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    return a * np.float32(255.0)


def _clipped_share(image: np.ndarray) -> float:
    """Share of the image's pixels whose luminance is clipped at black or white."""
    clipped = sum(int(((luma <= 1.0) | (luma >= 254.0)).sum())
                  for luma in (_luma_255(image[r:r + _BAND]) for r in range(0, len(image), _BAND)))
    return clipped / float(image.shape[0] * image.shape[1])
