"""Camera-pipeline simulator: synthetic "camera models" rendered over natural scenes.

Why: camera-labelled photographs are scarce (``../shared/cameras`` holds 32 models), yet a
Noiseprint-style extractor learns *camera-model* traces (colour-filter array, demosaicing,
sensor noise, in-camera processing, JPEG tables) from many models. A simulated camera model
is a fixed, seeded pipeline; rendering the same scenes through many such pipelines gives as
many labelled "cameras" as we like, with the traces known exactly.

Pipeline of :func:`render` (one :class:`CameraModelSpec`):

1. crop the scene top-left to multiples of 16, so that the CFA period (2) and the JPEG 8x8
   grid (and the 16x16 MCU of 4:2:0) start at (0, 0);
2. linearize (inverse sRGB: the scenes are display-referred sRGB);
3. undo the colour matrix and the white-balance gains (scene → camera raw);
4. mosaic with the model's CFA pattern (RGGB, BGGR, GRBG, GBRG);
5. fixed-pattern PRNU-like multiplicative noise (per model, seeded, optional);
6. Poisson-Gaussian signal-dependent sensor noise, variance ``a * x + b**2``;
7. clip to the sensor range [0, 1] and demosaic (bilinear, Malvar-He-Cutler 2004, Menon 2007);
8. optional denoising (edge-preserving, in camera space);
9. white-balance gains and the 3x3 colour matrix (rows sum to 1: white stays white);
10. tone curve (sRGB, power-law gamma, or sRGB followed by an S-curve);
11. optional sharpening (unsharp mask, per-model radius and amount);
12. 8-bit quantization and JPEG with the model's quality or custom quantization tables and
    chroma subsampling — or lossless PNG output.

Scenes are first downscaled (:func:`downscale_scene`, antialiased area filter, default factor
2) to wash out the traces of the camera and codec they came from. The scenes in
``../shared/scenes/cvip`` are **already downscaled 2x** (Lanczos): pass ``downscale=1`` for
them (a second 2x would only cost resolution).

Reproducibility: a model is a pure function of its seed (:func:`random_camera_model`); a
rendered image is a pure function of (scene, spec, rng state); :func:`simulate_cameras`
derives every random stream from ``SeedSequence([seed, ...])``, so the same seed writes
byte-identical files whatever the number of worker processes.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from noisead.io import atomic_write_bytes

__all__ = [
    "CFA_PATTERNS",
    "DEMOSAIC_METHODS",
    "SUBSAMPLINGS",
    "TONE_CURVES",
    "CameraModelSpec",
    "add_sensor_noise",
    "apply_tone",
    "cfa_channel_map",
    "demosaic",
    "denoise",
    "downscale_scene",
    "encode_jpeg",
    "ijg_quant_tables",
    "linearize",
    "mosaic",
    "prnu_pattern",
    "random_camera_model",
    "render",
    "simulate_cameras",
    "unsharp_mask",
]

CFA_PATTERNS: tuple[str, ...] = ("RGGB", "BGGR", "GRBG", "GBRG")
DEMOSAIC_METHODS: tuple[str, ...] = ("bilinear", "malvar2004", "menon2007")
TONE_CURVES: tuple[str, ...] = ("srgb", "gamma", "scurve")
SUBSAMPLINGS: tuple[str, ...] = ("4:4:4", "4:2:2", "4:2:0")
OUTPUTS: tuple[str, ...] = ("jpeg", "png")
SCENE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

_IDENTITY9: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

# IJG (libjpeg) reference tables, Annex K of ITU-T T.81, natural (row-major) order —
# the same order as PIL's ``Image.quantization`` and its ``qtables=`` argument.
_IJG_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
_IJG_CHROMA = (
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
)  # fmt: skip

_DEMOSAIC_NAMES = {
    "bilinear": "bilinear",
    "malvar2004": "Malvar-He-Cutler 2004",
    "menon2007": "Menon 2007 (DDFAPD)",
}


# --------------------------------------------------------------------------------------
# The model specification
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CameraModelSpec:
    """Every parameter of one simulated camera model (fixed for all its images).

    The defaults make a plausible mid-range camera, so ``CameraModelSpec()`` renders.

    Attributes:
        name: folder name of the model in :func:`simulate_cameras`' output.
        cfa: Bayer pattern read row-major from the top-left 2x2 cell.
        demosaic: one of :data:`DEMOSAIC_METHODS`.
        shot_gain: ``a`` of the Poisson-Gaussian model, raw in [0, 1]: variance ``a*x + b**2``.
        read_sigma: ``b``, the signal-independent (read) noise standard deviation.
        prnu_sigma: std of the fixed multiplicative pattern ``K`` (raw *= 1 + K); 0 = none.
        prnu_seed: seed of that pattern (per-position: the same pixel always gets the same K).
        wb_gains: white-balance gains for (R, G, B) camera channels.
        color_matrix: 3x3 camera-RGB → linear-sRGB matrix, row-major; rows sum to 1.
        tone: ``"srgb"``, ``"gamma"`` (``x ** (1/gamma)``) or ``"scurve"`` (sRGB + S-curve).
        gamma: exponent of the ``"gamma"`` curve.
        scurve_strength: blend in [0, 1] of a smoothstep S-curve after sRGB (``"scurve"``).
        sharpen_radius: Gaussian sigma (px) of the unsharp mask; 0 = no sharpening.
        sharpen_amount: gain of the unsharp mask; 0 = no sharpening.
        denoise_strength: in [0, 1], blend with an edge-preserving filter; 0 = none.
        output: ``"jpeg"`` or ``"png"`` (lossless, no JPEG traces).
        jpeg_quality: IJG quality 1-100, used when ``jpeg_qtables`` is None.
        jpeg_qtables: custom (luma, chroma) tables of 64 ints each, natural order, 1-255.
        subsampling: chroma subsampling ``"4:4:4"``, ``"4:2:2"`` or ``"4:2:0"``.
    """

    name: str = "simcam"
    cfa: str = "RGGB"
    demosaic: str = "malvar2004"
    shot_gain: float = 1e-3
    read_sigma: float = 2e-3
    prnu_sigma: float = 0.0
    prnu_seed: int = 0
    wb_gains: tuple[float, float, float] = (2.0, 1.0, 1.6)
    color_matrix: tuple[float, ...] = field(default=_IDENTITY9)
    tone: str = "srgb"
    gamma: float = 2.2
    scurve_strength: float = 0.0
    sharpen_radius: float = 0.0
    sharpen_amount: float = 0.0
    denoise_strength: float = 0.0
    output: str = "jpeg"
    jpeg_quality: int | None = 90
    jpeg_qtables: tuple[tuple[int, ...], ...] | None = None
    subsampling: str = "4:2:0"

    def __post_init__(self) -> None:
        # Fail at construction, not halfway through a 1,600-image run.
        if self.cfa not in CFA_PATTERNS:
            raise ValueError(f"cfa must be one of {CFA_PATTERNS}, got {self.cfa!r}")
        if self.demosaic not in DEMOSAIC_METHODS:
            raise ValueError(f"demosaic must be one of {DEMOSAIC_METHODS}, got {self.demosaic!r}")
        if self.tone not in TONE_CURVES:
            raise ValueError(f"tone must be one of {TONE_CURVES}, got {self.tone!r}")
        if self.subsampling not in SUBSAMPLINGS:
            raise ValueError(f"subsampling must be one of {SUBSAMPLINGS}")
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        if self.shot_gain < 0 or self.read_sigma < 0 or self.prnu_sigma < 0:
            raise ValueError("noise parameters must be >= 0")
        if len(self.wb_gains) != 3 or min(self.wb_gains) <= 0:
            raise ValueError("wb_gains must be three positive gains")
        if len(self.color_matrix) != 9:
            raise ValueError("color_matrix must hold 9 numbers (3x3, row-major)")
        if self.output == "jpeg":
            if self.jpeg_qtables is None:
                if self.jpeg_quality is None or not 1 <= self.jpeg_quality <= 100:
                    raise ValueError("a JPEG model needs jpeg_quality in 1..100 or jpeg_qtables")
            else:
                if not 1 <= len(self.jpeg_qtables) <= 4:
                    raise ValueError("jpeg_qtables must hold 1 to 4 tables")
                for t in self.jpeg_qtables:
                    if len(t) != 64 or min(t) < 1 or max(t) > 255:
                        raise ValueError("each quantization table needs 64 ints in 1..255")

    # -- serialisation ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists); :meth:`from_dict` inverts it."""
        d = asdict(self)
        d["wb_gains"] = list(self.wb_gains)
        d["color_matrix"] = list(self.color_matrix)
        if self.jpeg_qtables is not None:
            d["jpeg_qtables"] = [list(t) for t in self.jpeg_qtables]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CameraModelSpec:
        """Rebuild a spec from :meth:`to_dict` output (e.g. a ``model_card.json``)."""
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in known}
        if "wb_gains" in kw:
            kw["wb_gains"] = tuple(float(v) for v in kw["wb_gains"])
        if "color_matrix" in kw:
            kw["color_matrix"] = tuple(float(v) for v in kw["color_matrix"])
        if kw.get("jpeg_qtables") is not None:
            kw["jpeg_qtables"] = tuple(tuple(int(v) for v in t) for t in kw["jpeg_qtables"])
        return cls(**kw)

    # -- derived ------------------------------------------------------------------------

    def quant_tables(self) -> tuple[tuple[int, ...], ...] | None:
        """The quantization tables the JPEG will carry (None for PNG output)."""
        if self.output != "jpeg":
            return None
        if self.jpeg_qtables is not None:
            return self.jpeg_qtables
        assert self.jpeg_quality is not None
        return ijg_quant_tables(self.jpeg_quality)

    def describe(self) -> str:
        """One sentence in words, for the model card."""
        parts = [
            f"Simulated camera model '{self.name}': {self.cfa} colour filter array",
            f"{_DEMOSAIC_NAMES[self.demosaic]} demosaicing",
            f"Poisson-Gaussian sensor noise (a={self.shot_gain:.2e}, b={self.read_sigma:.2e})",
        ]
        if self.prnu_sigma > 0:
            parts.append(f"PRNU-like fixed pattern (sigma {self.prnu_sigma:.3f})")
        if self.denoise_strength > 0:
            parts.append(f"in-camera denoising (strength {self.denoise_strength:.2f})")
        wb = ", ".join(f"{g:.2f}" for g in self.wb_gains)
        parts.append(f"white balance gains ({wb}) and a 3x3 colour matrix")
        if self.tone == "srgb":
            parts.append("sRGB tone curve")
        elif self.tone == "gamma":
            parts.append(f"gamma {self.gamma:.2f} tone curve")
        else:
            parts.append(f"sRGB tone curve with an S-curve (strength {self.scurve_strength:.2f})")
        if self.sharpen_amount > 0 and self.sharpen_radius > 0:
            parts.append(
                f"unsharp-mask sharpening (radius {self.sharpen_radius:.2f} px, "
                f"amount {self.sharpen_amount:.2f})"
            )
        if self.output == "png":
            tail = "lossless PNG output (no JPEG)"
        elif self.jpeg_qtables is not None:
            tail = f"JPEG with custom quantization tables and {self.subsampling} chroma subsampling"
        else:
            tail = f"JPEG quality {self.jpeg_quality} with {self.subsampling} chroma subsampling"
        return ", ".join(parts) + ", " + tail + "."


