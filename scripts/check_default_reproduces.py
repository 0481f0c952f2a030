"""Check that ``make fit`` (then ``make decision``) rebuilds the shipped default from its own
extractor.

The extractor's training (``make train``) takes an hour on two cores and is not
bit-reproducible across machines; everything after it is. This takes the extractor out of
``src/noisead/weights/default.safetensors``, runs the recipe of ``make fit`` on it
(``noisead fit-detector --cameras ... --run ...``: same pristine images, evidence sources,
calibration; ``--val`` left out, it only adds figures to the sidecar) into a temporary
folder, refits the decision's image calibration from the recorded statistics of
``make decision`` (``--decision-scores``), and compares every tensor and every detector
setting with the shipped file (settings as this code reads them, whatever sidecar layout
each file has). Tensors equal bit for bit pass; tensors that differ only by floating-point
rounding (``--rtol``; another CPU's kernels sum in another order) pass with their largest
relative difference printed; anything else fails with exit status 1.

    python scripts/check_default_reproduces.py [--shared ../shared] [--data data]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from noisead.anomaly.config import DetectorConfig
from noisead.anomaly.detector import Detector
from noisead.anomaly.persistence import migrate_sidecar
from noisead.evaluate.false_alarms import apply_decision, fit_decision, read_scores
from noisead.evaluate.rows import detector_fingerprint
from noisead.models.registry import save_extractor, sidecar_path

DEFAULT = Path(__file__).resolve().parents[1] / "src/noisead/weights/default.safetensors"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared"))
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--model", type=Path, default=DEFAULT)
    ap.add_argument("--decision-scores", type=Path,
                    default=Path("benchmarks/results/decision-scores-reference.jsonl"))
    ap.add_argument("--rtol", type=float, default=1e-3,
                    help="largest relative difference of a tensor counted as rounding (the "
                         "whitener, an inverse Cholesky factor, amplifies the covariance's)")
    ap.add_argument("--keep", type=Path, default=None, help="copy the refit here")
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
        if "decision" in info:
            refit = Detector.load(out)
            measurement = info["decision"][cfg.mode]["measurement"]
            if detector_fingerprint(refit, calibrations=False) != measurement.get(
                    "statistic_key"):
                print("note: the refit's maps differ from those the decision statistics were "
                      "recorded with; its decision calibration is refitted from them anyway")
            fit = fit_decision(read_scores(args.decision_scores), measurement["target_rate"])
            apply_decision(refit, cfg.mode, fit)
            refit.save(out)
        if args.keep:
            shutil.copy(out, args.keep)
            shutil.copy(sidecar_path(out), sidecar_path(args.keep))
        a, b = load_file(str(args.model)), load_file(str(out))
        differ, rounding = [], []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b or a[k].shape != b[k].shape:
                differ.append(f"{k}: missing or of another shape")
            elif not np.array_equal(a[k], b[k]):
                rel = _relative_difference(a[k], b[k])
                (rounding if rel <= args.rtol else differ).append(
                    f"{k}: largest relative difference {rel:.2e}")
        settings_a, settings_b = _settings(args.model), _settings(out)
        differ += [f"setting {k}: {settings_a.get(k)!r} != {settings_b.get(k)!r}"
                   for k in sorted(set(settings_a) | set(settings_b))
                   if settings_a.get(k) != settings_b.get(k)]
    if differ:
        print(f"{args.model} is NOT reproduced by make fit's recipe; differing:", *differ,
              sep="\n  ")
        raise SystemExit(1)
    if rounding:
        print(f"{args.model}: reproduced within rounding (rtol {args.rtol}); not bit for bit:",
              *rounding, sep="\n  ")
        if args.keep:
            print(_demo_difference(args.model, args.keep))
        return
    print(f"{args.model}: reproduced exactly ({len(a)} tensors, every detector setting)")


def _demo_difference(shipped: Path, refit: Path) -> str:
    """How far the two detectors' results on the bundled example are apart, per mode."""
    from noisead.infer import analyze, load_detector

    example = Path(__file__).resolve().parents[1] / "src/noisead/examples/spliced.png"
    a, b = load_detector(shipped), load_detector(refit)
    lines = []
    for mode in ("reference", "blind"):
        ra, rb = analyze(example, a, mode=mode), analyze(example, b, mode=mode)
        lines.append(f"  bundled example, {mode}: largest heatmap difference "
                     f"{float(np.abs(ra.heatmap - rb.heatmap).max()):.1e}, score difference "
                     f"{abs(ra.score - rb.score):.1e}, mask pixels that differ "
                     f"{int((ra.mask != rb.mask).sum())}")
    return "\n".join(lines)


def _relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Largest ``|a - b|`` relative to the largest magnitude of ``a`` (a tensor-wide scale,
    so entries near zero do not blow the ratio up)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    scale = max(float(np.abs(a64).max()), 1e-300)
    return float(np.abs(a64 - b64).max()) / scale


def _settings(path: Path) -> dict:
    """The detector settings of the file at ``path``, in the current layout."""
    meta = migrate_sidecar(json.loads(sidecar_path(path).read_text()), path)
    return DetectorConfig.from_dict(meta["detector"]).to_dict()


if __name__ == "__main__":
    main()
