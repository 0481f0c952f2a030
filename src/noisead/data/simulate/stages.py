"""The stages of a camera pipeline: arrays in, arrays out, each one tested on its own.

:func:`noisead.data.simulate.render` chains them in the order a camera does (see the
package's docstring); they are public so that each trace can be studied on its own.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import cv2
import numpy as np

from noisead.data.simulate.spec import CFA_PATTERNS, DEMOSAIC_METHODS, TONE_CURVES

__all__ = [
    "add_sensor_noise",
    "apply_tone",
    "as_float_image",
    "cfa_channel_map",
    "demosaic",
    "denoise",
    "downscale_scene",
    "linearize",
    "mosaic",
    "prnu_pattern",
    "unsharp_mask",
]


def as_float_image(scene: np.ndarray) -> np.ndarray:
    """Accept uint8 or float [0, 1] HxWx3 input and return float32 [0, 1]."""
    a = np.asarray(scene)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {a.shape}")
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    return np.clip(a.astype(np.float32, copy=False), 0.0, 1.0)


def downscale_scene(scene: np.ndarray, factor: int = 2) -> np.ndarray:
    """Shrink a scene by an integer factor with an antialiasing area filter.

    Why: averaging ``factor x factor`` blocks destroys the source camera's CFA period and
    JPEG grid and lowers its noise, so the simulated camera's traces dominate. ``factor=1``
    returns the scene unchanged (as float32) — use it for inputs that are already
    downscaled, such as ``../shared/scenes/cvip`` (already 2x, Lanczos).
    """
    img = as_float_image(scene)
    if factor < 1:
        raise ValueError("factor must be >= 1")
    if factor == 1:
        return img.copy()
    h, w = img.shape[0] // factor, img.shape[1] // factor
    if h < 1 or w < 1:
        raise ValueError("scene too small for this downscale factor")
    img = img[: h * factor, : w * factor]
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def linearize(x: np.ndarray) -> np.ndarray:
    """Inverse sRGB transfer function (display-referred scene → linear light)."""
    x = np.clip(np.asarray(x, np.float32), 0.0, 1.0)
    return np.where(
        x <= 0.04045,
        x / np.float32(12.92),
        ((x + np.float32(0.055)) / np.float32(1.055)) ** np.float32(2.4),
    ).astype(np.float32)


def _srgb_encode(x: np.ndarray) -> np.ndarray:
    x = np.clip(np.asarray(x, np.float32), 0.0, 1.0)
    return np.where(
        x <= 0.0031308,
        np.float32(12.92) * x,
        np.float32(1.055) * np.power(x, np.float32(1 / 2.4)) - np.float32(0.055),
    )


def cfa_channel_map(pattern: str, shape: tuple[int, int]) -> np.ndarray:
    """Channel index (0=R, 1=G, 2=B) sampled at every site of an ``H x W`` Bayer sensor."""
    if pattern not in CFA_PATTERNS:
        raise ValueError(f"unknown CFA pattern {pattern!r}")
    cell = np.array(["RGB".index(c) for c in pattern], dtype=np.int8).reshape(2, 2)
    h, w = shape
    return np.tile(cell, ((h + 1) // 2, (w + 1) // 2))[:h, :w]


def mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """Keep, at each site, only the channel the CFA lets through (H x W x 3 → H x W)."""
    ch = cfa_channel_map(pattern, rgb.shape[:2])
    return np.take_along_axis(rgb, ch[..., None].astype(np.intp), axis=2)[..., 0]


def add_sensor_noise(
    raw: np.ndarray, shot_gain: float, read_sigma: float, rng: np.random.Generator
) -> np.ndarray:
    """Poisson-Gaussian noise: ``a * Poisson(x / a) + N(0, b**2)``, variance ``a*x + b**2``.

    Why Poisson and not a Gaussian approximation: the photon-count statistics at low light
    are skewed, and the extractor should meet the real thing. No clipping here (the caller
    clips to the sensor range), so the variance law holds exactly for tests.
    """
    x = np.clip(np.asarray(raw, np.float64), 0.0, None)
    if shot_gain > 0:
        y = (rng.poisson(x / shot_gain) * shot_gain).astype(np.float32)
    else:
        y = x.astype(np.float32)
    if read_sigma > 0:
        y += np.float32(read_sigma) * rng.standard_normal(x.shape, dtype=np.float32)
    return y


_PRNU_TILE = 64


@lru_cache(maxsize=32)
def _prnu_cached(shape: tuple[int, int], sigma: float, seed: int) -> np.ndarray:
    h, w = shape
    th, tw = -(-h // _PRNU_TILE), -(-w // _PRNU_TILE)
    out = np.empty((th * _PRNU_TILE, tw * _PRNU_TILE), np.float32)
    t = _PRNU_TILE
    for ty in range(th):
        for tx in range(tw):
            g = np.random.default_rng([seed, ty, tx])
            tile = g.standard_normal((t, t), dtype=np.float32) * np.float32(sigma)
            out[ty * t : (ty + 1) * t, tx * t : (tx + 1) * t] = tile
    out = out[:h, :w].copy()
    out.flags.writeable = False
    return out


def prnu_pattern(shape: tuple[int, int], sigma: float, seed: int) -> np.ndarray:
    """The model's fixed multiplicative pattern ``K`` (zero-mean, std ``sigma``).

    Generated in 64x64 tiles each seeded by ``(seed, tile_row, tile_col)``, so a pixel gets
    the same value whatever the image size — as on a real sensor, where scenes of different
    sizes are crops of one fixed pattern.
    """
    return _prnu_cached((int(shape[0]), int(shape[1])), float(sigma), int(seed))


def demosaic(raw: np.ndarray, pattern: str, method: str) -> np.ndarray:
    """Interpolate the missing channels (H x W → H x W x 3, float32)."""
    with warnings.catch_warnings():  # local import: colour is slow to import; it also
        warnings.simplefilter("ignore", DeprecationWarning)  # warns about scipy namespaces
        import colour_demosaicing as cd

    fns = {
        "bilinear": cd.demosaicing_CFA_Bayer_bilinear,
        "malvar2004": cd.demosaicing_CFA_Bayer_Malvar2004,
        "menon2007": cd.demosaicing_CFA_Bayer_Menon2007,
    }
    if method not in fns:
        raise ValueError(f"demosaic method must be one of {DEMOSAIC_METHODS}")
    return np.asarray(fns[method](raw, pattern), dtype=np.float32)


def denoise(img: np.ndarray, strength: float) -> np.ndarray:
    """In-camera denoising: blend with a bilateral filter (edge-preserving), ``strength`` 0-1."""
    if strength <= 0:
        return img
    sm = cv2.bilateralFilter(
        np.ascontiguousarray(img, dtype=np.float32),
        d=5,
        sigmaColor=0.02 + 0.1 * strength,
        sigmaSpace=1.0 + strength,
    )
    return ((1.0 - strength) * img + strength * sm).astype(np.float32)


def apply_tone(
    x: np.ndarray, tone: str, gamma: float = 2.2, scurve_strength: float = 0.0
) -> np.ndarray:
    """Linear → display-referred tone curve (``tone`` in :data:`TONE_CURVES`)."""
    x = np.clip(np.asarray(x, np.float32), 0.0, 1.0)
    if tone == "srgb":
        y = _srgb_encode(x)
    elif tone == "gamma":
        y = np.power(x, np.float32(1.0 / gamma))
    elif tone == "scurve":
        s = _srgb_encode(x)
        y = (1.0 - scurve_strength) * s + scurve_strength * (s * s * (3.0 - 2.0 * s))
    else:
        raise ValueError(f"tone must be one of {TONE_CURVES}")
    return np.asarray(y, dtype=np.float32)


def unsharp_mask(img: np.ndarray, radius: float, amount: float) -> np.ndarray:
    """``img + amount * (img - blur(img, radius))`` — the camera's sharpening halo trace."""
    if radius <= 0 or amount <= 0:
        return img
    blur = cv2.GaussianBlur(
        img, (0, 0), sigmaX=radius, sigmaY=radius, borderType=cv2.BORDER_REFLECT
    )
    return (img + amount * (img - blur)).astype(np.float32)
