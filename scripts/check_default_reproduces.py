"""Check that ``make fit`` rebuilds the shipped default exactly from its own extractor.

The extractor's training (``make train``) takes an hour on two cores and is not
bit-reproducible across machines; everything after it is. This takes the extractor out of
``src/noisead/weights/default.safetensors``, runs the recipe of ``make fit`` on it
(``noisead fit-detector --cameras ... --run ...``: same pristine images, evidence sources,
calibration; ``--val`` left out, it only adds figures to the sidecar) into a temporary
folder, and compares every tensor and every detector setting with the shipped file
(settings as this code reads them, whatever sidecar layout each file has). Exit status 1
and a list of what differs if anything does (``make check-default``).

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

from noisead.anomaly.config import DetectorConfig
from noisead.anomaly.detector import Detector
from noisead.anomaly.persistence import migrate_sidecar
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
        command = [sys.executable, "-m", "noisead.cli", "fit-detector",
                   "--cameras", str(args.shared / "cameras"), str(args.data / "simcams"),
                   "--run", str(run), "--holdout", ",".join(info["pristine"]["holdout"]),
                   "--per-camera", str(info["pristine"]["per_camera"]),
                   "--max-side", str(info["pristine"]["max_side"]),
                   "--mode", cfg.mode, "--name", info.get("name", "default"), "-o", str(out)]
        if cfg.evidence:
            command += ["--evidence", ",".join(cfg.evidence)]
        subprocess.run(command, check=True)
        a, b = load_file(str(args.model)), load_file(str(out))
        differ = sorted(k for k in set(a) | set(b)
                        if k not in a or k not in b or a[k].shape != b[k].shape
                        or not np.array_equal(a[k], b[k]))
        settings_a, settings_b = _settings(args.model), _settings(out)
        differ += [f"setting {k}: {settings_a.get(k)!r} != {settings_b.get(k)!r}"
                   for k in sorted(set(settings_a) | set(settings_b))
                   if settings_a.get(k) != settings_b.get(k)]
    if differ:
        print(f"{args.model} is NOT reproduced by make fit's recipe; differing:", *differ,
              sep="\n  ")
        raise SystemExit(1)
    print(f"{args.model}: reproduced exactly ({len(a)} tensors, every detector setting)")


def _settings(path: Path) -> dict:
    """The detector settings of the file at ``path``, in the current layout."""
    meta = migrate_sidecar(json.loads(sidecar_path(path).read_text()), path)
    return DetectorConfig.from_dict(meta["detector"]).to_dict()


if __name__ == "__main__":
    main()
