"""Mean pixel AUC of the blind noise statistics on validation benchmarks.

Why: to choose how the noise level and noise spectrum statistics are combined, on the
validation sets only (``data/val``: training cameras, real and simulated; ``data/val-unseen``:
simulated cameras no extractor saw), never on the test sets. Prints, per set, the mean
pixel AUC over forged images of the level map, the spectrum map and their pixel-wise
maximum (what the ``noise-level`` and ``noise-spectrum`` evidence sources fuse), and the
seconds they took.

Usage: python experiments/validate_noise_statistics.py data/val data/val-unseen
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from noisead.anomaly.noise_statistics import noise_level_deviation, noise_spectrum_deviation
from noisead.data.datasets import read_folder
from noisead.evaluate.metrics import pixel_auc

SETS = ("splice-png", "splice-jpeg", "generative-png", "generative-jpeg")


def evaluate_folder(bench: Path) -> None:
    results: dict[tuple[str, str], list[float]] = {}
    seconds = 0.0
    sets = [s for s in SETS if (bench / s).is_dir()]
    for name in sets:
        dataset = read_folder(bench / name)
        for sample in dataset.forged:
            image, mask = dataset.load(sample)
            t0 = time.perf_counter()
            spectrum, level = noise_spectrum_deviation(image), noise_level_deviation(image)
            seconds += time.perf_counter() - t0
            maps = {"level": level, "spectrum": spectrum, "max": np.maximum(spectrum, level)}
            for key, heat in maps.items():
                results.setdefault((name, key), []).append(pixel_auc(heat, mask.astype(bool)))
        print(f"{bench} {name}:", {k: round(float(np.mean(v)), 3)
                                   for (s, k), v in results.items() if s == name})
    keys = ("level", "spectrum", "max")
    print(f"{bench} mean:", {k: round(float(np.mean([np.mean(results[(s, k)]) for s in sets])), 3)
                             for k in keys}, f"({seconds:.1f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("benches", nargs="+", type=Path, help="folders of benchmark sets")
    for bench in ap.parse_args().benches:
        evaluate_folder(bench)


if __name__ == "__main__":
    main()
