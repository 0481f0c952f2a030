"""Rendering of evaluation results: Markdown tables, CSV files, ROC curves, example figures.

Kept apart from :mod:`noisead.evaluate.run` so that tables can be re-rendered from a saved
``results.json`` (``format_markdown(json.load(...))``) without importing torch or running
anything, and so the computation there stays readable. Every file goes through the atomic
writers of :mod:`noisead.io`: a reader never sees half a table. Figures use matplotlib's Agg
canvas directly (``Figure`` + ``FigureCanvasAgg``), never ``pyplot``, so no GUI backend is
touched and no global figure state leaks between calls (the server imports this too).
"""

from __future__ import annotations

import base64
import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from noisead.io import atomic_write_bytes

__all__ = [
    "FULL_COLUMNS",
    "replace_doc_section",
    "decode_samples",
    "encode_samples",
    "format_markdown",
    "plot_examples",
    "plot_roc",
    "write_csv",
]

#: Columns of the full per-condition table: (summary key, header).
FULL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("n_forged", "forged"),
    ("auc", "AUC"),
    ("auc_sign_agnostic", "AUC (sign-agn.)"),
    ("mcc_best", "MCC best"),
    ("mcc_best_sign_agnostic", "MCC best (sign-agn.)"),
    ("f1_best", "F1 best"),
    ("f1_best_sign_agnostic", "F1 best (sign-agn.)"),
    ("mcc_fixed", "MCC@{thr}"),
    ("f1_fixed", "F1@{thr}"),
    ("iou_fixed", "IoU@{thr}"),
    ("detection_auc", "det. AUC"),
    ("seconds", "s/img"),
)

#: The two metrics of the thesis' robustness tables: (summary key, title).
SWEEP_METRICS: tuple[tuple[str, str], ...] = (
    ("auc", "Pixel AUC"),
    ("mcc_best", "MCC (best threshold)"),
)

_SWEEP_TITLES = {"jpeg": "JPEG recompression (quality)", "resize": "resize (scale factor)"}


# --------------------------------------------------------------------------- numbers


def _num(value: Any) -> float:
    """A summary value as float; ``None`` (how JSON stores NaN) and junk become NaN."""
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _fmt(value: Any, digits: int = 3) -> str:
    v = _num(value)
    if math.isnan(v):
        return "–"
    if float(v).is_integer() and abs(v) >= 1 and digits == 0:
        return str(int(v))
    return f"{v:.{digits}f}"


def encode_samples(values: np.ndarray) -> str:
    """float32 array -> base64 text (how per-image ROC pixel samples sit in ``rows.jsonl``)."""
    return base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode("ascii")


def decode_samples(text: str | None) -> np.ndarray:
    """Inverse of :func:`encode_samples`; empty for ``None`` or ``""``."""
    if not text:
        return np.zeros(0, dtype=np.float32)
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)


