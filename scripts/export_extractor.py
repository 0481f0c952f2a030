"""Write the extractor of a detector file as an extractor file (safetensors + sidecar).

The training campaign continues the shipped default's extractor (``init_from`` takes an
extractor file, not a detector):

    python scripts/export_extractor.py src/noisead/weights/default.safetensors \
        runs/shipped-extractor.safetensors
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from noisead.anomaly.detector import Detector
from noisead.models.registry import save_extractor, sidecar_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("detector", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    meta = json.loads(sidecar_path(args.detector).read_text())
    if meta.get("kind") != "detector":
        raise SystemExit(f"{args.detector}: not a detector file")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    path = save_extractor(Detector.load(args.detector).extractor, args.out,
                          training={**(meta.get("extractor_training") or {}),
                                    "exported_from": str(args.detector)},
                          metrics=meta.get("extractor_metrics") or {})
    print(f"{path}")


if __name__ == "__main__":
    main()
