"""What an evaluation runs: :class:`EvalConfig`, and the post-processing conditions.

Conditions: ``clean`` (the images as stored), then one-at-a-time robustness sweeps, each
JPEG quality of :attr:`EvalConfig.jpeg` and each scale of :attr:`EvalConfig.resize` (a JPEG
row *or* a resize row, never their product, as in the thesis' tables). ``None`` in either
tuple asks for the clean condition. The post-processing is
:func:`noisead.data.augment.postprocess_image`, applied to forged and pristine images
alike; after a resize the mask is resized with nearest neighbour to the new size (the only
case where a mask is ever resized: any other size mismatch raises ``ValueError``).

``web`` adds the web-like condition, an image as a web page would serve it
(:class:`WebRecipe`): downscaled to a drawn size and saved as a JPEG of a drawn quality,
both drawn per image from a seed taken from the image's own pixels (the same image gets
the same draw in every run, whatever order the images come in).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

from noisead.data.augment import postprocess_image
from noisead.evaluate.methods import method_names
from noisead.io import to_uint8
from noisead.io.jpeg import jpeg_round_trip

__all__ = ["WEB_LIKE", "Condition", "EvalConfig", "WebRecipe", "apply_condition",
           "conditions_for"]


@dataclass
class EvalConfig:
    """What to evaluate and how; saved as ``config.json`` beside the results."""

    methods: tuple[str, ...] = ("noisead-blind", "noisead-reference", "noi1", "ela")
    jpeg: tuple[int | None, ...] = (None,)      # None = no recompression; e.g. (None, 95, 90)
    resize: tuple[float | None, ...] = (None,)  # None = no resize; e.g. (None, 0.8, 1.2)
    web: bool = False                            # add the web-like condition (WEB_LIKE)
    band: bool = False                           # ignore the boundary band (Noiseprint/TruFor)
    fixed_threshold: float = 0.5                 # on each method's map in [0, 1]
    max_images: int | None = None                # first N forged and first N pristine
    n_figures: int = 4                           # forged images in examples.png
    score_quantile: float = 0.99                 # baselines' image score: this map quantile
    erode_px: int = 15                           # band: tampered pixels counted this far in
    dilate_px: int = 11                          # band: pristine pixels counted this far out

    def __post_init__(self) -> None:
        # JSON and the CLI hand over lists; keep the tuples the type hints promise.
        self.methods = (self.methods,) if isinstance(self.methods, str) else tuple(self.methods)
        self.jpeg = tuple(self.jpeg)
        self.resize = tuple(self.resize)

    def validate(self) -> None:
        method_names(self.methods)  # raises on unknown names
        if not self.methods:
            raise ValueError("no method to evaluate")
        for q in self.jpeg:
            if q is not None and not (isinstance(q, int | np.integer) and 1 <= int(q) <= 100):
                raise ValueError(f"JPEG quality must be an integer in 1..100 or None, got {q!r}")
        for s in self.resize:
            if s is not None and not (math.isfinite(float(s)) and 0.0 < float(s) <= 8.0):
                raise ValueError(f"resize scale must be in (0, 8] or None, got {s!r}")
        if not 0.0 < self.score_quantile <= 1.0:
            raise ValueError(f"score_quantile must be in (0, 1], got {self.score_quantile}")
        if self.max_images is not None and self.max_images < 1:
            raise ValueError(f"max_images must be >= 1 or None, got {self.max_images}")
        if self.n_figures < 0:
            raise ValueError(f"n_figures must be >= 0, got {self.n_figures}")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Condition:
    """One post-processing condition: ``clean``, a JPEG quality, a resize factor or
    ``web`` (:data:`WEB_LIKE`)."""

    name: str                  # "clean", "jpeg90", "resize0.8", "web": row key, file-name part
    sweep: str                 # "clean", "jpeg", "resize" or "web"
    jpeg: int | None = None
    scale: float | None = None

    @property
    def label(self) -> str:
        if self.sweep == "jpeg":
            return f"JPEG quality {self.jpeg}"
        if self.sweep == "resize":
            return f"resize x{self.scale:g}"
        if self.sweep == "web":
            return WEB_LIKE.label
        return "clean"


@dataclass(frozen=True)
class WebRecipe:
    """An image as a web page serves it: downscaled, then saved as a JPEG.

    Per image, from a seed of its own 8-bit pixels: a target size drawn uniformly in
    ``megapixels`` and a libjpeg quality drawn uniformly in ``quality`` (both ends
    included). The image is downscaled (Lanczos, as web tools do) by
    ``min(max_scale, sqrt(target / its size))``, so it always shrinks, at least to
    ``max_scale`` of its side even when it is already smaller than the target, then
    saved as a 4:2:0 JPEG (the web's usual chroma subsampling) with its grid at the new
    top-left corner. The mask follows with nearest neighbour.
    """

    megapixels: tuple[float, float] = (0.1, 0.5)
    quality: tuple[int, int] = (70, 90)
    max_scale: float = 0.9

    @property
    def label(self) -> str:
        return (f"web-like ({self.megapixels[0]:g}-{self.megapixels[1]:g} MP, "
                f"JPEG q{self.quality[0]}-{self.quality[1]})")

    def draw(self, pixels: np.ndarray) -> tuple[int, int, int]:
        """(new width, new height, JPEG quality) for the uint8 ``pixels``."""
        rng = np.random.default_rng(zlib.crc32(np.ascontiguousarray(pixels).tobytes()))
        target = rng.uniform(*self.megapixels) * 1e6
        quality = int(rng.integers(self.quality[0], self.quality[1] + 1))
        h, w = pixels.shape[:2]
        scale = min(self.max_scale, math.sqrt(target / (h * w)))
        return max(1, round(w * scale)), max(1, round(h * scale)), quality

    def apply(self, image: np.ndarray) -> np.ndarray:
        """``image`` (float RGB in ``[0, 1]``) as served: downscaled and JPEG-compressed."""
        u8 = to_uint8(image)
        width, height, quality = self.draw(u8)
        small = np.asarray(Image.fromarray(u8).resize((width, height),
                                                      Image.Resampling.LANCZOS))
        return jpeg_round_trip(small, quality, subsampling="4:2:0").astype(np.float32) / 255.0


#: The web-like condition of the benchmarks (issue 19: 0.1-0.5 MP, JPEG quality 70-90).
WEB_LIKE = WebRecipe()


def conditions_for(config: EvalConfig) -> list[Condition]:
    """Clean (if ``None`` is in ``jpeg`` or ``resize``), then each JPEG quality, each scale.

    One-at-a-time sweeps, as in the thesis: a JPEG condition is never resized and a resize
    condition never recompressed. Duplicates are dropped, the order given is kept.
    """
    conds: list[Condition] = []
    if None in config.jpeg or None in config.resize:
        conds.append(Condition("clean", "clean"))
    for q in config.jpeg:
        if q is not None:
            conds.append(Condition(f"jpeg{int(q)}", "jpeg", jpeg=int(q)))
    for s in config.resize:
        if s is not None:
            conds.append(Condition(f"resize{float(s):g}", "resize", scale=float(s)))
    if config.web:
        conds.append(Condition("web", "web"))
    unique: dict[str, Condition] = {}
    for c in conds:
        unique.setdefault(c.name, c)
    if not unique:
        raise ValueError("no condition to evaluate: put None in jpeg or resize for clean images")
    return list(unique.values())


def _resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize with PIL (pixel-centre mapping, as the bicubic image resize)."""
    im = Image.fromarray(mask.astype(np.uint8) * np.uint8(255))
    return np.asarray(im.resize((width, height), Image.Resampling.NEAREST)) > 127


def apply_condition(image: np.ndarray, mask: np.ndarray | None, condition: Condition
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """The image (and mask) as they look under ``condition``.

    Clean images are returned untouched (not even re-quantised to 8 bits). After a resize
    (or the web-like condition's downscale) the mask follows the image with nearest
    neighbour; that is the only way a mask changes size here, and a mask that does not fit
    its image is an error, never resized silently.
    """
    if mask is not None and mask.shape != image.shape[:2]:
        raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                         f"{image.shape[1]}x{image.shape[0]} (WxH) before post-processing")
    if condition.sweep == "clean":
        return image, mask
    if condition.sweep == "web":
        out = WEB_LIKE.apply(image)
    else:
        out = postprocess_image(image, jpeg_quality=condition.jpeg, scale=condition.scale)
    if mask is not None and out.shape[:2] != mask.shape:
        if condition.scale is None and condition.sweep != "web":
            raise ValueError(f"post-processing {condition.name} changed the image size from "
                             f"{mask.shape} to {out.shape[:2]} without a resize")
        mask = _resize_mask(mask, out.shape[0], out.shape[1])
    return out, mask