# --------------------------------------------------------------------------- markdown


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _index(results: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
    return {(s["condition"], s["method"]): s for s in results.get("summary", [])}


def format_markdown(results: Mapping[str, Any]) -> str:
    """The evaluation as Markdown, shaped like the thesis' tables, ready for BENCHMARKS.md.

    One table per robustness sweep and metric (rows = methods, columns = conditions; the
    clean condition is the sweep's first column), then a full table per condition with
    every localization metric, the sign-agnostic variants in their own columns, the
    fixed-threshold scores and the image-level detection AUC. Works on the dict returned
    by :func:`noisead.evaluate.run.evaluate` and on the same dict read back from
    ``results.json`` (where NaN is ``null``); ``–`` marks a value that is not defined.
    """
    ds = results.get("dataset", {})
    cfg = results.get("config", {})
    conditions = results.get("conditions", [])
    methods = results.get("methods", [])
    index = _index(results)
    thr = _fmt(cfg.get("fixed_threshold", 0.5), 2)
    band = bool(cfg.get("band", False))

    out = [f"# Evaluation on {ds.get('name', '?')}", ""]
    out.append(
        f"{ds.get('n_forged', '?')} forged and {ds.get('n_pristine', '?')} pristine images "
        f"(dataset kind `{ds.get('kind', '?')}`). Localization metrics are per-image means over "
        "forged images; detection AUC ranks forged against pristine image scores."
    )
    out.append("")
    det = results.get("detector")
    if det:
        out.append(f"Detector: `{det.get('name', 'custom')}` ({det.get('architecture', '?')}, "
                   f"default mode {det.get('mode', '?')}).")
    out.append(
        ("Boundary band ignored (Noiseprint/TruFor protocol: "
         f"erosion {cfg.get('erode_px', 15)} px, dilation {cfg.get('dilate_px', 11)} px). "
         if band else "All pixels counted (no boundary band). ")
        + f"Fixed threshold {thr} on each method's map in [0, 1] (noisead: calibrated heatmap; "
        "baselines: min-max normalised per image)."
    )
    out.append("")

    clean = [c for c in conditions if c.get("sweep") == "clean"]
    for sweep in ("jpeg", "resize"):
        conds = [c for c in conditions if c.get("sweep") == sweep]
        if not conds:
            continue
        cols = clean + conds
        header = ["Method"] + [
            "none" if c["sweep"] == "clean"
            else (str(c["jpeg"]) if sweep == "jpeg" else _fmt(c["scale"], 2))
            for c in cols
        ]
        for key, title in SWEEP_METRICS:
            out.append(f"## {title} — {_SWEEP_TITLES[sweep]}")
            out.append("")
            rows = [[m] + [_fmt(index.get((c["name"], m), {}).get(key)) for c in cols]
                    for m in methods]
            out += _md_table(header, rows)
            out.append("")

    for cond in conditions:
        out.append(f"## Condition: {cond.get('label', cond['name'])}")
        out.append("")
        header = ["Method"] + [h.format(thr=thr) for _, h in FULL_COLUMNS]
        rows = []
        for m in methods:
            s = index.get((cond["name"], m), {})
            rows.append([m] + [_fmt(s.get(k), 0 if k == "n_forged" else (2 if k == "seconds"
                                                                         else 3))
                               for k, _ in FULL_COLUMNS])
        out += _md_table(header, rows)
        notes = [f"- {m}: {n}" for m in methods
                 for n in index.get((cond["name"], m), {}).get("notes", [])]
        if notes:
            out.append("")
            out += notes
        out.append("")

    roc = results.get("roc") or {}
    if roc.get("methods"):
        out.append(f"Pooled-pixel ROC ({roc.get('condition')}): "
                   + ", ".join(f"{m} AUC {_fmt(v.get('auc_pooled'))}"
                               for m, v in roc["methods"].items())
                   + f" — `{roc.get('file', '')}`.")
        out.append("")
    if results.get("notes"):
        out.append("Notes:")
        out += [f"- {n}" for n in results["notes"]]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------- CSV


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    return value


def write_csv(path: str | Path, rows: Sequence[Mapping[str, Any]],
              columns: Sequence[str] | None = None) -> None:
    """Atomically write dict rows as CSV; NaN/None become empty cells (spreadsheet-friendly).

    Columns are ``columns`` if given, else every key in first-seen order, so rows with
    optional keys (an ``error``) still line up.
    """
    if columns is None:
        seen: dict[str, None] = {}
        for r in rows:
            seen.update(dict.fromkeys(r))
        columns = list(seen)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _csv_value(r.get(k)) for k in columns})
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))


# --------------------------------------------------------------------------- figures


