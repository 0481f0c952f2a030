"""``analyze()``: one image in, calibrated heatmap, mask, fingerprint and score out.

The detector scores the image tile by tile (see :mod:`noisead.anomaly.tiling`), the raw
map is calibrated against pristine images, thresholded into a mask, and summarised into
one image-level score. Batch runs over many files, and the files of each result, are in
:mod:`noisead.batch`.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from noisead.anomaly.backends import analysis_backend
from noisead.anomaly.config import Mode
from noisead.anomaly.detector import EVIDENCE, Detector
from noisead.anomaly.evidence import HOST_SOURCES
from noisead.anomaly.score import threshold_mask
from noisead.io import (
    DEFAULT_MAX_PIXELS,
    LoadedImage,
    image_from_array,
    load_image,
    to_uint8,
)
from noisead.io.jpeg import estimate_jpeg_quality
from noisead.runtime import analysis_device
from noisead.verdict import TextureCheck, Verdict, check_texture, decide, operating_point_for

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = "default"


class ImageTooSmallError(ValueError):
    """The image is smaller than one analysis patch."""


@dataclass
class Analysis:
    """Everything ``analyze()`` found. Arrays are H x W, the size of the input image."""

    heatmap: np.ndarray       # calibrated, in [0, 1]: share of pristine pixels scoring lower
    mask: np.ndarray          # bool, heatmap >= threshold
    score: float              # image-level, in [0, 1] (calibrated on pristine images)
    fingerprint: np.ndarray   # the extractor's noise fingerprint
    raw: np.ndarray           # the uncalibrated anomaly map (ScoreMaps.raw)
    threshold: float
    mode: str
    model: str
    seconds: float
    notes: list[str] = field(default_factory=list)
    # which evidence source set the raw score, per pixel (codes into
    # noisead.anomaly.evidence.EVIDENCE); None for a detector without evidence sources
    evidence: np.ndarray | None = None
    # why a low score here is weak evidence of authenticity (e.g. "JPEG, quality 90"):
    # the input was compressed after any edit; None where nothing weakens the score
    score_caveat: str | None = None
    # whether the image has enough noise-bearing content to be judged at all
    texture: TextureCheck | None = None
    # the decision shown to a person (flagged / not flagged / not enough texture)
    verdict: Verdict | None = None
    # the uncalibrated image statistic that ``score`` calibrates (it keeps its resolution
    # above the largest pristine calibration value, where ``score`` saturates at 1)
    image_statistic: float | None = None
    # how the noise statistics of the heatmap took their norm: "one" (the whole image) or
    # "auto" (the larger of two parts it was split into; DetectorConfig.statistics_parts)
    statistics_parts: str = "one"

    def evidence_shares(self) -> dict[str, float]:
        """Inside the mask, the share of pixels whose score each statistic set."""
        return evidence_shares(self.evidence, self.mask)

    def summary(self) -> dict[str, Any]:
        h, w = self.heatmap.shape
        judged = self.verdict is None or self.verdict.score is not None
        return {"score": round(self.score, 6) if judged else None,
                "decision": self.verdict.to_dict() if self.verdict else None,
                "texture": self.texture.to_dict() if self.texture else None,
                "threshold": self.threshold,
                "tampered_fraction": round(float(self.mask.mean()), 6),
                "evidence_in_mask": self.evidence_shares(),
                "mode": self.mode, "statistics_parts": self.statistics_parts,
                "model": self.model, "width": w, "height": h,
                "seconds": round(self.seconds, 3), "notes": self.notes,
                "score_caveat": self.score_caveat,
                "heatmap_max": round(float(self.heatmap.max()), 6),
                "raw_quantiles": self._raw_quantiles()}

    def _raw_quantiles(self) -> dict[int, float]:
        """Median, 90th, 99th percentile and maximum of the raw map (one partition pass)."""
        levels = (50, 90, 99, 100)
        values = np.quantile(self.raw, [q / 100 for q in levels])
        return {q: float(v) for q, v in zip(levels, values, strict=True)}


def evidence_shares(evidence: np.ndarray | None, mask: np.ndarray) -> dict[str, float]:
    """Inside ``mask``, the share of pixels whose score each statistic of ``EVIDENCE`` set.

    Why: it says *what* is inconsistent in a flagged region — its noise level (also raised
    by saturated, very dark or heavily smoothed content, so read it with the image), the
    spectrum of its noise (another demosaicing, resampling or JPEG history), blocks off the
    image's own JPEG quantization lattice (pasted from elsewhere, or re-synthesized), or the
    learned camera fingerprint. Empty without an evidence map or when nothing is flagged.
    """
    if evidence is None or not mask.any():
        return {}
    counts = np.bincount(evidence[mask], minlength=len(EVIDENCE))
    return {name: round(float(c) / float(counts.sum()), 4)
            for name, c in zip(EVIDENCE, counts, strict=True)}


def evidence_text(shares: dict[str, float]) -> str:
    """``evidence_shares`` in words, largest first: "noise spectrum 78%, noise level 22%"."""
    parts = sorted(((v, k) for k, v in shares.items() if v >= 0.005), reverse=True)
    return ", ".join(f"{k} {round(100 * v)}%" for v, k in parts)


def list_models() -> list[str]:
    """Names of the models shipped in the package."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors"))


