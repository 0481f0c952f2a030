"""Which pixels the metrics count: validated masks and maps, and the boundary band.

Hand-drawn ground truth is uncertain along the edges of a forgery, and noise residuals are
computed over windows that straddle them: the band of :func:`boundary_ignore_mask` leaves
those pixels out of every count (the Noiseprint / TruFor evaluation).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["as_mask", "boundary_ignore_mask", "counted_pixels", "disk"]


def as_mask(mask: np.ndarray, what: str) -> np.ndarray:
    """``mask`` as ``bool``; ints or floats holding only 0 and 1 are accepted."""
    arr = np.asarray(mask)
    if arr.dtype == bool:
        return arr
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{what} must be bool (or hold only 0 and 1), got values outside {{0, 1}}")
    return arr.astype(bool)


def counted_pixels(
    heatmap: np.ndarray, mask: np.ndarray, ignore: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.dtype]:
    """Check shapes and values; return the counted pixels' scores and labels (bool), flat,
    and the map's dtype (which decides how a threshold compares, see the metrics)."""
    scores = np.asarray(heatmap)
    if scores.ndim != 2:
        raise ValueError(f"heatmap must be 2-D (H x W), got shape {scores.shape}")
    if scores.dtype != bool and (
        not np.issubdtype(scores.dtype, np.number) or np.iscomplexobj(scores)
    ):
        raise ValueError(f"heatmap must be real-valued, got dtype {scores.dtype}")
    labels = as_mask(mask, "mask")
    if labels.shape != scores.shape:
        raise ValueError(f"mask shape {labels.shape} differs from heatmap shape {scores.shape}")
    dtype = scores.dtype
    # Sort in the map's own precision where it is float32 (half the memory traffic).
    work = np.float32 if dtype in (np.float16, np.float32) else np.float64
    scores = scores.astype(work, copy=False)
    if ignore is not None:
        keep = ~as_mask(ignore, "ignore")
        if keep.shape != scores.shape:
            raise ValueError(f"ignore shape {keep.shape} differs from heatmap shape {scores.shape}")
        scores, labels = scores[keep], labels[keep]
    else:
        scores, labels = scores.ravel(), labels.ravel()
    if not np.isfinite(scores).all():
        raise ValueError("heatmap holds NaN or infinite values among the counted pixels")
    return scores, labels, dtype


def disk(radius: int) -> np.ndarray:
    """A ``(2r+1) x (2r+1)`` bool disk, ``x^2 + y^2 <= r^2``: the band's structuring element."""
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return (xx * xx + yy * yy) <= radius * radius


def boundary_ignore_mask(mask: np.ndarray, erode_px: int = 15, dilate_px: int = 11) -> np.ndarray:
    """Pixels to leave out near the mask's boundary (``True`` = ignored).

    Hand-drawn ground truth is uncertain along the edges of a forgery, and noise residuals
    are computed over windows that straddle them; following the Noiseprint / TruFor
    evaluation, tampered pixels count only inside the erosion of the mask by a disk of
    radius ``erode_px`` and pristine pixels only outside its dilation by a disk of radius
    ``dilate_px``. Equal to ``scipy.ndimage.binary_erosion`` / ``binary_dilation`` with
    :func:`disk` structuring elements, computed through Euclidean distance transforms
    (linear time, exact for the disk ``x^2 + y^2 <= r^2``). The image border is not a
    forgery boundary: a mask touching it is not eroded from that side (erosion with
    ``border_value=1``). A small forgery may erode away entirely, which leaves no tampered
    pixel to count and makes the localization metrics ``NaN``.
    """
    m = as_mask(mask, "mask")
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {m.shape}")
    if erode_px < 0 or dilate_px < 0:
        raise ValueError("erode_px and dilate_px must be >= 0")
    if not m.any() or m.all():
        eroded, dilated = m.copy(), m.copy()
    else:
        # Distance from each tampered pixel to the nearest pristine one, and vice versa.
        eroded = ndimage.distance_transform_edt(m) > erode_px
        dilated = ndimage.distance_transform_edt(~m) <= dilate_px
    return (m & ~eroded) | (~m & dilated)
