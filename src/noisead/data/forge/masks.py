"""Mask makers: a seeded ``rng`` in, a ``bool`` mask whose tampered fraction lies in
``area_fraction`` out (exactly: the drawn pixel count is kept by a top-k cut)."""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

__all__ = ["MASK_MAKERS", "object_like_mask", "random_blob_mask", "random_polygon_mask"]


def _check_area(area_fraction: tuple[float, float]) -> tuple[float, float]:
    lo, hi = float(area_fraction[0]), float(area_fraction[1])
    if not 0.0 < lo <= hi < 1.0:
        raise ValueError(f"area_fraction must satisfy 0 < lo <= hi < 1, got {area_fraction}")
    return lo, hi


def _top_k_mask(field: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` highest positions of ``field`` (ties broken by raster order): exact area."""
    flat = field.ravel()
    k = int(np.clip(k, 1, flat.size))
    idx = np.argsort(-flat, kind="stable")[:k]
    m = np.zeros(flat.size, bool)
    m[idx] = True
    return m.reshape(field.shape)


def _target_pixels(
    shape: tuple[int, int], rng: np.random.Generator, area_fraction: tuple[float, float]
) -> int:
    """A pixel count drawn uniformly in the range, rounded so its fraction stays inside."""
    lo, hi = _check_area(area_fraction)
    n = shape[0] * shape[1]
    k_lo, k_hi = int(np.ceil(lo * n)), int(np.floor(hi * n))
    if k_lo > k_hi:
        raise ValueError(f"image {shape} too small for area_fraction {area_fraction}")
    return int(rng.integers(k_lo, k_hi + 1))


def random_blob_mask(
    shape: tuple[int, int],
    rng: np.random.Generator,
    area_fraction: tuple[float, float] = (0.05, 0.25),
) -> np.ndarray:
    """One smooth, star-shaped random blob (a random-radius polar shape).

    The radius ``r(theta)`` is a low-order random Fourier series, defined in coordinates
    normalised by the image size; the mask is the level set of ``rho / r(theta)`` holding
    exactly the drawn number of pixels, so the area fraction is always inside the range.
    """
    h, w = int(shape[0]), int(shape[1])
    k = _target_pixels((h, w), rng, area_fraction)
    frac = k / (h * w)
    rad = np.sqrt(frac / np.pi)  # radius in normalised units of a disc of that area
    cy = rng.uniform(min(0.5, 0.1 + 1.1 * rad), max(0.5, 0.9 - 1.1 * rad))
    cx = rng.uniform(min(0.5, 0.1 + 1.1 * rad), max(0.5, 0.9 - 1.1 * rad))
    n_harm = 4
    amps = rng.uniform(0.0, 0.25, n_harm) / np.arange(1, n_harm + 1)
    phases = rng.uniform(0.0, 2 * np.pi, n_harm)
    yy, xx = np.mgrid[0:h, 0:w]
    v = (yy + 0.5) / h - cy
    u = (xx + 0.5) / w - cx
    theta = np.arctan2(v, u)
    r = 1.0 + sum(
        a * np.cos((i + 1) * theta + p) for i, (a, p) in enumerate(zip(amps, phases, strict=True))
    )
    return _top_k_mask(-np.hypot(u, v) / r, k)


def random_polygon_mask(
    shape: tuple[int, int],
    rng: np.random.Generator,
    area_fraction: tuple[float, float] = (0.05, 0.25),
    n_vertices: tuple[int, int] = (3, 9),
) -> np.ndarray:
    """A random star-shaped polygon (sharp corners, straight edges), area in the range.

    Vertices are drawn at sorted random angles and radii around a centre; the polygon is
    scaled to the drawn area, then pixels are added or removed along its boundary (by
    distance to the edge) so the count is exact.
    """
    h, w = int(shape[0]), int(shape[1])
    k = _target_pixels((h, w), rng, area_fraction)
    frac = k / (h * w)
    nv = int(rng.integers(n_vertices[0], n_vertices[1] + 1))
    gaps = rng.uniform(0.5, 1.5, nv)
    angles = np.cumsum(gaps) / gaps.sum() * 2 * np.pi + rng.uniform(0, 2 * np.pi)
    radii = rng.uniform(0.6, 1.0, nv)
    pts = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    x, y = pts[:, 0], pts[:, 1]
    area0 = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    pts = pts * np.sqrt(frac / area0)  # normalised units (unit square = image)
    span = pts.max(0) - pts.min(0)
    lo_c = -pts.min(0) + 0.02
    hi_c = 1.0 - pts.max(0) - 0.02
    c = np.where(
        hi_c > lo_c,
        rng.uniform(np.minimum(lo_c, hi_c), np.maximum(lo_c, hi_c)),
        0.5 - (pts.min(0) + span / 2),
    )
    poly = (pts + c) * np.array([w, h])
    fixed = np.rint(poly * 16).astype(np.int32)  # 4 fractional bits
    raster = np.zeros((h, w), np.uint8)
    cv2.fillPoly(raster, [fixed.reshape(-1, 1, 2)], 1, lineType=cv2.LINE_8, shift=4)
    inside = raster.astype(bool)
    # Signed distance to the polygon boundary: positive inside. Top-k keeps the shape and
    # fixes the count exactly (a sub-pixel grow or shrink of the edges).
    d_in = ndimage.distance_transform_edt(inside)
    d_out = ndimage.distance_transform_edt(~inside)
    return _top_k_mask(np.where(inside, d_in, -d_out), k)


def object_like_mask(
    shape: tuple[int, int],
    rng: np.random.Generator,
    area_fraction: tuple[float, float] = (0.05, 0.25),
) -> np.ndarray:
    """A union of 1-4 overlapping random ellipses with a smoothed boundary (object-like).

    The union's signed distance is Gaussian-smoothed, so corners round off as in a
    segmentation mask of a real object, and thresholded to the exact drawn area.
    """
    h, w = int(shape[0]), int(shape[1])
    k = _target_pixels((h, w), rng, area_fraction)
    frac = k / (h * w)
    n_ell = int(rng.integers(1, 5))
    base = np.sqrt(frac / np.pi)
    union = np.zeros((h, w), np.uint8)
    cy = rng.uniform(0.3, 0.7)
    cx = rng.uniform(0.3, 0.7)
    for _ in range(n_ell):
        ry = base * rng.uniform(0.5, 1.2) * h
        rx = base * rng.uniform(0.5, 1.2) * w
        ang = float(rng.uniform(0, 180))
        cv2.ellipse(
            union,
            (int(round(cx * w)), int(round(cy * h))),
            (max(1, int(round(rx))), max(1, int(round(ry)))),
            ang,
            0,
            360,
            1,
            -1,
        )
        # Next ellipse centred inside or near the current one: keeps the union connected.
        cy = float(np.clip(cy + rng.uniform(-0.8, 0.8) * base, 0.15, 0.85))
        cx = float(np.clip(cx + rng.uniform(-0.8, 0.8) * base, 0.15, 0.85))
    inside = union.astype(bool)
    if not inside.any():
        inside[h // 2, w // 2] = True
    sd = np.where(
        inside, ndimage.distance_transform_edt(inside), -ndimage.distance_transform_edt(~inside)
    )
    sigma = max(1.0, 0.02 * min(h, w))
    return _top_k_mask(ndimage.gaussian_filter(sd.astype(np.float64), sigma), k)


MASK_MAKERS = {
    "blob": random_blob_mask,
    "polygon": random_polygon_mask,
    "object": object_like_mask,
}
