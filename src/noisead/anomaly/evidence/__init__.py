"""The evidence sources a detector can fuse with its learned map, in fusion order.

To add a source: write a module here with an :class:`~noisead.anomaly.evidence.base.
EvidenceSource` subclass (a ``key``, a ``name`` and a ``deviation`` map; see
``noise_level.py``), and add an instance to :data:`EVIDENCE_SOURCES`. Its key is then
accepted by ``DetectorConfig.evidence`` and ``noisead fit-detector --evidence``, and its
name appears in every output that says which statistic set a flagged score.
"""

from __future__ import annotations

from noisead.anomaly.evidence.base import EvidenceSource
from noisead.anomaly.evidence.jpeg_lattice import JpegLattice
from noisead.anomaly.evidence.noise_level import NoiseLevel
from noisead.anomaly.evidence.noise_spectrum import NoiseSpectrum

__all__ = ["EVIDENCE", "EVIDENCE_SOURCES", "HOST_SOURCES", "LEARNED", "EvidenceSource"]

#: Every evidence source, in the order they are fused. A source's code in a detector's
#: evidence map is its position here plus one (code 0 is the learned fingerprint), so
#: append new sources at the end: saved evidence maps keep their meaning.
EVIDENCE_SOURCES: tuple[EvidenceSource, ...] = (
    NoiseLevel(),
    NoiseSpectrum(),
    JpegLattice(),
)

#: Keys of the sources that can take their norm from the larger of two parts of an image
#: (those that override ``deviation_with_host``): what a two-part analysis measures again
#: against that part (:mod:`noisead.anomaly.noise_parts`).
HOST_SOURCES: tuple[str, ...] = tuple(
    s.key for s in EVIDENCE_SOURCES
    if type(s).deviation_with_host is not EvidenceSource.deviation_with_host)

#: What code 0 of an evidence map stands for: the learned Gaussians' own score.
LEARNED = "learned fingerprint"

#: Names of the evidence codes: ``EVIDENCE[code]`` set the raw score of such a pixel.
EVIDENCE: tuple[str, ...] = (LEARNED, *(s.name for s in EVIDENCE_SOURCES))

