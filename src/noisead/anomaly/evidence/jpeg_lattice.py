"""Evidence source: 8x8 blocks off the image's own JPEG quantization lattice.

An image that was once a JPEG keeps, in every block of its grid, DCT coefficients on the
lattice of that JPEG's steps; a region pasted from elsewhere or re-synthesized does not
(:mod:`noisead.anomaly.jpeg_traces` has the statistic). Images that show no lattice get no
evidence from this source and are scored as without it.

Two settings of the detector act here, each chosen on the validation sets
(docs/BENCHMARKS.md, the JPEG lattice sections):

* ``jpeg_host_discount`` (0 in the shipped default): a block *on* the lattice is evidence
  of the host, which can lower the other sources' scores there. It helps images saved
  losslessly after the edit but hides the pasted region after a recompression, which puts
  it on the host's lattice too; so the heatmap keeps no discount.
* ``jpeg_image_discount`` and ``jpeg_image_weight``: for the *image* score a discount
  separates forged from pristine images better in every condition tried, recompressed
  ones included (on a pristine JPEG the noise statistics' tails are content, which the
  lattice vouches for). The image statistic is the quantile of
  :func:`image_score_map` rather than of the heatmap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from noisead.anomaly.evidence.base import EvidenceSource
from noisead.anomaly.filters import gaussian_blur
from noisead.anomaly.jpeg_traces import jpeg_lattice_deviation
from noisead.anomaly.score import region_quantile

if TYPE_CHECKING:
    from noisead.anomaly.config import DetectorConfig

#: Gaussian smoothing (pixels) of the blockwise JPEG lattice evidence before fusion.
JPEG_SMOOTHING_SIGMA = 4.0


def lattice_evidence(image: np.ndarray, window: int = 3) -> np.ndarray | None:
    """The JPEG lattice evidence as the detector fuses it: the signed per-pixel z of
    ``jpeg_lattice_deviation`` smoothed by ``JPEG_SMOOTHING_SIGMA``; None without a lattice."""
    z = jpeg_lattice_deviation(image, window=window)
    return None if z is None else gaussian_blur(z, JPEG_SMOOTHING_SIGMA)


def host_evidence(z: np.ndarray) -> np.ndarray:
    """How strongly each pixel's block sits on the image's own lattice: ``max(-z, 0)``."""
    return np.maximum(-z, np.float32(0.0))


def image_score_map(fused: np.ndarray, z: np.ndarray, discount: float, weight: float
                    ) -> np.ndarray:
    """The map whose smoothed quantile is the image statistic of an image with a lattice:
    ``max(fused - discount * host, weight * z)`` (``host`` from :func:`host_evidence`)."""
    return np.maximum(fused - np.float32(discount) * host_evidence(z), np.float32(weight) * z)


class JpegLattice(EvidenceSource):
    """Blocks off the lattice raise the score; blocks on it can vouch for the host."""

    key = "jpeg-lattice"
    name = "JPEG lattice"
    settings = ("jpeg_window", "jpeg_host_discount", "jpeg_image_discount",
                "jpeg_image_weight")

    def deviation(self, image: np.ndarray, config: DetectorConfig) -> np.ndarray | None:
        return lattice_evidence(image, window=config.jpeg_window)

    def image_statistic(self, fused: np.ndarray, values: np.ndarray,
                        config: DetectorConfig) -> float:
        image_map = image_score_map(fused, values, config.jpeg_image_discount,
                                    config.jpeg_image_weight)
        return region_quantile(image_map, config.image_quantile, config.image_smoothing)

    def discount_host(self, fused: np.ndarray, values: np.ndarray,
                      config: DetectorConfig) -> None:
        if config.jpeg_host_discount:  # 0 in the shipped default: no pass over the map
            fused -= np.float32(config.jpeg_host_discount) * host_evidence(values)
