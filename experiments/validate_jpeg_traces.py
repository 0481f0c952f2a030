"""The validation that chose how the JPEG lattice evidence is fused.

For every forged and pristine image of the validation benchmarks (never the test split),
clean and after an aligned JPEG recompression, it compares the blind noise statistics alone
with their fusion with the JPEG lattice map, for several host discounts (0 = pixel-wise
maximum; ``b`` > 0 also lowers the noise statistics by ``b`` times the host evidence):
pixel AUC, best-threshold MCC, and image-level detection AUC (0.99 quantile of the map,
forged against pristine). Means over the benchmark folders.

    python experiments/validate_jpeg_traces.py data/val data/val-unseen --discounts 0,0.25,0.5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from noisead.anomaly.evidence.jpeg_lattice import lattice_evidence
from noisead.anomaly.noise_statistics import noise_statistics_map
from noisead.evaluate.metrics import best_threshold_scores, pixel_auc
from noisead.io.jpeg import jpeg_round_trip


def recompress(u8: np.ndarray, condition: str) -> np.ndarray:
    if condition == "clean":
        return u8
    return jpeg_round_trip(u8, int(condition[1:]), subsampling=None)


def fused(z: np.ndarray | None, ns: np.ndarray, discount: float | None) -> np.ndarray:
    if discount is None or z is None:
        return ns
    return np.maximum(z, ns - discount * np.maximum(-z, 0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("roots", nargs="+", type=Path)
    ap.add_argument("--discounts", default="0,0.25")
    ap.add_argument("--conditions", default="clean,q95,q90")
    ap.add_argument("--window", type=int, default=3)
    args = ap.parse_args()
    variants: list[float | None] = [None] + [float(b) for b in args.discounts.split(",")]
    names = ["noise statistics alone"] + [f"+ JPEG lattice, discount {b:g}"
                                          for b in variants[1:]]
    conditions = args.conditions.split(",")
    benches = [b for r in args.roots for b in sorted(r.iterdir()) if (b / "images").is_dir()]
    loc: dict = {}
    det: dict = {}
    for bench in tqdm(benches, desc="benchmarks"):
        for path in sorted((bench / "images").glob("*.png")):
            mask = np.asarray(Image.open(bench / "masks" / path.name).convert("L")) > 127
            for cond in conditions:
                for which in ("images", "pristine"):
                    u8 = np.asarray(Image.open(bench / which / path.name).convert("RGB"))
                    img = recompress(u8, cond).astype(np.float32) / 255
                    ns = noise_statistics_map(img)
                    z = lattice_evidence(img, window=args.window)
                    for name, b in zip(names, variants, strict=True):
                        heat = fused(z, ns, b)
                        key = (bench, cond, name)
                        det.setdefault(key + (which,), []).append(
                            float(np.quantile(heat, 0.99)))
                        if which == "images":
                            loc.setdefault(key, []).append(
                                (pixel_auc(heat, mask), best_threshold_scores(heat, mask)["mcc"]))
    print("| condition | map | pixel AUC | best MCC | detection AUC |")
    print("|---|---|---|---|---|")
    for cond in conditions:
        for name in names:
            auc = np.mean([np.mean([a for a, _ in loc[(b, cond, name)]]) for b in benches])
            mcc = np.mean([np.mean([m for _, m in loc[(b, cond, name)]]) for b in benches])
            dets = []
            for b in benches:
                f, p = det[(b, cond, name, "images")], det[(b, cond, name, "pristine")]
                dets.append(roc_auc_score([1] * len(f) + [0] * len(p), f + p))
            print(f"| {cond} | {name} | {auc:.3f} | {mcc:.3f} | {np.mean(dets):.3f} |")


if __name__ == "__main__":
    main()
