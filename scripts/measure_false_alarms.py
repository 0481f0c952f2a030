"""Fit the decision's operating point of a model (``make decision``).

Scores untouched photos under three conditions (as taken, recompressed, web-like) and the
forged benchmark images, appending each image's statistic to ``OUT/scores-<mode>.jsonl`` as
it comes (a rerun resumes). Then fits the image calibration on the validation photos,
chooses the threshold at ``--target`` on them, and measures it on the test photos of
held-out camera models and on the forged images (:func:`noisead.evaluate.false_alarms.
fit_decision`). With ``--write`` the calibration and the operating point go into the model.

Pools (no photo is in two):
- val: real photos of the training camera models that the detector's fit did not use
  (beyond the first ``--fit-per-camera`` of each model), and the simulated camera models
  of ``DATA/simcams-valunseen``; forged: ``DATA/val-unseen``;
- test: every photo of the held-out real camera models and up to ``--per-sim`` renders of
  each held-out simulated model; forged: ``DATA/bench``.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from noisead.data.cameras import list_camera_images
from noisead.evaluate.false_alarms import (
    CONDITIONS,
    append_score,
    apply_decision,
    fit_decision,
    read_scores,
    score_photos,
)
from noisead.infer import WEIGHTS_DIR, analyze, load_detector
from noisead.io import LoadedImage


def photo_pools(shared: Path, data: Path, holdout: set[str], fit_per_camera: int,
                per_real: int, per_sim: int) -> list[tuple[str, str, Path]]:
    """``(pool, camera, path)`` for every untouched photo measured."""
    photos = []
    real = list_camera_images(shared / "cameras")
    for cam, paths in sorted(real.items()):
        if cam in holdout:
            photos += [("test", cam, p) for p in paths]
        else:
            photos += [("val", cam, p) for p in paths[fit_per_camera:fit_per_camera + per_real]]
    for cam, paths in sorted(list_camera_images(data / "simcams-valunseen").items()):
        photos += [("val", cam, p) for p in paths[:per_sim]]
    for cam, paths in sorted(list_camera_images(data / "simcams").items()):
        if cam in holdout:
            photos += [("test", cam, p) for p in paths[:per_sim]]
    return photos


def forged_images(data: Path) -> list[tuple[str, str, Path]]:
    """``(pool, benchmark, path)`` of the forged images: val from the unseen simulated
    cameras' benchmarks, test from the held-out cameras' benchmarks."""
    images = []
    for pool, root in (("val", data / "val-unseen"), ("test", data / "bench")):
        for bench in sorted(p for p in root.iterdir() if (p / "images").is_dir()):
            images += [(pool, bench.name, p) for p in sorted((bench / "images").iterdir())]
    return images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shared", type=Path, default=Path("../shared"))
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--holdout", required=True)
    ap.add_argument("--model", default="default")
    ap.add_argument("--mode", default=None)
    ap.add_argument("--out", type=Path, default=Path("runs/false-alarms"))
    ap.add_argument("--scores", type=Path, default=None,
                    help="read the scores from this file instead of scoring (no analysis)")
    ap.add_argument("--fit-per-camera", type=int, default=3)
    ap.add_argument("--per-real", type=int, default=4)
    ap.add_argument("--per-sim", type=int, default=6)
    ap.add_argument("--target", type=float, default=0.01, help="false-alarm rate on val")
    ap.add_argument("--write", action="store_true",
                    help="store the image calibration and the operating point in the model")
    args = ap.parse_args()

    detector = load_detector(args.model)
    mode = args.mode or detector.config.mode
    scores_file = args.scores or args.out / f"scores-{mode}.jsonl"
    if args.scores is None:
        score_all(args, detector, mode, scores_file)
    fit = fit_decision(read_scores(scores_file), args.target)
    report = {"mode": mode, "model": args.model, "scores": str(scores_file), **fit.to_dict()}
    print(json.dumps(report, indent=2))
    print(f"stated: {fit.stated.phrase()}")
    if args.write:
        apply_decision(detector, mode, fit)
        path = (Path(args.model) if Path(args.model).suffix == ".safetensors"
                else WEIGHTS_DIR / f"{args.model}.safetensors")
        detector.save(path)
        print(f"wrote {path}")


def score_all(args: argparse.Namespace, detector, mode: str, scores_file: Path) -> None:
    """Score every photo and forged image not yet in ``scores_file``."""
    def analyse(image: LoadedImage) -> tuple[float, bool, float]:
        result = analyze(image, detector, mode=mode)
        return (result.score, bool(result.texture and result.texture.judgeable),
                result.image_statistic)

    done = {(r.path, r.condition) for r in read_scores(scores_file)}
    photos = photo_pools(args.shared, args.data, set(args.holdout.split(",")),
                         args.fit_per_camera, args.per_real, args.per_sim)
    scored = score_photos(photos, CONDITIONS, analyse, done)
    forged = score_photos(forged_images(args.data), CONDITIONS[:1], analyse, done, forged=True)
    for i, row in enumerate(itertools.chain(scored, forged)):
        append_score(scores_file, row)
        if i % 20 == 0:
            print(f"{i}: {row.pool} {row.camera} {row.condition} {row.score}", flush=True)


if __name__ == "__main__":
    main()
