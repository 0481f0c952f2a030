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
import shutil
import sys
from pathlib import Path

from noisead.data.cameras import list_camera_images
from noisead.evaluate.false_alarms import (
    CONDITIONS,
    DecisionFit,
    append_score,
    apply_decision,
    fit_decision,
    read_scores,
    score_photos,
)
from noisead.evaluate.rows import detector_fingerprint
from noisead.infer import WEIGHTS_DIR, analyze, load_detector
from noisead.io import LoadedImage
from noisead.models.registry import current_commit


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
    ap.add_argument("--record", type=Path, default=None,
                    help="copy the scores used here (for make check-default and audits)")
    ap.add_argument("--doc", type=Path, default=None,
                    help="replace the section '## The decision' of this Markdown file")
    args = ap.parse_args()

    detector = load_detector(args.model)
    mode = args.mode or detector.config.mode
    # keyed by what decides the image statistic (not the calibrations that --write
    # replaces), so a refitted detector never reuses another detector's statistics
    key = detector_fingerprint(detector, calibrations=False)
    scores_file = args.scores or args.out / f"scores-{mode}-{key}.jsonl"
    if args.scores is None:
        score_all(args, detector, mode, scores_file)
    fit = fit_decision(read_scores(scores_file), args.target)
    report = {"mode": mode, "model": args.model, "statistic_key": key, **fit.to_dict()}
    print(json.dumps(report, indent=2))
    print(f"stated: {fit.stated.phrase()}")
    if args.record and args.record.resolve() != scores_file.resolve():
        args.record.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(scores_file, args.record)
    if args.doc:
        replace_section(args.doc, SECTION, decision_markdown(fit, mode, sys.argv[1:]))
    if args.write:
        apply_decision(detector, mode, fit)
        detector.info["decision"][mode]["measurement"].update(
            statistic_key=key, commit=current_commit(),
            command="python scripts/measure_false_alarms.py " + " ".join(sys.argv[1:]))
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


SECTION = "## The decision: false alarms and detection"


def decision_markdown(fit: DecisionFit, mode: str, argv: list[str]) -> str:
    """The section of docs/BENCHMARKS.md that publishes the operating point."""
    s = fit.stated
    lines = [SECTION, "",
             f"Command: `python scripts/measure_false_alarms.py {' '.join(argv)}` "
             "(`make decision`).", "",
             f"The verdict flags an image when its calibrated image score reaches "
             f"**{s.threshold:.4f}** ({mode} mode). The image score is calibrated on the "
             "statistics of the validation photos below, and the threshold is chosen there "
             f"for a false-alarm rate of {fit.target_rate:.0%}. The test photos are of camera "
             "models that neither the extractor nor the detector ever saw. Counts are "
             "images flagged / images; the bound is the one-sided 95% Clopper-Pearson upper "
             "bound.", "",
             "| photos | condition | flagged | rate | 95% upper bound |", "|---|---|---|---|---|",
             f"| validation, untouched (where the threshold is chosen) | all three | "
             f"{s.false_alarms} / {s.pristine_images} | {s.rate:.3f} | {s.rate_upper:.3f} |"]
    for cond, p in fit.test.items():
        lines.append(f"| held-out cameras, untouched | {cond} | {p.false_alarms} / "
                     f"{p.pristine_images} | {p.rate:.3f} | {p.rate_upper:.3f} |")
    for pool, (flagged, n) in fit.detection.items():
        name = "validation (unseen simulated cameras)" if pool == "val" else "test (held-out)"
        rate = f"{flagged / n:.3f}" if n else "n/a"
        lines.append(f"| {name} benchmarks, **forged** (detection rate) | as provided | "
                     f"{flagged} / {n} | {rate} | |")
    lines += ["", f"What the verdict states: \"{s.phrase()}\".", ""]
    return "\n".join(lines)


def replace_section(doc: Path, heading: str, body: str) -> None:
    """Replace the ``## `` section that starts with ``heading`` (or append it)."""
    text = doc.read_text()
    start = text.find(heading)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + body
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + body + ("\n" + text[end + 1:] if end >= 0 else "")
    doc.write_text(text)


if __name__ == "__main__":
    main()
