"""A detector's figures on validation sets, recorded in its sidecar when it is fitted.

So that a model file says how good it was on data it was *not* fitted on (the training
cameras' validation benchmarks; the test sets stay in docs/BENCHMARKS.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from noisead.anomaly.config import Mode
from noisead.anomaly.detector import Detector
from noisead.evaluate.methods import noisead_method_name
from noisead.evaluate.run import clean_summary

#: The figures kept per set and method.
VALIDATION_KEYS = ("auc", "mcc_best", "detection_auc")


def validation_metrics(detector: Detector, val_root: str | Path) -> dict[str, Any]:
    """Pixel AUC, best MCC and detection AUC of both modes on every validation set
    (every folder of ``val_root`` with a ``manifest.json``), on its clean images."""
    val_root = Path(val_root)
    methods = tuple(noisead_method_name(mode) for mode in (Mode.BLIND, Mode.REFERENCE))
    metrics: dict[str, Any] = {"split": f"validation ({val_root})", "sets": {}}
    for root in sorted(p for p in val_root.iterdir() if (p / "manifest.json").is_file()):
        rows = clean_summary(root, detector, methods)
        metrics["sets"][root.name] = {
            method: {k: round(float(row[k]), 4) for k in VALIDATION_KEYS if k in row}
            for method, row in rows.items()}
    return metrics
