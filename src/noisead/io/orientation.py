"""EXIF and TIFF orientation: read it without trusting it, apply it to arrays as PIL does.

An analyst's heatmap must overlay the photo the way it is displayed, so the orientation
tag is applied by default; a damaged or out-of-range tag costs a note, never the pixels.
"""

from __future__ import annotations

import numpy as np
from PIL import ExifTags, Image

__all__ = ["EXIF_ORIENTATION", "INVERSE_ORIENTATION", "orient_array", "read_orientation",
           "tiff_layout"]

EXIF_ORIENTATION = ExifTags.Base.Orientation

INVERSE_ORIENTATION: dict[int, int] = {2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}
"""The orientation that undoes each one (6 and 8 are quarter turns the other way)."""


def tiff_layout(im: Image.Image) -> tuple[tuple[int, int], int | None]:
    """Stored ``(width, height)`` and TIFF orientation, read before PIL can rotate anything."""
    size = (int(im.size[0]), int(im.size[1]))
    if im.format != "TIFF":
        return size, None
    tags = getattr(im, "tag_v2", None)
    if tags is None:
        return size, None
    width, height = tags.get(256), tags.get(257)
    if isinstance(width, int) and isinstance(height, int):
        size = (width, height)
    orientation = tags.get(EXIF_ORIENTATION)
    return size, orientation if orientation in (2, 3, 4, 5, 6, 7, 8) else None


def read_orientation(im: Image.Image, notes: list[str]) -> int | None:
    """EXIF orientation 2..8 if the image needs transposing, else None."""
    try:
        value = im.getexif().get(EXIF_ORIENTATION)
    except Exception:  # damaged EXIF must not cost us the pixels
        notes.append("EXIF metadata could not be parsed; orientation ignored")
        return None
    if value is None or value == 1:
        return None
    if isinstance(value, int) and 2 <= value <= 8:
        return value
    notes.append(f"ignored invalid EXIF orientation {value!r}")
    return None


def orient_array(a: np.ndarray, orientation: int) -> np.ndarray:
    """Same transform as ``ImageOps.exif_transpose`` for an ``H x W x C`` array."""
    if orientation == 2:
        out = a[:, ::-1]
    elif orientation == 3:
        out = a[::-1, ::-1]
    elif orientation == 4:
        out = a[::-1]
    elif orientation == 5:
        out = a.swapaxes(0, 1)
    elif orientation == 6:
        out = np.rot90(a, k=-1)
    elif orientation == 7:
        out = a[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        out = np.rot90(a, k=1)
    else:
        out = a
    return np.ascontiguousarray(out)
