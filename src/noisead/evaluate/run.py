"""``evaluate()``: a dataset x methods x post-processing conditions -> tables, plots, rows.

The benchmark protocol of the thesis, in one resumable call:

- **Conditions.** ``clean`` (the images as stored), then one-at-a-time robustness sweeps:
  each JPEG quality of :attr:`EvalConfig.jpeg` and each scale of :attr:`EvalConfig.resize`
  (a JPEG row *or* a resize row, never their product, as in the thesis' tables). ``None`` in
  either tuple asks for the clean condition. The post-processing is
  :func:`noisead.data.augment.postprocess_image`, applied to forged and pristine images
  alike; after a resize the mask is resized with nearest neighbour to the new size (the
  only case where a mask is ever resized: any other size mismatch raises ``ValueError``).
- **Methods.** ``noisead`` (the detector in its configured mode), ``noisead-blind``,
  ``noisead-reference``, or a baseline of :data:`noisead.evaluate.baselines.BASELINES`.
- **Per image** (forged and pristine): the method's heatmap, scored by
  :func:`~noisead.evaluate.metrics.localization_metrics` on forged images (pixel AUC,
  best-threshold MCC/F1, fixed-threshold MCC/F1/IoU, sign-agnostic variants in their own
  columns), and one image-level score for the detection AUC.
- **Normalisation.** Threshold-free metrics (AUC, best-threshold MCC/F1) do not depend on
  it. The fixed threshold applies to a map in ``[0, 1]``: noisead's calibrated heatmap as
  is (it is already the share of pristine pixels scoring lower), a baseline's map min-max
  normalised per image (a constant map becomes all zeros). Image scores: noisead's
  calibrated :attr:`~noisead.infer.Analysis.score`; a baseline's ``score_quantile``
  (default 0.99) of its *raw* map, whose units (noise sigma, error level, z-score) are
  comparable across images, which min-max normalised maps are not.
- **Resumable.** Every per-image row is appended to ``rows.jsonl`` and flushed at once;
  with ``resume=True`` a (condition, method, image) already there, computed with the same
  settings (a hash of the band, thresholds, quantile, dataset and, for noisead, the
  detector's weights and calibration), is not recomputed. A run killed at any point
  restarts where it stopped; rows computed with other settings are recomputed.
- **Outputs** (atomic): ``results.json``, ``config.json``, ``rows.csv``, ``summary.csv``,
  ``summary.md`` (:func:`format_markdown`), ``roc_<condition>.png`` (pooled pixels of the
  clean condition, or of the first condition when clean is not evaluated) and
  ``examples.png``.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from noisead.anomaly.detector import Detector
from noisead.data.augment import postprocess_image
from noisead.data.datasets import ForgeryDataset, Sample, open_dataset
from noisead.evaluate.baselines import BASELINES, luma
from noisead.evaluate.metrics import (
    METRIC_KEYS,
    aggregate,
    boundary_ignore_mask,
    detection_auc,
    localization_metrics,
)
from noisead.evaluate.report import (
    decode_samples,
    encode_samples,
    format_markdown,
    plot_examples,
    plot_roc,
    write_csv,
)
from noisead.infer import ImageTooSmallError, analyze, fingerprint_view, load_detector
from noisead.io import atomic_write_bytes, ensure_writable_dir, save_json

__all__ = [
    "METRIC_KEYS",
    "NOISEAD_METHODS",
    "Condition",
    "EvalConfig",
    "MethodOutput",
    "apply_condition",
    "conditions_for",
    "evaluate",
    "format_markdown",
    "method_names",
    "normalize_heatmap",
    "run_method",
]

#: Method name -> detector mode (``None``: the detector's configured mode).
NOISEAD_METHODS: dict[str, str | None] = {
    "noisead": None,
    "noisead-blind": "blind",
    "noisead-reference": "reference",
}


ROWS_FILE = "rows.jsonl"
_ROWS_VERSION = 1
#: Pixels drawn per class and image for the pooled ROC curve.
ROC_SAMPLES_PER_CLASS = 256
_ROW_COLUMNS = ("condition", "method", "image", "forged", "height", "width", "score",
                *METRIC_KEYS, "seconds", "error")


# --------------------------------------------------------------------------- configuration


@dataclass
class EvalConfig:
    """What to evaluate and how; saved as ``config.json`` beside the results."""

    methods: tuple[str, ...] = ("noisead-blind", "noisead-reference", "noi1", "ela")
    jpeg: tuple[int | None, ...] = (None,)      # None = no recompression; e.g. (None, 95, 90)
    resize: tuple[float | None, ...] = (None,)  # None = no resize; e.g. (None, 0.8, 1.2)
    band: bool = False                           # ignore the boundary band (Noiseprint/TruFor)
    fixed_threshold: float = 0.5                 # on each method's map in [0, 1]
    max_images: int | None = None                # first N forged and first N pristine
    n_figures: int = 4                           # forged images in examples.png
    score_quantile: float = 0.99                 # baselines' image score: this map quantile
    erode_px: int = 15                           # band: tampered pixels counted this far in
    dilate_px: int = 11                          # band: pristine pixels counted this far out

    def __post_init__(self) -> None:
        # JSON and the CLI hand over lists; keep the tuples the type hints promise.
        self.methods = (self.methods,) if isinstance(self.methods, str) else tuple(self.methods)
        self.jpeg = tuple(self.jpeg)
        self.resize = tuple(self.resize)

    def validate(self) -> None:
        method_names(self.methods)  # raises on unknown names
        if not self.methods:
            raise ValueError("no method to evaluate")
        for q in self.jpeg:
            if q is not None and not (isinstance(q, int | np.integer) and 1 <= int(q) <= 100):
                raise ValueError(f"JPEG quality must be an integer in 1..100 or None, got {q!r}")
        for s in self.resize:
            if s is not None and not (math.isfinite(float(s)) and 0.0 < float(s) <= 8.0):
                raise ValueError(f"resize scale must be in (0, 8] or None, got {s!r}")
        if not 0.0 < self.score_quantile <= 1.0:
            raise ValueError(f"score_quantile must be in (0, 1], got {self.score_quantile}")
        if self.max_images is not None and self.max_images < 1:
            raise ValueError(f"max_images must be >= 1 or None, got {self.max_images}")
        if self.n_figures < 0:
            raise ValueError(f"n_figures must be >= 0, got {self.n_figures}")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def method_names(methods: Iterable[str]) -> list[str]:
    """Validate method names (no duplicates kept); ``ValueError`` lists the valid ones."""
    out: list[str] = []
    for m in methods:
        if m not in NOISEAD_METHODS and m not in BASELINES:
            valid = ", ".join([*NOISEAD_METHODS, *BASELINES])
            raise ValueError(f"unknown method {m!r}; choose from {valid}")
        if m not in out:
            out.append(m)
    return out


@dataclass(frozen=True)
class Condition:
    """One post-processing condition: ``clean``, a JPEG quality or a resize factor."""

    name: str                  # "clean", "jpeg90", "resize0.8": row key and file-name part
    sweep: str                 # "clean", "jpeg" or "resize"
    jpeg: int | None = None
    scale: float | None = None

    @property
    def label(self) -> str:
        if self.sweep == "jpeg":
            return f"JPEG quality {self.jpeg}"
        if self.sweep == "resize":
            return f"resize x{self.scale:g}"
        return "clean"


def conditions_for(config: EvalConfig) -> list[Condition]:
    """Clean (if ``None`` is in ``jpeg`` or ``resize``), then each JPEG quality, each scale.

    One-at-a-time sweeps, as in the thesis: a JPEG condition is never resized and a resize
    condition never recompressed. Duplicates are dropped, the order given is kept.
    """
    conds: list[Condition] = []
    if None in config.jpeg or None in config.resize:
        conds.append(Condition("clean", "clean"))
    for q in config.jpeg:
        if q is not None:
            conds.append(Condition(f"jpeg{int(q)}", "jpeg", jpeg=int(q)))
    for s in config.resize:
        if s is not None:
            conds.append(Condition(f"resize{float(s):g}", "resize", scale=float(s)))
    unique: dict[str, Condition] = {}
    for c in conds:
        unique.setdefault(c.name, c)
    if not unique:
        raise ValueError("no condition to evaluate: put None in jpeg or resize for clean images")
    return list(unique.values())


# --------------------------------------------------------------------------- one image


def _resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize with PIL (pixel-centre mapping, as the bicubic image resize)."""
    im = Image.fromarray(mask.astype(np.uint8) * np.uint8(255))
    return np.asarray(im.resize((width, height), Image.Resampling.NEAREST)) > 127


