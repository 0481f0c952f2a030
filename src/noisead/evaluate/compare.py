"""Side-by-side tables of several evaluation runs, shaped like the thesis' tables 1-4.

``noisead evaluate`` writes one folder per dataset with a ``results.json`` whose summary
has a row per (condition, method). One run evaluates one detector, so comparing models
(the DnCNN and Restormer extractors' own scores, the fused default, the blind mode, the
classic baselines) means reading several runs. This module gathers the rows named by a
list of :class:`Source` and renders the four comparisons the thesis reports:

1. splicing on clean images (PNG- and JPEG-sourced, the real copy-move set),
2. generative-like edits on clean images (PNG- and JPEG-sourced),
3. JPEG recompression of the forged image (quality 100/95/90),
4. resizing of the forged image (0.8/0.9/1.1/1.2),

each cell ``pixel AUC / best-threshold MCC`` (mean over forged images), plus image-level
detection AUC in tables 1-2. Published figures (on the thesis' own data, not ours) can be
shown as extra rows, so a reader sees both without mistaking one for the other. A missing
run, set or condition leaves an empty cell rather than failing: tables are re-rendered
from whatever has been evaluated so far.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Source", "collect_cells", "format_comparison"]

#: (set, condition) -> summary row of one method
Cells = dict[tuple[str, str], Mapping[str, Any]]

_JPEG = ("clean", "jpeg100", "jpeg95", "jpeg90")
_RESIZE = ("clean", "resize0.8", "resize0.9", "resize1.1", "resize1.2")
_HEADERS = {"clean": "none", "jpeg100": "100", "jpeg95": "95", "jpeg90": "90",
            "resize0.8": "0.8", "resize0.9": "0.9", "resize1.1": "1.1", "resize1.2": "1.2"}


@dataclass(frozen=True)
class Source:
    """One row of the tables: the ``method`` of the evaluation run in ``run_dir``.

    ``run_dir`` is the ``--out`` folder of ``scripts/evaluate_all.py`` (one sub-folder per
    dataset, each with a ``results.json``).
    """

    label: str
    run_dir: Path
    method: str


def collect_cells(source: Source, sets: Sequence[str]) -> Cells:
    """The summary rows of ``source.method`` in every set of ``sets`` that was evaluated."""
    cells: Cells = {}
    for name in sets:
        path = Path(source.run_dir) / name / "results.json"
        if not path.is_file():
            continue
        for row in json.loads(path.read_text()).get("summary", []):
            if row.get("method") == source.method:
                cells[(name, row["condition"])] = row
    return cells


def _pair(row: Mapping[str, Any] | None) -> str:
    if not row or row.get("auc") is None:
        return ""
    mcc = row.get("mcc_best")
    return f"{row['auc']:.3f}" + (f" / {mcc:.3f}" if mcc is not None else "")


def _detection(row: Mapping[str, Any] | None) -> str:
    value = (row or {}).get("detection_auc")
    return "" if value is None else f"{value:.3f}"


def _table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = [f"#### {title}", "", "| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines + [""]


def format_comparison(rows: Mapping[str, Cells],
                      published: Mapping[str, Mapping[tuple[str, str], str]] | None = None,
                      copy_move: str = "cvip-copymove") -> str:
    """Markdown of the four tables for ``rows`` (label -> cells, in display order).

    ``published``: label -> {(set, condition): cell text} for figures reported elsewhere;
    the set ``"thesis"`` holds figures whose dataset is the thesis' own (one row per label
    in the robustness tables), and ``("dso-1", "clean")`` its splicing figure.
    """
    published = published or {}
    out: list[str] = []
    # (title, sets, their column names, a column only published figures fill, or None)
    clean_tables = (
        ("Table 1 — splicing, clean (pixel AUC / MCC; detection AUC)",
         ("splice-png", "splice-jpeg", copy_move),
         ("PNG-sourced", "JPEG-sourced", "real copy-move (CVIP)"),
         ("dso-1", "DSO-1 (thesis' data)")),
        ("Table 2 — generative-like edits, clean (pixel AUC / MCC; detection AUC)",
         ("generative-png", "generative-jpeg"), ("PNG-sourced", "JPEG-sourced"), None),
    )
    for title, sets, names, published_only in clean_tables:
        extra = [published_only[1]] if published_only else []
        header = ["method", *names, *(f"det. AUC, {n}" for n in names[:2]), *extra]
        body = [[label, *(_pair(cells.get((s, "clean"))) for s in sets),
                 *(_detection(cells.get((s, "clean"))) for s in sets[:2]), *[""] * len(extra)]
                for label, cells in rows.items()]
        for label, figures in published.items():
            texts = [figures.get((s, "clean"), "") for s in sets]
            only = [figures.get((published_only[0], "clean"), "")] if published_only else []
            if any(texts) or any(only):
                body.append([label, *texts, "", "", *only])
        out += _table(title, header, body)
    for number, name, conditions in ((3, "JPEG recompression of the forged image, by quality",
                                      _JPEG),
                                     (4, "resizing of the forged image, by scale", _RESIZE)):
        header = ["set", "method", *(_HEADERS[c] for c in conditions)]
        body = []
        for s in ("splice-jpeg", "generative-jpeg"):
            for label, cells in rows.items():
                if any((s, c) in cells for c in conditions[1:]):
                    body.append([s, label, *(_pair(cells.get((s, c))) for c in conditions)])
        for label, figures in published.items():
            texts = [figures.get(("thesis", c), "") for c in conditions]
            if any(texts[1:]):
                body.append(["thesis' data", label, *texts])
        out += _table(f"Table {number} — {name} (pixel AUC / MCC)", header, body)
    return "\n".join(out).rstrip() + "\n"
