"""Post-processing that a forged image may undergo after the camera: recompression, resizing.

Training the extractor on patches that went through the same post-processing teaches it
camera traces that survive it (the thesis' method lost most of its accuracy after JPEG
quality 90 or a resize by 0.9). Every function works on a *region* around a patch so a
batch can be augmented without touching whole images.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from noisead.io import to_uint8
from noisead.io.jpeg import jpeg_round_trip


@dataclass
class AugmentConfig:
    """Probabilities and ranges of the post-processing applied to a whole training batch.

    One draw per batch: every patch of the batch gets the same operation, as every pixel of
    a recompressed forgery does; the extractor must still tell cameras apart after it.
    """

    p_jpeg: float = 0.0
    jpeg_quality: tuple[int, int] = (70, 100)
    p_misaligned: float = 0.5
    p_resize: float = 0.0
    resize_range: tuple[float, float] = (0.7, 1.3)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def enabled(self) -> bool:
        return self.p_jpeg > 0 or self.p_resize > 0


@dataclass(frozen=True)
class Operation:
    """One drawn post-processing: JPEG at ``quality`` with grid ``offset``, then ``scale``."""

    quality: int | None = None
    offset: tuple[int, int] = (0, 0)
    scale: float = 1.0

    @property
    def is_identity(self) -> bool:
        return self.quality is None and self.scale == 1.0


def draw_operation(config: AugmentConfig, rng: np.random.Generator) -> Operation:
    quality, offset, scale = None, (0, 0), 1.0
    if rng.random() < config.p_jpeg:
        quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
        if rng.random() < config.p_misaligned:
            offset = (int(rng.integers(0, 8)), int(rng.integers(0, 8)))
    if rng.random() < config.p_resize:
        scale = float(rng.uniform(*config.resize_range))
    return Operation(quality, offset, scale)


def resample(region: np.ndarray, scale: float) -> np.ndarray:
    """Resize a uint8 RGB array by ``scale`` with bicubic interpolation."""
    h, w = region.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(region).resize(size, Image.Resampling.BICUBIC))


def context_needed(op: Operation, patch: int, margin: int = 16) -> int:
    """Pixels needed around a patch (each side) to apply ``op`` without border effects."""
    return int(np.ceil((patch / 2 + margin) / min(op.scale, 1.0) - patch / 2)) + 8


def apply_to_patch(image: np.ndarray, y: int, x: int, patch: int, op: Operation) -> np.ndarray:
    """The ``patch x patch`` uint8 crop at (y, x) as it looks after ``op``.

    For JPEG the region is cut so that the new 8x8 grid starts ``offset`` pixels before the
    old one (misaligned double compression); for a resize the region is scaled about the
    patch centre, so that the same (y, x) in two images still maps to the same content.
    """
    if op.is_identity:
        return image[y:y + patch, x:x + patch]
    c = context_needed(op, patch)
    h, w = image.shape[:2]
    y0, x0 = max(0, y - c + op.offset[0]), max(0, x - c + op.offset[1])
    y1, x1 = min(h, y + patch + c), min(w, x + patch + c)
    region = image[y0:y1, x0:x1]
    cy, cx = y - y0 + patch / 2, x - x0 + patch / 2  # patch centre inside the region
    if op.quality is not None:
        region = jpeg_round_trip(region, op.quality, subsampling=0)
    if op.scale != 1.0:
        region = resample(region, op.scale)
        cy, cx = cy * op.scale, cx * op.scale
    ty, tx = int(round(cy - patch / 2)), int(round(cx - patch / 2))
    ty = min(max(ty, 0), region.shape[0] - patch)
    tx = min(max(tx, 0), region.shape[1] - patch)
    return region[ty:ty + patch, tx:tx + patch]


def postprocess_image(image: np.ndarray, *, jpeg_quality: int | None = None,
                      scale: float | None = None) -> np.ndarray:
    """Whole-image post-processing for robustness sweeps (float [0, 1] in and out)."""
    u8 = to_uint8(image)
    if jpeg_quality is not None:
        u8 = jpeg_round_trip(u8, jpeg_quality, subsampling=2)
    if scale is not None and scale != 1.0:
        u8 = resample(u8, scale)
    return u8.astype(np.float32) / 255.0
