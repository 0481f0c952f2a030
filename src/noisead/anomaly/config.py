"""The detector's settings (:class:`DetectorConfig`) and its scoring modes (:class:`Mode`).

A fitted detector saves its config in the JSON sidecar beside its tensors, so that a model
file says how it scores; :mod:`noisead.anomaly.persistence` reads sidecars of older layouts
and brings them to this one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any


class Mode(StrEnum):
    """What a detector takes as "pristine" when it scores an image.

    A ``str`` enum: ``Mode("blind") is Mode.BLIND`` and ``Mode.BLIND == "blind"``, so the
    strings saved in sidecars, typed on the command line and sent by the web viewer work
    wherever a mode is expected.
    """

    #: Gaussians fitted on a set of pristine images (the thesis' method).
    REFERENCE = "reference"
    #: Gaussians fitted on the test image itself, trimmed of its most anomalous pixels and
    #: refitted (as Noiseprint and Splicebuster localize): the image's own camera is the
    #: norm, so it works for cameras never seen in training.
    BLIND = "blind"


#: Every mode, in the order they are offered.
MODES: tuple[Mode, ...] = tuple(Mode)

#: ``two-sided``: a departure of the local distance from the image's median either way is
#: suspicious; ``upper``: only high distances are.
SCORE_DIRECTIONS = ("two-sided", "upper")

#: ``one``: blind mode explains an image as one camera plus outliers; ``auto``: as two
#: cameras where a two-part mixture wins (:mod:`noisead.anomaly.modes.two_part`).
BLIND_PARTS = ("one", "auto")

#: ``one``: the noise statistics take the whole image as their norm; ``auto``: the larger
#: of two parts that a mixture of their own splits the image into
#: (:mod:`noisead.anomaly.noise_parts`).
STATISTICS_PARTS = ("one", "auto")


@dataclass
class DetectorConfig:
    """Settings of the anomaly model; saved in the sidecar of every fitted detector.

    The geometry (P, C and the position classes) follows the thesis; ``evidence`` names the
    training-free evidence sources fused with the learned map (keys of
    :data:`noisead.anomaly.evidence.EVIDENCE_SOURCES`, fused in that list's order).
    """

    taps: tuple[str, ...] | None = None   # None: the extractor's default taps
    patch_size: int = 64                  # P
    crop_size: int = 128                  # C (fit: C x C crops, central P x P kept)
    crops_per_image: int = 4              # 1 = only the top-left crop, as in the thesis
    # Position classes repeat every ``position_period`` pixels: position_period² Gaussians.
    # 8 ties them to the 8x8 JPEG/CFA phase; = patch_size gives one per patch pixel (thesis).
    position_period: int = 8
    stride: int | None = None             # deployment stride (matters only when untied)
    n_features: int | None = None         # random subset of embedding channels (PaDiM)
    shrinkage: float | str = "oas"
    smoothing_sigma: float = 8.0
    score_direction: str = "two-sided"    # one of SCORE_DIRECTIONS
    evidence: tuple[str, ...] = ()        # evidence sources fused with the learned map
    # The learned map's weight in the fusion (its robust z times this before the maximum);
    # 0: left out, the evidence sources alone (docs/BENCHMARKS.md, the fusion ablation)
    learned_weight: float = 1.0
    jpeg_window: int = 3                  # blocks per side of the lattice evidence window
    jpeg_host_discount: float = 0.0       # how much host-lattice evidence lowers the others
    jpeg_image_discount: float = 1.0      # the same, for the image score's map only
    jpeg_image_weight: float = 2.0        # weight of the lattice evidence in that map
    mode: Mode = Mode.BLIND
    blind_trim: float = 0.2               # fraction of most anomalous pixels left out of refit
    blind_prior: float = 1.0              # weight of the reference covariance, in units of D
    # "auto": blind mode may explain the image as two cameras (modes/two_part.py);
    # "one": always one camera plus outliers
    blind_parts: str = "one"
    # "auto": the noise statistics may take the larger of two parts as their norm, for the
    # heatmap only (noise_parts.py; the image score stays the one-part analysis'); "one":
    # the whole image is their norm
    statistics_parts: str = "one"
    threshold: float = 0.99               # on the calibrated heatmap
    # The image statistic: this quantile of the raw map smoothed by a Gaussian of
    # image_smoothing pixels (see score.region_quantile; chosen on the validation sets,
    # docs/BENCHMARKS.md).
    image_quantile: float = 0.95
    image_smoothing: float = 16.0
    tile: int = 512
    precision: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        # JSON and argparse hand over lists and strings; keep the types the hints promise.
        if self.taps:
            self.taps = tuple(self.taps)
        self.evidence = ((self.evidence,) if isinstance(self.evidence, str)
                         else tuple(self.evidence))
        if self.mode in MODES:
            self.mode = Mode(self.mode)

    @property
    def untied(self) -> bool:
        """One Gaussian per pixel of the patch (the thesis' model) rather than per phase."""
        return self.position_period == self.patch_size

    def to_dict(self) -> dict[str, Any]:
        """The settings as the sidecar stores them (the current layout)."""
        d = asdict(self)
        d["taps"] = list(self.taps) if self.taps else None
        d["evidence"] = list(self.evidence)
        d["mode"] = str(self.mode)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DetectorConfig:
        """Settings of the current layout; a missing or unknown key is an error, since a
        default silently taken for a file saved under other defaults changes its scores
        (older layouts go through :func:`noisead.anomaly.persistence.migrate_sidecar`)."""
        names = {f.name for f in fields(cls)}
        unknown, missing = sorted(set(d) - names), sorted(names - set(d))
        if unknown or missing:
            raise ValueError("detector settings do not match this noisead's layout"
                             + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                             + (f"; missing: {', '.join(missing)}" if missing else ""))
        return cls(**d)

    def validate(self) -> None:
        """Raise ``ValueError`` for settings that cannot work together."""
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.score_direction not in SCORE_DIRECTIONS:
            raise ValueError(f"score_direction must be one of {', '.join(SCORE_DIRECTIONS)}, "
                             f"got {self.score_direction!r}")
        from noisead.anomaly.evidence import EVIDENCE_SOURCES  # the sources' numerics: lazily

        known = [s.key for s in EVIDENCE_SOURCES]
        unknown = [k for k in self.evidence if k not in known]
        if unknown or len(set(self.evidence)) != len(self.evidence):
            raise ValueError(f"evidence must name distinct sources among {', '.join(known)}; "
                             f"got {', '.join(self.evidence)}")
        if self.evidence and self.score_direction != "two-sided":
            raise ValueError("the evidence sources are fused as robust z-scores: they need "
                             "score_direction='two-sided'")
        if (self.jpeg_window < 1 or self.jpeg_host_discount < 0
                or self.jpeg_image_discount < 0 or self.jpeg_image_weight <= 0):
            raise ValueError("jpeg_window must be >= 1, the JPEG discounts >= 0 and "
                             "jpeg_image_weight > 0")
        if self.blind_parts not in BLIND_PARTS:
            raise ValueError(f"blind_parts must be one of {', '.join(BLIND_PARTS)}, "
                             f"got {self.blind_parts!r}")
        if self.statistics_parts not in STATISTICS_PARTS:
            raise ValueError(f"statistics_parts must be one of {', '.join(STATISTICS_PARTS)}, "
                             f"got {self.statistics_parts!r}")
        if not (math.isfinite(self.learned_weight) and self.learned_weight >= 0):
            raise ValueError(f"learned_weight must be a finite number >= 0, got "
                             f"{self.learned_weight!r}")
        if self.learned_weight == 0 and not self.evidence:
            raise ValueError("learned_weight 0 leaves the learned map out of the fusion: "
                             "it needs at least one evidence source")
        if self.image_smoothing < 0:
            raise ValueError("image_smoothing must be >= 0")
        if self.patch_size % self.position_period:
            raise ValueError("position_period must divide patch_size")
        if self.crop_size < self.patch_size or (self.crop_size - self.patch_size) % 16:
            raise ValueError("crop_size - patch_size must be a non-negative multiple of 16 "
                             "(the kept patch stays on the 8x8 grid)")