def load_detector(model: str | Path | None = None) -> Detector:
    """A shipped model by name (``list_models()``), or a path to a detector file."""
    model = model or DEFAULT_MODEL
    path = Path(model)
    if path.suffix == ".safetensors" or path.exists():
        return Detector.load(path)
    shipped = WEIGHTS_DIR / f"{model}.safetensors"
    if not shipped.is_file():
        names = ", ".join(list_models()) or "none"
        raise FileNotFoundError(f"no model named {model!r} (shipped: {names}); "
                                "pass a path to a .safetensors detector")
    return Detector.load(shipped)


def with_statistics_parts(detector: Detector, parts: str | None) -> Detector:
    """``detector`` with its noise statistics' ``statistics_parts`` set to ``parts`` (a
    copy sharing its networks and fits; None: ``detector`` itself). Raises ``ValueError``
    for an unknown value, and for ``"auto"`` on a model that fuses no noise statistic
    (there would be nothing to split)."""
    if parts is None or parts == detector.config.statistics_parts:
        return detector
    if parts == "auto" and not set(HOST_SOURCES) & set(detector.config.evidence):
        raise ValueError("two-part noise statistics need a model that fuses them; this "
                         "one's evidence: " + (", ".join(detector.config.evidence) or "none"))
    config = dataclasses.replace(detector.config, statistics_parts=parts)
    return dataclasses.replace(detector, config=config)  # validated: unknown values raise


def check_image_size(pixels: np.ndarray, detector: Detector) -> None:
    """Raise :class:`ImageTooSmallError` unless ``pixels`` hold at least one of
    ``detector``'s patches (the least the analysis can score)."""
    h, w = pixels.shape[:2]
    p = detector.config.patch_size
    if h < p or w < p:
        raise ImageTooSmallError(f"image is {w}x{h} pixels; the analysis needs at least "
                                 f"{p}x{p} (one patch)")


