"""Pair-verification AUC of extractors on camera models of one folder (e.g. unseen ones).

The training log's figure uses held-back images of the *training* cameras; this one uses
any ``ROOT/<camera-model>/<image>`` folder, such as ``data/simcams-valunseen``, to ask
whether an extractor tells camera models apart that it never saw. Each MODEL is a
detector or an extractor (.safetensors with a sidecar), or ``denoiser:PATH`` for a plain
17 x 64 DnCNN denoiser. Prints AUC and DBL loss, with raw and patch-standardized
distances, on the same fixed batches for every model.

    python scripts/pair_auc.py --cameras data/simcams-valunseen \
        src/noisead/weights/default.safetensors src/noisead/weights/dncnn17.safetensors
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from noisead.anomaly.detector import Detector
from noisead.data.cameras import list_camera_images
from noisead.data.patches import BatchSpec, PatchPairSampler, load_camera_arrays
from noisead.models.dncnn import DnCNN, load_pretrained_denoiser
from noisead.models.registry import load_extractor, sidecar_path
from noisead.train.extractor import pair_verification_auc


def load_any(spec: str) -> torch.nn.Module:
    """A detector's or an extractor's network, or a denoiser (``denoiser:PATH``)."""
    if spec.startswith("denoiser:"):
        model = DnCNN()
        load_pretrained_denoiser(model, spec.split(":", 1)[1])
        return model
    kind = json.loads(sidecar_path(spec).read_text()).get("kind")
    return Detector.load(spec).extractor if kind == "detector" else load_extractor(spec)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--cameras", type=Path, required=True)
    ap.add_argument("--batches", type=int, default=12)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    arrays = load_camera_arrays(list_camera_images(args.cameras), progress=False)
    spec = BatchSpec(patch_size=48, models_per_batch=min(6, len(arrays)), images_per_model=4,
                     positions_per_model=4)
    sampler = PatchPairSampler(arrays, spec, None, seed=args.seed)
    batches = [sampler.sample() for _ in range(args.batches)]
    print("| model | pair AUC, raw | pair AUC, standardized |")
    print("|---|---|---|")
    for name in args.models:
        model = load_any(name)
        raw, _ = pair_verification_auc(model, batches, "fp32", "none")
        std, _ = pair_verification_auc(model, batches, "fp32", "patch")
        print(f"| {name} | {raw:.3f} | {std:.3f} |", flush=True)


if __name__ == "__main__":
    main()
