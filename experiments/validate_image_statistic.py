"""The validation that chose how the image score summarises the map.

A forged region is a compact blob of high scores; the high scores of a pristine image are
mostly scattered texture. So a statistic of a *smoothed* map may separate forged from
pristine images better than the 0.99 quantile of the map itself. For every validation
benchmark (never the test split), clean and recompressed at quality 95 and 90, this
computes the shipped default's image map (the fused map, with the JPEG lattice folded in
as ``max(fused - b * host, k * z)`` with the default's b and k) once per image, then the
detection AUC (forged against pristine) of the ``q`` quantile of that map smoothed by a
Gaussian of ``sigma`` pixels (``noisead.anomaly.score.region_quantile``), for every
(sigma, q). Prints one line per condition and setting: quality (None = clean), sigma,
q, the mean over the six folders, then each folder's figure (data/val generative-png,
splice-png; data/val-unseen generative-jpeg, generative-png, splice-jpeg, splice-png).

With ``--subtract-median``, each statistic is also computed less the median of the
smoothed map (a per-image baseline, in case recompression or resizing shifts a whole
map; it did not help, see docs/BENCHMARKS.md); ``--scales`` adds resized
conditions (printed as ``x0.9`` etc. in the first field).

    python experiments/validate_image_statistic.py [--model default] [--mode reference]
        [--qualities none,95,90] [--scales 0.9,1.1] [--subtract-median]
        [--roots data/val,data/val-unseen]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from noisead.anomaly.evidence.jpeg_lattice import image_score_map, lattice_evidence
from noisead.anomaly.score import region_quantile
from noisead.data.augment import postprocess_image
from noisead.evaluate.metrics import detection_auc
from noisead.infer import load_detector

SIGMAS = (0.0, 4.0, 8.0, 16.0, 32.0)
QUANTILES = (0.95, 0.98, 0.99, 0.995, 0.999)


def image_map(detector, image: np.ndarray, mode: str) -> np.ndarray:
    """The map whose quantile is the image statistic (see evidence.jpeg_lattice)."""
    config = detector.config
    evidence = config.evidence
    jpeg = "jpeg-lattice" in evidence
    # the fused map before the lattice is folded in
    config.evidence = tuple(k for k in evidence if k != "jpeg-lattice")
    try:
        fused = detector.score_image(image, mode=mode).raw
    finally:
        config.evidence = evidence
    z = lattice_evidence(image, window=config.jpeg_window) if jpeg else None
    if z is None:
        return fused
    return image_score_map(fused, z, config.jpeg_image_discount, config.jpeg_image_weight)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--mode", default="reference")
    parser.add_argument("--qualities", default="none,95,90")
    parser.add_argument("--scales", default="")
    parser.add_argument("--subtract-median", action="store_true")
    parser.add_argument("--roots", default="data/val,data/val-unseen",
                        help="validation folders of benchmark sets (never the test sets)")
    args = parser.parse_args()
    detector = load_detector(args.model)
    benches = [b for r in args.roots.split(",") for b in sorted(Path(r).iterdir())
               if (b / "images").is_dir()]
    settings = list(itertools.product(SIGMAS, QUANTILES, (False, True)
                                      if args.subtract_median else (False,)))
    conditions = [(None if q == "none" else int(q), None) for q in args.qualities.split(",") if q]
    conditions += [(None, float(x)) for x in args.scales.split(",") if x]
    for quality, scale in conditions:
        label = quality if scale is None else f"x{scale}"
        stats: dict = {}
        jobs = [(bench, path, which) for bench in benches
                for path in sorted((bench / "images").glob("*.png"))
                for which in ("images", "pristine")]
        for bench, path, which in tqdm(jobs, desc=f"condition {label}", leave=False):
            u8 = np.asarray(Image.open(bench / which / path.name).convert("RGB"))
            img = postprocess_image(u8.astype(np.float32) / 255, jpeg_quality=quality,
                                    scale=scale)
            heat = image_map(detector, img, args.mode)
            for sigma, q, minus_median in settings:
                value = region_quantile(heat, q, sigma)
                if minus_median:
                    value -= region_quantile(heat, 0.5, sigma)
                stats.setdefault((sigma, q, minus_median, bench, which), []).append(value)
        for setting in settings:
            aucs = [detection_auc(stats[(*setting, bench, "images")],
                                  stats[(*setting, bench, "pristine")]) for bench in benches]
            name = " ".join(str(x) for x in setting[:2]) + (" -median" if setting[2] else "")
            print(label, name, f"{np.mean(aucs):.3f}", " ".join(f"{x:.2f}" for x in aucs),
                  flush=True)


if __name__ == "__main__":
    main()
