"""Fit the anomaly model of a trained extractor and save it as a shipped detector.

Pristine images: up to ``--per-camera`` images of every *training* camera model (real and
simulated; held-out models are never used), top-left crops of at most ``--max-side``
pixels (the 8x8 grid stays aligned). A quarter of them calibrate the scores.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from noisead.anomaly.detector import MODES, Detector, DetectorConfig
from noisead.anomaly.fit import add_calibrations, fit_detector
from noisead.data.cameras import list_camera_images
from noisead.io import load_image
from noisead.models.dncnn import DnCNN, load_pretrained_denoiser
from noisead.models.registry import current_commit, load_extractor
from noisead.train.extractor import read_training_log


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
    ap.add_argument("--holdout", help="comma-separated held-out camera models")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--per-camera", type=int, default=3)
    ap.add_argument("--max-side", type=int, default=512)
    ap.add_argument("--mode", default="blind")
    ap.add_argument("--smoothing", type=float, default=8.0)
    ap.add_argument("--n-features", type=int, default=None)
    ap.add_argument("--taps", default=None,
                    help="comma-separated extractor layers to embed (default: the model's)")
    ap.add_argument("--name", default=None)
    ap.add_argument("--val", type=Path, default=None,
                    help="validation benchmarks (e.g. data/val): their figures go in the sidecar")
    ap.add_argument("--calibrate-only", type=Path, default=None, metavar="DETECTOR",
                    help="add the calibrations of the modes a fitted detector lacks, on the "
                         "pristine images its sidecar names; Gaussians untouched")
    ap.add_argument("--noise-statistics", action="store_true",
                    help="fuse the blind noise level/spectrum map into the raw scores "
                         "(with --calibrate-only: switch it on and recalibrate every mode)")
    ap.add_argument("--jpeg-traces", action="store_true",
                    help="also fuse the JPEG lattice evidence (implies --noise-statistics; "
                         "with --calibrate-only: switch it on and recalibrate every mode)")
    ap.add_argument("--learned-only", action="store_true",
                    help="with --calibrate-only: switch every fusion off and recalibrate, so "
                         "the map is the learned Gaussians' alone (for the benchmark tables; "
                         "save it elsewhere with --out)")
    args = ap.parse_args()
    if args.learned_only and (args.noise_statistics or args.jpeg_traces):
        ap.error("--learned-only contradicts --noise-statistics/--jpeg-traces")
    args.noise_statistics = args.noise_statistics or args.jpeg_traces
    if args.calibrate_only:
        return calibrate_only(args.calibrate_only, [args.shared / "cameras",
                                                    args.data / "simcams"],
                              args.noise_statistics, args.val, args.jpeg_traces,
                              learned_only=args.learned_only, out=args.out)
    if not args.holdout or not args.out:
        ap.error("--holdout and --out are required (except with --calibrate-only)")
    if args.denoiser:
        extractor = DnCNN()
        load_pretrained_denoiser(extractor, args.denoiser)
        meta = {"training": {"note": "pretrained AWGN denoiser, no DBL training",
                             "source": str(args.denoiser)}}
    else:
        # chosen on validation: on unseen cameras' localization (select_snapshot.py) if
        # that was run, else on the training loop's pair AUC, else the last step
        choices = [args.run / f"extractor-{n}.safetensors" for n in ("selected", "best")]
        extractor, meta = load_extractor(next(
            (p for p in choices if p.is_file()), args.run / "extractor.safetensors"))
    images, paths = pristine_crops([args.shared / "cameras", args.data / "simcams"],
                                   set(args.holdout.split(",")), args.per_camera,
                                   args.max_side)
    config = DetectorConfig(mode=args.mode, smoothing_sigma=args.smoothing,
                            n_features=args.n_features, noise_statistics=args.noise_statistics,
                            jpeg_traces=args.jpeg_traces,
                            taps=tuple(args.taps.split(",")) if args.taps else None)
    training = dict(meta.get("training") or {})
    log = args.run / "log.jsonl" if args.run else None
    if log is not None and log.is_file():  # the validation curve the selection was made on
        rows = read_training_log(log)
        training["validation_by_step"] = {r["step"]: round(r["val_auc"], 4)
                                          for r in rows if "val_auc" in r}
        training["steps_trained"] = max((r["step"] for r in rows), default=0)
    detector = fit_detector(extractor, images, config, info={
        "name": args.name or args.out.stem,
        "fit_command": shlex.join(["python", *sys.argv]),
        "extractor_training": training,
        "extractor_metrics": meta.get("metrics"),
        "pristine": {"n_images": len(paths), "per_camera": args.per_camera,
                     "max_side": args.max_side, "holdout": sorted(args.holdout.split(","))}})
    if args.val is not None:
        detector.info["metrics"] = validation_metrics(detector, args.val)
    detector.save(args.out)
    print(f"saved {args.out}: {detector.info['fit']}, metrics {detector.info.get('metrics')}")


def calibrate_only(path: Path, roots: list[Path], noise_statistics: bool = False,
                   val_root: Path | None = None, jpeg_traces: bool = False, *,
                   learned_only: bool = False, out: Path | None = None) -> None:
    """Give a detector fitted before per-mode calibration its other mode's calibration.

    With ``noise_statistics``, switch the fusion with the blind noise statistics on and
    recalibrate every mode (the Gaussians stay as they are); ``jpeg_traces`` likewise for
    the JPEG lattice evidence; ``learned_only`` switches both off instead (the learned
    Gaussians' own map, which the benchmark tables report beside the fused default); with
    ``val_root``, recompute the validation figures of the sidecar. The result goes to
    ``out`` if given, else back to ``path``.
    """
    detector = Detector.load(path)
    if learned_only:
        detector.config.noise_statistics = False
        detector.config.jpeg_traces = False
        detector.config.validate()
    if noise_statistics:
        detector.config.noise_statistics = True
        detector.config.jpeg_traces = jpeg_traces
        # the current defaults of the fusion and image-score settings, not the file's
        fresh = DetectorConfig()
        keys = ("jpeg_window", "jpeg_host_discount", "jpeg_image_discount",
                "jpeg_image_weight") if jpeg_traces else ()
        for key in (*keys, "image_quantile", "image_smoothing"):
            setattr(detector.config, key, getattr(fresh, key))
        detector.config.validate()
    pristine = detector.info["pristine"]
    images, _ = pristine_crops(roots, set(pristine["holdout"]), pristine["per_camera"],
                               pristine["max_side"])
    if len(images) != pristine["n_images"]:
        raise SystemExit(f"{path} was fitted on {pristine['n_images']} images, found "
                         f"{len(images)}: not the same pristine set")
    recalibrate = noise_statistics or learned_only
    add_calibrations(detector, images, only_missing=not recalibrate)
    key = ("recalibrated_learned_only" if learned_only else
           "recalibrated_with_jpeg_traces" if jpeg_traces else
           "recalibrated_with_noise_statistics" if noise_statistics else "calibrations_added")
    detector.info[key] = {"modes": sorted(MODES), "commit": current_commit(),
                          "command": shlex.join(["python", *sys.argv])}
    if val_root is not None:
        detector.info["metrics"] = validation_metrics(detector, val_root)
    if learned_only:
        detector.info["name"] = f"{detector.info.get('name', path.stem)}-learned-only"
    detector.save(out or path)
    print(f"{out or path}: calibrated in {', '.join(sorted(MODES))} mode")


def validation_metrics(detector, val_root: Path) -> dict:
    """Pixel AUC / best MCC / detection AUC of both modes on every validation set.

    Recorded in the sidecar so that a model file says how good it was on data it was *not*
    fitted on (training cameras' validation benchmarks; the test sets stay in the docs).
    """
    from noisead.evaluate.run import clean_summary

    metrics = {"split": f"validation ({val_root})", "sets": {}}
    for root in sorted(p for p in val_root.iterdir() if (p / "manifest.json").is_file()):
        rows = clean_summary(root, detector, ("noisead-blind", "noisead-reference"))
        metrics["sets"][root.name] = {
            method: {k: round(float(row[k]), 4)
                     for k in ("auc", "mcc_best", "detection_auc") if k in row}
            for method, row in rows.items()}
    return metrics


if __name__ == "__main__":
    main()
