"""The scoring modes, one module each, behind one registry.

A mode fills a :class:`~noisead.anomaly.modes.canvas.Canvas` with the squared Mahalanobis
distance of every pixel's embedding and with the fingerprint; the detector then smooths,
fuses and calibrates the same way whichever mode made the distances. To add a mode: a
member of :class:`noisead.anomaly.config.Mode`, a module here with its scoring function,
and one line in :data:`SCORERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from noisead.anomaly.config import Mode
from noisead.anomaly.modes.blind import score_blind
from noisead.anomaly.modes.canvas import Canvas
from noisead.anomaly.modes.reference import score_reference

if TYPE_CHECKING:
    from noisead.anomaly.detector import Detector

__all__ = ["SCORERS", "Canvas", "Scorer"]

#: Fills a canvas with one mode's squared distances and the fingerprint.
Scorer = Callable[["Detector", Canvas], None]

SCORERS: dict[Mode, Scorer] = {
    Mode.REFERENCE: score_reference,
    Mode.BLIND: score_blind,
}
