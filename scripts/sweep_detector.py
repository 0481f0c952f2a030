"""Sweep anomaly-model settings of a shipped detector's extractor on a validation set.

For each setting (smoothing sigma, taps), the Gaussians are refitted on a quick pristine
set (``--per-camera`` images of every training camera, top-left ``--max-side`` crops) and
the detector is scored on ``--bench`` sets (default: ``data/val-unseen``; never the test
sets). Prints one markdown row per setting: pixel AUC / best-threshold MCC per set.

    python scripts/sweep_detector.py --model src/noisead/weights/default.safetensors \
        --smoothing 4,8,16 --taps default,fingerprint
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from fit_default import pristine_crops

from noisead.anomaly.detector import Detector, DetectorConfig
from noisead.anomaly.fit import fit_detector
from noisead.evaluate.run import clean_summary


def localization_scores(extractor: torch.nn.Module, pristine: list, config: DetectorConfig,
                        bench: Path, sets: list[str], max_images: int
                        ) -> dict[str, tuple[float, float]]:
    """Fit a detector (one mode, uncalibrated for the other) and score it on each set:
    {set: (pixel AUC, best-threshold MCC)} on the clean condition."""
    det = fit_detector(extractor, pristine, config, calibrate_modes=(), progress=False)
    method = f"noisead-{config.mode}"
    out = {}
    for name in sets:
        row = clean_summary(bench / name, det, (method,), max_images)[method]
        out[name] = (float(row["auc"]), float(row["mcc_best"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="a fitted detector")
    ap.add_argument("--shared", type=Path, default=Path("../shared"))
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--bench", type=Path, default=Path("data/val-unseen"))
    ap.add_argument("--sets", default="splice-png,generative-png")
    ap.add_argument("--smoothing", default="8", help="comma-separated sigmas")
    ap.add_argument("--taps", default="default",
                    help="comma-separated choices; each is 'default' or layers joined by '+'")
    ap.add_argument("--mode", default="reference")
    ap.add_argument("--per-camera", type=int, default=1)
    ap.add_argument("--max-side", type=int, default=384)
    ap.add_argument("--max-images", type=int, default=12)
    args = ap.parse_args()

    base = Detector.load(args.model)
    holdout = set(base.info["pristine"]["holdout"])
    images, _ = pristine_crops([args.shared / "cameras", args.data / "simcams"], holdout,
                               args.per_camera, args.max_side)
    sets = args.sets.split(",")
    print("| taps | smoothing | " + " | ".join(sets) + " |")
    print("|---|---|" + "---|" * len(sets))
    for taps_arg in args.taps.split(","):
        taps = None if taps_arg == "default" else tuple(taps_arg.split("+"))
        for sigma in (float(s) for s in args.smoothing.split(",")):
            config = DetectorConfig(mode=args.mode, taps=taps, smoothing_sigma=sigma)
            scores = localization_scores(base.extractor, images, config, args.bench, sets,
                                         args.max_images)
            cells = [f"{auc:.3f} / {mcc:.3f}" for auc, mcc in scores.values()]
            print(f"| {taps_arg} | {sigma:g} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
