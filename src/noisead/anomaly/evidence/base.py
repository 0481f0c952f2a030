"""What an evidence source is: a training-free map fused with the learned one.

The learned Gaussians are one witness of an image's consistency; plain statistics of the
image itself (its noise level, its noise spectrum, its JPEG lattice) are others, and on
cameras the extractor never saw they often localize better (docs/BENCHMARKS.md). Each
source gives a map in robust z-units; :func:`noisead.anomaly.fusion.fuse` takes the
pixel-wise maximum and records, per pixel, which source set it (its code in
:data:`noisead.anomaly.evidence.EVIDENCE`), so that a flagged region says *what* is
inconsistent there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

if TYPE_CHECKING:
    from noisead.anomaly.config import DetectorConfig


class EvidenceSource:
    """One source of evidence: a key for settings, a name for people, and a map.

    Subclasses set ``key`` (what ``DetectorConfig.evidence`` and the command line name it)
    and ``name`` (the words every output uses for it), list the config fields they read in
    ``settings``, and implement :meth:`deviation`. The two hooks let a source act on the
    fused map before its own values join it; both do nothing by default.
    """

    key: ClassVar[str]
    name: ClassVar[str]
    #: The ``DetectorConfig`` fields this source reads (reset with it on a recalibration).
    settings: ClassVar[tuple[str, ...]] = ()

    def deviation(self, image: np.ndarray, config: DetectorConfig) -> np.ndarray | None:
        """``float32`` H x W robust z-scores (higher = less like the rest of the image), or
        ``None`` when the image carries no such evidence (then the source is left out)."""
        raise NotImplementedError

    def deviation_with_host(self, image: np.ndarray, config: DetectorConfig,
                            host: np.ndarray | None) -> np.ndarray | None:
        """:meth:`deviation` with the norm taken from the ``host`` pixels where the image
        was explained as two parts (the larger one's, ``H x W`` bool:
        :mod:`noisead.anomaly.noise_parts`; None: the whole image). A source that has no
        use for a host keeps this default, which ignores it."""
        return self.deviation(image, config)

    def image_statistic(self, fused: np.ndarray, values: np.ndarray,
                        config: DetectorConfig) -> float | None:
        """The raw image statistic, when this source defines its own from the fused map so
        far and its values; ``None``: the quantile of the final fused map."""
        return None

    def discount_host(self, fused: np.ndarray, values: np.ndarray,
                      config: DetectorConfig) -> None:
        """Lower, in place, the fused map where these values vouch for the host image."""
