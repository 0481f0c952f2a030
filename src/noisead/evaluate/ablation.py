"""The fusion ablation: the learned map and the evidence sources apart and together.

Does the learned map earn its place in the fused default? The question is answered by
scoring each image several ways that differ only in what is fused
(:class:`FusionVariant`): the learned Gaussians alone, the noise statistics alone, the
JPEG lattice alone, every evidence source without the learned map, the fused default,
and the default with other weights of the learned map (``DetectorConfig.learned_weight``).

The expensive parts of an analysis — the extractor, the Gaussians, the evidence sources'
maps — are the same for every variant, so they are computed once per image
(:class:`ImageAnalysis`) and only the fusion and the calibration differ. Each variant has
its own calibration, fitted on the same pristine crops as the detector's
(:func:`prepare_variants`), so that its heatmap and image score mean what the default's
mean: the share of pristine pixels (images) that scored lower. The variants are methods
of :data:`noisead.evaluate.methods.METHODS` (``noisead-<key>``), so the benchmark harness
runs them like any other; a detector that was not prepared calibrates its own
configuration with its own tables and every other variant with them too, on the fused
map's scale (robust z), which keeps the ranks (pixel AUC, best-threshold MCC, detection
AUC) but not the meaning of a value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from tqdm import tqdm

from noisead.anomaly.backends import analysis_backend
from noisead.anomaly.config import DetectorConfig, Mode
from noisead.anomaly.detector import Detector, ScoreMaps
from noisead.anomaly.evidence import EVIDENCE_SOURCES
from noisead.anomaly.fusion import evidence_deviations, fuse
from noisead.anomaly.noise_statistics import MAD_TO_SIGMA
from noisead.anomaly.score import Calibration
from noisead.infer import check_image_size
from noisead.io import image_from_array
from noisead.runtime import analysis_device

__all__ = ["FUSION_VARIANTS", "LEARNED_ALONE", "STATISTICS", "FusionVariant", "FusionVariants",
           "ImageAnalysis", "prepare_variants", "variant_calibration_arrays",
           "variants_of"]

#: The "statistics" of the ablation: the noise level and the noise spectrum.
STATISTICS: tuple[str, ...] = ("noise-level", "noise-spectrum")


@dataclass(frozen=True)
class FusionVariant:
    """What one variant fuses: ``evidence`` (``None``: the detector's own sources, or
    every source when it has none) and ``learned_weight`` (``None``: the detector's own;
    0: the learned map left out). Without evidence the learned map is alone."""

    key: str
    label: str
    evidence: tuple[str, ...] | None = None
    learned_weight: float | None = None

    @property
    def method_name(self) -> str:
        """Its name among the benchmark methods."""
        return f"noisead-{self.key}"

    def config_for(self, config: DetectorConfig) -> DetectorConfig:
        """``config`` with this variant's fusion; every other setting kept."""
        evidence = self.evidence
        if evidence is None:
            evidence = config.evidence or tuple(s.key for s in EVIDENCE_SOURCES)
        weight = config.learned_weight if self.learned_weight is None else self.learned_weight
        out = replace(config, evidence=tuple(evidence),
                      learned_weight=float(weight) if evidence else 1.0)
        out.validate()
        return out


#: The learned Gaussians' own map, nothing fused (the map every variant starts from).
LEARNED_ALONE = FusionVariant("learned-alone", "learned alone", evidence=())

#: The variants the benchmark compares, then the learned weights tried on validation.
FUSION_VARIANTS: tuple[FusionVariant, ...] = (
    LEARNED_ALONE,
    FusionVariant("statistics-alone", "statistics alone", evidence=STATISTICS,
                  learned_weight=0.0),
    FusionVariant("lattice-alone", "JPEG lattice alone", evidence=("jpeg-lattice",),
                  learned_weight=0.0),
    FusionVariant("without-learned", "fused without learned", learned_weight=0.0),
    FusionVariant("fused", "fused"),
    *(FusionVariant(f"fused-w{w:g}", f"fused, learned weight {w:g}", learned_weight=w)
      for w in (0.5, 0.75, 1.25)),
)


@dataclass
class ImageAnalysis:
    """The parts of one image's analysis that every variant shares."""

    pixels: np.ndarray
    learned: np.ndarray       # two-sided deviation of the learned distances (MAD units)
    fingerprint: np.ndarray
    deviations: dict[str, np.ndarray | None]  # every evidence source's map, by key


def _digest(pixels: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(pixels).tobytes(), digest_size=16).hexdigest()


