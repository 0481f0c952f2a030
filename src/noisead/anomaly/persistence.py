"""A detector on disk: one safetensors file of tensors and one JSON sidecar.

Tensors: ``extractor.<parameter>``, ``gaussian.{mean,whitener,count,shrinkage}`` (the
reference fit, absent for a blind-only detector), ``channel_index`` (PaDiM's channel
subset, if any), ``calibration`` and ``image_calibration`` (the pixel and image-score
calibrations of the config's mode) and ``calibration.<mode>``, ``image_calibration.<mode>``
for each other calibrated mode.

Sidecar: ``format_version``, ``kind: "detector"``, ``extractor`` (architecture and config),
``detector`` (:meth:`DetectorConfig.to_dict`) and the detector's ``info`` (name, fit record,
validation figures, ...). The sidecar layout has a version, :data:`FORMAT_VERSION`; a file
of an older layout is brought to the current one by :func:`migrate_sidecar` (the one place
that knows old layouts), a file of a newer one is refused with a clear error.

Layouts: version 1 named the position period ``period`` and switched the fused evidence
with two flags, ``noise_statistics`` (noise level and spectrum) and ``jpeg_traces`` (the
JPEG lattice); its oldest files lack ``score_direction`` (they scored ``"upper"``) and
``image_smoothing`` (calibrated on the unsmoothed statistic, 0). Version 2 has
``position_period`` and the list ``evidence``. Versions 3 and 4 add the settings of
:data:`_ADDED_IN_V3` and :data:`_ADDED_IN_V4` (an older file gets the value that scores as
it did).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from noisead.anomaly.config import MODES, DetectorConfig, Mode
from noisead.anomaly.gaussian import GaussianModel
from noisead.anomaly.score import Calibration
from noisead.models.registry import (
    build_model,
    load_tensors_with_sidecar,
    model_metadata,
    save_tensors_with_sidecar,
)

if TYPE_CHECKING:
    from noisead.anomaly.detector import Detector

#: The sidecar layout this code writes and reads.
FORMAT_VERSION = 4

#: Sidecar keys that are not the detector's ``info``.
_RESERVED = {"kind", "extractor", "detector", "format_version"}


def detector_tensors(detector: Detector) -> dict[str, torch.Tensor]:
    """Every tensor of ``detector`` under its saved name."""
    tensors = {f"extractor.{k}": v for k, v in detector.extractor.state_dict().items()}
    if detector.gaussian is not None:
        tensors.update(detector.gaussian.state_dict())
    if detector.channel_index is not None:
        tensors["channel_index"] = detector.channel_index
    for name, cal in (("calibration", detector.calibration),
                      ("image_calibration", detector.image_calibration)):
        if cal is not None:
            tensors[name] = torch.from_numpy(cal.quantiles)
    for mode, (pixel, image) in detector.mode_calibrations.items():
        tensors[f"calibration.{mode}"] = torch.from_numpy(pixel.quantiles)
        tensors[f"image_calibration.{mode}"] = torch.from_numpy(image.quantiles)
    return tensors


def save_detector(detector: Detector, path: str | Path, info: dict[str, Any]) -> Path:
    """Write ``detector`` to ``path`` (and its sidecar), with ``info`` added to its own."""
    meta = {"format_version": FORMAT_VERSION, "kind": "detector",
            "extractor": model_metadata(detector.extractor),
            "detector": detector.config.to_dict(), **detector.info, **info}
    return save_tensors_with_sidecar(path, detector_tensors(detector), meta)


def migrate_sidecar(meta: dict[str, Any], source: str | Path) -> dict[str, Any]:
    """``meta`` (a detector sidecar read from ``source``) in the current layout.

    Raises ``ValueError`` for a layout newer than this code knows: guessing at it could
    score every image differently without a word.
    """
    version = meta.get("format_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"{source}: unreadable detector format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(f"{source} was saved in detector format {version}, newer than this "
                         f"noisead reads (up to {FORMAT_VERSION}): update noisead to load it")
    meta = dict(meta)
    if version < 2:
        meta["detector"] = _settings_from_v1(meta["detector"])
    if version < 3:
        meta["detector"] = {**_ADDED_IN_V3, **meta["detector"]}
    if version < 4:
        meta["detector"] = {**_ADDED_IN_V4, **meta["detector"]}
    meta["format_version"] = FORMAT_VERSION
    return meta


#: Every setting of a version 1 sidecar as version 1 read it when the key was missing.
_V1_DEFAULTS: dict[str, Any] = {
    "taps": None, "patch_size": 64, "crop_size": 128, "crops_per_image": 4, "period": 8,
    "stride": None, "n_features": None, "shrinkage": "oas", "smoothing_sigma": 8.0,
    "score_direction": "upper", "noise_statistics": False, "jpeg_traces": False,
    "jpeg_window": 3, "jpeg_host_discount": 0.0, "jpeg_image_discount": 1.0,
    "jpeg_image_weight": 2.0, "mode": "blind", "blind_trim": 0.2, "blind_prior": 1.0,
    "threshold": 0.99, "image_quantile": 0.95, "image_smoothing": 0.0, "tile": 512,
    "precision": "auto", "seed": 0,
}


#: Settings new in version 3, with the value that scores an older file as it was scored.
_ADDED_IN_V3: dict[str, Any] = {
    "blind_parts": "one",  # blind mode: one camera plus outliers, never two parts
    "learned_weight": 1.0,  # the learned map fused at its own scale
}


#: Settings new in version 4, with the value that scores an older file as it was scored.
_ADDED_IN_V4: dict[str, Any] = {
    "statistics_parts": "one",  # the noise statistics' norm: the whole image
}


def _settings_from_v1(old: dict[str, Any]) -> dict[str, Any]:
    """Detector settings of a version 1 sidecar in the version 2 layout."""
    d = {**_V1_DEFAULTS, **old}
    d["position_period"] = d.pop("period")
    noise, jpeg = d.pop("noise_statistics"), d.pop("jpeg_traces")
    d["evidence"] = ((["noise-level", "noise-spectrum"] if noise else [])
                     + (["jpeg-lattice"] if jpeg else []))
    return d


def read_detector(path: str | Path) -> dict[str, Any]:
    """The constructor arguments of :class:`~noisead.anomaly.detector.Detector` saved at
    ``path``, whatever sidecar layout it has."""
    tensors, meta = load_tensors_with_sidecar(path)
    if meta.get("kind") != "detector":
        raise ValueError(f"{path} is a {meta.get('kind', 'unknown')!r} file, not a detector "
                         "(fit one with `noisead fit-detector`)")
    meta = migrate_sidecar(meta, path)
    ext = meta["extractor"]
    extractor = build_model(ext["architecture"], ext["config"])
    extractor.load_state_dict({k[len("extractor."):]: v for k, v in tensors.items()
                               if k.startswith("extractor.")})

    def calibration(name: str) -> Calibration | None:
        t = tensors.get(name)
        return None if t is None else Calibration(t.double().numpy())

    per_mode: dict[Mode, tuple[Calibration, Calibration]] = {}
    for mode in MODES:
        pixel, image = calibration(f"calibration.{mode}"), calibration(f"image_calibration.{mode}")
        if pixel is not None and image is not None:
            per_mode[mode] = (pixel, image)
    return {"extractor": extractor,
            "config": DetectorConfig.from_dict(meta["detector"]),
            "gaussian": (GaussianModel.from_state_dict(tensors) if "gaussian.mean" in tensors
                         else None),
            "calibration": calibration("calibration"),
            "image_calibration": calibration("image_calibration"),
            "channel_index": tensors.get("channel_index"),
            "info": {k: v for k, v in meta.items() if k not in _RESERVED},
            "mode_calibrations": per_mode}
