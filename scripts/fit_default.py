"""Fit the anomaly model of a trained extractor and save it as a shipped detector.

Pristine images: up to ``--per-camera`` images of every *training* camera model (real and
simulated; held-out models are never used), top-left crops of at most ``--max-side``
pixels (the 8x8 grid stays aligned). A quarter of them calibrate the scores.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from noisead.anomaly.detector import DetectorConfig
from noisead.anomaly.fit import fit_detector
from noisead.data.cameras import list_camera_images
from noisead.io import load_image
from noisead.models.dncnn import DnCNN, load_pretrained_denoiser
from noisead.models.registry import load_extractor


def pristine_crops(roots: list[Path], holdout: set[str], per_camera: int, max_side: int):
    cams = list_camera_images(*roots)
    paths = [p for c, ps in sorted(cams.items()) if c not in holdout for p in ps[:per_camera]]
    return [load_image(p, apply_exif_orientation=False).pixels[:max_side, :max_side]
            for p in paths], paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shared", type=Path, default=Path("../shared"))
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--run", type=Path, help="training run folder (extractor.safetensors)")
    ap.add_argument("--denoiser", type=Path, help="use a plain pretrained denoiser instead")
    ap.add_argument("--holdout", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--per-camera", type=int, default=3)
    ap.add_argument("--max-side", type=int, default=512)
    ap.add_argument("--mode", default="blind")
    ap.add_argument("--smoothing", type=float, default=8.0)
    ap.add_argument("--n-features", type=int, default=None)
    ap.add_argument("--name", default=None)
    args = ap.parse_args()
    if args.denoiser:
        extractor = DnCNN()
        load_pretrained_denoiser(extractor, args.denoiser)
        meta = {"training": {"note": "pretrained AWGN denoiser, no DBL training",
                             "source": str(args.denoiser)}}
    else:
        best = args.run / "extractor-best.safetensors"  # selected on validation
        extractor, meta = load_extractor(best if best.is_file() else
                                         args.run / "extractor.safetensors")
    images, paths = pristine_crops([args.shared / "cameras", args.data / "simcams"],
                                   set(args.holdout.split(",")), args.per_camera,
                                   args.max_side)
    config = DetectorConfig(mode=args.mode, smoothing_sigma=args.smoothing,
                            n_features=args.n_features)
    detector = fit_detector(extractor, images, config, info={
        "name": args.name or args.out.stem,
        "extractor_training": meta.get("training"),
        "extractor_metrics": meta.get("metrics"),
        "pristine": {"n_images": len(paths), "per_camera": args.per_camera,
                     "max_side": args.max_side, "holdout": sorted(args.holdout.split(","))}})
    detector.save(args.out)
    print(f"saved {args.out}: {detector.info['fit']}")


if __name__ == "__main__":
    main()