def _save_figure(fig: Any, path: str | Path, dpi: int = 100) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def plot_roc(path: str | Path, samples: Mapping[str, tuple[np.ndarray, np.ndarray]],
             title: str, fixed_threshold: float | None = None) -> dict[str, dict[str, Any]]:
    """Pooled-pixel ROC curve per method from per-image pixel samples; returns pooled AUCs.

    ``samples[method] = (tampered scores, pristine scores)``, pooled over images. The caller
    draws the same number of pixels of each class from every image, so each image weighs
    the same in both rates (as in the per-image means) and a few large images cannot make
    the curve; ROC is independent of the class ratio, so the stratification changes nothing
    else. The point of ``fixed_threshold`` is marked on each curve.
    """
    from matplotlib.figure import Figure
    from sklearn.metrics import roc_auc_score, roc_curve

    fig = Figure(figsize=(5.0, 5.0))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], color="0.7", lw=1, ls="--")
    stats: dict[str, dict[str, Any]] = {}
    for method, (pos, neg) in samples.items():
        if pos.size == 0 or neg.size == 0:
            stats[method] = {"auc_pooled": math.nan, "n_pos": int(pos.size),
                             "n_neg": int(neg.size)}
            continue
        y = np.r_[np.ones(pos.size, bool), np.zeros(neg.size, bool)]
        s = np.r_[pos, neg].astype(np.float64)
        fpr, tpr, _ = roc_curve(y, s)
        auc = float(roc_auc_score(y, s))
        (line,) = ax.plot(fpr, tpr, lw=1.5, label=f"{method} (AUC {auc:.3f})")
        entry: dict[str, Any] = {"auc_pooled": auc, "n_pos": int(pos.size),
                                 "n_neg": int(neg.size)}
        if fixed_threshold is not None:
            t = np.float32(fixed_threshold)
            tp_rate = float(np.mean(pos >= t))
            fp_rate = float(np.mean(neg >= t))
            ax.plot([fp_rate], [tp_rate], "o", color=line.get_color(), ms=5)
            entry.update({"tpr_fixed": tp_rate, "fpr_fixed": fp_rate})
        stats[method] = entry
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("false positive rate (pristine pixels)")
    ax.set_ylabel("true positive rate (tampered pixels)")
    ax.set_title(title, fontsize=10)
    ax.set_aspect("equal")
    if samples:
        ax.legend(loc="lower right", fontsize=8)
    _save_figure(fig, path)
    return stats


def plot_examples(path: str | Path, examples: Sequence[Mapping[str, Any]],
                  methods: Sequence[str], fingerprint_label: str = "fingerprint") -> None:
    """Grid of forged examples: image | mask | fingerprint | heatmap of each method.

    ``examples`` items hold ``name``, ``image`` (H x W x 3), ``mask``, ``fingerprint``
    (already scaled to [0, 1] for display) and ``heatmaps[method]`` in [0, 1] (the same
    normalised maps the fixed-threshold metrics use, so what is shown is what is scored).
    """
    from matplotlib.figure import Figure

    cols = 3 + len(methods)
    rows = max(1, len(examples))
    fig = Figure(figsize=(2.0 * cols, 2.1 * rows))
    titles = ["image", "mask", fingerprint_label, *methods]
    for i, ex in enumerate(examples):
        panels = [(ex["image"], None), (ex["mask"], "gray"), (ex["fingerprint"], "gray")]
        panels += [(ex["heatmaps"].get(m), "inferno") for m in methods]
        for j, (arr, cmap) in enumerate(panels):
            ax = fig.add_subplot(rows, cols, i * cols + j + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            if arr is not None:
                if cmap is None:
                    ax.imshow(np.clip(arr, 0, 1), interpolation="nearest")
                else:
                    ax.imshow(np.asarray(arr, dtype=np.float32), cmap=cmap, vmin=0, vmax=1,
                              interpolation="nearest")
            if i == 0:
                ax.set_title(titles[j], fontsize=8)
            if j == 0:
                ax.set_ylabel(str(ex["name"])[-24:], fontsize=7)
    if not examples:
        ax = fig.add_subplot(1, 1, 1)
        ax.axis("off")
        ax.text(0.5, 0.5, "no forged image to show", ha="center", va="center")
    _save_figure(fig, path)


def replace_doc_section(doc: str | Path, name: str, body: str) -> None:
    """Put ``body`` between ``<!-- name:begin -->`` and ``<!-- name:end -->`` in ``doc``.

    Benchmark scripts own one marked section each of docs/BENCHMARKS.md, so rerunning one
    refreshes its figures without touching the hand-written text or the other sections.
    The markers (and the file) are created when absent; the file is replaced atomically.
    """
    doc = Path(doc)
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = doc.read_text() if doc.is_file() else "# Benchmarks\n"
    block = f"{begin}\n{body.strip()}\n{end}"
    if begin in text and end in text and text.index(begin) < text.index(end):
        a, b = text.index(begin), text.index(end) + len(end)
        text = text[:a] + block + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    atomic_write_bytes(doc, text.encode())
