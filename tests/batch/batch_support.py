"""Helpers of the batch tests: a cheap analysis with a known result, small images, runs.

The cheap analysis is a real ``Analysis`` (arrays, score, verdict) computed from the
pixels in microseconds, handed to ``run_batch`` through its ``analyze`` parameter: each
input's expected result is known (its score is the mean gray level of its pixels), so a
result given to the wrong input is caught.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from noisead.batch import run_batch
from noisead.infer import Analysis, ImageTooSmallError
from noisead.io import LoadedImage, load_image
from noisead.verdict import TextureCheck, decide
from noisead.verdict.decision import NOMINAL

MIN_SIDE = 16


class CheapAnalysis:
    """``analyze`` for ``run_batch``: score = mean gray; counts its calls; optionally stops
    the run (``KeyboardInterrupt``, as Ctrl+C does) or ends the process (as ``kill -9``)
    when called for the ``stop_at``-th time."""

    def __init__(self, stop_at: int | None = None, how: str = "interrupt",
                 score: float | None = None, mask_all: bool = False) -> None:
        self.calls, self.stop_at, self.how = 0, stop_at, how
        self.score, self.mask_all = score, mask_all

    def __call__(self, loaded: LoadedImage) -> Analysis:
        self.calls += 1
        if self.stop_at is not None and self.calls >= self.stop_at:
            if self.how == "crash":
                import os

                os._exit(137)
            raise KeyboardInterrupt
        return cheap_analysis(loaded.pixels, self.score, self.mask_all)


def cheap_analysis(pixels: np.ndarray, score: float | None = None,
                   mask_all: bool = False) -> Analysis:
    gray = pixels.mean(axis=2).astype(np.float32)
    if min(gray.shape) < MIN_SIDE:
        raise ImageTooSmallError(f"image is {gray.shape[1]}x{gray.shape[0]} pixels; the "
                                 f"analysis needs at least {MIN_SIDE}x{MIN_SIDE} (one patch)")
    value = float(gray.mean()) if score is None else score
    texture = TextureCheck(True, gray.size, None)
    mask = np.ones_like(gray, bool) if mask_all else gray > 0.9
    return Analysis(heatmap=gray, mask=mask, score=value, fingerprint=gray, raw=gray,
                    threshold=0.9, mode="reference", model="cheap", seconds=0.001,
                    texture=texture, verdict=decide(value, texture, NOMINAL))


def expected_score(path: Path) -> float:
    return round(cheap_analysis(load_image(path).pixels).score, 6)


def write_image(path: Path, seed: int, size: int = 24) -> Path:
    """A small random image (content, and so score, set by ``seed``; format by suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size + 2, 3), dtype=np.uint8)).save(path)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def result_jsons(out: Path) -> dict[str, dict]:
    """stem -> JSON of every batch result in ``out``."""
    found = {}
    for p in out.glob("*.json"):
        data = json.loads(p.read_text())
        if "input" in data:
            found[p.name[:-5]] = data
    return found


def run(inputs, out: Path, analyze=None, **kw):
    """``run_batch`` with the cheap analysis (unless an ``engine`` is given); returns every
    input's record by outcome (``.done``, ``.skipped``, ``.failed``, collected through
    ``on_item``: the run's own report keeps counts only) and ``.duplicates``."""
    kw.setdefault("progress", False)
    kw.setdefault("refresh_seconds", 0.0)
    if "engine" not in kw:
        analyze = analyze or CheapAnalysis()
    seen: dict[str, list] = {"done": [], "skipped": [], "failed": []}
    also = kw.pop("on_item", None)

    def collect(outcome, record):
        seen[outcome].append(record)
        if also is not None:
            also(outcome, record)

    report = run_batch([str(i) for i in inputs], out, analyze, model="cheap",
                       on_item=collect, **kw)
    return SimpleNamespace(**seen, duplicates=report.duplicates, report=report)
