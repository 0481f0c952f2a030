"""``noisead fit-detector``: fit a detector's Gaussians and calibrations, or recalibrate one.

Three ways in, one command:

    noisead fit-detector PRISTINE... --extractor EXTRACTOR -o MODEL.safetensors
    noisead fit-detector --cameras ROOT... --holdout A,B --run RUN_DIR -o MODEL.safetensors
    noisead fit-detector --calibrate-only MODEL.safetensors --cameras ROOT... [--learned-only]

The second is the shipped default's recipe (:mod:`noisead.anomaly.recipe`; ``make fit``):
pristine crops of every training camera, the chosen snapshot of a training run, and with
``--val`` the validation figures in the sidecar.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from noisead.anomaly.config import MODES, Mode

if TYPE_CHECKING:
    from noisead.anomaly.detector import Detector
    from noisead.cli_parser import Subcommands


def _evidence(text: str | Sequence[str]) -> tuple[str, ...]:
    """``--evidence``: comma-separated source keys, ``all`` or ``none`` (or, from a config
    file or a second pass of the parser, the keys already as a list)."""
    from noisead.anomaly.evidence import EVIDENCE_SOURCES

    if not isinstance(text, str):
        return tuple(text)
    if text == "all":
        return tuple(s.key for s in EVIDENCE_SOURCES)
    if text == "none":
        return ()
    return tuple(k.strip() for k in text.split(",") if k.strip())


def add_fit_detector_parser(sub: Subcommands) -> None:
    """The ``fit-detector`` subcommand and its options."""
    f = sub.add_parser("fit-detector", help="fit the per-position Gaussians on pristine images")
    f.add_argument("pristine", nargs="*", help="pristine images or folders")
    f.add_argument("-o", "--output", "--out", dest="output", type=Path,
                   help="detector .safetensors to write (--calibrate-only: default the input)")
    src = f.add_argument_group("extractor (one of)")
    src.add_argument("--extractor", type=Path, help="extractor .safetensors")
    src.add_argument("--run", type=Path,
                     help="training run folder: its selected, else best, else last snapshot")
    src.add_argument("--denoiser", type=Path, help="a plain pretrained AWGN denoiser")
    cams = f.add_argument_group("pristine crops by camera (instead of PRISTINE)")
    cams.add_argument("--cameras", nargs="+", type=Path, metavar="ROOT",
                      help="ROOT/<camera-model>/<image> folders")
    cams.add_argument("--holdout", default="", help="comma-separated camera models never used")
    cams.add_argument("--per-camera", type=int, default=3)
    cams.add_argument("--max-side", type=int, default=512, help="top-left crop size")
    f.add_argument("--calibrate-only", type=Path, metavar="DETECTOR",
                   help="recalibrate a fitted detector on the crops its sidecar names "
                        "(with --cameras); Gaussians untouched")
    f.add_argument("--learned-only", action="store_true",
                   help="with --calibrate-only: every evidence source off, recalibrated")
    f.add_argument("--patch-size", type=int, default=64)
    f.add_argument("--crop-size", type=int, default=128)
    f.add_argument("--crops-per-image", type=int, default=4)
    f.add_argument("--position-period", "--period", dest="position_period", type=int,
                   default=8, help="position classes repeat every N pixels (8: JPEG grid)")
    f.add_argument("--untied", action="store_true", help="one Gaussian per patch position")
    f.add_argument("--n-features", type=int, default=None)
    f.add_argument("--taps", default=None,
                   help="comma-separated layers of the extractor whose activations make the "
                        "embedding (default: the model's own, DnCNN's last three layers, "
                        "Restormer's fingerprint); e.g. refinement,fingerprint")
    f.add_argument("--smoothing", type=float, default=8.0)
    f.add_argument("--threshold", type=float, default=0.99)
    f.add_argument("--mode", choices=list(MODES), default=Mode.BLIND.value,
                   help="the model's default mode (both modes are calibrated). blind: each "
                        "image is its own reference, for cameras unlike the pristine images; "
                        "reference: scores against these pristine images' Gaussians (the "
                        "shipped default uses reference, fitted on many camera models)")
    f.add_argument("--evidence", type=_evidence, default=None,
                   help="evidence sources fused with the learned map: comma-separated keys "
                        "(noise-level, noise-spectrum, jpeg-lattice, ...: "
                        "noisead.anomaly.evidence), 'all' (as the shipped default) or 'none' "
                        "(the default). With --calibrate-only: switch to these sources and "
                        "recalibrate")
    f.add_argument("--learned-weight", type=float, default=None,
                   help="the learned map's weight in the fusion with the evidence sources "
                        "(default 1; 0 leaves it out). With --calibrate-only: set it and "
                        "recalibrate")
    f.add_argument("--max-images", type=int, default=None,
                   help="the first N of the PRISTINE images only")
    f.add_argument("--name", default=None, help="model name in the sidecar (default: file stem)")
    f.add_argument("--val", type=Path, default=None,
                   help="validation benchmarks (e.g. data/val): their figures go in the sidecar")
    f.set_defaults(func=cmd_fit)


def cmd_fit(args: argparse.Namespace) -> int:
    from noisead.anomaly import recipe
    from noisead.anomaly.detector import Detector

    command = recipe.command_line()
    if args.calibrate_only:
        if not args.cameras:
            raise ValueError("--calibrate-only needs --cameras: the roots of its pristine crops")
        detector = recipe.recalibrate(Detector.load(args.calibrate_only), args.cameras,
                                      evidence=args.evidence, learned_only=args.learned_only,
                                      learned_weight=args.learned_weight, command=command,
                                      progress=not args.quiet)
        output = args.output or args.calibrate_only
    else:
        if args.output is None:
            raise ValueError("fit-detector needs -o/--output")
        detector = _fit(args, command)
        output = args.output
    if args.val is not None:
        from noisead.evaluate.validation import validation_metrics

        detector.info["metrics"] = validation_metrics(detector, args.val)
    path = detector.save(output)
    print(f"detector saved to {path} ({detector.info.get('fit')}; "
          f"validation: {detector.info.get('metrics')})")
    return 0


def _fit(args: argparse.Namespace, command: str) -> Detector:
    """Fit a new detector as the arguments say."""
    from noisead.anomaly import recipe
    from noisead.anomaly.config import DetectorConfig
    from noisead.anomaly.fit import fit_detector

    sources = [s for s in (args.extractor, args.run, args.denoiser) if s is not None]
    if len(sources) != 1:
        raise ValueError("give exactly one of --extractor, --run and --denoiser")
    if bool(args.pristine) == bool(args.cameras):
        raise ValueError("give the pristine images either as PRISTINE paths or with --cameras")
    if args.run:
        extractor, record = recipe.extractor_from_run(args.run)
    elif args.denoiser:
        extractor, record = recipe.extractor_from_denoiser(args.denoiser)
    else:
        extractor, record = recipe.extractor_from_file(args.extractor)
    config = DetectorConfig(patch_size=args.patch_size, crop_size=args.crop_size,
                            crops_per_image=args.crops_per_image,
                            position_period=args.position_period, mode=args.mode,
                            smoothing_sigma=args.smoothing, n_features=args.n_features,
                            threshold=args.threshold, evidence=args.evidence or (),
                            learned_weight=(1.0 if args.learned_weight is None
                                            else args.learned_weight),
                            taps=tuple(args.taps.split(",")) if args.taps else None)
    if args.untied:
        config.position_period = config.patch_size
    if args.cameras:
        holdout = [h for h in args.holdout.split(",") if h]
        images, paths = recipe.pristine_crops(args.cameras, holdout, args.per_camera,
                                              args.max_side)
        pristine = recipe.pristine_record(len(paths), args.per_camera, args.max_side, holdout)
    else:
        from noisead.cli import expand_inputs

        images = expand_inputs(args.pristine)[:args.max_images or None]
        pristine = [str(p) for p in args.pristine]
    return fit_detector(extractor, images, config, progress=not args.quiet,
                        info={"name": args.name or args.output.stem, "fit_command": command,
                              **record, "pristine": pristine})
