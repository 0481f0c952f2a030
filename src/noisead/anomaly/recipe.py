"""How the shipped detectors are fitted: pristine crops by camera, the chosen extractor
snapshot, and recalibration of a fitted detector (``noisead fit-detector`` with
``--cameras``, ``--run`` or ``--calibrate-only``; ``make fit``).

Pristine images: up to ``per_camera`` images of every camera model folder under the
camera roots except the held-out models (which are never used: they make the test sets),
top-left crops of at most ``max_side`` pixels (the 8x8 grid stays where the camera put it),
decoded without EXIF rotation (the grid is the sensor's). The sidecar records the choice,
so a detector can be recalibrated later on exactly the same images.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from noisead.anomaly.config import MODES, DetectorConfig
from noisead.anomaly.detector import Detector
from noisead.anomaly.evidence import EVIDENCE_SOURCES
from noisead.anomaly.fit import add_calibrations
from noisead.data.cameras import list_camera_images
from noisead.io import load_image
from noisead.models.dncnn import DnCNN, load_pretrained_denoiser
from noisead.models.registry import current_commit, load_extractor
from noisead.train.extractor import read_training_log

#: Snapshots of a training run, in order of preference: chosen on unseen cameras'
#: localization (scripts/select_snapshot.py), else on the training loop's validation pair
#: AUC, else the last step.
RUN_SNAPSHOTS = ("extractor-selected.safetensors", "extractor-best.safetensors",
                 "extractor.safetensors")


def pristine_crops(roots: Iterable[str | Path], holdout: Iterable[str], per_camera: int,
                   max_side: int) -> tuple[list[np.ndarray], list[Path]]:
    """(top-left crops, their files) of the first ``per_camera`` images of every camera
    model under ``roots`` except ``holdout``, models in sorted order."""
    cams = list_camera_images(*roots)
    held_out = set(holdout)
    paths = [p for c, ps in sorted(cams.items()) if c not in held_out for p in ps[:per_camera]]
    return [load_image(p, apply_exif_orientation=False).pixels[:max_side, :max_side]
            for p in paths], paths


def detector_pristine_images(detector: Detector, roots: Iterable[str | Path]
                             ) -> list[np.ndarray]:
    """The pristine crops ``detector`` was fitted on (its sidecar's ``pristine`` recipe),
    read again from ``roots``; ``ValueError`` if they are not the same set."""
    pristine = detector.info["pristine"]
    images, _ = pristine_crops(roots, pristine["holdout"], pristine["per_camera"],
                               pristine["max_side"])
    if len(images) != pristine["n_images"]:
        raise ValueError(f"the detector was fitted on {pristine['n_images']} images, found "
                         f"{len(images)}: not the same pristine set")
    return images


def pristine_record(n_images: int, per_camera: int, max_side: int, holdout: Iterable[str]
                    ) -> dict[str, Any]:
    """The sidecar's note of which crops a detector was fitted on (see :func:`recalibrate`)."""
    return {"n_images": n_images, "per_camera": per_camera, "max_side": max_side,
            "holdout": sorted(holdout)}


def extractor_from_run(run: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The preferred snapshot of a training run (see :data:`RUN_SNAPSHOTS`) and its record:
    the sidecar's training section with the validation curve of the run's log."""
    run = Path(run)
    path = next((run / n for n in RUN_SNAPSHOTS if (run / n).is_file()),
                run / RUN_SNAPSHOTS[-1])
    extractor, meta = load_extractor(path)
    training = dict(meta.get("training") or {})
    log = run / "log.jsonl"
    if log.is_file():  # the validation curve the selection was made on
        rows = read_training_log(log)
        training["validation_by_step"] = {r["step"]: round(r["val_auc"], 4)
                                          for r in rows if "val_auc" in r}
        training["steps_trained"] = max((r["step"] for r in rows), default=0)
    return extractor, {"extractor_training": training,
                       "extractor_metrics": meta.get("metrics")}


def extractor_from_file(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """A saved extractor and the record of its training, as in its sidecar."""
    extractor, meta = load_extractor(path)
    return extractor, {"extractor_training": meta.get("training"),
                       "extractor_metrics": meta.get("metrics")}


def extractor_from_denoiser(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """A plain pretrained AWGN denoiser used as the extractor (no DBL training)."""
    extractor = DnCNN()
    load_pretrained_denoiser(extractor, path)
    return extractor, {"extractor_training": {"note": "pretrained AWGN denoiser, no DBL "
                                                      "training", "source": str(path)},
                       "extractor_metrics": None}


def command_line() -> str:
    """This process's command line, for the sidecar's record of how a model was made."""
    if sys.argv and sys.argv[0].endswith(".py"):
        return shlex.join(["python", *sys.argv])
    return shlex.join(["noisead", *sys.argv[1:]])


def recalibrate(detector: Detector, roots: Sequence[str | Path], *,
                evidence: Sequence[str] | None = None, learned_only: bool = False,
                learned_weight: float | None = None, command: str = "",
                progress: bool = True) -> Detector:
    """Calibrate ``detector`` again on the pristine crops its sidecar names, in place.

    Without options, only the modes it lacks are calibrated. ``evidence`` switches to
    those evidence sources (their settings and the image statistic's take this code's
    defaults, not the file's) and recalibrates every mode; ``learned_only`` switches every
    source off instead (the learned Gaussians' own map, which the benchmark tables report
    beside the fused default) and recalibrates every mode. ``learned_weight`` sets the
    learned map's weight in the fusion and recalibrates every mode. The Gaussians are
    never touched.
    """
    if learned_only and evidence:
        raise ValueError("learned_only contradicts a list of evidence sources")
    if evidence is not None and not evidence and not learned_only:
        raise ValueError("an empty list of evidence sources: to switch them all off and "
                         "recalibrate, ask for learned_only")
    config = detector.config
    if learned_only:
        config.evidence = ()
    elif evidence:
        config.evidence = tuple(evidence)
        fresh = DetectorConfig()
        chosen = [s for s in EVIDENCE_SOURCES if s.key in config.evidence]
        for key in (*(k for s in chosen for k in s.settings), "image_quantile",
                    "image_smoothing"):
            setattr(config, key, getattr(fresh, key))
    if learned_weight is not None:
        config.learned_weight = float(learned_weight)
    config.validate()
    images = detector_pristine_images(detector, roots)
    everything = bool(evidence or learned_only or learned_weight is not None)
    add_calibrations(detector, images, only_missing=not everything, progress=progress)
    key = ("recalibrated_learned_only" if learned_only else
           "recalibrated_with_evidence" if evidence else
           "recalibrated_with_learned_weight" if learned_weight is not None else
           "calibrations_added")
    detector.info[key] = {"modes": sorted(MODES), "commit": current_commit(),
                          "command": command,
                          **({"evidence": list(config.evidence)} if evidence else {}),
                          **({"learned_weight": config.learned_weight}
                             if learned_weight is not None else {})}
    if learned_only:
        detector.info["name"] = f"{detector.info.get('name', 'detector')}-learned-only"
    return detector