def analyze(image: str | Path | np.ndarray | LoadedImage,
            detector: Detector | str | Path | None = None, *,
            mode: str | Mode | None = None, threshold: float | None = None,
            max_pixels: int | None = DEFAULT_MAX_PIXELS, device: str | None = None,
            backend: str | None = None, parts: str | None = None) -> Analysis:
    """Localize tampering in one image.

    Args:
        image: a file path, a :class:`~noisead.io.LoadedImage`, or an array
            (H x W [x C], uint8/uint16/float).
        detector: a :class:`Detector`, a shipped model name or a path; default model if None.
        mode: a :class:`~noisead.anomaly.config.Mode` or its name: ``"blind"`` (the image is
            its own reference) or ``"reference"``; the model's default if None.
        threshold: on the calibrated heatmap; the model's default if None.
        max_pixels: refuse larger images (decompression bombs); None disables the cap.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (a GPU when there is
            one); None: ``NOISEAD_DEVICE``, else the CPU (:func:`noisead.runtime.analysis_device`).
        backend: what runs the extractor, ``"auto"``, ``"torch"`` or ``"onnx"``
            (:mod:`noisead.anomaly.backends`); None: ``NOISEAD_BACKEND``, else ``"auto"``.
        parts: how the noise statistics take their norm, ``"one"`` (the whole image) or
            ``"auto"`` (the larger of two parts the image's noise is split into: for
            splices that cover a large share of the image,
            :mod:`noisead.anomaly.noise_parts`); the heatmap only, the score and the
            verdict stay the one-part analysis'. None: the model's own.
    """
    t0 = time.monotonic()
    where = analysis_device(device)
    backend = analysis_backend(backend)
    if not isinstance(detector, Detector):
        detector = load_detector(detector)
    notes: list[str] = []
    detector = with_statistics_parts(detector, parts)
    jpeg_tables = None
    if isinstance(image, np.ndarray):
        pixels = image_from_array(image)
    else:
        loaded = image if isinstance(image, LoadedImage) else load_image(
            image, max_pixels=max_pixels)
        pixels, notes = loaded.pixels, list(loaded.notes)
        jpeg_tables = loaded.jpeg_quality_tables
    check_image_size(pixels, detector)
    if detector.config.statistics_parts == "auto":
        notes.append(TWO_PART_NOTE)
    mode = mode or detector.config.mode
    maps = detector.score_image(pixels, mode, device=where, backend=backend)
    pixel_cal, image_cal, same_mode = detector.calibrations_for(mode)
    if pixel_cal is None:
        raise ValueError("the detector has no calibration: fit it with fit_detector()")
    if not same_mode:
        notes.append(f"this model was calibrated in {detector.config.mode} mode only: "
                     f"{mode}-mode heatmap values and the image score are not false-alarm "
                     "rates (refit it to calibrate both modes)")
    score_caveat, jpeg_note = jpeg_input_caveat(jpeg_tables) or (None, None)
    if jpeg_note:
        notes.append(jpeg_note)
    heatmap = pixel_cal(maps.raw)
    stat = detector.image_statistic(maps)
    score = float(image_cal([stat])[0]) if image_cal else stat
    thr = detector.config.threshold if threshold is None else float(threshold)
    texture = check_texture(pixels)
    verdict = decide(score, texture, operating_point_for(detector.info, mode), score_caveat)
    return Analysis(heatmap=heatmap, mask=threshold_mask(heatmap, thr), score=score,
                    fingerprint=maps.fingerprint, raw=maps.raw, threshold=thr, mode=mode,
                    model=str(detector.info.get("name", "custom")),
                    seconds=time.monotonic() - t0, notes=notes, evidence=maps.evidence,
                    score_caveat=score_caveat, texture=texture, verdict=verdict,
                    image_statistic=float(stat),
                    statistics_parts=detector.config.statistics_parts)


#: What the heatmap of a two-part analysis means, said in its notes.
TWO_PART_NOTE = (
    "two-part noise statistics: the image's noise was split into two parts and the heatmap "
    "measures it against the larger one, so a region from another "
    "camera covering up to half the image stands out; texture alone can also split an "
    "untouched photo, so read a region as a second camera only with other evidence. The "
    "score and the verdict are those of the one-part analysis")


