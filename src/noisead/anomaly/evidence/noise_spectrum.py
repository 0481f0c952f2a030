"""Evidence source: the shape of the noise residual's spectrum (another pipeline's noise).

The statistic is :func:`noisead.anomaly.noise_statistics.noise_spectrum_deviation`: seven
fixed high-pass residuals, scored by one robust Gaussian fitted on the image itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from noisead.anomaly.evidence.base import EvidenceSource
from noisead.anomaly.noise_statistics import noise_spectrum_deviation

if TYPE_CHECKING:
    from noisead.anomaly.config import DetectorConfig


class NoiseSpectrum(EvidenceSource):
    """Another demosaicing, resampling or JPEG history stands out; a pure change of noise
    level mostly does not (the level sees that): the two are complementary."""

    key = "noise-spectrum"
    name = "noise spectrum"

    def deviation(self, image: np.ndarray, config: DetectorConfig) -> np.ndarray:
        return noise_spectrum_deviation(image)

    def deviation_with_host(self, image: np.ndarray, config: DetectorConfig,
                            host: np.ndarray | None) -> np.ndarray:
        return noise_spectrum_deviation(image, host=host)