# --------------------------------------------------------------------------------------
# Pipeline stages (arrays in, arrays out; each one tested on its own)
# --------------------------------------------------------------------------------------


def _as_float_image(scene: np.ndarray) -> np.ndarray:
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
    img = _as_float_image(scene)
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


def ijg_quant_tables(quality: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The (luma, chroma) tables libjpeg writes for ``quality`` (baseline, natural order)."""
    q = int(np.clip(quality, 1, 100))
    scale = 5000 // q if q < 50 else 200 - 2 * q

    def one(base: Sequence[int]) -> tuple[int, ...]:
        return tuple(int(np.clip((b * scale + 50) // 100, 1, 255)) for b in base)

    return one(_IJG_LUMA), one(_IJG_CHROMA)


def estimate_jpeg_quality(luma_table: Sequence[int], tolerance: float = 1.0) -> int | None:
    """The libjpeg quality whose luma table matches ``luma_table``, or None if none does.

    ``luma_table``: the 64 values of a JPEG file's first quantization table (PIL's
    ``quantization[0]``). They are compared as a sorted multiset, because PIL has returned
    the tables in zigzag order in some versions and in natural order in others; the values
    alone identify a libjpeg quality. None when no quality is within ``tolerance`` per
    coefficient on average: the file has tables of its own, as cameras and some editors write.
    """
    table = np.sort(np.asarray(list(luma_table), dtype=np.float64))
    if table.size != 64:
        return None

    errors = [np.abs(np.sort(ijg_quant_tables(q)[0]) - table).mean() for q in range(1, 101)]
    best = int(np.argmin(errors))
    return best + 1 if errors[best] <= tolerance else None


def encode_jpeg(
    img_u8: np.ndarray,
    *,
    quality: int | None = None,
    qtables: Sequence[Sequence[int]] | None = None,
    subsampling: str = "4:2:0",
) -> bytes:
    """Encode an HxWx3 uint8 image with PIL/libjpeg; ``qtables`` win over ``quality``."""
    im = Image.fromarray(np.ascontiguousarray(img_u8, dtype=np.uint8), "RGB")
    buf = BytesIO()
    if qtables is not None:
        im.save(buf, "JPEG", qtables=[list(t) for t in qtables], subsampling=subsampling)
    else:
        im.save(
            buf,
            "JPEG",
            quality=int(quality if quality is not None else 90),
            subsampling=subsampling,
        )
    return buf.getvalue()


def _decode_rgb(data: bytes) -> np.ndarray:
    with Image.open(BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def _quantize_u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def render(
    scene: np.ndarray, spec: CameraModelSpec, rng: np.random.Generator
) -> tuple[np.ndarray, bytes | None]:
    """Photograph ``scene`` with camera model ``spec``.

    ``scene`` is an HxWx3 sRGB image (uint8, or float in [0, 1]) at the working resolution —
    :func:`downscale_scene` it first. ``rng`` draws this shot's sensor noise (the fixed
    PRNU pattern comes from the spec, not from ``rng``).

    Returns ``(image, file_bytes)``: the decoded float32 HxWx3 [0, 1] result — JPEG decoded
    back, so it is exactly what a reader of the file sees — and the JPEG file bytes, or
    ``None`` for a PNG-output model. H and W are cropped top-left to multiples of 16 so the
    CFA phase and the JPEG grid (and 4:2:0 MCUs) start at (0, 0).
    """
    img = _as_float_image(scene)
    h, w = (img.shape[0] // 16) * 16, (img.shape[1] // 16) * 16
    if h == 0 or w == 0:
        raise ValueError(f"scene too small to render (needs >= 16x16), got {img.shape[:2]}")
    img = img[:h, :w]

    cm = np.asarray(spec.color_matrix, np.float64).reshape(3, 3)
    cm_inv = np.linalg.inv(cm).astype(np.float32)
    gains = np.asarray(spec.wb_gains, np.float32)
    cm = cm.astype(np.float32)

    lin = linearize(img)
    cam = lin @ cm_inv.T  # scene linear sRGB → white-balanced camera RGB
    cam = np.clip(cam, 0.0, 1.0) / gains  # undo white balance → raw camera RGB
    raw = mosaic(cam, spec.cfa)
    if spec.prnu_sigma > 0:
        raw = raw * (1.0 + prnu_pattern((h, w), spec.prnu_sigma, spec.prnu_seed))
    raw = add_sensor_noise(raw, spec.shot_gain, spec.read_sigma, rng)
    raw = np.clip(raw, 0.0, 1.0)

    rgb = demosaic(raw, spec.cfa, spec.demosaic)
    rgb = denoise(np.clip(rgb, 0.0, 1.0), spec.denoise_strength)
    rgb = rgb * gains
    rgb = np.clip(rgb, 0.0, 1.0) @ cm.T
    out = apply_tone(rgb, spec.tone, spec.gamma, spec.scurve_strength)
    out = unsharp_mask(out, spec.sharpen_radius, spec.sharpen_amount)
    u8 = _quantize_u8(out)

    if spec.output == "png":
        return u8.astype(np.float32) / 255.0, None
    data = encode_jpeg(
        u8, quality=spec.jpeg_quality, qtables=spec.jpeg_qtables, subsampling=spec.subsampling
    )
    return _decode_rgb(data), data


# --------------------------------------------------------------------------------------
# Drawing models
# --------------------------------------------------------------------------------------


def _custom_qtables(rng: np.random.Generator, base_quality: int) -> tuple[tuple[int, ...], ...]:
    """IJG tables at ``base_quality`` reshaped by a random frequency tilt and jitter.

    Why: real cameras use tables that are not the IJG ones scaled (Nikon, Canon, phones
    each have their own); a tilt makes high frequencies coarser or finer than IJG.
    """
    u, v = np.meshgrid(np.arange(8), np.arange(8))
    freq = ((u + v) / 14.0).ravel()
    tables = []
    for base in ijg_quant_tables(base_quality):
        tilt = rng.uniform(-0.6, 0.6)
        jitter = rng.normal(0.0, 0.12, 64)
        t = np.asarray(base, np.float64) * np.exp(tilt * (freq - 0.5) + jitter)
        tables.append(tuple(int(x) for x in np.clip(np.rint(t), 1, 255)))
    return tuple(tables)


def random_camera_model(seed: int, name: str | None = None) -> CameraModelSpec:
    """Draw a diverse, plausible camera model — a pure function of ``seed``.

    Diversity comes from discrete choices (4 CFA x 3 demosaicing x 3 tone curves x
    3 subsamplings x IJG-or-custom tables x JPEG-or-PNG, sharpening and denoising on/off)
    and continuous ones (noise ``a``/``b``, PRNU, white balance, colour matrix, quality).
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5C4E])
    cfa = str(rng.choice(CFA_PATTERNS))
    dem = str(rng.choice(DEMOSAIC_METHODS))
    shot_gain = float(np.exp(rng.uniform(np.log(2e-4), np.log(4e-3))))
    read_sigma = float(np.exp(rng.uniform(np.log(5e-4), np.log(6e-3))))
    has_prnu = rng.random() < 0.6
    prnu_sigma = float(rng.uniform(0.003, 0.015)) if has_prnu else 0.0
    prnu_seed = int(rng.integers(0, 2**31 - 1))
    wb = (float(rng.uniform(1.4, 2.6)), 1.0, float(rng.uniform(1.2, 2.2)))
    off = -rng.uniform(0.0, 0.35, size=(3, 3))
    np.fill_diagonal(off, 0.0)
    cm = off + np.diag(1.0 - off.sum(axis=1))  # rows sum to 1: white stays white
    tone = str(rng.choice(TONE_CURVES))
    gamma = float(rng.uniform(1.8, 2.6))
    scurve = float(rng.uniform(0.1, 0.5)) if tone == "scurve" else 0.0
    if rng.random() < 0.6:
        sharpen_radius = float(rng.uniform(0.6, 2.0))
        sharpen_amount = float(rng.uniform(0.2, 1.0))
    else:
        sharpen_radius = sharpen_amount = 0.0
    denoise_strength = float(rng.uniform(0.1, 0.8)) if rng.random() < 0.5 else 0.0
    output = "png" if rng.random() < 0.15 else "jpeg"
    quality = int(rng.integers(70, 99))  # 70..98
    qtables = _custom_qtables(rng, quality) if rng.random() < 0.5 else None
    subsampling = str(rng.choice(SUBSAMPLINGS, p=[0.2, 0.3, 0.5]))
    if output == "png":
        quality_out: int | None = None
        qtables = None
    else:
        quality_out = None if qtables is not None else quality
    return CameraModelSpec(
        name=name if name is not None else f"simcam-{seed}",
        cfa=cfa,
        demosaic=dem,
        shot_gain=round(shot_gain, 8),
        read_sigma=round(read_sigma, 8),
        prnu_sigma=round(prnu_sigma, 6),
        prnu_seed=prnu_seed,
        wb_gains=tuple(round(g, 4) for g in wb),  # type: ignore[arg-type]
        color_matrix=tuple(round(float(x), 6) for x in cm.ravel()),
        tone=tone,
        gamma=round(gamma, 4),
        scurve_strength=round(scurve, 4),
        sharpen_radius=round(sharpen_radius, 4),
        sharpen_amount=round(sharpen_amount, 4),
        denoise_strength=round(denoise_strength, 4),
        output=output,
        jpeg_quality=quality_out,
        jpeg_qtables=qtables,
        subsampling=subsampling,
    )


