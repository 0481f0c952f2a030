"""Speed and memory of ``analyze()`` on synthetic 1-24 MP photos, by stage (``make bench``).

For each size and mode the analysis runs in a fresh subprocess (``speed_child``), so that
the peak resident memory (``VmHWM``) is that of one analysis, as an analyst's batch run
sees it: decode of a JPEG file, extractor, embeddings, Gaussians, noise statistics,
stitching, smoothing, calibration, and the default result files written by
``noisead.batch.outputs.write_outputs``; every stage is reported in seconds per megapixel.

The extractor runs on the backend ``analyze()`` picks (``--backends auto``: ONNX Runtime
where it runs the extractor as PyTorch does), and ``speed_checks.backend_agreement``
checks that its heatmaps match PyTorch's within explicit tolerances: the run exits with
status 1 when they do not. ``--device cuda`` measures on a GPU (with its name in the
report). bfloat16 timings are only produced where the CPU does it natively; its numerics
are checked everywhere.

    .venv/bin/python benchmarks/speed.py --sizes 1,4,12,24 --out docs/BENCHMARKS.md

The markdown section replaces the text between ``<!-- speed:begin -->`` and
``<!-- speed:end -->`` in ``--out`` (appended with the markers if absent); the rest of
the file is not touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from speed_checks import backend_agreement, bf16_check
from speed_child import CHILD_TIMEOUT_S, child, run_child
from speed_inputs import build_detector, synthetic_image
from speed_report import machine, markdown

from noisead.evaluate.report import replace_doc_section

#: The size whose result images are also encoded with each PNG encoder (the issue's size).
PNG_SIZE = 12.0


def _options(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,4,12,24", help="megapixels, comma-separated")
    ap.add_argument("--modes", default="reference,blind")
    ap.add_argument("--backends", default="auto",
                    help="extractor backends to time, comma-separated (auto, torch, onnx)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    ap.add_argument("--precisions", default=None,
                    help="default: fp32, plus bf16 where the CPU does it natively")
    ap.add_argument("--quick", action="store_true",
                    help="1 MP only, blind only, no bf16 check (a smoke test)")
    ap.add_argument("--no-bf16-check", action="store_true",
                    help="skip the bf16-vs-fp32 heatmap check (slow where emulated)")
    ap.add_argument("--no-png", action="store_true",
                    help="skip the comparison of PNG encoders at 12 MP")
    ap.add_argument("--detector", default=None, help="a detector file (default: see build)")
    ap.add_argument("--timeout", type=int, default=CHILD_TIMEOUT_S,
                    help="seconds per measurement before it is cut")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads in the measurements (default: PyTorch's choice)")
    ap.add_argument("--note", default="", help="free text for the report (e.g. other load)")
    ap.add_argument("--out", type=Path, default=None, help="markdown file to update")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def _measure(args: argparse.Namespace, det_path: str, tmpdir: Path) -> list[dict[str, Any]]:
    """One subprocess per size, mode, precision and backend; the rows of the table."""
    from PIL import Image

    from noisead.runtime import bf16_native

    sizes = [float(s) for s in ("1" if args.quick else args.sizes).split(",") if s]
    modes = ["blind"] if args.quick else [m for m in args.modes.split(",") if m]
    precisions = (args.precisions.split(",") if args.precisions
                  else ["fp32"] + (["bf16"] if bf16_native() else []))
    backends = [b for b in args.backends.split(",") if b]
    rows: list[dict[str, Any]] = []
    for size in sizes:
        image, mask = synthetic_image(size, seed=int(size * 10))
        img_path, mask_path = tmpdir / f"{size}mp.jpg", tmpdir / f"{size}mp.mask.npy"
        Image.fromarray((image * 255 + 0.5).astype(np.uint8)).save(img_path, quality=95)
        np.save(mask_path, mask)
        del image, mask
        for mode in modes:
            for precision in precisions:
                for backend in backends:
                    spec = {"detector": det_path, "image": str(img_path),
                            "mask": str(mask_path), "mode": mode, "precision": precision,
                            "backend": backend, "device": args.device,
                            "png": (not args.no_png and size == PNG_SIZE
                                    and mode == modes[0] and backend == backends[0])}
                    r = {"size": f"{size:g}", "mode": mode, "precision": precision,
                         "backend": backend,
                         **run_child(__file__, spec, args.timeout, args.threads)}
                    rows.append(r)
                    print(json.dumps(r), file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = _options(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    if args.threads:
        os.environ["NOISEAD_THREADS"] = str(args.threads)
    command = shlex.join(["python", "benchmarks/speed.py",
                          *(argv if argv is not None else sys.argv[1:])])
    info: dict[str, Any] = {"machine": machine(), "load_before": os.getloadavg()[0],
                            "note": args.note}
    info["threads"] = args.threads or info["machine"]["threads"]
    with tempfile.TemporaryDirectory(prefix="noisead-bench-") as tmp:
        tmpdir = Path(tmp)
        if args.detector:
            det_path, info["detector"] = args.detector, f"`{args.detector}`"
        else:
            det_path = str(tmpdir / "detector.safetensors")
            info["detector"] = build_detector(Path(det_path))
        print(f"detector: {info['detector']}", file=sys.stderr)
        rows = _measure(args, det_path, tmpdir)
        agreement = [] if args.quick else backend_agreement(det_path)
        bf16 = [] if (args.quick or args.no_bf16_check) else bf16_check(det_path)
    info["load_after"] = os.getloadavg()[0]
    section = markdown(info, rows, agreement, bf16, command)
    print(section)
    if args.out:
        replace_doc_section(args.out, "speed", section)
    return 0 if all(r["ok"] for r in agreement) else 1


if __name__ == "__main__":
    raise SystemExit(main())
