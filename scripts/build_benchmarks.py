"""Build the validation and test benchmarks from ../shared (``make data``).

- **test**: forgeries made only from the *held-out* camera models (real and simulated),
  which the extractor never sees in training: ``DATA/bench/<kind>-<variant>/``.
- **val**: forgeries made from training camera models, used to choose the detector's
  settings (mode, smoothing, threshold), never the test set: ``DATA/val/...``.
- **val-unseen**: forgeries from 6 new simulated camera models that no extractor trains on
  (and that are not the test ones): ``DATA/val-unseen/...``, for choosing between
  extractors, since ``val`` favours models that fit the training cameras.

Camera folders are gathered as symbolic links under ``DATA/cams-test`` and
``DATA/cams-val``; no image is copied.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from noisead.data.cameras import list_camera_images
from noisead.data.forge import make_benchmark


def link_cameras(roots: list[Path], names: set[str], dest: Path, exclude: bool) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for root in roots:
        for cam in sorted(list_camera_images(root)):
            if (cam in names) == exclude:
                continue
            link = dest / cam
            if not link.exists():
                link.symlink_to((root / cam).resolve(), target_is_directory=True)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shared", type=Path, default=Path("../shared"))
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--holdout", required=True, help="comma-separated held-out camera models")
    ap.add_argument("--n", type=int, default=12, help="forged images per kind and variant")
    ap.add_argument("--val-cameras", type=int, default=8)
    args = ap.parse_args()
    held = set(args.holdout.split(","))
    roots = [args.shared / "cameras", args.data / "simcams"]
    test_cams = link_cameras(roots, held, args.data / "cams-test", exclude=False)
    make_benchmark(test_cams, args.data / "bench", kinds=("splice", "generative"),
                   variants=("png", "jpeg"), n_per_kind=args.n, seed=1)
    # Validation: a few training cameras, real and simulated alike.
    train_names = sorted(set(list_camera_images(*roots)) - held)
    picked = set(train_names[::max(1, len(train_names) // args.val_cameras)])
    val_cams = link_cameras(roots, picked, args.data / "cams-val", exclude=False)
    make_benchmark(val_cams, args.data / "val", kinds=("splice", "generative"),
                   variants=("png",), n_per_kind=max(6, args.n // 2), seed=2)
    # Validation on camera models no extractor has seen: 6 new simulated pipelines (seed
    # 101, unlike the training and test ones), renamed unseen00-05. Model selection uses it,
    # because forgeries from training cameras favour models that fit those cameras.
    from noisead.data.simulate import simulate_cameras

    unseen = args.data / "simcams-valunseen"
    if not unseen.is_dir():
        simulate_cameras(args.shared / "scenes" / "cvip", unseen, n_models=6, seed=101,
                         downscale=1, images_per_model=24)
        for d in sorted(unseen.glob("simcam*")):
            d.rename(unseen / d.name.replace("simcam", "unseen"))
    make_benchmark(unseen, args.data / "val-unseen", kinds=("splice", "generative"),
                   variants=("png", "jpeg"), n_per_kind=12, seed=3, crop_size=384)
    print(f"test benchmark in {args.data / 'bench'}, validation in {args.data / 'val'} and "
          f"{args.data / 'val-unseen'}")


if __name__ == "__main__":
    main()