def _model_key(spec: CameraModelSpec) -> tuple:
    """What makes two models tell-apart for the extractor (coarse traces only)."""
    return (spec.cfa, spec.demosaic, spec.output, spec.quant_tables(), spec.subsampling)


def _draw_models(n_models: int, seed: int) -> list[CameraModelSpec]:
    """``n_models`` models with balanced CFA x demosaic coverage and no duplicate keys."""
    combos = [(c, d) for c in CFA_PATTERNS for d in DEMOSAIC_METHODS]
    order = np.random.default_rng([seed, 0xC0DE]).permutation(len(combos))
    models: list[CameraModelSpec] = []
    keys: set[tuple] = set()
    for i in range(n_models):
        cfa, dem = combos[int(order[i % len(combos)])]
        for attempt in range(1000):
            ms = int(np.random.SeedSequence([seed, i, attempt]).generate_state(1)[0])
            spec = replace(random_camera_model(ms, name=f"simcam{i:02d}"), cfa=cfa, demosaic=dem)
            if _model_key(spec) not in keys:
                break
        keys.add(_model_key(spec))
        models.append(spec)
    return models


# --------------------------------------------------------------------------------------
# Whole folders
# --------------------------------------------------------------------------------------


def _png_bytes(img_u8: np.ndarray) -> bytes:
    buf = BytesIO()
    Image.fromarray(img_u8, "RGB").save(buf, "PNG")
    return buf.getvalue()


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode()