@dataclass
class FusionVariants:
    """A detector's fusion variants in one mode: their detectors (the same extractor and
    Gaussians, their own fusion and calibrations) and the last image's analysis."""

    detector: Detector
    mode: Mode
    calibrations: dict[str, tuple[Calibration, Calibration]] = field(default_factory=dict)
    _detectors: dict[str, Detector] = field(default_factory=dict, repr=False)
    _last: tuple[tuple, ImageAnalysis] | None = field(default=None, repr=False)

    def detector_for(self, variant: FusionVariant) -> Detector:
        """The detector that fuses as ``variant`` does (the base one for its own config)."""
        config = variant.config_for(self.detector.config)
        if config == self.detector.config:
            return self.detector
        if variant.key not in self._detectors:
            self._detectors[variant.key] = replace(self.detector, config=config)
        return self._detectors[variant.key]

    def analysis(self, pixels: np.ndarray, device: str = "cpu", backend: str = "torch"
                 ) -> ImageAnalysis:
        """The shared parts for ``pixels``, computed once for consecutive calls on the
        same pixels (compared by content, not identity)."""
        key = (str(device), backend, pixels.shape, str(pixels.dtype), _digest(pixels))
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        self._last = None  # let the previous image's maps go before computing new ones
        learned_only = self.detector_for(LEARNED_ALONE)
        maps = learned_only.score_image(pixels, self.mode, device=device, backend=backend)
        every = replace(self.detector.config,
                        evidence=tuple(s.key for s in EVIDENCE_SOURCES))
        analysis = ImageAnalysis(pixels, maps.raw, maps.fingerprint,
                                 evidence_deviations(pixels, every))
        self._last = (key, analysis)
        return analysis

    def maps(self, variant: FusionVariant, analysis: ImageAnalysis) -> tuple[ScoreMaps, float]:
        """(raw maps, raw image statistic) of ``variant`` from a shared analysis."""
        detector = self.detector_for(variant)
        fused = fuse(analysis.learned.copy(), analysis.pixels, detector.config,
                     analysis.deviations)
        maps = ScoreMaps(fused.raw, analysis.fingerprint, fused.evidence,
                         fused.image_statistic)
        return maps, detector.image_statistic(maps)

    def calibrations_for(self, variant: FusionVariant) -> tuple[Calibration, Calibration, bool]:
        """(pixel, image calibration, whether they are the variant's own)."""
        if variant.key in self.calibrations:
            return (*self.calibrations[variant.key], True)
        pixel, image, same_mode = self.detector.calibrations_for(self.mode)
        if pixel is None or image is None:
            raise ValueError("the detector has no calibration: fit it with fit_detector()")
        own = same_mode and self.detector_for(variant) is self.detector
        return pixel, image, own

    def score(self, variant: FusionVariant, image: np.ndarray
              ) -> tuple[np.ndarray, float, np.ndarray]:
        """(calibrated heatmap, image score, fingerprint) of ``variant`` for ``image``, on
        the device and backend :func:`noisead.infer.analyze` would use."""
        pixels = image_from_array(image)
        check_image_size(pixels, self.detector)
        analysis = self.analysis(pixels, analysis_device(None), analysis_backend(None))
        maps, statistic = self.maps(variant, analysis)
        pixel_cal, image_cal, own = self.calibrations_for(variant)
        raw = maps.raw
        if not own and not self.detector_for(variant).config.evidence:
            raw = raw / np.float32(MAD_TO_SIGMA)  # learned alone, on the fused map's scale
            statistic /= MAD_TO_SIGMA
        return pixel_cal(raw), float(image_cal([statistic])[0]), maps.fingerprint


def variants_of(detector: Detector, mode: Mode | str | None = None) -> FusionVariants:
    """The fusion variants of ``detector`` in ``mode`` (default: its own), kept with it so
    that consecutive variants of one image share its analysis."""
    mode = Mode(mode or detector.config.mode)
    kept = detector.__dict__.setdefault("_fusion_variants", {})
    if mode not in kept:
        kept[mode] = FusionVariants(detector, mode)
    return kept[mode]


def prepare_variants(detector: Detector, pristine: Sequence[np.ndarray],
                     variants: Sequence[FusionVariant] = FUSION_VARIANTS,
                     mode: Mode | str | None = None, *, progress: bool = True
                     ) -> FusionVariants:
    """Calibrate each variant on the ``pristine`` images, as
    :func:`noisead.anomaly.fit.calibrate` calibrates a detector (one analysis per image
    for all variants); the variant methods of ``detector`` then use these calibrations.
    The detector's own configuration keeps its own calibration."""
    fv = variants_of(detector, mode)
    todo = [v for v in variants if fv.detector_for(v) is not detector]
    maps: dict[str, list[np.ndarray]] = {v.key: [] for v in todo}
    stats: dict[str, list[np.ndarray]] = {v.key: [] for v in todo}
    for image in tqdm(pristine, desc=f"calibrating variants ({fv.mode})", disable=not progress):
        analysis = fv.analysis(image)
        for v in todo:
            m, statistic = fv.maps(v, analysis)
            maps[v.key].append(m.raw)
            stats[v.key].append(np.array([statistic]))
    seed = detector.config.seed
    for v in todo:
        fv.calibrations[v.key] = (Calibration.fit(maps[v.key], seed=seed),
                                  Calibration.fit(stats[v.key], seed=seed))
    fv._last = None
    return fv


def variant_calibration_arrays(detector: Detector) -> list[np.ndarray]:
    """The quantile tables of every variant calibration prepared for ``detector``, in a
    fixed order (part of the benchmark rows' resume key)."""
    out: list[np.ndarray] = []
    kept = detector.__dict__.get("_fusion_variants", {})
    for fv in (kept[mode] for mode in sorted(kept)):
        for key in sorted(fv.calibrations):
            out.extend(c.quantiles for c in fv.calibrations[key])
    return out
