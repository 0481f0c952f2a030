"""The fusion ablation's tables: each variant per set and condition, issue 19's targets
met or not per row, and the learned weight on the validation sets.

Reads the ``summary`` rows of :func:`noisead.evaluate.run.evaluate` results (one per set)
for the methods of :mod:`noisead.evaluate.ablation` and renders markdown; nothing here
computes a score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from noisead.evaluate.ablation import FUSION_VARIANTS

__all__ = ["TABLE_KEYS", "WEIGHT_KEYS", "format_ablation", "format_weights", "row_targets"]

#: The variants of the main table, in column order.
TABLE_KEYS = ("learned-alone", "statistics-alone", "lattice-alone", "without-learned", "fused")
#: The learned weights compared on validation: variant key -> weight.
WEIGHT_KEYS = {"without-learned": 0.0, "fused-w0.5": 0.5, "fused-w0.75": 0.75,
               "fused": 1.0, "fused-w1.25": 1.25}
_HEADERS = {"learned-alone": "learned alone",
            "statistics-alone": "statistics alone (noise level + spectrum, no JPEG lattice)",
            "lattice-alone": "JPEG lattice alone",
            "without-learned": "fused without learned (level + spectrum + lattice)",
            "fused": "**fused (the default)**"}
_METHOD = {v.key: v.method_name for v in FUSION_VARIANTS}

#: Issue 19's targets. Learned alone: pixel AUC >= 0.90 on splicing; learned alone above
#: statistics alone on every row; the learned map's share of the fusion on splicing and
#: copy-move: fused - fused without learned >= +0.02 AUC and >= +0.05 MCC.
LEARNED_AUC, GAIN_AUC, GAIN_MCC = 0.90, 0.02, 0.05
SPLICING = ("splice-png", "splice-jpeg")
COPY_MOVE = ("cvip-copymove",)
#: A change of the fused pixel AUC smaller than this is read as "unchanged".
UNCHANGED_AUC = 0.005

Summary = Mapping[tuple[str, str], Mapping[str, Any]]  # (condition, method) -> summary row


def _value(summary: Summary, condition: str, key: str, metric: str) -> float:
    row = summary.get((condition, _METHOD[key]))
    v = row.get(metric) if row else None
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else math.nan


def _fmt(v: float, digits: int = 3) -> str:
    return "—" if math.isnan(v) else f"{v:.{digits}f}"


def _signed(v: float) -> str:
    return "—" if math.isnan(v) else f"{v:+.3f}"


def row_targets(set_name: str, summary: Summary, condition: str) -> list[str]:
    """Each target that applies to this row, ``"<target>: met"`` or ``"... not met"``."""
    out = []
    learned = _value(summary, condition, "learned-alone", "auc")
    statistics = _value(summary, condition, "statistics-alone", "auc")
    if set_name in SPLICING:
        out.append(f"learned ≥ {LEARNED_AUC:.2f}: {'met' if learned >= LEARNED_AUC else 'not met'}")
    out.append(f"learned > statistics: {'met' if learned > statistics else 'not met'}")
    if set_name in SPLICING + COPY_MOVE:
        d_auc = (_value(summary, condition, "fused", "auc")
                 - _value(summary, condition, "without-learned", "auc"))
        d_mcc = (_value(summary, condition, "fused", "mcc_best")
                 - _value(summary, condition, "without-learned", "mcc_best"))
        met = d_auc >= GAIN_AUC and d_mcc >= GAIN_MCC
        out.append(f"fused − without ≥ +{GAIN_AUC} / +{GAIN_MCC}: "
                   f"{'met' if met else 'not met'}")
    return out


def _effect(d_auc: float) -> str:
    if math.isnan(d_auc):
        return "—"
    if abs(d_auc) < UNCHANGED_AUC:
        return "unchanged"
    return "helps" if d_auc > 0 else "hurts"


def format_ablation(set_name: str, summary: Summary, conditions: Sequence[Mapping[str, Any]],
                    n_forged: int, n_pristine: int) -> str:
    """One set's table: a row per condition, a column per variant (pixel AUC / best MCC,
    then the detection AUC where the set has pristine images), the learned map's effect
    and the targets of that row."""
    det = n_pristine > 0
    head = ["condition", *(_HEADERS[k] for k in TABLE_KEYS),
            "fused − without learned (AUC / MCC)", "learned map", "issue 19 targets"]
    lines = [f"#### {set_name} ({n_forged} forged, {n_pristine} pristine; cells: pixel AUC / "
             f"best-threshold MCC{' / detection AUC' if det else ''})", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    counts = {"helps": 0, "hurts": 0, "unchanged": 0}
    for c in conditions:
        name = c["name"]
        cells = []
        for k in TABLE_KEYS:
            cell = (f"{_fmt(_value(summary, name, k, 'auc'))} / "
                    f"{_fmt(_value(summary, name, k, 'mcc_best'))}")
            if det:
                cell += f" / {_fmt(_value(summary, name, k, 'detection_auc'), 2)}"
            cells.append(cell)
        d_auc = _value(summary, name, "fused", "auc") - _value(summary, name,
                                                               "without-learned", "auc")
        d_mcc = (_value(summary, name, "fused", "mcc_best")
                 - _value(summary, name, "without-learned", "mcc_best"))
        effect = _effect(d_auc)
        counts[effect] = counts.get(effect, 0) + 1
        lines.append("| " + " | ".join([c["label"], *cells, f"{_signed(d_auc)} / "
                                        f"{_signed(d_mcc)}", effect,
                                        "; ".join(row_targets(set_name, summary, name))])
                     + " |")
    lines += ["", f"The learned map helps the fused pixel AUC on {counts['helps']} of "
              f"{len(conditions)} rows, hurts it on {counts['hurts']}, leaves it within "
              f"±{UNCHANGED_AUC} on {counts['unchanged']}."]
    return "\n".join(lines)


def format_weights(results: Mapping[str, Summary]) -> tuple[str, float]:
    """The learned weight on the validation sets (clean): a row per set, a column per
    weight (pixel AUC / best MCC), the mean; and the weight with the best mean AUC (ties:
    the better mean MCC, then the lower weight)."""
    weights = list(WEIGHT_KEYS.items())
    head = ["validation set", *(f"weight {w:g}" for _, w in weights), "learned alone"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    sums = {k: [0.0, 0.0, 0] for k, _ in weights}
    for set_name, summary in results.items():
        cells = []
        for k, _ in weights:
            auc, mcc = (_value(summary, "clean", k, "auc"),
                        _value(summary, "clean", k, "mcc_best"))
            cells.append(f"{_fmt(auc)} / {_fmt(mcc)}")
            if not (math.isnan(auc) or math.isnan(mcc)):
                sums[k][0] += auc
                sums[k][1] += mcc
                sums[k][2] += 1
        learned = (f"{_fmt(_value(summary, 'clean', 'learned-alone', 'auc'))} / "
                   f"{_fmt(_value(summary, 'clean', 'learned-alone', 'mcc_best'))}")
        lines.append("| " + " | ".join([set_name, *cells, learned]) + " |")
    means = {k: (s[0] / s[2], s[1] / s[2]) if s[2] else (math.nan, math.nan)
             for k, s in sums.items()}
    lines.append("| **mean** | " + " | ".join(f"**{_fmt(a)} / {_fmt(m)}**"
                                               for a, m in means.values()) + " | |")
    def rank(kw: tuple[str, float]) -> tuple[float, float, float]:
        auc, mcc = (-math.inf if math.isnan(v) else round(v, 3) for v in means[kw[0]])
        return -auc, -mcc, kw[1]

    ranked = sorted(weights, key=rank)
    return "\n".join(lines), ranked[0][1]