def apply_condition(image: np.ndarray, mask: np.ndarray | None, condition: Condition
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """The image (and mask) as they look under ``condition``.

    Clean images are returned untouched (not even re-quantised to 8 bits). After a resize
    the mask follows the image with nearest neighbour; that is the only way a mask changes
    size here, and a mask that does not fit its image is an error, never resized silently.
    """
    if mask is not None and mask.shape != image.shape[:2]:
        raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                         f"{image.shape[1]}x{image.shape[0]} (WxH) before post-processing")
    if condition.sweep == "clean":
        return image, mask
    out = postprocess_image(image, jpeg_quality=condition.jpeg, scale=condition.scale)
    if mask is not None and out.shape[:2] != mask.shape:
        if condition.scale is None:
            raise ValueError(f"post-processing {condition.name} changed the image size from "
                             f"{mask.shape} to {out.shape[:2]} without a resize")
        mask = _resize_mask(mask, out.shape[0], out.shape[1])
    return out, mask


def normalize_heatmap(heatmap: np.ndarray) -> np.ndarray:
    """Min-max normalise a baseline's map to ``[0, 1]`` per image (float64 math, float32 out).

    Why per image: baselines have no calibration, so a fixed threshold only means something
    relative to the image's own range. A constant map becomes all zeros.
    """
    h = np.asarray(heatmap, dtype=np.float64)
    lo, hi = float(h.min()), float(h.max())
    if not hi > lo:
        return np.zeros(h.shape, dtype=np.float32)
    return ((h - lo) / (hi - lo)).astype(np.float32)


