"""Reference mode: every tile scored against the Gaussians fitted on pristine images.

The thesis' method. Cost: one extractor pass per tile; nothing of image size with the
embedding's D channels is ever held.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from noisead.anomaly.config import DetectorConfig
from noisead.anomaly.modes.canvas import Canvas, tile_distances

if TYPE_CHECKING:
    from noisead.anomaly.detector import Detector


def patch_offsets(config: DetectorConfig) -> list[tuple[int, int]]:
    """Patch-grid offsets to average over: one when positions are tied to the 8x8 phase;
    for an untied model, the patch grid shifted by the deployment stride."""
    if not config.untied:
        return [(0, 0)]
    step = config.stride or config.patch_size // 2
    period = config.position_period
    return [(oy, ox) for oy in range(0, period, step) for ox in range(0, period, step)]


def score_reference(detector: Detector, canvas: Canvas) -> None:
    """Fill ``canvas`` with the squared distances to the reference Gaussians."""
    if detector.gaussian is None:
        raise ValueError("this detector has no reference fit: use mode='blind'")
    offsets = patch_offsets(detector.config)
    period = detector.config.position_period
    # With one patch-grid offset, the blocks are centred on the means as they are laid
    # out (the same values as subtracting them in the scoring, one pass fewer).
    center = offsets == [(0, 0)]
    for t in canvas.tiles:
        blocks, fingerprint = detector.embed_blocks(canvas.source, t, runner=canvas.runner,
                                                    center=center)
        canvas.put(canvas.fingerprint, t, fingerprint)
        canvas.put(canvas.distances, t, tile_distances(detector.gaussian, blocks, t, period,
                                                       offsets, centered=center))
        del blocks
