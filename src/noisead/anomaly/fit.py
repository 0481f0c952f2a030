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

from noisead.anomaly.config import DetectorConfig, Mode
from noisead.anomaly.detector import Detector
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


def split_calibration(n_images: int, calibration_fraction: float, seed: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(calibration indices, fit indices): a seeded random share held out of the fit."""
    n_cal = int(round(calibration_fraction * n_images)) if n_images > 1 else 0
    order = np.random.default_rng(seed).permutation(n_images)
    return order[:n_cal], order[n_cal:]


def _calibration_images(pristine: Sequence[ImageSource], cal_idx: np.ndarray,
                        fit_idx: np.ndarray) -> list[ImageSource]:
    """The held-out images; with too few to hold some out, (some of) the fitted ones."""
    return [pristine[i] for i in (cal_idx if len(cal_idx) else fit_idx[:8])]


def calibrate(detector: Detector, images: Sequence[ImageSource], mode: Mode,
              progress: bool = True) -> tuple[Calibration, Calibration]:
    """(pixel, image-score) calibrations of ``mode``'s raw scores on pristine ``images``."""
    maps, stats = [], []
    for src in tqdm(images, desc=f"calibrating ({mode})", disable=not progress):
        scored = detector.score_image(_as_array(src), mode)
        maps.append(scored.raw)
        stats.append(np.array([detector.image_statistic(scored)]))
    seed = detector.config.seed
    return Calibration.fit(maps, seed=seed), Calibration.fit(stats, seed=seed)


def _set_calibration(detector: Detector, mode: Mode, pixel: Calibration,
                     image: Calibration) -> None:
    if mode == detector.config.mode:
        detector.calibration, detector.image_calibration = pixel, image
    else:
        detector.mode_calibrations[Mode(mode)] = (pixel, image)


def add_calibrations(detector: Detector, pristine: Sequence[ImageSource],
                     modes: Sequence[Mode] = (Mode.BLIND, Mode.REFERENCE), *,
                     calibration_fraction: float = 0.25, progress: bool = True,
                     only_missing: bool = True) -> Detector:
    """Calibrate a fitted detector in the ``modes`` it lacks, in place; returns it.

    ``pristine`` must be the list the detector was fitted on (same order): the same
    images are held out for calibration as in :func:`fit_detector`, so the Gaussians and
    the existing calibration stay exactly as they were. For models saved before both
    modes were calibrated; with ``only_missing=False``, every mode of ``modes`` is
    recalibrated (after a change of how raw scores are made, e.g. the evidence sources).
    """
    cal_idx, fit_idx = split_calibration(len(pristine), calibration_fraction,
                                         detector.config.seed)
    images = _calibration_images(pristine, cal_idx, fit_idx)
    for mode in modes:
        pixel, _, fitted_in_mode = detector.calibrations_for(mode)
        if pixel is None or not fitted_in_mode or not only_missing:
            _set_calibration(detector, mode, *calibrate(detector, images, mode, progress))
    return detector


def fit_detector(extractor: torch.nn.Module, pristine: Sequence[ImageSource],
                 config: DetectorConfig | None = None, *, calibration_fraction: float = 0.25,
                 calibrate_modes: Sequence[Mode] = (Mode.BLIND, Mode.REFERENCE),
                 progress: bool = True, info: dict | None = None) -> Detector:
    """Fit the anomaly model of ``extractor`` on pristine images and calibrate it.

    Images smaller than C x C are skipped (with a count in ``info``). Scores are
    calibrated in the detector's mode and in every mode of ``calibrate_modes``, so that
    they are calibrated the way they will be used, whichever mode an analysis asks for.
    """
    config = config or DetectorConfig()
    config.validate()
    detector = Detector(extractor, config)
    cal_idx, fit_idx = split_calibration(len(pristine), calibration_fraction, config.seed)

    crop, patch = config.crop_size, config.patch_size
    margin = (crop - patch) // 2
    if config.n_features is not None:
        full_dim = detector.embedding_dim()
        if config.n_features < full_dim:
            gen = torch.Generator().manual_seed(config.seed)
            detector.channel_index = torch.randperm(full_dim, generator=gen)[
                :config.n_features].sort().values
    stats: StreamingGaussian | None = None
    skipped = 0
    used = 0
    for i in tqdm(fit_idx, desc="fitting Gaussians", disable=not progress):
        image = _as_array(pristine[i])
        origins = crop_origins(image.shape[0], image.shape[1], crop, config.crops_per_image)
        if not origins:
            skipped += 1
            continue
        batch = np.stack([image[y:y + crop, x:x + crop] for y, x in origins])
        x = torch.from_numpy(batch.transpose(0, 3, 1, 2).copy()).float()
        emb, _ = detector.embed_tensor(x)
        central = emb[:, :, margin:margin + patch, margin:margin + patch]
        if stats is None:
            stats = StreamingGaussian(detector.n_classes, central.shape[1])
        for j in range(central.shape[0]):
            # Tied: the absolute 8x8 phase; untied: the position inside the P x P patch.
            origin = ((0, 0) if config.untied
                      else (origins[j][0] + margin, origins[j][1] + margin))
            stats.update_map(central[j], config.position_period, origin)
        used += 1
    if stats is None:
        raise ValueError(f"no pristine image is at least {crop}x{crop} pixels")
    detector.gaussian = stats.finalize(config.shrinkage)

    cal_images = _calibration_images(pristine, cal_idx, fit_idx)
    for mode in [config.mode, *(m for m in calibrate_modes if m != config.mode)]:
        _set_calibration(detector, mode, *calibrate(detector, cal_images, mode, progress))
    detector.info.update(info or {})
    detector.info["fit"] = {"images_fitted": used, "images_skipped_small": skipped,
                            "images_calibration": len(cal_idx),
                            "samples_per_class_min": int(stats.count.min())}
    return detector
