"""Choose the decision threshold on validation photos and measure its false-alarm rate on
untouched photos of held-out camera models; optionally write the operating point into a
model's sidecar (``make decision``).

Pools (no photo is in two):
- val: real photos of the training camera models that the detector's fit did not use
  (beyond the first ``--fit-per-camera`` of each model), and the simulated camera models
  of ``DATA/simcams-valunseen``;
- test: every photo of the held-out real camera models and up to ``--per-sim`` renders of
  each held-out simulated model.
Scores are appended to ``OUT/scores.jsonl`` as they come, so a rerun resumes.
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
    choose_threshold,
    operating_point,
    read_scores,
    score_photos,
)
from noisead.infer import analyze, load_detector
from noisead.io import LoadedImage
from noisead.models.registry import load_tensors_with_sidecar, sidecar_path


def photo_pools(shared: Path, data: Path, holdout: set[str], fit_per_camera: int,
                per_real: int, per_sim: int) -> list[tuple[str, str, Path]]:
    """``(pool, camera, path)`` for every photo measured, val first."""
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
    ap.add_argument("--fit-per-camera", type=int, default=3)
    ap.add_argument("--per-real", type=int, default=6)
    ap.add_argument("--per-sim", type=int, default=10)
    ap.add_argument("--target", type=float, default=0.01, help="false-alarm rate on val")
    ap.add_argument("--floor", type=float, default=0.99,
                    help="never set the threshold below this calibrated score")
    ap.add_argument("--write", action="store_true",
                    help="store the operating point in the model's sidecar")
    args = ap.parse_args()

    detector = load_detector(args.model)
    mode = args.mode or detector.config.mode

    def analyse(image: LoadedImage) -> tuple[float, bool, float]:
        result = analyze(image, detector, mode=mode)
        return (result.score, bool(result.texture and result.texture.judgeable),
                result.image_statistic)

    scores_file = args.out / f"scores-{mode}.jsonl"
    done = {(r.path, r.condition) for r in read_scores(scores_file)}
    photos = photo_pools(args.shared, args.data, set(args.holdout.split(",")),
                         args.fit_per_camera, args.per_real, args.per_sim)
    scored = score_photos(photos, CONDITIONS, analyse, done)
    forged = score_photos(forged_images(args.data), CONDITIONS[:1], analyse, done, forged=True)
    for i, row in enumerate(itertools.chain(scored, forged)):
        append_score(scores_file, row)
        if i % 20 == 0:
            print(f"{i}: {row.pool} {row.camera} {row.condition} {row.score}", flush=True)
    rows = [r for r in read_scores(scores_file) if not r.forged]
    val = [r.score for r in rows if r.pool == "val" and r.condition == CONDITIONS[0].name
           and r.score is not None]
    threshold = choose_threshold(val, args.target, args.floor)
    table = {}
    for pool in ("val", "test"):
        for cond in CONDITIONS:
            for kind in ("real", "simulated"):
                sel = [r.score for r in rows if r.pool == pool and r.condition == cond.name
                       and r.camera.startswith(("simcam", "unseen")) == (kind == "simulated")]
                point = operating_point(sel, threshold, f"{pool} {kind}, {cond.name}")
                table[f"{pool} | {kind} | {cond.name}"] = point.to_dict()
                print(f"{pool:4} {kind:9} {cond.name:22} flagged {point.false_alarms:3d} / "
                      f"{point.pristine_images:3d} = {point.rate:.3f} (upper {point.rate_upper:.3f})"
                      f"; not judgeable {sum(1 for s in sel if s is None)}")
    test_real = [r.score for r in rows if r.pool == "test" and r.condition == CONDITIONS[0].name
                 and not r.camera.startswith("simcam")]
    point = operating_point(test_real, threshold,
                            "untouched photos of held-out real camera models, as taken")
    (args.out / f"operating-point-{mode}.json").write_text(
        json.dumps({"threshold": threshold, "mode": mode, "stated": point.to_dict(),
                    "table": table}, indent=2))
    print(f"threshold {threshold:.6f}; stated: {point.phrase()}")
    if args.write:
        write_operating_point(args.model, mode, point.to_dict())


def write_operating_point(model: str, mode: str, point: dict) -> None:
    """Store ``point`` under ``decision.<mode>`` in the model's JSON sidecar."""
    from noisead.infer import WEIGHTS_DIR

    path = Path(model) if Path(model).suffix == ".safetensors" else (
        WEIGHTS_DIR / f"{model}.safetensors")
    load_tensors_with_sidecar(path)  # refuse to write beside a file that does not load
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    meta.setdefault("decision", {})[mode] = point
    side.write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
