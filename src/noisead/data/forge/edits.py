"""The edits: splice, generative-like re-synthesis and copy-move.

Each changes pixels **only inside the mask** (outside, the result is bit-equal to the
input), so ``forged == pristine`` wherever ``mask`` is False.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from noisead.io import to_uint8

__all__ = ["GENERATIVE_METHODS", "copy_move", "generative_like_edit", "splice"]

GENERATIVE_METHODS: tuple[str, ...] = ("resynth", "inpaint-telea", "inpaint-ns")


def _check_pair(image: np.ndarray, mask: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got {image.shape}")
    if mask.shape != image.shape[:2] or mask.dtype != bool:
        raise ValueError("mask must be a bool array with the image's H x W")
    if not mask.any():
        raise ValueError("mask is empty")


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1


def splice(
    target: np.ndarray,
    donor: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
    *,
    offset: tuple[int, int] | None = None,
    grid: int = 1,
    return_offset: bool = False,
) -> np.ndarray | tuple[np.ndarray, tuple[int, int]]:
    """Paste ``donor`` pixels into ``target`` where ``mask`` is True.

    The donor is used at its native scale (never resampled, so its camera traces survive)
    and read at a displacement ``(dy, dx)``: ``forged[y, x] = donor[y + dy, x + dx]``. The
    displacement is drawn so the mask's bounding box falls inside the donor (``grid`` > 1
    restricts it to multiples of ``grid``, e.g. 8 for a JPEG-grid-aligned paste), or taken
    from ``offset``. The donor should come from another camera model (the caller's job:
    arrays do not know their camera). Outside the mask the result is bit-equal to
    ``target``. Raises ``ValueError`` if the donor is too small to cover the mask's box.
    """
    _check_pair(target, mask)
    if donor.ndim != 3 or donor.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 donor, got {donor.shape}")
    y0, y1, x0, x1 = _bbox(mask)
    dh, dw = donor.shape[:2]
    if offset is None:
        lo_y, hi_y = -y0, dh - y1  # dy range keeping [y0+dy, y1+dy) inside the donor
        lo_x, hi_x = -x0, dw - x1
        if hi_y < lo_y or hi_x < lo_x:
            raise ValueError(
                f"donor {donor.shape[:2]} too small for the mask's box {(y1 - y0, x1 - x0)}"
            )
        g = max(1, int(grid))
        dy = _draw_multiple(rng, lo_y, hi_y, g)
        dx = _draw_multiple(rng, lo_x, hi_x, g)
    else:
        dy, dx = int(offset[0]), int(offset[1])
        if y0 + dy < 0 or x0 + dx < 0 or y1 + dy > dh or x1 + dx > dw:
            raise ValueError("offset puts the mask outside the donor")
    out = np.array(target, dtype=np.float32, copy=True)
    ys, xs = np.nonzero(mask)
    out[ys, xs] = donor[ys + dy, xs + dx]
    if return_offset:
        return out, (dy, dx)
    return out


def _draw_multiple(rng: np.random.Generator, lo: int, hi: int, g: int) -> int:
    """A uniform integer in [lo, hi], a multiple of ``g`` when one exists there."""
    a, b = -(-lo // g), hi // g
    if a <= b:
        return int(rng.integers(a, b + 1)) * g
    return int(rng.integers(lo, hi + 1))


def _smooth_noise(shape: tuple[int, int], rng: np.random.Generator, sigma: float) -> np.ndarray:
    n = rng.standard_normal(shape).astype(np.float32)
    n = cv2.GaussianBlur(n, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    s = float(n.std())
    return n / s if s > 0 else n


def generative_like_edit(
    image: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
    method: str = "resynth",
    *,
    feather: float = 0.0,
) -> np.ndarray:
    """Re-synthesize the masked region so that its camera traces are gone.

    Methods: ``"inpaint-telea"`` / ``"inpaint-ns"`` (``cv2.inpaint`` from the surroundings:
    smooth, traceless fill) and ``"resynth"`` (default): the region's own content is
    downsampled 0.5x (at a random phase, so the 2x2 CFA period and the 8x8 JPEG grid are
    averaged away), upsampled back (bicubic), lightly blurred, then given fresh smooth
    colour variation and a faint spatially-white grain that is the same for every site —
    content stays plausible, camera traces do not. This is our stand-in for generative
    (DALL-E-like) edits.

    Only pixels inside ``mask`` change (outside: bit-equal). ``feather`` > 0 blends the new
    content in with a soft alpha that is zero outside the mask and ramps up over about
    ``feather`` px *inside* it — so even the blending band lies inside the mask.
    """
    _check_pair(image, mask)
    img = np.asarray(image, np.float32)
    h, w = mask.shape
    if method in ("inpaint-telea", "inpaint-ns"):
        u8 = to_uint8(img)
        m8 = mask.astype(np.uint8) * 255
        flag = cv2.INPAINT_TELEA if method == "inpaint-telea" else cv2.INPAINT_NS
        filled = cv2.inpaint(u8, m8, 3, flag).astype(np.float32) / 255.0
    elif method == "resynth":
        filled = _resynth(img, mask, rng)
    else:
        raise ValueError(f"method must be one of {GENERATIVE_METHODS}, got {method!r}")
    out = img.copy()
    if feather > 0:
        d = ndimage.distance_transform_edt(mask).astype(np.float32)
        alpha = np.clip(d / float(feather), 0.0, 1.0)[..., None]
        blended = alpha * filled + (1.0 - alpha) * img
        out[mask] = blended[mask]
    else:
        out[mask] = filled[mask]
    return out


def _resynth(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = mask.shape
    y0, y1, x0, x1 = _bbox(mask)
    pad = 8
    y0, x0 = max(0, y0 - pad), max(0, x0 - pad)
    y1, x1 = min(h, y1 + pad), min(w, x1 + pad)
    region = img[y0:y1, x0:x1]
    rh, rw = region.shape[:2]
    # Random phase: shift by 0/1 px before the 2x area-downsample (reflect-pad to keep size).
    py, px = int(rng.integers(0, 2)), int(rng.integers(0, 2))
    padded = cv2.copyMakeBorder(region, py, 2, px, 2, cv2.BORDER_REFLECT)
    ph, pw = (padded.shape[0] // 2) * 2, (padded.shape[1] // 2) * 2
    small = cv2.resize(padded[:ph, :pw], (pw // 2, ph // 2), interpolation=cv2.INTER_AREA)
    up = cv2.resize(small, (pw, ph), interpolation=cv2.INTER_CUBIC)[py : py + rh, px : px + rw]
    up = cv2.GaussianBlur(up, (0, 0), sigmaX=0.7, sigmaY=0.7, borderType=cv2.BORDER_REFLECT)
    # Fresh smooth content: a low-frequency colour drift, and a faint grain that is
    # spatially white and identical in the three channels (no CFA structure).
    sig = max(2.0, 0.05 * min(rh, rw))
    drift = np.stack([_smooth_noise((rh, rw), rng, sig) for _ in range(3)], axis=-1)
    grain = rng.standard_normal((rh, rw, 1)).astype(np.float32)
    new = up + 0.02 * drift + 0.004 * grain
    out = img.copy()
    out[y0:y1, x0:x1] = np.clip(new, 0.0, 1.0)
    return out


def copy_move(
    image: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
    *,
    offset: tuple[int, int] | None = None,
    grid: int = 1,
    max_tries: int = 200,
    return_source_mask: bool = False,
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Copy the region ``mask`` (the *source*) to another place in the same image.

    Returns ``(forged, target_mask)``: the mask marks the pasted **target** region only —
    the source still holds the image's own, untouched content, so only the target is
    tampered in the camera-trace sense (note ``../shared/forgeries/cvip-copymove`` marks
    both; ``return_source_mask=True`` returns ``(forged, target_mask, source_mask)`` for
    that convention). ``forged[target_mask]`` equals ``image[source_mask]`` element for
    element (a translation keeps raster order). The displacement is drawn (multiples of
    ``grid`` when possible) so the target lies inside the image and does not overlap the
    source; if no such displacement is found in ``max_tries`` draws, the least-overlapping
    one is used, and the overlapped part of the source is then overwritten.
    """
    _check_pair(image, mask)
    h, w = mask.shape
    y0, y1, x0, x1 = _bbox(mask)
    if offset is not None:
        dy, dx = int(offset[0]), int(offset[1])
        if y0 + dy < 0 or x0 + dx < 0 or y1 + dy > h or x1 + dx > w:
            raise ValueError("offset puts the target outside the image")
    else:
        lo_y, hi_y, lo_x, hi_x = -y0, h - y1, -x0, w - x1
        g = max(1, int(grid))
        best: tuple[int, int] | None = None
        best_overlap = None
        ys, xs = np.nonzero(mask)
        for _ in range(max_tries):
            dy = _draw_multiple(rng, lo_y, hi_y, g)
            dx = _draw_multiple(rng, lo_x, hi_x, g)
            if dy == 0 and dx == 0:
                continue
            overlap = int(mask[ys + dy, xs + dx].sum())
            if best_overlap is None or overlap < best_overlap:
                best, best_overlap = (dy, dx), overlap
            if overlap == 0:
                break
        if best is None:
            raise ValueError("the mask covers the whole image: nowhere to move it")
        dy, dx = best
    ys, xs = np.nonzero(mask)
    target = np.zeros_like(mask)
    target[ys + dy, xs + dx] = True
    out = np.array(image, dtype=np.float32, copy=True)
    out[ys + dy, xs + dx] = np.asarray(image, np.float32)[ys, xs]
    if return_source_mask:
        return out, target, mask.copy()
    return out, target
