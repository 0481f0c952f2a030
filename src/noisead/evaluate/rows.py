"""The rows of an evaluation on disk (``rows.jsonl``) and what decides whether one is reused.

Every per-image row is appended to ``rows.jsonl`` and flushed at once; a row is reused by a
later run only when it was computed with the same settings (:func:`setup_key`: the band,
thresholds, quantile, dataset and, for a method that uses the detector, a hash of the
detector's weights, calibrations and settings, :func:`detector_fingerprint`). A run killed
at any point restarts where it stopped; rows computed with other settings are recomputed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from noisead.anomaly.detector import Detector
from noisead.data.datasets import ForgeryDataset
from noisead.evaluate.ablation import variant_calibration_arrays
from noisead.evaluate.config import EvalConfig
from noisead.evaluate.methods import METHODS
from noisead.evaluate.metrics import METRIC_KEYS
from noisead.io import atomic_write_bytes, jsonable

__all__ = ["ROWS_FILE", "detector_fingerprint", "read_rows", "setup_key",
           "write_rows"]

ROWS_FILE = "rows.jsonl"
_ROWS_VERSION = 1


def _tensor_bytes(t: Any) -> bytes:
    t = t.detach().cpu()
    if t.is_floating_point():
        t = t.float()
    return t.contiguous().numpy().tobytes()


def detector_fingerprint(detector: Detector, calibrations: bool = True) -> str:
    """Hash of what decides a detector's heatmaps: weights, Gaussians, calibration, config.

    Part of the resume key, so that rows cached for another model are recomputed instead
    of being mixed silently into the new model's table; the calibrations of fusion
    variants prepared for it (:func:`noisead.evaluate.ablation.prepare_variants`) count.
    Without ``calibrations``: what decides its uncalibrated maps and image statistic only.
    """
    h = hashlib.sha256()
    h.update(json.dumps(detector.config.to_dict(), sort_keys=True, default=str).encode())
    tensors = dict(detector.extractor.state_dict())
    if detector.gaussian is not None:
        tensors.update(detector.gaussian.state_dict())
    if detector.channel_index is not None:
        tensors["channel_index"] = detector.channel_index
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(_tensor_bytes(tensors[name]))
    cals = [detector.calibration, detector.image_calibration] if calibrations else []
    for mode in sorted(detector.mode_calibrations) if calibrations else []:
        cals.extend(detector.mode_calibrations[mode])
    for cal in cals:
        if cal is not None:
            h.update(np.ascontiguousarray(cal.quantiles, dtype=np.float64).tobytes())
    for quantiles in variant_calibration_arrays(detector) if calibrations else []:
        h.update(np.ascontiguousarray(quantiles, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def setup_key(config: EvalConfig, dataset: ForgeryDataset, method: str,
              detector_id: str | None) -> str:
    """What a row of ``method`` depends on besides the image and the condition, hashed:
    a cached row is reused only when this is the same."""
    d: dict[str, Any] = {"v": _ROWS_VERSION, "band": config.band,
                         "erode": config.erode_px, "dilate": config.dilate_px,
                         "thr": float(config.fixed_threshold), "dataset": dataset.name,
                         "kind": dataset.kind}
    if METHODS[method].uses_detector:
        d["detector"] = detector_id
    else:
        d["quantile"] = float(config.score_quantile)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def _restore(row: dict[str, Any]) -> dict[str, Any]:
    """A row read back from JSON: ``null`` metrics become NaN again."""
    for k in (*METRIC_KEYS, "score"):
        if k in row and row[k] is None:
            row[k] = math.nan
    return row


def read_rows(path: Path) -> tuple[dict[tuple[str, str, str], dict[str, Any]], bool]:
    """Latest row per (condition, method, image); ``True`` if the file needs rewriting.

    A run killed while writing leaves a partial last line: it is dropped (and so recomputed)
    and the file is rewritten before anything is appended to it.
    """
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    dirty = False
    if not path.is_file():
        return rows, False
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        dirty = True
    n_lines = 0
    for line in data.decode("utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        n_lines += 1
        try:
            row = json.loads(line)
            key = (row["condition"], row["method"], row["image"])
        except (ValueError, KeyError, TypeError):
            dirty = True
            continue
        rows[key] = _restore(row)
    if n_lines != len(rows):
        dirty = True  # duplicates: compact to the latest row per key
    return rows, dirty


def write_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Rewrite ``path`` with ``rows``, one JSON object a line (atomically)."""
    text = "".join(json.dumps(jsonable(r), allow_nan=False)
                   + "\n" for r in rows)
    atomic_write_bytes(path, text.encode("utf-8"))
