"""Every PIL mode to the house image format, keeping 16-bit precision, noting each change.

A forensic report must say exactly what was analysed, so each conversion (gray
replicated, alpha dropped, palette expanded, a float image rescaled) is appended to the
caller's ``notes``. PIL opens 16-bit colour PNG and TIFF files as 8-bit; those are read
again at full precision with OpenCV and checked against PIL's pixels.
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np
from PIL import Image

from noisead.io.arrays import scale_to_unit
from noisead.io.errors import ImageLoadError
from noisead.io.orientation import INVERSE_ORIENTATION, orient_array

__all__ = ["GRAY_NOTE", "decode_16bit_colour", "pil_to_float_rgb", "sixteen_bit_colour_mode"]

GRAY_NOTE = "grayscale replicated to 3 channels"
_ALPHA_NOTE = "dropped alpha channel"


def _gray3(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(a[:, :, None], 3, axis=2), dtype=np.float32)


def _rescale(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if hi == lo:
        return np.zeros(a.shape, dtype=np.float32)
    return ((a - lo) / (hi - lo)).astype(np.float32)


def pil_to_float_rgb(im: Image.Image, notes: list[str]) -> np.ndarray:
    """Every PIL mode we may meet -> float32 H x W x 3 in [0, 1], noting what changed."""
    mode = im.mode
    if mode == "1":
        notes.append("1-bit black-and-white image replicated to 3 channels")
        return _gray3(np.asarray(im, dtype=bool).astype(np.float32))
    if mode == "L":
        notes.append(GRAY_NOTE)
        return _gray3(scale_to_unit(np.asarray(im), 255.0))
    if mode in ("LA", "La"):
        if mode == "La":
            im = im.convert("LA")
        notes.extend([_ALPHA_NOTE, GRAY_NOTE])
        return _gray3(scale_to_unit(np.asarray(im)[:, :, 0], 255.0))
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        notes.append("palette image converted to RGB")
        if has_alpha:
            notes.append(_ALPHA_NOTE)
            return scale_to_unit(np.asarray(im.convert("RGBA"))[:, :, :3], 255.0)
        return scale_to_unit(np.asarray(im.convert("RGB")), 255.0)
    if mode == "RGB":
        return scale_to_unit(np.asarray(im), 255.0)
    if mode in ("RGBA", "RGBa", "RGBX"):
        if mode == "RGBa":
            im = im.convert("RGBA")
        if mode != "RGBX":
            notes.append(_ALPHA_NOTE)
        return scale_to_unit(np.asarray(im)[:, :, :3], 255.0)
    if mode.startswith("I;16"):
        notes.extend(["16-bit image scaled to [0,1]", GRAY_NOTE])
        return _gray3(scale_to_unit(np.asarray(im), 65535.0))
    if mode == "I":
        a = np.asarray(im)
        lo, hi = int(a.min()), int(a.max())
        if lo >= 0 and hi <= 65535:
            notes.extend(["32-bit integer image scaled as 16-bit to [0,1]", GRAY_NOTE])
            return _gray3(scale_to_unit(a, 65535.0))
        notes.extend([f"32-bit integer image rescaled from [{lo}, {hi}] to [0,1]", GRAY_NOTE])
        return _gray3(_rescale(a, lo, hi))
    if mode == "F":
        a = np.asarray(im, dtype=np.float32)
        if not np.isfinite(a).all():
            raise ImageLoadError("floating-point image contains NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo >= 0.0 and hi <= 1.0:
            notes.extend(["32-bit float image used as-is", GRAY_NOTE])
            return _gray3(a)
        notes.extend([f"32-bit float image rescaled from [{lo:g}, {hi:g}] to [0,1]", GRAY_NOTE])
        return _gray3(_rescale(a, lo, hi))
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        notes.append(f"converted {mode} to RGB")
        return scale_to_unit(np.asarray(im.convert("RGB")), 255.0)
    raise ImageLoadError(f"unsupported image mode {mode!r}")


def sixteen_bit_colour_mode(im: Image.Image, header: bytes) -> str | None:
    """Label 16-bit colour / gray+alpha PNG and TIFF files, which PIL truncates to 8 bits.

    Returns ``"RGB;16"``, ``"RGBA;16"`` or ``"LA;16"`` (PIL has no such modes: it opens
    these as 8-bit ``RGB``/``RGBA``), else None.
    """
    if im.format == "PNG" and header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR":
        if header[24] == 16:
            return {2: "RGB;16", 4: "LA;16", 6: "RGBA;16"}.get(header[25])
        return None
    if im.format == "TIFF" and im.mode in ("RGB", "RGBA", "RGBX", "LA"):
        tags = getattr(im, "tag_v2", {})
        bits = tags.get(258)
        bits = tuple(bits) if isinstance(bits, (tuple, list)) else (bits,)
        sample_format = tags.get(339, 1)
        sample_format = (
            tuple(sample_format) if isinstance(sample_format, (tuple, list)) else (sample_format,)
        )
        if all(b == 16 for b in bits) and all(s == 1 for s in sample_format):
            return {2: "LA;16", 3: "RGB;16", 4: "RGBA;16"}.get(len(bits))
    return None


def decode_16bit_colour(
    fp: BinaryIO,
    mode: str,
    orientation: int | None,
    apply_orientation: bool,
    reference: np.ndarray,
) -> np.ndarray | None:
    """Full-precision decode with OpenCV, verified against PIL's 8-bit decode.

    OpenCV applies orientation for some codecs (TIFF) and not others (PNG eXIf), varying
    with its version, so instead of guessing we try the candidate layouts and keep the one
    whose high bytes match PIL's 8-bit pixels (``reference``, float ``H x W x 3`` already in
    the requested layout). None if OpenCV fails or nothing matches.
    """
    import cv2  # local: only this rare path needs OpenCV

    fp.seek(0)
    buf = np.frombuffer(fp.read(), dtype=np.uint8)
    try:
        arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    if arr is None or arr.dtype != np.uint16:
        return None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if mode.startswith("LA") or arr.shape[2] < 3:
        rgb = np.repeat(arr[:, :, :1], 3, axis=2)  # OpenCV replicates gray into B, G, R
    else:
        rgb = arr[:, :, 2::-1]  # BGR(A) -> RGB
    candidates = [rgb]
    if orientation is not None:
        fix = orientation if apply_orientation else INVERSE_ORIENTATION[orientation]
        candidates.append(orient_array(rgb, fix))
    expected8 = np.rint(reference * np.float32(255.0)).astype(np.int16)
    for cand in candidates:
        if cand.shape != reference.shape:
            continue
        high = (cand >> 8).astype(np.int16)
        if np.abs(high - expected8).max() <= 1:
            return scale_to_unit(cand, 65535.0)
    return None
