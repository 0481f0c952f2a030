"""Compare candidate image-level statistics (forged vs pristine detection AUC) on benchmarks.

The shipped image score is a high quantile of the two-sided deviation map (``q99|z|``);
for a detector that fuses the noise statistics, of the fused map of robust z-scores.
This scores every forged and pristine image of each set once and reports the detection
AUC that each candidate statistic would give, so a change of statistic can be chosen on
validation sets (never the test sets).

    python experiments/image_statistics.py src/noisead/weights/default.safetensors reference \
        data/val-unseen/splice-png data/val-unseen/generative-png
"""

from __future__ import annotations

import json
import sys

import numpy as np
from sklearn.metrics import roc_auc_score

from noisead.anomaly.detector import Detector
from noisead.anomaly.score import two_sided_deviation
from noisead.io import load_image


def candidates(smoothed: np.ndarray) -> dict[str, float]:
    """Statistics of one smoothed Mahalanobis map (before the two-sided deviation)."""
    log_map = np.log(np.maximum(smoothed, 0) + 1e-6)
    z = two_sided_deviation(smoothed)
    return {"q99|z|": float(np.quantile(z, 0.99)), "q999|z|": float(np.quantile(z, 0.999)),
            "frac|z|>3": float((z > 3).mean()), "mean|z|": float(z.mean()),
            "std logS": float(log_map.std()),
            "q99-med logS": float(np.quantile(log_map, 0.99) - np.median(log_map)),
            "q99 logS": float(np.quantile(log_map, 0.99))}


def fused_candidates(z: np.ndarray) -> dict[str, float]:
    """Statistics of one fused raw map (robust z-scores; ``DetectorConfig.evidence``)."""
    return {"q95 z": float(np.quantile(z, 0.95)), "q99 z (shipped)": float(np.quantile(z, 0.99)),
            "q999 z": float(np.quantile(z, 0.999)), "max z": float(z.max()),
            "frac z>4": float((z > 4).mean()), "frac z>6": float((z > 6).mean())}


def main() -> None:
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    detector = Detector.load(sys.argv[1])
    fused = bool(detector.config.evidence)
    if not fused:
        detector.config.score_direction = "upper"  # the map before the two-sided step
    mode = sys.argv[2]
    for root in sys.argv[3:]:
        manifest = json.loads(open(f"{root}/manifest.json").read())
        labels, stats = [], []
        for item in manifest["images"]:
            for key, label in (("image", 1), ("pristine", 0)):
                pixels = load_image(f"{root}/{item[key]}").pixels
                raw = detector.score_image(pixels, mode).raw
                stats.append(fused_candidates(raw) if fused else candidates(raw))
                labels.append(label)
        aucs = {k: round(roc_auc_score(labels, [s[k] for s in stats]), 3) for k in stats[0]}
        print(f"| {root} | " + " | ".join(f"{k} {v}" for k, v in aucs.items()) + " |",
              flush=True)


if __name__ == "__main__":
    main()
