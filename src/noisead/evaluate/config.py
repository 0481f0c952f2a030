"""What an evaluation runs: :class:`EvalConfig`, and the post-processing conditions.

Conditions: ``clean`` (the images as stored), then one-at-a-time robustness sweeps, each
JPEG quality of :attr:`EvalConfig.jpeg` and each scale of :attr:`EvalConfig.resize` (a JPEG
row *or* a resize row, never their product, as in the thesis' tables). ``None`` in either
tuple asks for the clean condition. The post-processing is
:func:`noisead.data.augment.postprocess_image`, applied to forged and pristine images
alike; after a resize the mask is resized with nearest neighbour to the new size (the only
case where a mask is ever resized: any other size mismatch raises ``ValueError``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

from noisead.data.augment import postprocess_image
from noisead.evaluate.methods import method_names

__all__ = ["Condition", "EvalConfig", "apply_condition", "conditions_for"]


@dataclass
class EvalConfig:
    """What to evaluate and how; saved as ``config.json`` beside the results."""

    methods: tuple[str, ...] = ("noisead-blind", "noisead-reference", "noi1", "ela")
    jpeg: tuple[int | None, ...] = (None,)      # None = no recompression; e.g. (None, 95, 90)
    resize: tuple[float | None, ...] = (None,)  # None = no resize; e.g. (None, 0.8, 1.2)
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
    """One post-processing condition: ``clean``, a JPEG quality or a resize factor."""

    name: str                  # "clean", "jpeg90", "resize0.8": row key and file-name part
    sweep: str                 # "clean", "jpeg" or "resize"
    jpeg: int | None = None
    scale: float | None = None

    @property
    def label(self) -> str:
        if self.sweep == "jpeg":
            return f"JPEG quality {self.jpeg}"
        if self.sweep == "resize":
            return f"resize x{self.scale:g}"
        return "clean"


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
    the mask follows the image with nearest neighbour; that is the only way a mask changes
    size here, and a mask that does not fit its image is an error, never resized silently.
    """
    if mask is not None and mask.shape != image.shape[:2]:
        raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                         f"{image.shape[1]}x{image.shape[0]} (WxH) before post-processing")
    if condition.sweep == "clean":
        return image, mask
    out = postprocess_image(image, jpeg_quality=condition.jpeg, scale=condition.scale)
    if mask is not None and out.shape[:2] != mask.shape:
        if condition.scale is None:
            raise ValueError(f"post-processing {condition.name} changed the image size from "
                             f"{mask.shape} to {out.shape[:2]} without a resize")
        mask = _resize_mask(mask, out.shape[0], out.shape[1])
    return out, mask
