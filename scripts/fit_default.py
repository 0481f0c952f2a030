"""Fit a detector the shipped default's way: ``noisead fit-detector`` with the camera roots
``SHARED/cameras`` and ``DATA/simcams`` (the recipe is :mod:`noisead.anomaly.recipe`).

Every other option is ``noisead fit-detector``'s (``--run``, ``--holdout``, ``--out``,
``--calibrate-only``, ``--learned-only``, ``--val``, ...); ``--noise-statistics`` and
``--jpeg-traces`` stand for ``--evidence noise-level,noise-spectrum`` and those two plus
``jpeg-lattice``, as in the commands docs/BENCHMARKS.md records. ``pristine_crops`` is
importable from here for the research scripts that use it.

    python scripts/fit_default.py --run runs/dncnn-small --holdout A,B --out MODEL.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from noisead.anomaly.recipe import pristine_crops
from noisead.cli import main as noisead_main

__all__ = ["pristine_crops"]

_NOISE = "noise-level,noise-spectrum"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    ap.add_argument("--shared", type=Path, default=Path("../shared"))
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--noise-statistics", action="store_true")
    ap.add_argument("--jpeg-traces", action="store_true")
    args, rest = ap.parse_known_args()
    if "--calibrate-only" not in rest and not {"--holdout", "--out"} <= set(rest):
        ap.error("--holdout and --out are required (except with --calibrate-only)")
    argv = ["fit-detector", *rest, "--cameras", str(args.shared / "cameras"),
            str(args.data / "simcams")]
    if args.jpeg_traces:
        argv += ["--evidence", f"{_NOISE},jpeg-lattice"]
    elif args.noise_statistics:
        argv += ["--evidence", _NOISE]
    return noisead_main(argv)


if __name__ == "__main__":
    sys.exit(main())
