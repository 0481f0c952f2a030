"""Command line: thin wrappers that parse arguments and call the package's functions.

    noisead analyze IMAGE_OR_DIR_OR_GLOB_OR_-... -o OUT   (resumable; see noisead.batch)
    noisead train-extractor CAMERA_ROOT... -o RUN_DIR
    noisead fit-detector --extractor RUN_DIR/extractor.safetensors PRISTINE... -o MODEL.safetensors
                         (or --cameras ROOT... --run RUN_DIR; see noisead.cli_fit)
    noisead evaluate DATASET -o OUT [--jpeg 100,95,90] [--resize 0.8,0.9,1.1,1.2]
    noisead data simulate-cameras | make-benchmark | sort-by-exif
    noisead export --format onnx -o MODEL.onnx [--model NAME]
    noisead serve
    noisead models
    noisead schema result | failure | summary-row

The parser is jsonargparse's: argparse's syntax, plus a ``--config FILE`` (YAML or JSON)
for every subcommand and for the whole command line (``noisead --config FILE analyze``),
and ``--print_config`` to write one. The global options (``--quiet``) are accepted before
and after the subcommand (:mod:`noisead.cli_parser`). ``noisead analyze``'s inputs and
messages: :mod:`noisead.cli_inputs`, :mod:`noisead.cli_report`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jsonargparse import Namespace

import noisead
from noisead.cli_fit import add_fit_detector_parser
from noisead.cli_inputs import expand_inputs
from noisead.cli_parser import (
    CommandParser,
    Subcommands,
    add_global_options,
    chosen_command,
    comma_separated,
    output_kinds,
)

__all__ = ["build_parser", "chosen_command", "expand_inputs", "main"]


def cmd_analyze(args: Namespace) -> int:
    import functools

    from noisead.batch import run_batch
    from noisead.batch.engines import make_engine
    from noisead.batch.jobs import DetectorAnalyzer
    from noisead.batch.outputs import OutputOptions, parse_output_kinds
    from noisead.batch.records import model_provenance
    from noisead.cli_inputs import analysis_inputs
    from noisead.cli_report import EXIT_USAGE, AnalyzeReporter
    from noisead.infer import analyze, with_statistics_parts
    from noisead.verdict import operating_point_for

    if args.device:  # checked before any work; analyze() and worker processes read it
        import os

        from noisead.runtime import analysis_device

        os.environ["NOISEAD_DEVICE"] = str(analysis_device(args.device))
    detector, weights = _load_model(args.model)
    detector = with_statistics_parts(detector, args.parts)  # a usage error, found here
    mode = args.mode or detector.config.mode
    threshold = detector.config.threshold if args.threshold is None else args.threshold
    max_pixels = None if args.max_pixels == 0 else args.max_pixels
    out = Path(args.output)
    inputs = analysis_inputs(args.inputs, out, sys.stdin.buffer)
    name = str(detector.info.get("name", "custom"))
    outputs = OutputOptions(parse_output_kinds(args.outputs),
                            model_provenance(weights, name, mode, threshold))
    reporter = AnalyzeReporter(out, json_lines=args.json)
    model_file = args.model and Path(args.model).is_file()  # workers load it by path
    engine = make_engine(args.engine, args.workers, args.address,
                         DetectorAnalyzer(str(Path(args.model).resolve()) if model_file
                                          else args.model, args.mode, args.threshold,
                                          args.parts),
                         functools.partial(analyze, detector=detector, mode=args.mode,
                                           threshold=args.threshold, parts=args.parts))
    report = run_batch(inputs, out, engine=engine,
                       model=name, redo=args.redo, max_pixels=max_pixels,
                       operating_point=operating_point_for(detector.info, mode),
                       progress=not args.quiet, on_item=reporter, outputs=outputs)
    if not any(reporter.counts.values()):
        print("no images found in the given inputs", file=sys.stderr)
        return EXIT_USAGE
    print(reporter.summary(report.duplicates), file=reporter.people)
    return reporter.exit_code(args.fail_on_detection)


def _load_model(model: str | None) -> tuple[Any, Path]:
    """The detector ``load_detector(model)`` gives, and the file it was read from (whose
    SHA-256 the results record): the file is resolved first and then loaded itself."""
    from noisead.infer import DEFAULT_MODEL, WEIGHTS_DIR, load_detector

    name = model or DEFAULT_MODEL
    weights = Path(name)
    if not (weights.suffix == ".safetensors" or weights.exists()):
        weights = WEIGHTS_DIR / f"{name}.safetensors"
    return load_detector(weights if weights.is_file() else model), weights


def cmd_train(args: Namespace) -> int:
    from noisead.extras import require_extra

    require_extra("train")
    from noisead.train.extractor import TrainConfig, train_extractor

    config = TrainConfig()
    if args.config:
        config = TrainConfig.from_dict(json.loads(Path(args.config).read_text()))
    for name in ("model", "init_from", "steps", "lr", "seed", "precision",
                 "max_images_per_camera", "time_limit_s", "device", "loader_workers",
                 "distill_steps"):
        value = getattr(args, name)
        if value is not None:
            setattr(config, name, value)
    if args.patch_size:
        config.batch.patch_size = args.patch_size
    if args.holdout:
        config.holdout_cameras = tuple(args.holdout.split(","))
    if args.augment:
        config.augment.p_jpeg, config.augment.p_resize = 0.3, 0.2
    if args.ddp or args.nproc is not None:  # several processes: noisead.train.launch
        from noisead.train.launch import train_distributed

        result = train_distributed(args.roots, args.output, config, args.nproc,
                                   progress=not args.quiet)
        if result is None:  # a process of a torchrun run, not rank 0
            return 0
    else:
        result = train_extractor(args.roots, args.output, config, progress=not args.quiet)
    last = result.history[-1] if result.history else {}
    print(f"extractor saved to {result.extractor_path} (last step: {last})")
    return 0


def cmd_simulate(args: Namespace) -> int:
    from noisead.data.simulate import simulate_cameras

    specs = simulate_cameras(Path(args.scenes), Path(args.output), n_models=args.models,
                             seed=args.seed, downscale=args.downscale,
                             images_per_model=args.images_per_model, progress=not args.quiet,
                             workers=args.workers)
    print(f"{len(specs)} simulated camera models written to {args.output}")
    return 0


def cmd_benchmark(args: Namespace) -> int:
    from noisead.data.forge import make_benchmark

    out = make_benchmark(Path(args.cameras), Path(args.output), kinds=tuple(args.kinds.split(",")),
                         variants=tuple(args.variants.split(",")), n_per_kind=args.n,
                         seed=args.seed, progress=not args.quiet, crop_size=args.crop_size)
    print(f"benchmark written to {out}")
    return 0


def cmd_sort(args: Namespace) -> int:
    from noisead.data.cameras import sort_by_exif

    summary = sort_by_exif(args.source, args.destination, move=args.move)
    for model, files in sorted(summary.items()):
        print(f"{model}: {len(files)}")
    return 0


def cmd_evaluate(args: Namespace) -> int:
    from noisead.evaluate.run import EvalConfig, evaluate, format_markdown

    jpeg: tuple[int | None, ...] = (None, *comma_separated(args.jpeg or "", int))
    resize: tuple[float | None, ...] = (None, *comma_separated(args.resize or "", float))
    config = EvalConfig(methods=tuple(args.methods.split(",")), jpeg=jpeg, resize=resize,
                        band=args.band, fixed_threshold=args.fixed_threshold,
                        max_images=args.max_images)
    results = evaluate(Path(args.dataset), Path(args.output), args.model, config,
                       progress=not args.quiet, resume=not args.restart)
    print(format_markdown(results))
    print(f"tables, rows, ROC curves and example figures in {args.output}")
    return 0


def cmd_serve(args: Namespace) -> int:
    from noisead.serve.app import run

    run(host=args.host, port=args.port, model=args.model, max_pixels=args.max_pixels,
        max_pending=args.max_pending, time_limit=args.time_limit, batch_dir=args.batch)
    return 0


def cmd_models(args: Namespace) -> int:
    from noisead.infer import WEIGHTS_DIR, list_models

    for name in list_models():
        meta = json.loads((WEIGHTS_DIR / f"{name}.json").read_text())
        arch = meta.get("extractor", {}).get("architecture", "?")
        print(f"{name}\t{arch}\tmode={meta.get('detector', {}).get('mode')}\t"
              f"commit={meta.get('commit')}")
    return 0


def cmd_export(args: Namespace) -> int:
    from noisead.export import export_onnx
    from noisead.infer import load_detector

    output = Path(args.output)
    if output.suffix.lower() != ".onnx":
        raise ValueError(f"the ONNX file's name must end in .onnx, not {output.name!r} "
                         "(its sidecar is written beside it as <name>.json)")
    detector = load_detector(args.model)
    path = export_onnx(detector.extractor, detector.taps, output)
    print(f"extractor of model {detector.info.get('name', 'custom')!r} written to {path} "
          f"(its taps and output names in {path.with_suffix('.json')})")
    return 0


def cmd_schema(args: Namespace) -> int:
    from noisead.schemas import schema_path

    path = schema_path(args.name)
    print(path if args.path else path.read_text(encoding="utf-8").rstrip())
    return 0


def build_parser() -> CommandParser:
    parser = CommandParser(prog="noisead", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"noisead {noisead.__version__}")
    add_global_options(parser)
    sub = Subcommands(parser, "command")

    a = sub.add_parser("analyze", help="localize tampering in images or folders of images")
    a.add_argument("inputs", nargs="+",
                   help="image files, folders, quoted globs ('photos/**/*.jpg'), or - to "
                        "read one image from standard input")
    a.add_argument("-o", "--output", required=True, help="output folder")
    a.add_argument("--model", default=None, help="shipped model name or .safetensors path")
    a.add_argument("--mode", choices=["blind", "reference"], default=None)
    a.add_argument("--parts", choices=["one", "auto"], default=None,
                   help="auto: split the image's noise in two parts and measure it against "
                        "the larger (a splice of up to half the image); the heatmap only, "
                        "the score and verdict stay one-part")
    a.add_argument("--threshold", type=float, default=None,
                   help="on the calibrated heatmap (share of pristine pixels scoring lower)")
    a.add_argument("--max-pixels", type=int, default=200_000_000,
                   help="refuse larger images (decompression bombs); 0 = no limit")
    a.add_argument("--redo", action="store_true", help="analyse images already done again")
    a.add_argument("--outputs", type=output_kinds,
                   default="json,heatmap,mask,overlay,fingerprint",
                   help="files per image, comma-separated: heatmap, mask, overlay, fingerprint "
                        "(PNGs to look at), heatmap16 (16-bit grey PNG of the calibrated map), "
                        "npz (the float maps and scores), json (always), or all")
    a.add_argument("--json", action="store_true",
                   help="print each image's result as one JSON line on standard output "
                        "(messages go to standard error)")
    a.add_argument("--fail-on-detection", action="store_true",
                   help="exit with 3 when an image is flagged (1 still means a failure)")
    a.add_argument("--workers", type=int, default=1,
                   help="worker processes on this machine, the cores shared among them")
    a.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="ray: spread the images over a Ray cluster's workers (pip install "
                        "'noisead[ray]'; the output folder on a file system all nodes share)")
    a.add_argument("--address", default=None,
                   help="the Ray cluster for --engine ray (default: RAY_ADDRESS, a cluster "
                        "started on this machine, or a new one here)")
    a.add_argument("--device", default=None,
                   help="where the analysis runs: cpu (default), cuda, cuda:N, or auto (a "
                        "GPU when there is one)")
    a.set_defaults(func=cmd_analyze)

    t = sub.add_parser("train-extractor", help="train a fingerprint extractor (DBL loss)",
                       config_file=False)
    t.add_argument("roots", nargs="+", help="ROOT/<camera-model>/<image> folders")
    t.add_argument("-o", "--output", required=True, help="run folder (resumes if present)")
    t.add_argument("--config", help="TrainConfig as JSON (for options from a file: "
                                    "noisead --config FILE train-extractor ...)")
    t.add_argument("--model", help="dncnn, dncnn-small, restormer-tiny, ...")
    t.add_argument("--init-from", dest="init_from", help="pretrained denoiser or extractor")
    t.add_argument("--steps", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--precision", choices=["auto", "bf16", "fp32"])
    t.add_argument("--patch-size", type=int)
    t.add_argument("--max-images-per-camera", dest="max_images_per_camera", type=int)
    t.add_argument("--time-limit", dest="time_limit_s", type=float, help="seconds")
    t.add_argument("--device", help="cpu (default), cuda, or auto (a GPU when there is one)")
    t.add_argument("--distill-steps", dest="distill_steps", type=int,
                   help="first distil the --init-from denoiser into the model for N steps")
    t.add_argument("--workers", dest="loader_workers", type=int,
                   help="processes that draw batches (use several on a GPU)")
    t.add_argument("--holdout", help="comma-separated camera models kept out of training")
    t.add_argument("--augment", action="store_true", help="JPEG/resize augmentation")
    t.add_argument("--ddp", action="store_true", help="DistributedDataParallel: join the "
                   "processes torchrun starts, or start --nproc processes here")
    t.add_argument("--nproc", type=int, help="train on N processes of this machine (--ddp)")
    t.set_defaults(func=cmd_train)

    add_fit_detector_parser(sub)

    d = sub.add_parser("data", help="training data and benchmarks", config_file=False)
    dsub = Subcommands(d, "data_command")
    s = dsub.add_parser("simulate-cameras", help="render scenes through simulated cameras")
    s.add_argument("scenes")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--models", type=int, default=20)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--downscale", type=int, default=2)
    s.add_argument("--images-per-model", type=int, default=None)
    s.add_argument("--workers", type=int, default=1)
    s.set_defaults(func=cmd_simulate)
    b = dsub.add_parser("make-benchmark", help="splicing / generative-like / copy-move sets")
    b.add_argument("cameras", help="ROOT/<camera-model>/<image>")
    b.add_argument("-o", "--output", required=True)
    b.add_argument("--kinds", default="splice,generative,copymove")
    b.add_argument("--variants", default="png,jpeg")
    b.add_argument("--n", type=int, default=20, help="images per kind and variant")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--crop-size", type=int, default=512)
    b.set_defaults(func=cmd_benchmark)
    e = dsub.add_parser("sort-by-exif", help="sort photos into <Make-Model>/ folders")
    e.add_argument("source")
    e.add_argument("destination")
    e.add_argument("--move", action="store_true")
    e.set_defaults(func=cmd_sort)

    v = sub.add_parser("evaluate", help="benchmark methods on a forgery dataset")
    v.add_argument("dataset", help="dataset folder (images/ + masks/, DSO-1, Columbia, ...)")
    v.add_argument("-o", "--output", required=True)
    v.add_argument("--model", default=None, help="detector for the noisead methods")
    v.add_argument("--methods", default="noisead-blind,noisead-reference,noi1,ela,"
                   "noise_residual_variance")
    v.add_argument("--jpeg", default="", help="recompression sweep, e.g. 100,95,90")
    v.add_argument("--resize", default="", help="resize sweep, e.g. 0.8,0.9,1.1,1.2")
    v.add_argument("--band", action="store_true", help="ignore a band around mask borders")
    v.add_argument("--fixed-threshold", type=float, default=0.5)
    v.add_argument("--max-images", type=int, default=None)
    v.add_argument("--restart", action="store_true", help="do not resume an earlier run")
    v.set_defaults(func=cmd_evaluate)

    w = sub.add_parser("serve", help="local web viewer")
    w.add_argument("--host", default="127.0.0.1")
    w.add_argument("--port", type=int, default=8765)
    w.add_argument("--model", default=None)
    w.add_argument("--max-pixels", type=int, default=50_000_000,
                   help="refuse images declaring more pixels, before decoding them")
    w.add_argument("--max-pending", type=int, default=4,
                   help="analyses running or waiting at once; more are answered 503")
    w.add_argument("--time-limit", type=float, default=120.0, metavar="SECONDS",
                   help="stop an analysis that runs longer (its worker process is killed)")
    w.add_argument("--batch", default=None, metavar="OUT_DIR",
                   help="also open the results of 'noisead analyze -o OUT_DIR' (read-only)")
    w.set_defaults(func=cmd_serve)

    x = sub.add_parser("export", help="write a model's extractor for another runtime (ONNX)")
    x.add_argument("--format", choices=["onnx"], default="onnx")
    x.add_argument("-o", "--output", required=True, help="file to write, e.g. model.onnx")
    x.add_argument("--model", default=None, help="shipped model name or .safetensors path")
    x.set_defaults(func=cmd_export)

    m = sub.add_parser("models", help="list the shipped models", config_file=False)
    m.set_defaults(func=cmd_models)

    j = sub.add_parser("schema", help="print the JSON schema of a result file",
                       config_file=False)
    j.add_argument("name", choices=["result", "failure", "summary-row"])
    j.add_argument("--path", action="store_true", help="print the schema file's path only")
    j.set_defaults(func=cmd_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from noisead.batch.escape import for_terminal
    from noisead.batch.lock import OutputFolderBusyError
    from noisead.io import OutputError

    parser = build_parser()
    command, args = chosen_command(parser, parser.parse_args(argv))
    try:
        return int(command(args) or 0)
    except (FileNotFoundError, ValueError, OutputError, OutputFolderBusyError) as e:
        # a person's mistake (a missing model, an output path that is a file, a folder in
        # use by another run): one line, not a traceback
        print(f"noisead: error: {for_terminal(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
