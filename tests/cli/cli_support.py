"""Helpers of the command-line tests: a tiny real detector whose decision threshold the
test chooses, small textured images, and schema validation of what the CLI writes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
from PIL import Image

from noisead.schemas import load_schema

#: Operating-point thresholds: every judged image is flagged / none is.
FLAG_ALL, FLAG_NONE = 0.0, 1.5


def tiny_detectors(folder: Path) -> dict[float, Path]:
    """A real detector (DnCNN-tiny, fitted on three noise images), saved in ``folder`` once
    per decision threshold of ``FLAG_ALL`` and ``FLAG_NONE``: its sidecar's operating
    point makes the verdict of every judged image known."""
    import torch

    from noisead.anomaly.detector import DetectorConfig
    from noisead.anomaly.fit import fit_detector
    from noisead.models.registry import create_model

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pristine = [np.random.default_rng(i).random((96, 96, 3), dtype=np.float32)
                    for i in range(3)]
        det = fit_detector(create_model("dncnn-tiny"), pristine,
                           DetectorConfig(patch_size=32, crop_size=64, tile=160),
                           progress=False)
    finally:
        torch.set_num_threads(threads)
    paths = {}
    for threshold in (FLAG_ALL, FLAG_NONE):
        point = {"threshold": threshold, "false_alarms": 1, "pristine_images": 100,
                 "source": "a test"}
        paths[threshold] = det.save(folder / f"tiny-{threshold}.safetensors", name="tiny",
                                    decision={"blind": point, "reference": point})
    return paths


def noise_image(path: Path, seed: int, side: int = 128) -> Path:
    """A textured (judgeable) PNG of ``side`` x ``side`` pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)
    return path


def validate(document: dict, name: str) -> None:
    jsonschema.Draft202012Validator(load_schema(name)).validate(document)


def json_lines(text: str) -> list[dict]:
    """The JSON lines of ``--json`` output, each validated against its schema."""
    documents = [json.loads(line) for line in text.splitlines()]
    for document in documents:
        validate(document, "failure" if document["outcome"] == "failed" else "result")
    return documents


def results(out: Path) -> dict[str, dict]:
    """stem -> result JSON of an output folder, each validated against the schema."""
    found = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    for document in found.values():
        validate(document, "result")
    return found
