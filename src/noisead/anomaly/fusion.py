"""The fusion of the learned map with the detector's evidence sources.

All maps are put in the same units (robust z of a log statistic), then combined by the
pixel-wise maximum: whichever trace is inconsistent at a pixel raises its score, and the
evidence map records which one did. Sources are taken in the order of
:data:`noisead.anomaly.evidence.EVIDENCE_SOURCES`, whatever order the config lists them in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from noisead.anomaly.config import DetectorConfig
from noisead.anomaly.evidence import EVIDENCE_SOURCES
from noisead.anomaly.noise_statistics import MAD_TO_SIGMA


@dataclass
class Fused:
    """The fused raw map, which source set each pixel, and the image statistic if a
    source defined its own (``None``: the quantile of ``raw``)."""

    raw: np.ndarray
    evidence: np.ndarray | None
    image_statistic: float | None


def fuse(learned: np.ndarray, image: np.ndarray, config: DetectorConfig) -> Fused:
    """Fold the ``config.evidence`` sources of ``image`` into the ``learned`` map.

    ``learned`` is the two-sided deviation of the learned distances (MAD units) and is
    modified in place. Without evidence sources it is returned as it is, with no evidence
    map. A source may first compute the image statistic from the map fused so far, and
    lower that map where it vouches for the host (see
    :class:`~noisead.anomaly.evidence.base.EvidenceSource`).
    """
    if not config.evidence:
        return Fused(learned, None, None)
    fused = learned
    fused /= np.float32(MAD_TO_SIGMA)  # MAD units -> robust z, the sources' units
    evidence = np.zeros(fused.shape, np.uint8)
    statistic: float | None = None
    for code, source in enumerate(EVIDENCE_SOURCES, start=1):
        if source.key not in config.evidence:
            continue
        values = source.deviation(image, config)
        if values is None:
            continue
        own = source.image_statistic(fused, values, config)
        if own is not None:
            statistic = own
        source.discount_host(fused, values, config)
        evidence[values > fused] = code
        np.maximum(fused, values, out=fused)
        del values
    return Fused(fused, evidence, statistic)
