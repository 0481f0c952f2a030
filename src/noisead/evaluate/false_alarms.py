"""The decision's operating point: a threshold chosen on validation photos, measured on
untouched photos of camera models that neither the extractor nor the detector ever saw.

A verdict shown to a person states how often untouched photos are flagged; this module
produces that figure. Photos are scored as a user would analyse them (the whole file, its
EXIF orientation applied), under the conditions a photo meets on its way to an analyst:
as the camera wrote it, recompressed as a JPEG, and downscaled and recompressed as on the
web. An image the texture check refuses is counted apart: it is never flagged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from noisead.anomaly.detector import Detector
from noisead.anomaly.score import Calibration
from noisead.io import LoadedImage, encode_png, load_image, to_uint8
from noisead.io.jpeg import encode_jpeg
from noisead.verdict import OperatingPoint


@dataclass(frozen=True)
class PhotoCondition:
    """How an untouched photo is altered before it is scored (no content change)."""

    name: str
    jpeg_quality: int | None = None     # re-save as a JPEG at this libjpeg quality
    max_megapixels: float | None = None  # downscale (Lanczos) to at most this many pixels

    def apply(self, path: Path, max_pixels: int | None) -> LoadedImage:
        """The photo at ``path`` under this condition, decoded as the CLI would decode it."""
        if self.jpeg_quality is None and self.max_megapixels is None:
            return load_image(path, max_pixels=max_pixels)
        pixels = load_image(path, max_pixels=max_pixels).pixels
        im = Image.fromarray(to_uint8(pixels))
        if self.max_megapixels is not None:
            scale = math.sqrt(self.max_megapixels * 1e6 / (im.width * im.height))
            if scale < 1.0:
                im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                               Image.Resampling.LANCZOS)
        u8 = np.asarray(im)
        data = (encode_png(u8) if self.jpeg_quality is None else
                encode_jpeg(u8, quality=self.jpeg_quality, subsampling=None))
        return load_image(data, max_pixels=max_pixels)


#: The conditions the operating point is measured under.
CONDITIONS: tuple[PhotoCondition, ...] = (
    PhotoCondition("as taken"),
    PhotoCondition("JPEG q90", jpeg_quality=90),
    PhotoCondition("web: 0.3 MP, JPEG q80", jpeg_quality=80, max_megapixels=0.3),
)


@dataclass(frozen=True)
class PhotoScore:
    """One photo's image score under one condition (``score`` None: not judgeable).

    ``statistic`` is the uncalibrated image statistic behind the score; ``forged`` marks
    the forged images scored to measure the detection rate at the operating point.
    """

    pool: str
    camera: str
    path: str
    condition: str
    score: float | None
    statistic: float | None = None
    forged: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"pool": self.pool, "camera": self.camera, "path": self.path,
                "condition": self.condition, "score": self.score,
                "statistic": self.statistic, "forged": self.forged}


def score_photos(photos: Iterable[tuple[str, str, Path]], conditions: Sequence[PhotoCondition],
                 analyse: Callable[[LoadedImage], tuple[float, bool, float]],
                 done: set[tuple[str, str]] | None = None,
                 max_pixels: int | None = None, forged: bool = False) -> Iterable[PhotoScore]:
    """Score each ``(pool, camera, path)`` photo under each condition, lazily.

    ``analyse`` maps a decoded image to ``(image score, judgeable, image statistic)``;
    pairs of ``(path, condition)`` in ``done`` are skipped, so an interrupted measurement
    resumes.
    """
    done = done or set()
    for pool, camera, path in photos:
        for cond in conditions:
            if (str(path), cond.name) in done:
                continue
            score, judgeable, statistic = analyse(cond.apply(path, max_pixels))
            yield PhotoScore(pool, camera, str(path), cond.name,
                             float(score) if judgeable else None,
                             float(statistic) if judgeable else None, forged)


def choose_threshold(scores: Sequence[float], target_rate: float, floor: float = 0.0) -> float:
    """The lowest threshold at which at most ``target_rate`` of ``scores`` reach it.

    A photo is flagged when its score is at or above the threshold, so the threshold is set
    just above the ``k``-th highest score, ``k = floor(target_rate * n)``; never below
    ``floor``.

    Examples:
        >>> t = choose_threshold([0.1, 0.5, 0.9, 0.95], 0.25)   # one of four may reach it
        >>> 0.9 < t < 0.9001
        True
        >>> 0.5 < choose_threshold([0.1, 0.5, 0.9, 0.95], 0.5) < 0.5001
        True
    """
    values = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    if values.size == 0:
        raise ValueError("choosing a threshold needs at least one pristine score")
    allowed = int(math.floor(target_rate * values.size))
    above = values[allowed] if allowed < values.size else values[-1]
    threshold = float(np.nextafter(np.float32(above), np.float32(np.inf)))
    return max(threshold, floor)


def operating_point(scores: Sequence[float | None], threshold: float, source: str
                    ) -> OperatingPoint:
    """How many of ``scores`` (None: not judgeable, never flagged) reach ``threshold``."""
    flagged = sum(1 for s in scores if s is not None and s >= threshold)
    return OperatingPoint(threshold, flagged, len(scores), source)


def read_scores(path: Path) -> list[PhotoScore]:
    """The scores saved so far in a JSON-lines file (empty if there is none)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            d = json.loads(line)
            rows.append(PhotoScore(d["pool"], d["camera"], d["path"], d["condition"],
                                   d["score"], d.get("statistic"), d.get("forged", False)))
    return rows