def _list_scenes(scene_dir: Path) -> list[Path]:
    return sorted(
        p
        for p in Path(scene_dir).iterdir()
        if p.is_file() and p.suffix.lower() in SCENE_EXTENSIONS and not p.name.startswith(".")
    )


def _load_scene(path: Path, downscale: int) -> np.ndarray:
    # Trusted, project-provided scenes: PIL directly (noisead.io is not a dependency here).
    # No EXIF transpose: the scenes are plain PNGs and orientation is irrelevant to content.
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    return downscale_scene(arr, downscale)


def _render_model(
    i_model: int,
    spec: CameraModelSpec,
    scene_paths: list[Path],
    scene_indices: list[int],
    out_dir: Path,
    seed: int,
    downscale: int,
) -> list[str]:
    """Render one model's images and write them; returns the file names written."""
    model_dir = out_dir / spec.name
    written = []
    for j in scene_indices:
        scene = _load_scene(scene_paths[j], downscale)
        rng = np.random.default_rng(np.random.SeedSequence([seed, i_model, j, 1]))
        img, data = render(scene, spec, rng)
        stem = scene_paths[j].stem
        if data is None:
            fname = f"{stem}.png"
            data = _png_bytes(_quantize_u8(img))
        else:
            fname = f"{stem}.jpg"  # the camera's own bytes, never re-encoded
        atomic_write_bytes(model_dir / fname, data)
        written.append(fname)
    return written