@dataclass
class MethodOutput:
    heatmap: np.ndarray              # H x W in [0, 1]: what the metrics and figures use
    score: float                     # image-level score for the detection AUC
    fingerprint: np.ndarray | None   # noisead's noise fingerprint (None for baselines)


def run_method(method: str, image: np.ndarray, detector: Detector | None,
               score_quantile: float = 0.99) -> MethodOutput:
    """Run one method on one (post-processed) image; see the module docstring for scales."""
    if method in NOISEAD_METHODS:
        if detector is None:
            raise ValueError(f"method {method!r} needs a detector")
        a = analyze(image, detector, mode=NOISEAD_METHODS[method], max_pixels=None)
        return MethodOutput(np.asarray(a.heatmap, dtype=np.float32), float(a.score),
                            a.fingerprint)
    raw = np.asarray(BASELINES[method](image))
    if raw.ndim != 2 or not np.isfinite(raw).all():
        raise ValueError(f"baseline {method!r} returned a map of shape {raw.shape} "
                         "with non-finite values" if raw.ndim == 2 else
                         f"baseline {method!r} returned a map of shape {raw.shape}")
    return MethodOutput(normalize_heatmap(raw), float(np.quantile(raw, score_quantile)), None)


def _roc_sample(heatmap: np.ndarray, mask: np.ndarray, ignore: np.ndarray | None,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``ROC_SAMPLES_PER_CLASS`` counted pixels of each class, drawn without repeats."""
    keep = ~ignore if ignore is not None else np.ones(mask.shape, bool)
    rng = np.random.default_rng(seed)
    out = []
    for cls in (True, False):
        values = heatmap[keep & (mask == cls)]
        if values.size > ROC_SAMPLES_PER_CLASS:
            values = rng.choice(values, ROC_SAMPLES_PER_CLASS, replace=False)
        out.append(values.astype(np.float32))
    return out[0], out[1]


# --------------------------------------------------------------------------- bookkeeping


def _tensor_bytes(t: Any) -> bytes:
    t = t.detach().cpu()
    if t.is_floating_point():
        t = t.float()
    return t.contiguous().numpy().tobytes()


def detector_fingerprint(detector: Detector) -> str:
    """Hash of what decides a detector's heatmaps: weights, Gaussians, calibration, config.

    Part of the resume key, so that rows cached for another model are recomputed instead
    of being mixed silently into the new model's table.
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
    cals = [detector.calibration, detector.image_calibration]
    for mode in sorted(detector.mode_calibrations):
        cals.extend(detector.mode_calibrations[mode])
    for cal in cals:
        if cal is not None:
            h.update(np.ascontiguousarray(cal.quantiles, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def _setup_key(config: EvalConfig, dataset: ForgeryDataset, method: str,
               detector_id: str | None) -> str:
    d: dict[str, Any] = {"v": _ROWS_VERSION, "band": config.band,
                         "erode": config.erode_px, "dilate": config.dilate_px,
                         "thr": float(config.fixed_threshold), "dataset": dataset.name,
                         "kind": dataset.kind}
    if method in NOISEAD_METHODS:
        d["detector"] = detector_id
    else:
        d["quantile"] = float(config.score_quantile)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def _clean_json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _clean_json(value.item())
    return value


def _restore(row: dict[str, Any]) -> dict[str, Any]:
    """A row read back from JSON: ``null`` metrics become NaN again."""
    for k in (*METRIC_KEYS, "score"):
        if k in row and row[k] is None:
            row[k] = math.nan
    return row


def _read_rows(path: Path) -> tuple[dict[tuple[str, str, str], dict[str, Any]], bool]:
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


def _write_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    text = "".join(json.dumps({k: _clean_json(v) for k, v in r.items()}, allow_nan=False)
                   + "\n" for r in rows)
    atomic_write_bytes(path, text.encode("utf-8"))


def _residual_view(image: np.ndarray) -> np.ndarray:
    """A plain high-pass residual for the figure when no detector gives a fingerprint."""
    from scipy import ndimage

    y = luma(image)
    return fingerprint_view((y - ndimage.uniform_filter(y, 3)).astype(np.float32))


# --------------------------------------------------------------------------- evaluate


def _select(dataset: ForgeryDataset, max_images: int | None) -> tuple[list[Sample], list[Sample]]:
    forged, pristine = dataset.forged, dataset.pristine
    if max_images is not None:
        forged, pristine = forged[:max_images], pristine[:max_images]
    return forged, pristine


def evaluate(dataset_root: str | Path | ForgeryDataset, out_dir: str | Path,
             detector: Detector | str | Path | None = None, config: EvalConfig | None = None,
             *, progress: bool = True, resume: bool = True) -> dict[str, Any]:
    """Evaluate methods on a forgery dataset under post-processing conditions.

    Args:
        dataset_root: a dataset folder/JSON for :func:`~noisead.data.datasets.open_dataset`
            (layout detected), or an opened :class:`ForgeryDataset`.
        out_dir: where ``rows.jsonl``, the tables and the figures go (created).
        detector: for the ``noisead*`` methods: a :class:`Detector`, a shipped model name or
            a path; the default model if ``None``. Not loaded when only baselines are asked.
        config: methods, conditions and protocol; :class:`EvalConfig` defaults if ``None``.
        progress: show a tqdm bar over (image, condition, method) units.
        resume: reuse rows of ``rows.jsonl`` computed with the same settings; ``False``
            starts the file afresh.

    Returns:
        The dict written to ``results.json``: ``dataset``, ``config``, ``detector``,
        ``conditions``, ``methods``, ``summary`` (one entry per condition and method: means
        of every metric over forged images with ``<metric>_n`` counts, ``n_forged``,
        ``n_pristine``, ``errors``, ``detection_auc``, ``notes``), ``roc``, ``notes`` and
        ``files``. Render it with :func:`format_markdown`.

    Raises:
        ValueError: unknown method, a noisead method without a usable detector, a mask that
            does not fit its image, a heatmap of another size than its image. An image
            that cannot be decoded raises :class:`noisead.io.ImageLoadError`. Rows finished
            before the error stay in ``rows.jsonl``: fix the cause and call again.
    """
    config = config or EvalConfig()
    config.validate()
    methods = method_names(config.methods)
    conditions = conditions_for(config)
    dataset = (dataset_root if isinstance(dataset_root, ForgeryDataset)
               else open_dataset(Path(dataset_root)))
    out = ensure_writable_dir(out_dir)
    forged, pristine = _select(dataset, config.max_images)
    if not forged:
        raise ValueError(f"dataset {dataset.name!r} has no forged image to localize")

    det: Detector | None = None
    detector_id: str | None = None
    if any(m in NOISEAD_METHODS for m in methods):
        det = detector if isinstance(detector, Detector) else load_detector(detector)
        if det.calibration is None:
            raise ValueError("the detector has no calibration: fit it with fit_detector()")
        uses_reference = "noisead-reference" in methods or (
            "noisead" in methods and det.config.mode == "reference")
        if uses_reference and det.gaussian is None:
            raise ValueError("noisead-reference needs a detector fitted on pristine images "
                             "(this one has no reference Gaussians); use noisead-blind")
        detector_id = detector_fingerprint(det)

    roc_cond = next((c for c in conditions if c.sweep == "clean"), conditions[0])
    setup = {m: _setup_key(config, dataset, m, detector_id) for m in methods}
    rows_path = out / ROWS_FILE
    notes: list[str] = []
    if resume:
        cached, dirty = _read_rows(rows_path)
        if dirty:
            _write_rows(rows_path, cached.values())
    else:
        cached = {}
        _write_rows(rows_path, [])
    save_json(out / "config.json", config.to_dict())

    figure_names = [s.name for s in forged[:config.n_figures]]
    examples: dict[str, dict[str, Any]] = {}
    samples = [*forged, *pristine]
    todo: dict[str, list[tuple[Condition, str]]] = {}
    n_stale = 0
    for s in samples:
        for c in conditions:
            for m in methods:
                row = cached.get((c.name, m, s.name))
                if row is not None and row.get("setup") == setup[m]:
                    continue
                if row is not None:
                    n_stale += 1
                todo.setdefault(s.name, []).append((c, m))
    if n_stale:
        notes.append(f"{n_stale} cached row(s) were computed with other settings "
                     "(detector, band, threshold) and were recomputed")

    bar = tqdm(total=sum(len(v) for v in todo.values()), desc="evaluating", unit="run",
               disable=not progress)
    try:
        with rows_path.open("a", encoding="utf-8") as fh:
            for s in samples:
                units = todo.get(s.name)
                if not units:
                    continue
                image = dataset.load_image(s)
                mask = dataset.load_mask(s, image.shape) if s.is_forged else None
                for c in conditions:
                    cond_units = [m for cc, m in units if cc.name == c.name]
                    if not cond_units:
                        continue
                    img_c, mask_c = apply_condition(image, mask, c)
                    for m in cond_units:
                        bar.set_postfix_str(f"{c.name} {m}", refresh=False)
                        row = _evaluate_one(s, c, m, img_c, mask_c, det, config,
                                            setup[m], c.name == roc_cond.name,
                                            examples if (s.name in figure_names
                                                         and c.name == roc_cond.name) else None)
                        cached[(c.name, m, s.name)] = row
                        fh.write(json.dumps({k: _clean_json(v) for k, v in row.items()},
                                            allow_nan=False) + "\n")
                        fh.flush()
                        bar.update(1)
    finally:
        bar.close()

    rows = [cached[(c.name, m, s.name)] for c in conditions for m in methods for s in samples]
    # Rows of other runs (other conditions, methods, images) stay in rows.jsonl for later
    # resumes; drop only superseded duplicates, which appending may have produced.
    _, dirty = _read_rows(rows_path)
    if dirty:
        _write_rows(rows_path, cached.values())

    summary = _summarize(rows, conditions, methods)
    results: dict[str, Any] = {
        "dataset": {"name": dataset.name, "kind": dataset.kind, "root": str(dataset.root),
                    "n_forged": len(forged), "n_pristine": len(pristine),
                    "n_forged_total": len(dataset.forged),
                    "n_pristine_total": len(dataset.pristine),
                    "skipped": [str(p) for p in dataset.skipped]},
        "config": config.to_dict(),
        "detector": _detector_info(det, detector_id) if det is not None else None,
        "conditions": [{"name": c.name, "sweep": c.sweep, "jpeg": c.jpeg, "scale": c.scale,
                        "label": c.label} for c in conditions],
        "methods": methods,
        "summary": summary,
        "notes": notes,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if not pristine:
        notes.append("no pristine images: image-level detection AUC is not measured (NaN)")
    if config.max_images is not None and (len(forged) < len(dataset.forged)
                                          or len(pristine) < len(dataset.pristine)):
        notes.append(f"limited to the first {config.max_images} forged and pristine images")

    files = {"results": "results.json", "config": "config.json", "rows_jsonl": ROWS_FILE,
             "rows_csv": "rows.csv", "summary_csv": "summary.csv", "summary_md": "summary.md"}
    roc_file = f"roc_{roc_cond.name}.png"
    roc_samples = {}
    missing = 0
    for m in methods:
        pos, neg = [], []
        for s in forged:
            r = cached[(roc_cond.name, m, s.name)]
            if r.get("error"):
                continue
            if "roc_pos" not in r:
                missing += 1
                continue
            pos.append(decode_samples(r["roc_pos"]))
            neg.append(decode_samples(r["roc_neg"]))
        roc_samples[m] = (np.concatenate(pos) if pos else np.zeros(0, np.float32),
                          np.concatenate(neg) if neg else np.zeros(0, np.float32))
    if missing:
        notes.append(f"ROC: {missing} cached row(s) carry no pixel samples and are left out")
    roc_stats = plot_roc(out / roc_file, roc_samples,
                         f"{dataset.name}: {roc_cond.label} (pooled pixels, "
                         f"{ROC_SAMPLES_PER_CLASS}/class/image)",
                         fixed_threshold=config.fixed_threshold)
    results["roc"] = {"condition": roc_cond.name, "file": roc_file,
                      "samples_per_class_per_image": ROC_SAMPLES_PER_CLASS,
                      "methods": roc_stats}
    files["roc"] = roc_file

    if config.n_figures > 0:
        fig_examples = []
        for s in forged[:config.n_figures]:
            ex = examples.get(s.name)
            if ex is None or any(m not in ex["heatmaps"] for m in methods):
                ex = _compute_example(dataset, s, roc_cond, methods, det, config,
                                      ex or {"heatmaps": {}})
            fig_examples.append(ex)
        fp_label = "fingerprint" if det is not None else "residual (high-pass)"
        plot_examples(out / "examples.png", fig_examples, methods, fp_label)
        files["examples"] = "examples.png"
    results["files"] = files

    write_csv(out / "rows.csv", rows, _ROW_COLUMNS)
    write_csv(out / "summary.csv", summary)
    save_json(out / "results.json", results)
    atomic_write_bytes(out / "summary.md", format_markdown(results).encode("utf-8"))
    return results


def clean_summary(dataset_root: str | Path, detector: Detector | str | Path | None,
                  methods: Sequence[str], max_images: int | None = None
                  ) -> dict[str, dict[str, Any]]:
    """{method: its summary row on the clean images} of one set, nothing kept on disk.

    For choosing models and settings on validation sets, where only the figures matter.
    """
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        results = evaluate(dataset_root, tmp, detector,
                           EvalConfig(methods=tuple(methods), max_images=max_images),
                           progress=False, resume=False)
    return {row["method"]: row for row in results["summary"] if row["condition"] == "clean"}


def _evaluate_one(sample: Sample, cond: Condition, method: str, image: np.ndarray,
                  mask: np.ndarray | None, det: Detector | None, config: EvalConfig,
                  setup: str, roc: bool, examples: dict[str, dict[str, Any]] | None
                  ) -> dict[str, Any]:
    h, w = image.shape[:2]
    row: dict[str, Any] = {"condition": cond.name, "method": method, "image": sample.name,
                           "forged": sample.is_forged, "height": h, "width": w}
    t0 = time.perf_counter()
    try:
        result = run_method(method, image, det, config.score_quantile)
    except ImageTooSmallError as e:
        # Downscaled small images can fall below one analysis patch: a row that says so.
        row.update({"score": math.nan, **dict.fromkeys(METRIC_KEYS, math.nan),
                    "seconds": time.perf_counter() - t0, "error": str(e), "setup": setup})
        return row
    seconds = time.perf_counter() - t0
    if result.heatmap.shape != (h, w):
        raise ValueError(f"method {method!r} returned a {result.heatmap.shape[1]}x"
                         f"{result.heatmap.shape[0]} heatmap for the {w}x{h} image "
                         f"{sample.name!r} ({cond.name}); heatmaps must match the image")
    row["score"] = result.score
    if mask is not None:
        metrics = localization_metrics(result.heatmap, mask, threshold=config.fixed_threshold,
                                       band=config.band, erode_px=config.erode_px,
                                       dilate_px=config.dilate_px)
        row.update({k: metrics[k] for k in METRIC_KEYS})
        if roc:
            ignore = (boundary_ignore_mask(mask, config.erode_px, config.dilate_px)
                      if config.band else None)
            pos, neg = _roc_sample(result.heatmap, mask, ignore,
                                   zlib.crc32(f"{sample.name}|{method}".encode()))
            row["roc_pos"], row["roc_neg"] = encode_samples(pos), encode_samples(neg)
    row["seconds"] = seconds
    row["setup"] = setup
    if examples is not None and mask is not None:
        ex = examples.setdefault(sample.name, {"name": sample.name, "image": image,
                                               "mask": mask, "fingerprint": None,
                                               "heatmaps": {}})
        ex["heatmaps"][method] = result.heatmap
        if ex["fingerprint"] is None and result.fingerprint is not None:
            ex["fingerprint"] = fingerprint_view(result.fingerprint)
    return row


def _compute_example(dataset: ForgeryDataset, sample: Sample, cond: Condition,
                     methods: Sequence[str], det: Detector | None, config: EvalConfig,
                     partial: dict[str, Any]) -> dict[str, Any]:
    """Heatmaps for the figure that this run did not compute (their rows were cached)."""
    image, mask = dataset.load(sample)
    image, mask = apply_condition(image, mask, cond)
    ex = {"name": sample.name, "image": image, "mask": mask,
          "fingerprint": partial.get("fingerprint"), "heatmaps": dict(partial["heatmaps"])}
    for m in methods:
        if m in ex["heatmaps"]:
            continue
        try:
            r = run_method(m, image, det, config.score_quantile)
        except ImageTooSmallError:
            continue
        ex["heatmaps"][m] = r.heatmap
        if ex["fingerprint"] is None and r.fingerprint is not None:
            ex["fingerprint"] = fingerprint_view(r.fingerprint)
    if ex["fingerprint"] is None:
        ex["fingerprint"] = _residual_view(image)
    return ex


def _summarize(rows: Sequence[dict[str, Any]], conditions: Sequence[Condition],
               methods: Sequence[str]) -> list[dict[str, Any]]:
    """Per (condition, method): metric means over forged images, counts, detection AUC."""
    out = []
    for c in conditions:
        for m in methods:
            sel = [r for r in rows if r["condition"] == c.name and r["method"] == m]
            f_rows = [r for r in sel if r["forged"]]
            p_rows = [r for r in sel if not r["forged"]]
            entry: dict[str, Any] = {"condition": c.name, "method": m,
                                     "n_forged": len(f_rows), "n_pristine": len(p_rows)}
            means = aggregate([{k: r.get(k, math.nan) for k in (*METRIC_KEYS, "seconds")}
                               for r in f_rows])
            for k in METRIC_KEYS:
                entry[k] = means.get(k, math.nan)
            for k in METRIC_KEYS:
                entry[f"{k}_n"] = means.get(f"{k}_n", 0)
            entry["seconds"] = aggregate([{"s": r.get("seconds", math.nan)} for r in sel]).get(
                "s", math.nan)
            errors = [r for r in sel if r.get("error")]
            entry["errors"] = len(errors)
            notes: list[str] = []
            pos = [r["score"] for r in f_rows if _finite(r.get("score"))]
            neg = [r["score"] for r in p_rows if _finite(r.get("score"))]
            entry["detection_auc"] = detection_auc(pos, neg)
            if errors:
                notes.append(f"{len(errors)} image(s) could not be analysed "
                             f"(first: {errors[0]['image']}: {errors[0]['error']})")
            n_undefined = len(f_rows) - int(entry["auc_n"])
            if n_undefined > len(errors):
                notes.append(f"{n_undefined} forged image(s) have a single class among the "
                             "counted pixels (metrics undefined, left out of the means)")
            entry["notes"] = notes
            out.append(entry)
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _detector_info(det: Detector, detector_id: str | None) -> dict[str, Any]:
    info: dict[str, Any] = {"name": str(det.info.get("name", "custom")),
                            "fingerprint": detector_id, "mode": det.config.mode,
                            "threshold": det.config.threshold}
    info.update(det.describe())
    return info
