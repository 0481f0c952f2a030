"""Scene splices across simulated camera pipelines: the done-check of the core pipeline.

Two photos of ``../shared/scenes/`` rendered by two *held-out* simulated camera models
(different colour filter, demosaicing, noise, tone curve, JPEG or PNG; see each model's
``model_card.json`` under ``data/simcams``) are spliced: an object-shaped region of the
donor is pasted, at its native scale and on the JPEG grid, into the target. The shipped
model never saw either camera model in training. For every ordered pair of held-out models
the script reports the pixel AUC of the heatmap against the exact mask and the image score,
in blind and reference mode, and the same for the unforged target (its image score, for
comparison).

    .venv/bin/python benchmarks/scene_splices.py --simcams data/simcams \\
        --cameras simcam20,simcam21,simcam22,simcam23 --out docs/BENCHMARKS.md

The markdown goes between ``<!-- scene-splices:begin -->`` and ``<!-- scene-splices:end -->``
of ``--out``. Needs ``make data`` first (it renders ``data/simcams``).
"""

from __future__ import annotations

import argparse
import itertools
import shlex
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from noisead.data.forge import object_like_mask, splice
from noisead.evaluate.report import replace_doc_section
from noisead.infer import analyze, load_detector
from noisead.io import IMAGE_EXTENSIONS, load_image

MODES = ("blind", "reference")


def scene_images(simcams: Path, camera: str) -> list[Path]:
    """The rendered scenes of one simulated model, in name order."""
    files = sorted(p for p in (simcams / camera).iterdir()
                   if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise FileNotFoundError(f"no rendered scenes in {simcams / camera} (run `make data`)")
    return files


def make_splice(target_path: Path, donor_path: Path, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(target, forged, mask): the donor's region pasted into the target, both cropped alike."""
    target = load_image(target_path, apply_exif_orientation=False).pixels
    donor = load_image(donor_path, apply_exif_orientation=False).pixels
    h = min(target.shape[0], donor.shape[0]) // 8 * 8
    w = min(target.shape[1], donor.shape[1]) // 8 * 8
    target, donor = target[:h, :w], donor[:h, :w]
    mask = object_like_mask((h, w), rng, area_fraction=(0.08, 0.15))
    forged = splice(target, donor, mask, rng, grid=8)
    return target, forged, mask


def run(simcams: Path, cameras: list[str], detector: str | None, per_pair: int, seed: int
        ) -> list[dict]:
    det = load_detector(detector)
    rng = np.random.default_rng(seed)
    rows = []
    pairs = list(itertools.permutations(cameras, 2))
    for (target_cam, donor_cam), _ in tqdm(list(itertools.product(pairs, range(per_pair))),
                                           desc="scene splices"):
        targets, donors = scene_images(simcams, target_cam), scene_images(simcams, donor_cam)
        ti = int(rng.integers(len(targets)))
        di = int(rng.integers(len(donors) - 1))
        di += di >= ti  # another scene than the target's (when names line up)
        donor = donors[di % len(donors)]
        target, forged, mask = make_splice(targets[ti], donor, rng)
        row = {"target": f"{target_cam}/{targets[ti].name}", "donor": f"{donor_cam}/{donor.name}",
               "area": float(mask.mean())}
        for mode in MODES:
            a = analyze(forged, det, mode=mode)
            row[f"auc_{mode}"] = float(roc_auc_score(mask.ravel(), a.heatmap.ravel()))
            row[f"score_{mode}"] = a.score
            row[f"pristine_score_{mode}"] = analyze(target, det, mode=mode).score
        rows.append(row)
    return rows


def to_markdown(rows: list[dict], command: str, model: str) -> str:
    out = ["## Scene splices across held-out simulated cameras", "",
           f"Model: `{model}`. Command: `{command}`", "",
           "Pixel AUC of the heatmap against the pasted region, and the image score of the "
           "forged image and of its unforged target (blind / reference mode).", "",
           "| target | donor | area | AUC blind | AUC reference | score forged (b/r) "
           "| score pristine (b/r) |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['target']} | {r['donor']} | {r['area']:.2f} | {r['auc_blind']:.3f} "
                   f"| {r['auc_reference']:.3f} | {r['score_blind']:.2f} / "
                   f"{r['score_reference']:.2f} | {r['pristine_score_blind']:.2f} / "
                   f"{r['pristine_score_reference']:.2f} |")
    for mode in MODES:
        aucs = np.array([r[f"auc_{mode}"] for r in rows])
        out.append("")
        out.append(f"- {mode}: mean AUC {aucs.mean():.3f}, median {np.median(aucs):.3f}, "
                   f"{(aucs >= 0.8).sum()}/{len(aucs)} splices at AUC >= 0.8, "
                   f"{(aucs < 0.5).sum()} below 0.5.")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--simcams", type=Path, default=Path("data/simcams"))
    ap.add_argument("--cameras", default="simcam20,simcam21,simcam22,simcam23",
                    help="held-out simulated models (never in the extractor's training)")
    ap.add_argument("--model", default=None, help="shipped model name or detector path")
    ap.add_argument("--per-pair", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="markdown file to update")
    args = ap.parse_args(argv)
    rows = run(args.simcams, args.cameras.split(","), args.model, args.per_pair, args.seed)
    command = shlex.join(["python", *sys.argv])
    md = to_markdown(rows, command, args.model or "default")
    print(md)
    if args.out:
        replace_doc_section(args.out, "scene-splices", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
