"""Two noises or one: the noise statistics' own two-part explanation of an image.

The noise level and spectrum (:mod:`noisead.anomaly.noise_statistics`) measure every
neighbourhood against the image's own majority: one camera plus outliers. A region from
another camera that covers a third or a half of the image is no outlier, and against a
norm that mixes both cameras neither part stands out. Here the windows' noise descriptors
(the local log-energies of the seven fixed high-pass residuals) are split into two parts
by a two-component Gaussian mixture (scikit-learn, in
:func:`noisead.anomaly.modes.two_part.decide_parts`, which also reports BIC's gain of two
components over one); the larger part is the host, and the level and the spectrum take
their norm from the host's pixels only (``host=`` of
:func:`~noisead.anomaly.noise_statistics.noise_level_deviation` and
:func:`~noisead.anomaly.noise_statistics.noise_spectrum_deviation`): the maps keep their
units, distances from the host's own noise. With the shipped settings the split is taken
whenever the smaller part holds at least 5 % of the windows, that is on nearly every
image.

Switched on by ``DetectorConfig.statistics_parts = "auto"`` (the learned Gaussians have
blind mode's own two-part explanation, :mod:`noisead.anomaly.modes.two_part`). An
untouched photo is split too (by its texture), and its smaller part then reads as
foreign: the option changes the heatmap only, the image score and its verdict stay those
of the one-part analysis, whose false-alarm rate was measured
(:func:`noisead.anomaly.fusion.fuse`). It localizes large splices; it is off by default
(docs/BENCHMARKS.md, "Large foreign regions").

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> image = 0.5 + rng.normal(0, 0.002, (256, 256, 3))
    >>> image[:, 128:] += rng.normal(0, 0.02, (256, 128, 3))  # a noisier right half
    >>> parts = find_noise_parts(image)
    >>> bool(parts.host[:, :128].mean() > 0.9 or parts.host[:, 128:].mean() > 0.9)
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from noisead.anomaly.evidence import HOST_SOURCES
from noisead.anomaly.modes.two_part import TwoPartSettings, decide_parts
from noisead.anomaly.noise_statistics import local_log_energy

if TYPE_CHECKING:
    from noisead.anomaly.config import DetectorConfig

__all__ = ["NOISE_PART_SETTINGS", "NoiseParts", "find_noise_parts", "statistics_host"]

#: How the two parts of the noise statistics are looked for (chosen on the validation
#: cameras, experiments/two_part_statistics.py): 32-pixel windows every 8 pixels, the
#: seven log-energies standardized (all seven kept), two parts wherever the smaller holds
#: at least 5 % of the windows (BIC's gain is not required: on validation it did not tell
#: forged from untouched photos, and the split localized best taken every time).
NOISE_PART_SETTINGS = TwoPartSettings(window=32, dims=7, min_gain=-np.inf, min_part=0.05,
                                      content=False, n_init=3)


@dataclass(frozen=True)
class NoiseParts:
    """Where two parts won: ``host`` (``H x W`` bool, the larger part), the smaller
    part's share of the image, and BIC's gain of two parts per window."""

    host: np.ndarray
    foreign_share: float
    gain: float


def find_noise_parts(image: np.ndarray, settings: TwoPartSettings = NOISE_PART_SETTINGS,
                     seed: int = 0) -> NoiseParts | None:
    """The two parts of ``image``'s noise, or None where ``settings`` keep one part (BIC's
    gain below ``min_gain``, the smaller part under ``min_part``, or too few windows)."""
    h, w = np.shape(image)[:2]
    step = max(1, settings.window // 4)
    energies = local_log_energy(image, settings.window, step)
    features = energies.reshape(len(energies), -1).T
    posterior, gain = decide_parts(features, settings, seed)
    if posterior is None:
        return None
    foreign = posterior.reshape(energies.shape[1:]) >= 0.5
    # each pixel takes the window sampled nearest to it (samples at 0, step, 2 step, ...)
    rows = np.minimum(np.rint(np.arange(h) / step).astype(int), foreign.shape[0] - 1)
    cols = np.minimum(np.rint(np.arange(w) / step).astype(int), foreign.shape[1] - 1)
    host = ~foreign[rows][:, cols]
    return NoiseParts(host, float(1.0 - host.mean()), gain)


def statistics_host(image: np.ndarray, config: DetectorConfig) -> np.ndarray | None:
    """The host mask the noise statistics take their norm from under ``config``: the
    larger part where ``config.statistics_parts`` is ``"auto"``, a noise statistic is
    fused and the image splits in two; else None (the whole image sets the norm)."""
    if (config.statistics_parts != "auto"
            or not any(k in config.evidence for k in HOST_SOURCES)):
        return None
    parts = find_noise_parts(image, seed=config.seed)
    return None if parts is None else parts.host
