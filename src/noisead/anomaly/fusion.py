"""The fusion of the learned map with the detector's evidence sources.

All maps are put in the same units (robust z of a log statistic), then combined by the
pixel-wise maximum: whichever trace is inconsistent at a pixel raises its score, and the
evidence map records which one did. Sources are taken in the order of
:data:`noisead.anomaly.evidence.EVIDENCE_SOURCES`, whatever order the config lists them in.

``DetectorConfig.learned_weight`` scales the learned map before the maximum (1: as it is;
0: left out, so the evidence sources alone make the map). The benchmarks compare these
fusions on the same analyses of each image (:mod:`noisead.evaluate.ablation`), so the
sources' maps can be handed in once computed instead of being computed again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from noisead.anomaly.config import DetectorConfig
from noisead.anomaly.evidence import EVIDENCE_SOURCES, HOST_SOURCES
from noisead.anomaly.noise_parts import statistics_host
from noisead.anomaly.noise_statistics import MAD_TO_SIGMA
from noisead.anomaly.score import region_quantile

#: Each evidence source's map of one image, by source key (``None``: no such evidence).
Deviations = Mapping[str, np.ndarray | None]


@dataclass
class Fused:
    """The fused raw map, which source set each pixel, and the image statistic if a
    source defined its own (``None``: the quantile of ``raw``)."""

    raw: np.ndarray
    evidence: np.ndarray | None
    image_statistic: float | None


def evidence_deviations(image: np.ndarray, config: DetectorConfig,
                        host: np.ndarray | None = None) -> dict[str, np.ndarray | None]:
    """The maps of ``config.evidence``'s sources for ``image``, each computed once;
    ``host``: the pixels the noise statistics take their norm from (None: all of them;
    :mod:`noisead.anomaly.noise_parts`)."""
    return {s.key: s.deviation_with_host(image, config, host) for s in EVIDENCE_SOURCES
            if s.key in config.evidence}


def fuse(learned: np.ndarray, image: np.ndarray, config: DetectorConfig,
         deviations: Deviations | None = None) -> Fused:
    """Fold the ``config.evidence`` sources of ``image`` into the ``learned`` map.

    ``learned`` is the two-sided deviation of the learned distances (MAD units) and is
    modified in place. Without evidence sources it is returned as it is, with no evidence
    map. With them it is put in robust z-units and scaled by ``config.learned_weight``; at
    weight 0 it is left out and the first source that has evidence starts the map (an
    image with no evidence at all then gets an all-zero map, no evidence map). A source
    may first compute the image statistic from the map fused so far, and lower that map
    where it vouches for the host (see
    :class:`~noisead.anomaly.evidence.base.EvidenceSource`). ``deviations``: the sources'
    maps already computed for this image with this config (:func:`evidence_deviations`
    without a host; never modified), so that several fusions of one image compute them
    once.

    With ``config.statistics_parts="auto"``, where the image's noise splits into two parts
    (:mod:`noisead.anomaly.noise_parts`), the noise statistics of the map are measured
    against the larger part; the image statistic stays that of the one-part
    fusion, so that the image score and its verdict keep the false-alarm rate measured
    for them.
    """
    if not config.evidence:
        return Fused(learned, None, None)
    host = statistics_host(image, config)
    if host is None:
        return _fold(learned, image, config, deviations)
    maps = {s.key: (deviations[s.key] if deviations is not None and s.key in deviations
                    else s.deviation(image, config))
            for s in EVIDENCE_SOURCES if s.key in config.evidence}
    one = _fold(learned.copy(), image, config, maps)
    statistic = (one.image_statistic if one.image_statistic is not None
                 else region_quantile(one.raw, config.image_quantile, config.image_smoothing))
    del one
    for s in EVIDENCE_SOURCES:
        if s.key in config.evidence and s.key in HOST_SOURCES:
            maps[s.key] = s.deviation_with_host(image, config, host)
    two = _fold(learned, image, config, maps)
    return Fused(two.raw, two.evidence, statistic)


def _fold(learned: np.ndarray, image: np.ndarray, config: DetectorConfig,
          deviations: Deviations | None) -> Fused:
    """:func:`fuse` with every source's norm the whole image: sources missing from
    ``deviations`` are computed one at a time, each dropped once folded in (a large
    image holds one source map at a time)."""
    fused: np.ndarray | None = None
    evidence: np.ndarray | None = None
    if config.learned_weight:
        fused = learned
        fused /= np.float32(MAD_TO_SIGMA)  # MAD units -> robust z, the sources' units
        if config.learned_weight != 1.0:
            fused *= np.float32(config.learned_weight)
        evidence = np.zeros(fused.shape, np.uint8)
    statistic: float | None = None
    for code, source in enumerate(EVIDENCE_SOURCES, start=1):
        if source.key not in config.evidence:
            continue
        values = (deviations[source.key] if deviations is not None and source.key in deviations
                  else source.deviation(image, config))
        if values is None:
            continue
        if fused is None or evidence is None:  # learned map left out: this source starts it
            fused = values.astype(np.float32, copy=True)
            evidence = np.full(fused.shape, code, np.uint8)
            continue
        own = source.image_statistic(fused, values, config)
        if own is not None:
            statistic = own
        source.discount_host(fused, values, config)
        evidence[values > fused] = code
        np.maximum(fused, values, out=fused)
        del values
    if fused is None:
        return Fused(np.zeros(learned.shape, np.float32), None, None)
    return Fused(fused, evidence, statistic)