def jpeg_input_caveat(tables: dict[int, list[int]] | None) -> tuple[str, str] | None:
    """``(caveat, note)`` when the file under analysis is a JPEG whose compression weakens
    the image score, else None: the short caveat (``"JPEG, quality 90"`` or ``"JPEG, own
    tables"``) for the CLI line and summary.csv, and the sentence for the notes.

    Why: a forgery saved as a JPEG was recompressed after the edit. On our benchmarks
    (docs/BENCHMARKS.md, recompressed sets) the heatmap survives that well but the image
    score much less, so a low score on such a file must not read as "authentic".
    Near-lossless files (libjpeg quality 98 or more) behaved like uncompressed ones there:
    no caveat.
    """
    if not tables or not tables.get(0):
        return None
    quality = estimate_jpeg_quality(tables[0])
    if quality is None:
        caveat = "JPEG, own tables"
        kind = "with quantization tables of its own (as cameras and some editors write)"
    elif quality >= 98:
        return None
    else:
        caveat, kind = f"JPEG, quality {quality}", f"about libjpeg quality {quality}"
    return caveat, (f"the file is a JPEG, {kind}: an edit, if any, was compressed when it "
                    "was saved. After a recompression the heatmap still localizes well on "
                    "our benchmarks, but the image score separates forged from pristine "
                    "images much less reliably: a low score on this file is weak evidence "
                    "of authenticity")


# -- rendering ----------------------------------------------------------------------------

def colorize(heatmap: np.ndarray, cmap: str = "inferno") -> np.ndarray:
    """[0, 1] map → uint8 RGB with a matplotlib colour map.

    Goes through a 256-entry uint8 lookup table (the PNG has 8 bits per channel anyway), so
    a 24-megapixel heatmap costs 72 MB of output and no float64 RGBA copy (~770 MB).
    """
    return _colormap_lut(cmap)[to_uint8(heatmap)]


@functools.lru_cache(maxsize=8)
def _colormap_lut(cmap: str) -> np.ndarray:
    """The colour map sampled at 256 levels, as uint8 RGB (built once per map)."""
    from matplotlib import colormaps

    return to_uint8(colormaps[cmap](np.linspace(0.0, 1.0, 256))[:, :3].astype(np.float32))


#: Rows blended at a time by :func:`overlay`, so its float temporaries stay small.
_OVERLAY_ROWS = 256


def overlay(image: np.ndarray, heatmap: np.ndarray, mask: np.ndarray | None = None,
            alpha: float = 0.5) -> np.ndarray:
    """The image in gray with the heatmap blended on top and the mask's outline in cyan.

    Only the upper half of the calibrated scale is tinted (a pristine pixel is at 0.5 on
    average), so typical pixels keep their look and the suspicious ones stand out.
    Computed in bands of rows: the float work space stays a few MB whatever the image size.
    """
    h, w = heatmap.shape
    out = np.empty((h, w, 3), np.uint8)
    for r0 in range(0, h, _OVERLAY_ROWS):
        rows = slice(r0, min(r0 + _OVERLAY_ROWS, h))
        hm = np.asarray(heatmap[rows], dtype=np.float32)
        gray = np.asarray(image[rows], dtype=np.float32).mean(axis=2, keepdims=True)
        heat = colorize(hm).astype(np.float32) / np.float32(255.0)
        weight = np.float32(alpha) * np.clip(2.0 * hm - 1.0, 0, 1)[..., None]
        out[rows] = to_uint8((1 - weight) * gray + weight * heat)
    if mask is not None and mask.any():
        from scipy import ndimage

        edge = mask & ~ndimage.binary_erosion(mask, iterations=2)
        out[edge] = (0, 255, 255)
    return out


def fingerprint_view(fingerprint: np.ndarray) -> np.ndarray:
    """Fingerprint scaled to [0, 1] by robust percentiles, for display."""
    lo, hi = np.percentile(fingerprint, [1, 99])
    view = np.array(fingerprint, dtype=np.float32)  # one copy; the rest is in place
    view -= np.float32(lo)
    view /= np.float32(max(hi - lo, 1e-12))
    return np.clip(view, 0, 1, out=view)
