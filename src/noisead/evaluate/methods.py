"""Every method the benchmarks compare, behind one protocol and one registry.

A method turns an image into an H x W heatmap in ``[0, 1]`` (what the metrics and the
figures read), a mask (the heatmap at a threshold) and one image-level detection score.
noisead's detector is a method per scoring mode (``noisead-blind``, ``noisead-reference``)
plus ``noisead``, the detector's own configured mode; each fusion variant of
:mod:`noisead.evaluate.ablation` (``noisead-learned-alone``, ``noisead-fused``, ...) is
one more, in the detector's configured mode; each classic baseline of
:mod:`noisead.evaluate.baselines` is another.

Scales differ by kind. noisead's heatmap is calibrated (the share of pristine pixels
scoring lower) and its score is :attr:`noisead.infer.Analysis.score`. A baseline has no
calibration: its map is min-max normalised per image (a constant map becomes all zeros),
so a fixed threshold means something relative to the image's own range, and its score is
a high quantile of its *raw* map, whose units (noise sigma, error level, z-score) are
comparable across images where min-max normalised maps are not.

To add a baseline: a function ``image -> H x W map`` (higher = more suspicious) and one
line in :data:`METHODS`. A new detector mode is registered with its :class:`Mode`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

from noisead.anomaly.config import Mode
from noisead.anomaly.detector import Detector
from noisead.evaluate.ablation import FUSION_VARIANTS, FusionVariant, variants_of
from noisead.evaluate.baselines import (
    ela,
    jpeg_lattice_map,
    noi1,
    noise_residual_variance,
    noise_statistics_map,
)
from noisead.infer import analyze

__all__ = ["METHODS", "BaselineMethod", "FusionVariantMethod", "Method", "MethodContext",
           "MethodOutput", "NoiseadMethod", "method_names", "noisead_method_name",
           "normalize_heatmap", "run_method"]


@dataclass
class MethodOutput:
    """One method's answer for one image."""

    heatmap: np.ndarray              # H x W float32 in [0, 1]: what the metrics and figures use
    mask: np.ndarray                 # H x W bool: heatmap >= the context's threshold
    score: float                     # image-level score for the detection AUC
    fingerprint: np.ndarray | None   # noisead's noise fingerprint (None for baselines)


@dataclass(frozen=True)
class MethodContext:
    """What a method may need besides the image (the same for every image of a run)."""

    detector: Detector | None = None  # for the methods that use one
    threshold: float = 0.5            # the mask: heatmap >= threshold
    score_quantile: float = 0.99      # a baseline's image score: this quantile of its map


class Method(Protocol):
    """``method(image, context) -> MethodOutput``; ``uses_detector`` says whether the
    context must carry a detector (and whether the detector decides its rows)."""

    name: str
    uses_detector: bool

    def __call__(self, image: np.ndarray, context: MethodContext) -> MethodOutput: ...


def noisead_method_name(mode: Mode | None) -> str:
    """``noisead-<mode>``, or ``noisead`` for the detector's configured mode."""
    return "noisead" if mode is None else f"noisead-{mode}"


@dataclass(frozen=True)
class NoiseadMethod:
    """The detector through :func:`noisead.infer.analyze`, in one mode (``None``: the
    detector's configured mode)."""

    mode: Mode | None
    uses_detector: ClassVar[bool] = True

    @property
    def name(self) -> str:
        return noisead_method_name(self.mode)

    def mode_for(self, detector: Detector) -> Mode:
        """The mode this method scores ``detector`` in."""
        return Mode(self.mode or detector.config.mode)

    def __call__(self, image: np.ndarray, context: MethodContext) -> MethodOutput:
        if context.detector is None:
            raise ValueError(f"method {self.name!r} needs a detector")
        a = analyze(image, context.detector, mode=self.mode, threshold=context.threshold,
                    max_pixels=None)
        return MethodOutput(np.asarray(a.heatmap, dtype=np.float32), a.mask, float(a.score),
                            a.fingerprint)


@dataclass(frozen=True)
class FusionVariantMethod:
    """The detector with one fusion of :mod:`noisead.evaluate.ablation`, in its configured
    mode; consecutive variants of one image share one analysis of it."""

    variant: FusionVariant
    uses_detector: ClassVar[bool] = True

    @property
    def name(self) -> str:
        return self.variant.method_name

    def __call__(self, image: np.ndarray, context: MethodContext) -> MethodOutput:
        if context.detector is None:
            raise ValueError(f"method {self.name!r} needs a detector")
        heat, score, fingerprint = variants_of(context.detector).score(self.variant, image)
        return MethodOutput(heat, heat >= np.float32(context.threshold), score, fingerprint)


@dataclass(frozen=True)
class BaselineMethod:
    """A training-free map of :mod:`noisead.evaluate.baselines`, normalised per image."""

    name: str
    heatmap: Callable[[np.ndarray], np.ndarray]
    uses_detector: ClassVar[bool] = False

    def __call__(self, image: np.ndarray, context: MethodContext) -> MethodOutput:
        raw = np.asarray(self.heatmap(image))
        if raw.ndim != 2:
            raise ValueError(f"baseline {self.name!r} returned a map of shape {raw.shape}")
        if not np.isfinite(raw).all():
            raise ValueError(f"baseline {self.name!r} returned a map of shape {raw.shape} "
                             "with non-finite values")
        heat = normalize_heatmap(raw)
        return MethodOutput(heat, heat >= np.float32(context.threshold),
                            float(np.quantile(raw, context.score_quantile)), None)


def normalize_heatmap(heatmap: np.ndarray) -> np.ndarray:
    """Min-max normalise a baseline's map to ``[0, 1]`` per image (float64 math, float32 out).

    Why per image: baselines have no calibration, so a fixed threshold only means something
    relative to the image's own range. A constant map becomes all zeros.
    """
    h = np.asarray(heatmap, dtype=np.float64)
    lo, hi = float(h.min()), float(h.max())
    if not hi > lo:
        return np.zeros(h.shape, dtype=np.float32)
    return ((h - lo) / (hi - lo)).astype(np.float32)


#: Method name -> method: the table rows of every benchmark.
METHODS: dict[str, Method] = {m.name: m for m in (
    NoiseadMethod(None),
    *(NoiseadMethod(mode) for mode in Mode),
    *(FusionVariantMethod(v) for v in FUSION_VARIANTS),
    BaselineMethod("noi1", noi1),
    BaselineMethod("ela", ela),
    BaselineMethod("noise_residual_variance", noise_residual_variance),
    BaselineMethod("noise_statistics", noise_statistics_map),
    BaselineMethod("jpeg_lattice", jpeg_lattice_map),
)}


def method_names(methods: Iterable[str]) -> list[str]:
    """Validate method names (no duplicates kept); ``ValueError`` lists the valid ones."""
    out: list[str] = []
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
        if m not in out:
            out.append(m)
    return out


def run_method(name: str, image: np.ndarray, context: MethodContext) -> MethodOutput:
    """Run the method registered as ``name`` on one (post-processed) image."""
    return METHODS[method_names([name])[0]](image, context)
