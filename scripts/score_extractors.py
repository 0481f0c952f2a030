"""Score extractors the way the training campaign compares its pilots: on unseen cameras.

For each EXTRACTOR (an extractor .safetensors, or a detector whose network is taken), fit
a quick learned-only detector (Gaussians on 1 pristine crop per training camera, no noise
statistics, no JPEG lattice; reference mode) and report its pixel AUC on the clean
``data/val-unseen`` sets, the sets' mean, and the pair-verification AUC (patch-standardized
distances) on the unseen camera models themselves. Never reads the test sets.

The training loss sees standardized fingerprints only, so a run's fingerprint scale is
arbitrary and drifts from run to run (docs/BENCHMARKS.md, "Training campaign"), and the
detector's Gaussian fit fails on some scales (covariance not positive definite). Every
DnCNN is therefore first rescaled to a unit-RMS fingerprint (its last convolution divided
by the RMS over the pristine crops): the same network up to a scale.

    python scripts/score_extractors.py runs/pilots/p0/extractor.safetensors \
        runs/shipped-extractor.safetensors --json runs/pilots/scores.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from fit_default import pristine_crops
from pair_auc import load_any
from sweep_detector import localization_scores

from noisead.anomaly.detector import DetectorConfig
from noisead.data.cameras import list_camera_images
from noisead.data.patches import BatchSpec, PatchPairSampler, load_camera_arrays
from noisead.models.dncnn import DnCNN
from noisead.train.extractor import pair_verification_auc

HOLDOUT = ("Canon-EOS-80D,NIKON-D90,SONY-ILCE-7M2,Apple-iPhone-XR,"
           "Hewlett-Packard-Photosmart-M627,SAMSUNG-GT-P5210,"
           "simcam20,simcam21,simcam22,simcam23")


def unit_fingerprint(model: torch.nn.Module, images: list) -> float:
    """Rescale a DnCNN's last convolution so its fingerprint has unit RMS; the factor."""
    if not isinstance(model, DnCNN):
        return 1.0
    x = torch.from_numpy(np.stack([im[:128, :128] for im in images[:8]]).transpose(0, 3, 1, 2)
                         .copy()).float()
    with torch.no_grad():
        rms = float(model(x).pow(2).mean().sqrt())
        conv = [m for m in model.layers[-1].modules() if isinstance(m, torch.nn.Conv2d)][-1]
        conv.weight /= rms
        if conv.bias is not None:
            conv.bias /= rms
    return rms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("extractors", nargs="+", type=Path)
    ap.add_argument("--shared", type=Path, default=Path("../shared"))
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--bench", type=Path, default=Path("data/val-unseen"))
    ap.add_argument("--sets", default="splice-png,splice-jpeg,generative-png")
    ap.add_argument("--holdout", default=HOLDOUT)
    ap.add_argument("--max-images", type=int, default=12)
    ap.add_argument("--json", type=Path, help="append one JSON line per extractor here")
    args = ap.parse_args()
    images, _ = pristine_crops([args.shared / "cameras", args.data / "simcams"],
                               set(args.holdout.split(",")), 1, 384)
    unseen = load_camera_arrays(list_camera_images(args.data / "simcams-valunseen"),
                                progress=False)
    spec = BatchSpec(patch_size=48, models_per_batch=6, images_per_model=4,
                     positions_per_model=4)
    sampler = PatchPairSampler(unseen, spec, None, seed=5)
    batches = [sampler.sample() for _ in range(12)]
    sets = args.sets.split(",")
    print("| extractor | " + " | ".join(sets) + " | mean | unseen pair AUC | fingerprint RMS | s |")
    print("|---|" + "---|" * (len(sets) + 4))
    for path in args.extractors:
        t0 = time.monotonic()
        model = load_any(str(path))
        model.eval()
        rms = unit_fingerprint(model, images)
        shrinkage: float | str = "oas"
        try:
            scores = localization_scores(model, images, DetectorConfig(mode="reference"),
                                         args.bench, sets, args.max_images)
        except torch.linalg.LinAlgError:
            # float32 sums of large activations can leave a covariance a hair short of
            # positive definite; a fixed shrinkage makes it so (said in the output)
            shrinkage = 0.05
            scores = localization_scores(
                model, images, DetectorConfig(mode="reference", shrinkage=shrinkage),
                args.bench, sets, args.max_images)
        pair, _ = pair_verification_auc(model, batches, "fp32", "patch")
        mean = sum(a for a, _ in scores.values()) / len(scores)
        seconds = time.monotonic() - t0
        print(f"| {path} | " + " | ".join(f"{a:.3f}" for a, _ in scores.values())
              + f" | {mean:.3f} | {pair:.3f} | {rms:.3g} | {seconds:.0f} |"
              + ("" if shrinkage == "oas" else f" shrinkage {shrinkage}"), flush=True)
        if args.json:
            with args.json.open("a") as f:
                f.write(json.dumps({"extractor": str(path), "shrinkage": shrinkage,
                                    "fingerprint_rms": round(rms, 4),
                                    "mean_auc": round(mean, 4),
                                    "unseen_pair_auc": round(pair, 4),
                                    **{k: round(v[0], 4) for k, v in scores.items()}}) + "\n")


if __name__ == "__main__":
    main()
