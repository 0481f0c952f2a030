"""The summary of an evaluation: one entry per (condition, method), from its rows.

Means of every localization metric over the forged images where it is defined, with the
count beside each mean (``<metric>_n``), image counts, errors and the image-level detection
AUC (forged against pristine scores), with notes that say what was left out and why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from noisead.evaluate.config import Condition
from noisead.evaluate.metrics import METRIC_KEYS, aggregate, detection_auc

__all__ = ["summarize"]


def summarize(rows: Sequence[dict[str, Any]], conditions: Sequence[Condition],
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