def simulate_cameras(
    scene_dir: Path,
    out_dir: Path,
    n_models: int = 20,
    seed: int = 0,
    downscale: int = 2,
    images_per_model: int | None = None,
    progress: bool = True,
    *,
    workers: int = 1,
) -> list[CameraModelSpec]:
    """Render every scene (or a seeded subset) through ``n_models`` simulated cameras.

    Writes ``out_dir/<model-name>/<scene-stem>.jpg`` (the camera's own JPEG bytes) or
    ``.png`` (PNG-output models), ``out_dir/<model-name>/model_card.json`` (the spec and a
    sentence in words) and ``out_dir/models.json`` (all cards). The output is a
    camera-labelled folder in the same layout as ``../shared/cameras``.

    Models are :func:`random_camera_model` draws named ``simcam00``, ``simcam01``, ...
    whose CFA x demosaicing pair is then assigned from a seeded permutation of the 12
    pairs (every pair appears once before any repeats), redrawn if their coarse traces
    (CFA, demosaicing, output, quantization tables, subsampling) would duplicate a model's.

    ``downscale`` shrinks each scene first (antialiased) to wash out its own traces; pass 1
    for scenes that are already downscaled (``../shared/scenes/cvip`` is, 2x). Every
    random stream derives from ``seed`` (models from ``(seed, model)``, each image's noise
    from ``(seed, model, scene)``), so the same seed gives byte-identical files, and
    ``workers > 1`` (processes, one model per task) changes the speed, never the bytes.
    """
    scene_dir, out_dir = Path(scene_dir), Path(out_dir)
    scene_paths = _list_scenes(scene_dir)
    if not scene_paths:
        raise FileNotFoundError(f"no scene images in {scene_dir}")
    if n_models < 1:
        raise ValueError("n_models must be >= 1")
    models = _draw_models(n_models, seed)
    subsets: list[list[int]] = []
    for i in range(n_models):
        if images_per_model is None or images_per_model >= len(scene_paths):
            subsets.append(list(range(len(scene_paths))))
        else:
            g = np.random.default_rng(np.random.SeedSequence([seed, i, 0x5B]))
            subsets.append(
                sorted(int(k) for k in g.choice(len(scene_paths), images_per_model, replace=False))
            )
    out_dir.mkdir(parents=True, exist_ok=True)

    results: dict[int, list[str]] = {}
    args = [
        (i, models[i], scene_paths, subsets[i], out_dir, seed, downscale) for i in range(n_models)
    ]
    bar = tqdm(total=n_models, desc="simulate cameras", unit="model", disable=not progress)
    if workers <= 1:
        for a in args:
            results[a[0]] = _render_model(*a)
            bar.update(1)
    else:
        with ProcessPoolExecutor(max_workers=workers) as ex:
            futs = {ex.submit(_render_model, *a): a[0] for a in args}
            for fut, i in futs.items():
                results[i] = fut.result()
                bar.update(1)
    bar.close()

    cards = []
    for i, spec in enumerate(models):
        card = {
            "name": spec.name,
            "description": spec.describe(),
            "spec": spec.to_dict(),
            "model_seed_index": i,
            "n_images": len(results[i]),
            "files": results[i],
        }
        atomic_write_bytes(out_dir / spec.name / "model_card.json", _json_bytes(card))
        cards.append(card)
    index = {
        "generator": "noisead.data.simulate.simulate_cameras",
        "seed": seed,
        "n_models": n_models,
        "downscale": downscale,
        "images_per_model": images_per_model,
        "scenes": [p.name for p in scene_paths],
        "models": cards,
    }
    atomic_write_bytes(out_dir / "models.json", _json_bytes(index))
    return models
