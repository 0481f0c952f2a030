"""``evaluate()``: a dataset x methods x post-processing conditions -> tables, plots, rows.

The benchmark protocol of the thesis, in one resumable call:

- **Conditions** (:mod:`noisead.evaluate.config`): ``clean``, then one-at-a-time JPEG and
  resize sweeps, applied to forged and pristine images alike.
- **Methods** (:mod:`noisead.evaluate.methods`): noisead in each mode and the classic
  baselines, one registry, one protocol (image -> heatmap in ``[0, 1]``, mask, score).
- **Per image** (forged and pristine): the method's heatmap, scored by
  :func:`~noisead.evaluate.metrics.localization_metrics` on forged images (pixel AUC,
  best-threshold MCC/F1, fixed-threshold MCC/F1/IoU, sign-agnostic variants in their own
  columns), and one image-level score for the detection AUC. Threshold-free metrics do not
  depend on how a method scales its map; the fixed threshold applies to the map in
  ``[0, 1]`` each method gives.
- **Resumable** (:mod:`noisead.evaluate.rows`): every row is appended to ``rows.jsonl`` at
  once; with ``resume=True`` a (condition, method, image) already there, computed with the
  same settings, is not recomputed.
- **Outputs** (atomic): ``results.json``, ``config.json``, ``rows.csv``, ``summary.csv``,
  ``summary.md`` (:func:`format_markdown`), ``roc_<condition>.png`` (pooled pixels of the
  clean condition, or of the first condition when clean is not evaluated) and
  ``examples.png``.
"""

from __future__ import annotations

import json
import math
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from noisead.anomaly.config import Mode
from noisead.anomaly.detector import Detector
from noisead.data.datasets import ForgeryDataset, Sample, open_dataset
from noisead.evaluate.baselines import luma
from noisead.evaluate.config import Condition, EvalConfig, apply_condition, conditions_for
from noisead.evaluate.masks import boundary_ignore_mask
from noisead.evaluate.methods import METHODS, MethodContext, NoiseadMethod, method_names
from noisead.evaluate.metrics import METRIC_KEYS, localization_metrics
from noisead.evaluate.report import (
    decode_samples,
    encode_samples,
    format_markdown,
    plot_examples,
    plot_roc,
    write_csv,
)
from noisead.evaluate.rows import (
    ROWS_FILE,
    detector_fingerprint,
    read_rows,
    setup_key,
    write_rows,
)
from noisead.evaluate.summary import summarize
from noisead.infer import ImageTooSmallError, fingerprint_view, load_detector
from noisead.io import atomic_write_bytes, ensure_writable_dir, jsonable, save_json

__all__ = ["EvalConfig", "clean_summary", "evaluate", "format_markdown"]

#: Pixels drawn per class and image for the pooled ROC curve.
ROC_SAMPLES_PER_CLASS = 256
_ROW_COLUMNS = ("condition", "method", "image", "forged", "height", "width", "score",
                *METRIC_KEYS, "seconds", "error")


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
    if any(METHODS[m].uses_detector for m in methods):
        det = detector if isinstance(detector, Detector) else load_detector(detector)
        if det.calibration is None:
            raise ValueError("the detector has no calibration: fit it with fit_detector()")
        uses_reference = any(isinstance(METHODS[m], NoiseadMethod)
                             and METHODS[m].mode_for(det) == Mode.REFERENCE for m in methods)
        if uses_reference and det.gaussian is None:
            raise ValueError("noisead-reference needs a detector fitted on pristine images "
                             "(this one has no reference Gaussians); use noisead-blind")
        detector_id = detector_fingerprint(det)
    context = MethodContext(det, config.fixed_threshold, config.score_quantile)

    roc_cond = next((c for c in conditions if c.sweep == "clean"), conditions[0])
    setup = {m: setup_key(config, dataset, m, detector_id) for m in methods}
    rows_path = out / ROWS_FILE
    notes: list[str] = []
    if resume:
        cached, dirty = read_rows(rows_path)
        if dirty:
            write_rows(rows_path, cached.values())
    else:
        cached = {}
        write_rows(rows_path, [])
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
                        row = _evaluate_one(s, c, m, img_c, mask_c, context, config,
                                            setup[m], c.name == roc_cond.name,
                                            examples if (s.name in figure_names
                                                         and c.name == roc_cond.name) else None)
                        cached[(c.name, m, s.name)] = row
                        fh.write(json.dumps(jsonable(row), allow_nan=False) + "\n")
                        fh.flush()
                        bar.update(1)
    finally:
        bar.close()

    rows = [cached[(c.name, m, s.name)] for c in conditions for m in methods for s in samples]
    # Rows of other runs (other conditions, methods, images) stay in rows.jsonl for later
    # resumes; drop only superseded duplicates, which appending may have produced.
    _, dirty = read_rows(rows_path)
    if dirty:
        write_rows(rows_path, cached.values())

    summary = summarize(rows, conditions, methods)
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
                ex = _compute_example(dataset, s, roc_cond, methods, context,
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
                  mask: np.ndarray | None, context: MethodContext, config: EvalConfig,
                  setup: str, roc: bool, examples: dict[str, dict[str, Any]] | None
                  ) -> dict[str, Any]:
    h, w = image.shape[:2]
    row: dict[str, Any] = {"condition": cond.name, "method": method, "image": sample.name,
                           "forged": sample.is_forged, "height": h, "width": w}
    t0 = time.perf_counter()
    try:
        result = METHODS[method](image, context)
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
                     methods: Sequence[str], context: MethodContext,
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
            r = METHODS[m](image, context)
        except ImageTooSmallError:
            continue
        ex["heatmaps"][m] = r.heatmap
        if ex["fingerprint"] is None and r.fingerprint is not None:
            ex["fingerprint"] = fingerprint_view(r.fingerprint)
    if ex["fingerprint"] is None:
        ex["fingerprint"] = _residual_view(image)
    return ex


def _detector_info(det: Detector, detector_id: str | None) -> dict[str, Any]:
    info: dict[str, Any] = {"name": str(det.info.get("name", "custom")),
                            "fingerprint": detector_id, "mode": det.config.mode,
                            "threshold": det.config.threshold}
    info.update(det.describe())
    return info
