"""Forgery benchmark builders: splice, generative-like edit, copy-move — with exact masks.

Why: public splicing benchmarks cannot be had here, and even where they can, their masks
and source cameras are approximate. Building forgeries ourselves from camera-labelled
images (``../shared/cameras`` or a :func:`noisead.data.simulate.simulate_cameras` folder)
gives pixel-exact masks, known source and donor camera models, and the untouched pristine
counterpart of every forged image, so false positives can be measured on the same content.

Array functions (``float32 HxWx3 [0, 1]`` images, ``bool HxW`` masks, ``True`` = tampered):

- mask makers :func:`random_blob_mask`, :func:`random_polygon_mask`, :func:`object_like_mask`
  (a seeded ``rng`` in, a mask whose tampered fraction lies in ``area_fraction`` out);
- :func:`splice` — the masked region comes from a donor image of *another* camera model,
  not rescaled, so the donor's CFA/demosaicing/JPEG traces survive (at a random phase);
- :func:`generative_like_edit` — the region is re-synthesized so its camera traces are gone
  (our stand-in for generative inpainting such as DALL-E edits);
- :func:`copy_move` — the region is copied elsewhere in the same image; the returned mask
  marks the pasted **target** only (the source is pristine content, and a camera-trace
  detector can only be expected to flag the pasted copy when it breaks the local trace
  phase; ``return_source_mask=True`` also returns the source).

All three edits change pixels **only inside the mask** (outside, the result is bit-equal to
the input), so ``forged == pristine`` wherever ``mask`` is False.

:func:`make_benchmark` writes a folder per (kind, variant)::

    out_dir/<kind>-<variant>/images/NAME.png     forged image (lossless PNG)
    out_dir/<kind>-<variant>/masks/NAME.png      0 / 255 (255 = tampered)
    out_dir/<kind>-<variant>/pristine/NAME.png   the same crop without the edit
    out_dir/<kind>-<variant>/manifest.json       per image: sources, camera models, mask
                                                 fraction, method, parameters, seed

Variants — precisely:

- ``"png"``: the sources are the decoded camera images **as they are** (for real cameras
  and JPEG-output simulated models they carry the camera's own JPEG; for PNG-output
  simulated models none). Nothing is compressed by the benchmark.
- ``"jpeg"``: each source (target crop and, for splices, the donor image) is additionally
  JPEG-compressed by the benchmark **before** the edit, with a random quality drawn from
  ``jpeg_quality_range`` (4:2:0, grid aligned at (0, 0)), and decoded back; the edit is
  applied to that decoded image. This mimics editing a photo that was shared once.

In both variants the results (forged, pristine, mask) are always saved losslessly (PNG),
never re-compressed after the edit. Forged images are top-left crops (``crop_size``, default
512x512, or the whole image if smaller), so the JPEG 8x8 grid and the CFA phase of the
target stay aligned at (0, 0). The same ``(seed, kind, index)`` gives the same sources,
mask and edit in both variants (paired), and the same seed gives byte-identical files.

Images are decoded with PIL directly and **without** EXIF transposition, on purpose:
rotating would move the CFA phase and the JPEG grid away from (0, 0).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage
from tqdm import tqdm

from noisead.io import atomic_write_bytes

__all__ = [
    "GENERATIVE_METHODS",
    "KINDS",
    "VARIANTS",
    "copy_move",
    "generative_like_edit",
    "make_benchmark",
    "object_like_mask",
    "random_blob_mask",
    "random_polygon_mask",
    "splice",
]

KINDS: tuple[str, ...] = ("splice", "generative", "copymove")
VARIANTS: tuple[str, ...] = ("png", "jpeg")
GENERATIVE_METHODS: tuple[str, ...] = ("resynth", "inpaint-telea", "inpaint-ns")
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")

# Stable ids so that choosing a subset of kinds does not change the others' content.
_KIND_IDS = {"splice": 0, "generative": 1, "copymove": 2}
_MASK_SHAPES = ("blob", "polygon", "object")


# --------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------


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


_MASK_MAKERS = {
    "blob": random_blob_mask,
    "polygon": random_polygon_mask,
    "object": object_like_mask,
}


# --------------------------------------------------------------------------------------
# Edits
# --------------------------------------------------------------------------------------


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
        u8 = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
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


# --------------------------------------------------------------------------------------
# Benchmark folders
# --------------------------------------------------------------------------------------


def _list_cameras(camera_root: Path) -> dict[str, list[Path]]:
    cams: dict[str, list[Path]] = {}
    for d in sorted(p for p in Path(camera_root).iterdir() if p.is_dir()):
        if d.name.startswith("."):
            continue
        files = sorted(
            p
            for p in d.iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        )
        if files:
            cams[d.name] = files
    return cams


def _load_rgb(path: Path) -> np.ndarray:
    # PIL directly, no EXIF transpose (see the module docstring): the pixel grid as stored.
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def _jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    buf = BytesIO()
    Image.fromarray(_to_u8(img), "RGB").save(buf, "JPEG", quality=int(quality), subsampling="4:2:0")
    with Image.open(BytesIO(buf.getvalue())) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def _to_u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(img) * 255.0), 0, 255).astype(np.uint8)


def _write_png(path: Path, arr_u8: np.ndarray) -> None:
    mode = "L" if arr_u8.ndim == 2 else "RGB"
    buf = BytesIO()
    Image.fromarray(arr_u8, mode).save(buf, "PNG")
    atomic_write_bytes(path, buf.getvalue())


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _plan_sample(
    kind: str,
    i: int,
    cams: dict[str, list[Path]],
    camera_root: Path,
    seed: int,
    crop_size: int,
    area_fraction: tuple[float, float],
    generative_methods: Sequence[str],
) -> dict[str, Any]:
    """Draw everything about sample ``i`` of ``kind`` that does not depend on the variant."""
    ss = [seed, _KIND_IDS[kind], i]
    rng = np.random.default_rng(np.random.SeedSequence(ss + [0]))
    names = sorted(cams)
    tgt_model = names[int(rng.integers(len(names)))]
    tgt_path = cams[tgt_model][int(rng.integers(len(cams[tgt_model])))]
    plan: dict[str, Any] = {
        "kind": kind,
        "seed_entropy": ss,
        "target_model": tgt_model,
        "target_file": _rel(tgt_path, camera_root),
        "target_path": tgt_path,
    }
    if kind == "splice":
        others = [n for n in names if n != tgt_model]
        donor_model = others[int(rng.integers(len(others)))]
        donor_path = cams[donor_model][int(rng.integers(len(cams[donor_model])))]
        plan.update(
            donor_model=donor_model, donor_file=_rel(donor_path, camera_root), donor_path=donor_path
        )
    plan["mask_shape"] = _MASK_SHAPES[int(rng.integers(len(_MASK_SHAPES)))]
    if kind == "generative":
        plan["method"] = generative_methods[i % len(generative_methods)]
    else:
        plan["method"] = kind
    plan["mask_rng"] = rng  # continues the same stream for the mask
    plan["crop_size"] = crop_size
    plan["area_fraction"] = area_fraction
    return plan


def make_benchmark(
    camera_root: Path,
    out_dir: Path,
    kinds: Sequence[str] = ("splice", "generative", "copymove"),
    variants: Sequence[str] = ("png", "jpeg"),
    n_per_kind: int = 20,
    seed: int = 0,
    jpeg_quality_range: tuple[int, int] = (75, 95),
    progress: bool = True,
    *,
    crop_size: int = 512,
    area_fraction: tuple[float, float] = (0.05, 0.25),
    copymove_area_fraction: tuple[float, float] = (0.03, 0.12),
    generative_methods: Sequence[str] = GENERATIVE_METHODS,
) -> Path:
    """Build forged/pristine/mask triplets from a camera-labelled folder; returns ``out_dir``.

    ``camera_root`` is ``ROOT/<camera-model>/<images>`` (``../shared/cameras`` or a
    :func:`~noisead.data.simulate.simulate_cameras` output; other files are ignored). Splices
    need at least two camera models. See the module docstring for the layout and for what
    the ``"png"`` and ``"jpeg"`` variants mean exactly. Copy-moves use the smaller
    ``copymove_area_fraction`` (a region and its copy must fit side by side). Generative
    edits cycle through ``generative_methods``. Everything is drawn from
    ``SeedSequence([seed, kind, index, ...])``: reproducible, and paired across variants.
    """
    camera_root, out_dir = Path(camera_root), Path(out_dir)
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f"unknown kind {k!r}; expected some of {KINDS}")
    for v in variants:
        if v not in VARIANTS:
            raise ValueError(f"unknown variant {v!r}; expected some of {VARIANTS}")
    for m in generative_methods:
        if m not in GENERATIVE_METHODS:
            raise ValueError(f"unknown generative method {m!r}")
    q_lo, q_hi = int(jpeg_quality_range[0]), int(jpeg_quality_range[1])
    if not 1 <= q_lo <= q_hi <= 100:
        raise ValueError("jpeg_quality_range must satisfy 1 <= lo <= hi <= 100")
    cams = _list_cameras(camera_root)
    if not cams:
        raise FileNotFoundError(f"no camera folders with images under {camera_root}")
    if "splice" in kinds and len(cams) < 2:
        raise ValueError("splicing needs at least two camera models under camera_root")

    config = {
        "generator": "noisead.data.forge.make_benchmark",
        "camera_root": str(camera_root),
        "camera_models": sorted(cams),
        "n_per_kind": n_per_kind,
        "seed": seed,
        "jpeg_quality_range": [q_lo, q_hi],
        "crop_size": crop_size,
        "area_fraction": list(area_fraction),
        "copymove_area_fraction": list(copymove_area_fraction),
        "generative_methods": list(generative_methods),
    }
    records: dict[tuple[str, str], list[dict[str, Any]]] = {
        (k, v): [] for k in kinds for v in variants
    }
    bar = tqdm(total=len(kinds) * n_per_kind, desc="forge", unit="img", disable=not progress)
    for kind in kinds:
        af = copymove_area_fraction if kind == "copymove" else area_fraction
        for i in range(n_per_kind):
            plan = _plan_sample(kind, i, cams, camera_root, seed, crop_size, af, generative_methods)
            full = _load_rgb(plan["target_path"])
            ch, cw = min(crop_size, full.shape[0]), min(crop_size, full.shape[1])
            target0 = full[:ch, :cw]
            donor0 = _load_rgb(plan["donor_path"]) if kind == "splice" else None
            if donor0 is not None and (donor0.shape[0] < ch or donor0.shape[1] < cw):
                # A donor smaller than the crop could not cover every mask: use the
                # overlapping top-left area for the mask instead (keeps donor unscaled).
                ch, cw = min(ch, donor0.shape[0]), min(cw, donor0.shape[1])
                target0 = full[:ch, :cw]
            mask = _MASK_MAKERS[plan["mask_shape"]]((ch, cw), plan["mask_rng"], af)
            q_rng = np.random.default_rng(np.random.SeedSequence(plan["seed_entropy"] + [2]))
            q_target = int(q_rng.integers(q_lo, q_hi + 1))
            q_donor = int(q_rng.integers(q_lo, q_hi + 1))
            name = f"{kind}-{i:04d}"
            for variant in variants:
                if variant == "jpeg":
                    target = _jpeg_roundtrip(target0, q_target)
                    donor = _jpeg_roundtrip(donor0, q_donor) if donor0 is not None else None
                else:
                    target, donor = target0, donor0
                edit_rng = np.random.default_rng(np.random.SeedSequence(plan["seed_entropy"] + [1]))
                rec: dict[str, Any] = {
                    "name": name,
                    "image": f"images/{name}.png",
                    "mask": f"masks/{name}.png",
                    "pristine": f"pristine/{name}.png",
                    "kind": kind,
                    "variant": variant,
                    "method": plan["method"],
                    "target_file": plan["target_file"],
                    "target_model": plan["target_model"],
                    "crop": [0, 0, ch, cw],
                    "mask_shape": plan["mask_shape"],
                    "mask_fraction": round(float(mask.mean()), 6),
                    "seed_entropy": plan["seed_entropy"],
                }
                if kind == "splice":
                    assert donor is not None
                    forged, (dy, dx) = splice(target, donor, mask, edit_rng, return_offset=True)
                    out_mask = mask
                    rec.update(
                        donor_file=plan["donor_file"],
                        donor_model=plan["donor_model"],
                        donor_offset=[dy, dx],
                    )
                elif kind == "generative":
                    forged = generative_like_edit(target, mask, edit_rng, plan["method"])
                    out_mask = mask
                else:
                    forged, out_mask, src = copy_move(
                        target, mask, edit_rng, return_source_mask=True
                    )
                    ys, xs = np.nonzero(src)
                    ty, tx = np.nonzero(out_mask)
                    rec.update(
                        copy_offset=[int(ty[0] - ys[0]), int(tx[0] - xs[0])],
                        source_overlap=int((src & out_mask).sum()),
                        mask_fraction=round(float(out_mask.mean()), 6),
                        mask_marks="target",
                    )
                if variant == "jpeg":
                    rec["jpeg_quality_target"] = q_target
                    if kind == "splice":
                        rec["jpeg_quality_donor"] = q_donor
                d = out_dir / f"{kind}-{variant}"
                _write_png(d / rec["image"], _to_u8(forged))
                _write_png(d / rec["mask"], out_mask.astype(np.uint8) * 255)
                _write_png(d / rec["pristine"], _to_u8(target))
                records[(kind, variant)].append(rec)
            bar.update(1)
    bar.close()

    for (kind, variant), recs in records.items():
        manifest = {
            "kind": kind,
            "variant": variant,
            "config": config,
            "n_images": len(recs),
            "images": recs,
        }
        atomic_write_bytes(
            out_dir / f"{kind}-{variant}" / "manifest.json",
            (json.dumps(manifest, indent=1) + "\n").encode(),
        )
    return out_dir
