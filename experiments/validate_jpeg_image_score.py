"""The validation that chose the JPEG image-score settings.

Detection AUC (0.99 quantile of the map, forged against pristine) on every validation
benchmark (never the test split), clean and recompressed at quality 95 and 90, of the map
``max(noise statistics - b * host evidence, k * lattice z)`` for discounts b and lattice
weights k. Prints: quality (None = clean), b, k, the mean over the six folders, then each
folder's figure (data/val generative-png, splice-png; data/val-unseen generative-jpeg,
generative-png, splice-jpeg, splice-png).

    python experiments/validate_jpeg_image_score.py
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from PIL import Image

from noisead.anomaly.evidence.jpeg_lattice import image_score_map, lattice_evidence
from noisead.anomaly.noise_statistics import noise_statistics_map
from noisead.data.augment import postprocess_image
from noisead.evaluate.metrics import detection_auc


def main() -> None:
    settings = list(itertools.product([0.5, 1.0, 2.0], [1.0, 2.0]))
    benches = [b for r in ("data/val", "data/val-unseen") for b in sorted(Path(r).iterdir())
               if (b / "images").is_dir()]
    for quality in (None, 95, 90):
        stats: dict = {}
        for bench in benches:
            for path in sorted((bench / "images").glob("*.png")):
                for which in ("images", "pristine"):
                    u8 = np.asarray(Image.open(bench / which / path.name).convert("RGB"))
                    img = postprocess_image(u8.astype(np.float32) / 255, jpeg_quality=quality)
                    ns = noise_statistics_map(img)
                    z = lattice_evidence(img)
                    for b, k in settings:
                        heat = ns if z is None else image_score_map(ns, z, b, k)
                        stats.setdefault((b, k, bench, which), []).append(
                            float(np.quantile(heat, 0.99)))
        for b, k in settings:
            aucs = []
            for bench in benches:
                forged, pristine = stats[(b, k, bench, "images")], stats[(b, k, bench, "pristine")]
                aucs.append(detection_auc(forged, pristine))
            print(quality, b, k, f"{np.mean(aucs):.3f}", " ".join(f"{x:.2f}" for x in aucs),
                  flush=True)


if __name__ == "__main__":
    main()
