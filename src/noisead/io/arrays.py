"""Arrays in and out of the house image format (``float32`` ``H x W x 3`` RGB in ``[0, 1]``).

:func:`image_from_array` is the one way a caller's array becomes an image, and
:func:`to_uint8` the one way a float image or map becomes 8-bit: rounded to nearest, so
that saving a loaded 8-bit image is lossless, and clipped, so that out-of-range values
never wrap around.
"""

from __future__ import annotations

import numpy as np

__all__ = ["image_from_array", "scale_to_unit", "to_uint8"]

_UINT8_BAND_ELEMENTS = 1 << 22


def scale_to_unit(a: np.ndarray, full: float) -> np.ndarray:
    """Integer samples to float32 ``[0, 1]``; division keeps ``full -> 1.0`` exact."""
    return np.ascontiguousarray(np.divide(a, np.float32(full), dtype=np.float32))


def image_from_array(array: np.ndarray) -> np.ndarray:
    """Validate a caller-supplied array and return a new float32 ``H x W x 3`` RGB in [0, 1].

    Accepted: ``uint8`` (/255), ``uint16`` (/65535) or floating point already in
    ``[0, 1]`` (overshoot up to 1e-3 from resampling is clipped); shapes ``H x W``,
    ``H x W x 1`` (gray, replicated), ``H x W x 3`` (RGB) and ``H x W x 4`` (RGBA, alpha
    dropped). Anything else raises ``ValueError`` naming the problem, because a silently
    mis-scaled image (e.g. floats in 0..255) ruins a noise analysis without any error.
    """
    if not isinstance(array, np.ndarray):
        raise ValueError(f"expected a numpy array, got {type(array).__name__}")
    a = array
    if a.ndim == 3 and a.shape[2] in (1, 3, 4):
        pass
    elif a.ndim == 2:
        a = a[:, :, None]
    else:
        raise ValueError(
            f"expected an image of shape HxW, HxWx1, HxWx3 or HxWx4, got shape {array.shape}"
        )
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"image is empty (shape {array.shape})")
    if a.dtype == np.uint8:
        out = scale_to_unit(a, 255.0)
    elif a.dtype == np.uint16:
        out = scale_to_unit(a, 65535.0)
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ValueError("image contains NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo < -1e-3 or hi > 1.0 + 1e-3:
            hint = " (divide by 255?)" if hi > 1.0 + 1e-3 and hi <= 255.0 else ""
            raise ValueError(
                f"float image values must lie in [0, 1], got range [{lo:g}, {hi:g}]{hint}"
            )
        out = np.clip(a, 0.0, 1.0).astype(np.float32)
    elif a.dtype == np.bool_:
        raise ValueError("got a bool array: that is a mask, not an image")
    else:
        raise ValueError(f"unsupported image dtype {a.dtype}; use uint8, uint16 or float in [0, 1]")
    channels = out.shape[2]
    if channels == 1:
        out = np.repeat(out, 3, axis=2)
    elif channels == 4:
        out = out[:, :, :3]
    return np.ascontiguousarray(out, dtype=np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] -> uint8, rounding to nearest and clipping out-of-range values.

    Rounding (not truncation) makes ``to_uint8(x / 255) == x`` exact for every uint8 ``x``,
    so saving a loaded 8-bit image is lossless. NaN maps to 0. ``uint8`` input is returned
    as a copy and ``bool`` input maps to 0/255; other integer types raise ``ValueError``
    because their scale is ambiguous. The product with 255 is taken in float64 for float64
    input and in float32 otherwise, so no value is rounded twice.
    """
    a = np.asarray(image)
    if a.dtype == np.uint8:
        return a.copy()
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * np.uint8(255)
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"to_uint8 expects a float image in [0, 1], got dtype {a.dtype}")
    work = np.float64 if a.dtype == np.float64 else np.float32
    if a.ndim == 0:
        return _float_band_to_uint8(a[None], work)[0]
    out = np.empty(a.shape, np.uint8)
    # converted in bands of rows, so a 24-megapixel RGB image needs ~16 MB of float work
    # space instead of several full-size float copies
    rows = max(1, _UINT8_BAND_ELEMENTS // max(1, a[0].size))
    for r0 in range(0, a.shape[0], rows):
        out[r0:r0 + rows] = _float_band_to_uint8(a[r0:r0 + rows], work)
    return out


def _float_band_to_uint8(band: np.ndarray, work: type[np.floating]) -> np.ndarray:
    scaled = np.multiply(band, work(255.0), dtype=work)
    np.nan_to_num(scaled, copy=False, nan=0.0)
    np.clip(scaled, 0, 255, out=scaled)
    np.rint(scaled, out=scaled)
    return scaled.astype(np.uint8)
