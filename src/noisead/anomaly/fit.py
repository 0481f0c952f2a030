"""``fit_detector()``: per-position Gaussians and calibration from pristine images.

Following the thesis (and PaDiM), each pristine image is cropped to C x C from the
top-left — the 8x8 JPEG grid and colour-filter phase stay where the camera put them —
embedded, and only the central P x P region is kept, away from the crop's borders.
``crops_per_image > 1`` adds further grid-aligned C x C crops, left to right and top to
bottom, for more samples per image.

A share of the pristine images is held out of the Gaussian fit and used to calibrate the
scores (their distribution on images the Gaussians did not see), so that a threshold on
the calibrated heatmap is a false-alarm rate on pristine pixels. Both modes are
calibrated (blind scores run higher than reference scores on the same image), so that
``--mode blind`` on a model fitted for reference mode, or the other way round, still
gives heatmaps and image scores on the same scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from noisead.anomaly.detector import Detector, DetectorConfig
from noisead.anomaly.gaussian import StreamingGaussian
from noisead.anomaly.score import Calibration

ImageSource = str | Path | np.ndarray


def _as_array(src: ImageSource) -> np.ndarray:
    if isinstance(src, np.ndarray):
        return src
    from noisead.io import load_image

    return load_image(src).pixels


def crop_origins(height: int, width: int, crop: int, count: int) -> list[tuple[int, int]]:
    """Up to ``count`` non-overlapping C x C crop origins, the top-left one first."""
    origins = [(y, x) for y in range(0, height - crop + 1, crop)
               for x in range(0, width - crop + 1, crop)]
    return origins[:count]


def fit_detector(extractor: torch.nn.Module, pristine: Sequence[ImageSource],
                 config: DetectorConfig | None = None, *, calibration_fraction: float = 0.25,
                 calibrate_modes: Sequence[str] = ("blind", "reference"),
                 progress: bool = True, info: dict | None = None) -> Detector:
    """Fit the anomaly model of ``extractor`` on pristine images and calibrate it.

    Images smaller than C x C are skipped (with a count in ``info``). Scores are
    calibrated in the detector's mode and in every mode of ``calibrate_modes``, so that
    they are calibrated the way they will be used, whichever mode an analysis asks for.
    """
    config = config or DetectorConfig()
    config.validate()
    detector = Detector(extractor, config)
    rng = np.random.default_rng(config.seed)
    n_cal = int(round(calibration_fraction * len(pristine))) if len(pristine) > 1 else 0
    order = rng.permutation(len(pristine))
    cal_idx, fit_idx = order[:n_cal], order[n_cal:]

    c, p = config.crop_size, config.patch_size
    m = (c - p) // 2
    if config.n_features is not None:
        full_dim = detector.embed_tensor(torch.zeros(1, 3, 16, 16))[0].shape[1]
        if config.n_features < full_dim:
            gen = torch.Generator().manual_seed(config.seed)
            detector.channel_index = torch.randperm(full_dim, generator=gen)[
                :config.n_features].sort().values
    stats: StreamingGaussian | None = None
    skipped = 0
    used = 0
    for i in tqdm(fit_idx, desc="fitting Gaussians", disable=not progress):
        image = _as_array(pristine[i])
        origins = crop_origins(image.shape[0], image.shape[1], c, config.crops_per_image)
        if not origins:
            skipped += 1
            continue
        batch = np.stack([image[y:y + c, x:x + c] for y, x in origins])
        x = torch.from_numpy(batch.transpose(0, 3, 1, 2).copy()).float()
        emb, _ = detector.embed_tensor(x)
        central = emb[:, :, m:m + p, m:m + p]
        if stats is None:
            stats = StreamingGaussian(detector.n_classes, central.shape[1])
        for j in range(central.shape[0]):
            # Tied: the absolute 8x8 phase; untied: the position inside the P x P patch.
            origin = (0, 0) if config.period == p else (origins[j][0] + m, origins[j][1] + m)
            stats.update_map(central[j], config.period, origin)
        used += 1
    if stats is None:
        raise ValueError(f"no pristine image is at least {c}x{c} pixels")
    detector.gaussian = stats.finalize(config.shrinkage)

    # too few images to hold some out: calibrate on (some of) the fitted ones
    cal_images = cal_idx if len(cal_idx) else fit_idx[:8]
    for mode in [config.mode, *(m for m in calibrate_modes if m != config.mode)]:
        cal_maps, cal_stats = [], []
        for i in tqdm(cal_images, desc=f"calibrating ({mode})", disable=not progress):
            raw = detector.score_image(_as_array(pristine[i]), mode).raw
            cal_maps.append(raw)
            cal_stats.append(np.array([detector.image_statistic(raw)]))
        pixel = Calibration.fit(cal_maps, seed=config.seed)
        image = Calibration.fit(cal_stats, seed=config.seed)
        if mode == config.mode:
            detector.calibration, detector.image_calibration = pixel, image
        else:
            detector.mode_calibrations[mode] = (pixel, image)
    detector.info.update(info or {})
    detector.info["fit"] = {"images_fitted": used, "images_skipped_small": skipped,
                            "images_calibration": len(cal_idx),
                            "samples_per_class_min": int(stats.count.min())}
    return detector