def append_score(path: Path, row: PhotoScore) -> None:
    """Append one score line and flush it to disk (a kill loses at most the line in flight)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(row.to_dict()) + "\n")
        f.flush()


@dataclass(frozen=True)
class DecisionFit:
    """The image calibration and operating point fitted on validation photos, and what
    they give on the held-out test photos, per condition."""

    calibration: Calibration
    stated: OperatingPoint                    # validation photos, all conditions
    test: dict[str, OperatingPoint]           # held-out cameras, by condition (and "all")
    detection: dict[str, tuple[int, int]]     # forged images flagged / scored, by pool
    target_rate: float                        # the false-alarm rate asked on validation

    def to_dict(self) -> dict[str, object]:
        return {"target_rate": self.target_rate, "stated": self.stated.to_dict(),
                "test": {k: v.to_dict() for k, v in self.test.items()},
                "detection": {k: {"flagged": f, "images": n}
                              for k, (f, n) in self.detection.items()}}


def fit_decision(rows: Sequence[PhotoScore], target_rate: float) -> DecisionFit:
    """Fit the image calibration on the validation photos' statistics (every condition),
    choose the threshold at ``target_rate`` on their calibrated scores, and measure it on
    the test photos and on the forged images.

    Why refit the image calibration: fitted on a few dozen crops of the training cameras,
    it saturates at 1 for any statistic above their largest, so pristine photos of unusual
    cameras and forged images read the same 1.000 and no threshold can tell them apart.
    Fitted on hundreds of untouched photos of many cameras, under the conditions photos
    reach an analyst in, the score keeps its resolution where the decision is taken, and
    it means what the verdict says: the share of untouched photos that score lower.
    """
    def pick(pool: str, forged: bool = False) -> list[PhotoScore]:
        return [r for r in rows if r.pool == pool and r.forged == forged]

    val = pick("val")
    judged = [r.statistic for r in val if r.statistic is not None]
    if not judged:
        raise ValueError("no judgeable validation photo: nothing to calibrate on")
    calibration = Calibration.fit([np.asarray(judged, np.float64)])

    def scores(selected: Sequence[PhotoScore]) -> list[float | None]:
        return [None if r.statistic is None else float(calibration([r.statistic])[0])
                for r in selected]

    threshold = choose_threshold([s for s in scores(val) if s is not None], target_rate)
    test = {}
    for cond in [*(c.name for c in CONDITIONS), "all"]:
        sel = [r for r in pick("test") if cond in ("all", r.condition)]
        test[cond] = operating_point(scores(sel), threshold,
                                     f"untouched photos of held-out cameras, {cond}")
    chosen_on = operating_point(scores(val), threshold, "")
    stated = OperatingPoint(threshold, chosen_on.false_alarms, chosen_on.pristine_images,
                            "untouched validation photos (32 camera models), as taken, "
                            "recompressed and web-like",
                            (test["all"].false_alarms, test["all"].pristine_images))
    detection = {}
    for pool in ("val", "test"):
        forged = scores(pick(pool, forged=True))
        detection[pool] = (sum(1 for s in forged if s is not None and s >= threshold),
                           len(forged))
    return DecisionFit(calibration, stated, test, detection, target_rate)


def apply_decision(detector: Detector, mode: str, fit: DecisionFit) -> None:
    """Give ``detector`` the fitted image calibration of ``mode`` and record the operating
    point in its info (saved in the sidecar under ``decision.<mode>``)."""
    if mode == detector.config.mode:
        detector.image_calibration = fit.calibration
    else:
        pixel, _ = detector.mode_calibrations[mode]
        detector.mode_calibrations[mode] = (pixel, fit.calibration)
    decisions = dict(detector.info.get("decision") or {})
    decisions[mode] = {**fit.stated.to_dict(), "measurement": fit.to_dict()}
    detector.info["decision"] = decisions
