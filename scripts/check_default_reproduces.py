"""Check that ``make fit`` rebuilds the shipped default exactly from its own extractor.

The extractor's training (``make train``) takes an hour on two cores and is not
bit-reproducible across machines; everything after it is. This takes the extractor out of
``src/noisead/weights/default.safetensors``, runs the recipe of ``make fit`` on it (same
pristine images, fusions, calibration; ``--val`` left out, it only adds figures to the
sidecar) into a temporary folder, and compares every tensor and every detector setting with
the shipped file. Exit status 1 and a list of what differs if anything does
(``make check-default``; session 8: all 28 tensors identical).

    python scripts/check_default_reproduces.py [--shared ../shared] [--data data]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from noisead.anomaly.detector import Detector
from noisead.models.registry import save_extractor, sidecar_path

DEFAULT = Path(__file__).resolve().parents[1] / "src/noisead/weights/default.safetensors"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared"))
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--model", type=Path, default=DEFAULT)
    args = ap.parse_args()
    shipped = Detector.load(args.model)
    info = shipped.info
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        save_extractor(shipped.extractor, run / "extractor.safetensors",
                       training=info.get("extractor_training"),
                       metrics=info.get("extractor_metrics"))
        out = Path(tmp) / "refit.safetensors"
        cfg = shipped.config
        command = [sys.executable, str(Path(__file__).with_name("fit_default.py")),
                   "--shared", str(args.shared), "--data", str(args.data), "--run", str(run),
                   "--holdout", ",".join(info["pristine"]["holdout"]),
                   "--per-camera", str(info["pristine"]["per_camera"]),
                   "--max-side", str(info["pristine"]["max_side"]),
                   "--mode", cfg.mode, "--name", info.get("name", "default"), "--out", str(out)]
        if cfg.noise_statistics:
            command.append("--noise-statistics")
        if cfg.jpeg_traces:
            command.append("--jpeg-traces")
        subprocess.run(command, check=True)
        a, b = load_file(str(args.model)), load_file(str(out))
        differ = sorted(k for k in set(a) | set(b)
                        if k not in a or k not in b or a[k].shape != b[k].shape
                        or not np.array_equal(a[k], b[k]))
        settings_a = json.loads(sidecar_path(args.model).read_text())["detector"]
        settings_b = json.loads(sidecar_path(out).read_text())["detector"]
        differ += [f"setting {k}: {settings_a.get(k)!r} != {settings_b.get(k)!r}"
                   for k in sorted(set(settings_a) | set(settings_b))
                   if settings_a.get(k) != settings_b.get(k)]
    if differ:
        print(f"{args.model} is NOT reproduced by make fit's recipe; differing:", *differ,
              sep="\n  ")
        raise SystemExit(1)
    print(f"{args.model}: reproduced exactly ({len(a)} tensors, every detector setting)")


if __name__ == "__main__":
    main()
