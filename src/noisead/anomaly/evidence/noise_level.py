"""Evidence source: the local strength of the noise residual (a noisier or cleaner region).

The statistic is :func:`noisead.anomaly.noise_statistics.noise_level_deviation`; its
docstring has the recipe and why it is two-sided.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from noisead.anomaly.evidence.base import EvidenceSource
from noisead.anomaly.noise_statistics import noise_level_deviation

if TYPE_CHECKING:
    from noisead.anomaly.config import DetectorConfig


class NoiseLevel(EvidenceSource):
    """A splice from a noisier or cleaner source stands out; one of equal strength but
    another pipeline does not (the spectrum sees that)."""

    key = "noise-level"
    name = "noise level"

    def deviation(self, image: np.ndarray, config: DetectorConfig) -> np.ndarray:
        return noise_level_deviation(image)

    def deviation_with_host(self, image: np.ndarray, config: DetectorConfig,
                            host: np.ndarray | None) -> np.ndarray:
        return noise_level_deviation(image, host=host)
