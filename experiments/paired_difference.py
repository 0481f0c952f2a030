"""Experiment: is the learned map's effect on the validation sets more than noise?

``make ablation`` scores every validation image with the fused default and with the same
default without the learned map (``learned_weight`` 0), from one analysis per image. This
pairs the two per forged image (clean condition), and bootstraps the mean difference over
images: the confidence interval says whether the learned map's place in the fusion is
decided by the validation data or within their noise.

    .venv/bin/python experiments/paired_difference.py runs/ablation

Reads ``runs/ablation/val*/rows.jsonl`` (validation sets only, never the test sets).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

WITH, WITHOUT = "noisead-fused", "noisead-without-learned"


def paired_differences(folder: Path, metric: str) -> np.ndarray:
    """``metric`` of the fused default minus the same without the learned map, one value
    per forged validation image (clean condition)."""
    out = []
    for rows_file in sorted(folder.glob("val*/rows.jsonl")):
        by_image: dict[str, dict[str, float]] = {}
        for line in rows_file.read_text().splitlines():
            row = json.loads(line)
            if row["condition"] == "clean" and row["forged"]:
                by_image.setdefault(row["image"], {})[row["method"]] = row[metric]
        out += [m[WITH] - m[WITHOUT] for m in by_image.values() if WITH in m and WITHOUT in m]
    return np.asarray(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ablation", type=Path, nargs="?", default=Path("runs/ablation"))
    ap.add_argument("--resamples", type=int, default=10000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    for metric in ("auc", "mcc_best"):
        d = paired_differences(args.ablation, metric)
        means = rng.choice(d, (args.resamples, len(d))).mean(axis=1)
        low, high = np.percentile(means, [2.5, 97.5])
        print(f"{metric}: fused - without learned = {d.mean():+.4f} over {len(d)} images "
              f"(95% bootstrap interval {low:+.4f} to {high:+.4f}); the learned map raises "
              f"it on {(d > 0).sum()}, lowers it on {(d < 0).sum()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
