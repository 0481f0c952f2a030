"""A second unseen-camera validation set, for settings whose validation figures tie.

Like ``data/val-unseen`` (scripts/build_benchmarks.py) but from 6 *other* simulated camera
models (``--camera-seed``, default 102; training uses seed 0, val-unseen 101) and its own
forgeries (``--seed``): splicing and generative-like edits, PNG- and JPEG-sourced, 12 forged
+ 12 pristine 384 x 384 images each. It settled the image-score quantile
(docs/BENCHMARKS.md); never a test set.

    python experiments/build_extra_validation.py --out data/val-unseen2
"""

from __future__ import annotations

import argparse
from pathlib import Path

from noisead.data.forge import make_benchmark
from noisead.data.simulate import simulate_cameras


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared"))
    ap.add_argument("--out", type=Path, default=Path("data/val-unseen2"))
    ap.add_argument("--camera-seed", type=int, default=102)
    ap.add_argument("--seed", type=int, default=4)
    args = ap.parse_args()
    cameras = args.out.with_name(args.out.name + "-cams")
    if not cameras.is_dir():
        simulate_cameras(args.shared / "scenes" / "cvip", cameras, n_models=6,
                         seed=args.camera_seed, downscale=1, images_per_model=24)
    make_benchmark(cameras, args.out, kinds=("splice", "generative"),
                   variants=("png", "jpeg"), n_per_kind=12, seed=args.seed, crop_size=384)
    print(f"validation benchmark in {args.out}")


if __name__ == "__main__":
    main()
