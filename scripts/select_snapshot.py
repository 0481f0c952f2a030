"""Choose a training run's extractor on localization of unseen cameras, not on pair AUC.

The pair AUC the training loop logs ranked our extractors opposite to how well they
localize on camera models they never saw (docs/BENCHMARKS.md). This fits a quick detector
on each saved extractor of a run (``extractor-step*.safetensors`` from
``snapshot_every``, ``extractor-best`` and the last ``extractor``), scores it on the
validation sets of unseen cameras (``data/val-unseen``; never the test sets), prints the
table, and copies the one with the highest mean pixel AUC to
``extractor-selected.safetensors`` (+ sidecar with the table), which
``scripts/fit_default.py --run`` then prefers.

    python scripts/select_snapshot.py --run runs/gpu/dncnn17_aug
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import torch
from fit_default import pristine_crops
from sweep_detector import localization_scores

from noisead.anomaly.detector import DetectorConfig
from noisead.models.registry import load_extractor, save_extractor
from noisead.train.extractor import is_collapsed


def saved_extractors(run: Path) -> list[Path]:
    """The run's extractors: step snapshots in step order, then best and last."""
    steps = sorted(run.glob("extractor-step*.safetensors"),
                   key=lambda p: int(re.findall(r"\d+", p.stem)[-1]))
    return steps + [p for p in (run / "extractor-best.safetensors",
                                run / "extractor.safetensors") if p.is_file()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--shared", type=Path, default=Path("../shared"))
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--bench", type=Path, default=Path("data/val-unseen"))
    ap.add_argument("--sets", default="splice-png,generative-png")
    ap.add_argument("--mode", default="reference")
    ap.add_argument("--per-camera", type=int, default=1)
    ap.add_argument("--max-side", type=int, default=384)
    ap.add_argument("--max-images", type=int, default=12)
    args = ap.parse_args()
    candidates = saved_extractors(args.run)
    if not candidates:
        raise SystemExit(f"{args.run}: no extractor-*.safetensors to choose from")
    _, meta = load_extractor(candidates[0])
    holdout = set(meta["training"]["config"]["holdout_cameras"])
    images, _ = pristine_crops([args.shared / "cameras", args.data / "simcams"], holdout,
                               args.per_camera, args.max_side)
    sets = args.sets.split(",")
    print("| extractor | step | " + " | ".join(sets) + " | mean AUC |")
    print("|---|---|" + "---|" * (len(sets) + 1))
    table, best = [], None
    # a collapsed extractor gives every input the same fingerprint
    probe = torch.from_numpy(np.stack([im[:64, :64] for im in images[:4]]).transpose(0, 3, 1, 2)
                             .copy()).float()
    for path in candidates:
        extractor, meta = load_extractor(path)
        with torch.no_grad():
            if is_collapsed(extractor(probe)):
                print(f"| {path.name} | | collapsed: constant fingerprint, skipped |")
                continue
        scores = localization_scores(extractor, images, DetectorConfig(mode=args.mode),
                                     args.bench, sets, args.max_images)
        mean = sum(auc for auc, _ in scores.values()) / len(scores)
        step = (meta.get("training") or {}).get("step") or (meta.get("metrics") or {}).get(
            "steps")
        table.append({"extractor": path.name, "step": step, "mean_auc": round(mean, 4),
                      **{k: round(v[0], 4) for k, v in scores.items()}})
        print(f"| {path.name} | {step} | "
              + " | ".join(f"{a:.3f} / {m:.3f}" for a, m in scores.values())
              + f" | {mean:.3f} |", flush=True)
        if best is None or mean > best[0]:
            best = (mean, extractor, meta, path)
    if best is None:
        raise SystemExit("every extractor of the run has collapsed")
    mean, extractor, meta, path = best
    out = save_extractor(extractor, args.run / "extractor-selected.safetensors",
                         training={**(meta.get("training") or {}), "selected_from": path.name},
                         metrics={**(meta.get("metrics") or {}),
                                  "selection": {"bench": str(args.bench), "mode": args.mode,
                                                "mean_auc": round(mean, 4), "table": table}})
    print(f"selected {path.name} (mean AUC {mean:.3f}) -> {out}")


if __name__ == "__main__":
    main()
