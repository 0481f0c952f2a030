"""The training campaign's pilot table: each pilot run's steps, training minutes and
validation pair AUC (its log), beside its unseen-camera scores (scripts/score_extractors.py).

    python scripts/pilot_table.py runs/pilots --scores runs/pilots/scores.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from noisead.train.extractor import read_training_log


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pilots", type=Path, help="folder of pilot runs (one folder each)")
    ap.add_argument("--scores", type=Path, required=True)
    args = ap.parse_args()
    scores = {}
    for line in args.scores.read_text().splitlines():
        row = json.loads(line)
        scores[Path(row["extractor"]).parent.name] = row
    sets = ("splice-png", "splice-jpeg", "generative-png")
    print("| pilot | steps | training min | val pair AUC (last / best) | "
          + " | ".join(sets) + " | mean | unseen pair AUC |")
    print("|---|---|---|---|" + "---|" * (len(sets) + 2))
    for run in sorted(p for p in args.pilots.iterdir() if (p / "log.jsonl").is_file()):
        log = read_training_log(run / "log.jsonl")
        vals = [h["val_auc"] for h in log if "val_auc" in h]
        s = scores.get(run.name, {})
        cells = [f"{s[k]:.3f}" if k in s else "" for k in (*sets, "mean_auc",
                                                            "unseen_pair_auc")]
        print(f"| {run.name} | {log[-1]['step']} | {log[-1]['seconds'] / 60:.1f} | "
              f"{vals[-1]:.3f} / {max(vals):.3f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
