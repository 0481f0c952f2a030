"""Experiment: log local-energy embeddings scored by a blind, trimmed Gaussian.

Why: on unseen cameras the per-position Gaussians over raw activations trail a plain
noise-level statistic. This script asks whether the *local log-variance* of each channel
(of the extractor's hooked maps, or of the seven fixed high-pass residuals that became
:func:`noisead.anomaly.noise_statistics.noise_spectrum_deviation`) fitted by one robust
Gaussian on the image itself localizes better. It prints the mean pixel AUC per benchmark
set for each feature family, next to the residual-variance baseline.

Usage: python experiments/energy_features.py DETECTOR.safetensors [--window W] [--bench DIR]
Findings: docs/BENCHMARKS.md, "What was tried".
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from noisead.anomaly.detector import Detector
from noisead.anomaly.noise_statistics import (
    highpass_residuals,
    local_variance,
    noise_level_deviation,
)
from noisead.data.datasets import read_folder
from noisead.evaluate.metrics import pixel_auc

SETS = ("splice-png", "splice-jpeg", "generative-png", "generative-jpeg")


def full_embedding(detector: Detector, image: np.ndarray) -> np.ndarray:
    """The hooked maps and the fingerprint of the whole image, ``(D + 1) x H x W``."""
    h, w = image.shape[:2]
    out = None
    for t, emb, fp in detector.iter_embeddings(image):
        if out is None:
            out = np.zeros((emb.shape[0] + 1, h, w), np.float32)
        out[:-1, t.y0:t.y1, t.x0:t.x1] = emb.float().numpy()
        out[-1, t.y0:t.y1, t.x0:t.x1] = fp.float().numpy()
    return out


def log_energy(maps: np.ndarray, window: int) -> np.ndarray:
    var = np.stack([local_variance(c, window) for c in maps])
    med = np.median(var.reshape(len(var), -1), axis=1)[:, None, None]
    return np.log(var + 1e-3 * med + 1e-12)


def _score_with_fit(features: np.ndarray, sub: np.ndarray, trim: float = 0.2,
                    refits: int = 2) -> np.ndarray:
    """Squared distances of every pixel to a trimmed Gaussian fitted on the ``sub`` samples
    (this experiment's recipe; the package's ``trimmed_mahalanobis`` scores the samples it fits)."""
    dim = features.shape[0]
    x = sub.reshape(dim, -1).T.astype(np.float64)
    keep = np.ones(len(x), bool)
    for _ in range(refits + 1):
        mu, cov = x[keep].mean(0), np.cov(x[keep].T)
        prec = np.linalg.inv(cov + 1e-3 * np.eye(dim) * np.trace(cov) / dim)
        d = np.einsum("nd,de,ne->n", x - mu, prec, x - mu)
        keep = d <= np.quantile(d, 1 - trim)
    y = features.reshape(dim, -1).T - mu
    return np.einsum("nd,de,ne->n", y, prec, y).reshape(features.shape[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("detector", type=Path)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--bench", type=Path, default=Path("data/val-unseen"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    detector = Detector.load(args.detector)
    results: dict[tuple[str, str], list[float]] = {}
    sets = [s for s in SETS if (args.bench / s).is_dir()]
    for name in sets:
        dataset = read_folder(args.bench / name)
        for sample in dataset.forged:
            image, mask = dataset.load(sample)
            learned = log_energy(full_embedding(detector, image), args.window)
            fixed = log_energy(highpass_residuals(image), args.window)
            scores = {"rv": noise_level_deviation(image),
                      "learned_e": _score_with_fit(learned, learned[:, ::4, ::4]),
                      "fixed_e": _score_with_fit(fixed, fixed[:, ::4, ::4]),
                      "both_e": _score_with_fit(np.concatenate([learned, fixed]),
                                                np.concatenate([learned, fixed])[:, ::4, ::4])}
            for key, heat in scores.items():
                results.setdefault((name, key), []).append(pixel_auc(heat, mask.astype(bool)))
        print(name, {k: round(float(np.mean(v)), 3) for (s, k), v in results.items()
                     if s == name}, flush=True)
    keys = sorted({k for _, k in results})
    print("mean", {k: round(float(np.mean([np.mean(results[(s, k)]) for s in sets])), 3)
                   for k in keys})


if __name__ == "__main__":
    main()
