"""The viewer's recent analyses, kept in memory under random ids.

Results are keyed by random 128-bit ids, never by file names: a URL neither reveals nor
depends on what the analyst uploaded, cannot be guessed by another page, and an old URL
simply expires (404) once the bounded store has let its result go.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DEFAULT_MAX_RESULTS", "DEFAULT_MAX_RESULT_BYTES", "PNG_KINDS", "RESULT_ID",
           "AnalysisResult", "ResultStore"]

DEFAULT_MAX_RESULTS = 16
DEFAULT_MAX_RESULT_BYTES = 1024 * 1024 * 1024

PNG_KINDS: tuple[str, ...] = (
    "image", "heatmap", "heatmap-gray", "heatmap-data", "mask", "overlay", "fingerprint",
    "evidence-data",
)
"""Result images. ``image`` is the photo as analysed (EXIF orientation applied, so it lines
up with the maps); ``heatmap`` the coloured calibrated heatmap; ``heatmap-gray`` the same
as a 16-bit grayscale PNG (value / 65535 = calibrated heatmap); ``heatmap-data`` the same
16 bits packed into red (high byte) and green (low byte), because a browser canvas only
reads 8 bits per channel; ``mask`` white = tampered; ``overlay`` the photo in gray with the
heatmap blended on top and the mask outlined; ``fingerprint`` the noise fingerprint;
``evidence-data`` (only for a detector with evidence sources) the code of the statistic that
set each pixel's score (gray level = index into the summary's ``evidence_names``), so that
the page's evidence breakdown follows its threshold slider."""

RESULT_ID = re.compile(r"[0-9a-f]{32}")
"""What a result id looks like (``secrets.token_hex(16)``); anything else is refused."""


@dataclass
class AnalysisResult:
    """One analysis, kept in memory: its PNGs plus what a re-thresholded zip needs."""

    summary: dict[str, Any]
    image_u8: np.ndarray           # H x W x 3, the photo as analysed
    heat16: np.ndarray             # H x W uint16, round(calibrated heatmap * 65535)
    pngs: dict[str, bytes]
    evidence: np.ndarray | None = None  # H x W uint8 codes (see infer.evidence_shares)
    created: float = field(default_factory=time.time)

    @property
    def nbytes(self) -> int:
        return (self.image_u8.nbytes + self.heat16.nbytes
                + (0 if self.evidence is None else self.evidence.nbytes)
                + sum(len(b) for b in self.pngs.values()))


class ResultStore:
    """A thread-safe LRU of recent analyses, bounded in count and in bytes.

    The newest result is always kept, even when it alone exceeds ``max_bytes``: the
    analyst who just waited for it must be able to see it.
    """

    def __init__(self, max_items: int = DEFAULT_MAX_RESULTS,
                 max_bytes: int = DEFAULT_MAX_RESULT_BYTES) -> None:
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items}")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, AnalysisResult] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, result: AnalysisResult) -> str:
        """Keep ``result`` under a fresh random id (returned), evicting the least recent."""
        rid = secrets.token_hex(16)
        with self._lock:
            self._items[rid] = result
            while len(self._items) > 1 and (
                len(self._items) > self.max_items
                or sum(r.nbytes for r in self._items.values()) > self.max_bytes
            ):
                self._items.popitem(last=False)
        return rid

    def get(self, rid: str) -> AnalysisResult | None:
        """The result, or None for unknown, expired or malformed ids (never raises)."""
        if not RESULT_ID.fullmatch(rid):
            return None
        with self._lock:
            result = self._items.get(rid)
            if result is not None:
                self._items.move_to_end(rid)
            return result

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
