"""Experiment: the local periodic pattern of a residual, scored by a blind trimmed Gaussian.

Why: a camera model's traces (colour filter array, demosaicing, the JPEG 8 x 8 grid) are
periodic. Averaging a residual over a window *phase by phase* (each of the 8 x 8 offsets
within the JPEG/CFA period) keeps that pattern and averages the content away, so a
window carries the local pattern as a 64-value descriptor; a foreign region carries
another pattern. This asks whether that descriptor, computed on the learned fingerprint,
localizes better than on a fixed high-pass residual, and better than the noise statistics.

For each window of W x W pixels (a multiple of 8), on the grid of 8 x 8 blocks:
``mean`` the 64 phase means, minus their average (the pattern's shape), and ``energy`` the
log of the 64 phase means of the squared residual, minus their average. Both are scored
against one robust Gaussian of the image's own windows
(:func:`noisead.anomaly.noise_statistics.trimmed_mahalanobis`).

Usage: python experiments/phase_patterns.py src/noisead/weights/default.safetensors \
    --bench data/val-unseen --bench data/val [--window 64]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from noisead.anomaly.detector import Detector
from noisead.anomaly.noise_statistics import (
    highpass_residuals,
    noise_statistics_map,
    trimmed_mahalanobis,
)
from noisead.data.datasets import read_folder
from noisead.evaluate.metrics import pixel_auc

SETS = ("splice-png", "splice-jpeg", "generative-png", "generative-jpeg")
PERIOD = 8


def fingerprint(detector: Detector, image: np.ndarray) -> np.ndarray:
    """The extractor's fingerprint of the whole image, ``H x W``."""
    out = np.zeros(image.shape[:2], np.float32)
    for t, _emb, fp in detector.iter_embeddings(image):
        out[t.y0:t.y1, t.x0:t.x1] = fp.float().numpy()
    return out


def phase_descriptors(residual: np.ndarray, window: int) -> dict[str, np.ndarray]:
    """``{"mean", "energy"}``: 64 x (H/8) x (W/8) phase descriptors of every window."""
    h, w = (s - s % PERIOD for s in residual.shape)
    r = residual[:h, :w].astype(np.float64)
    r = (r - r.mean()) / (np.std(r) + 1e-12)  # a fingerprint's offset and scale are arbitrary
    # phases: (a, b) -> r[a::8, b::8], each (H/8) x (W/8)
    ph = r.reshape(h // PERIOD, PERIOD, w // PERIOD, PERIOD).transpose(1, 3, 0, 2)
    ph = ph.reshape(PERIOD * PERIOD, h // PERIOD, w // PERIOD)
    k = window // PERIOD
    mean = np.stack([ndimage.uniform_filter(p, k, mode="reflect") for p in ph])
    energy = np.log(np.stack([ndimage.uniform_filter(p * p, k, mode="reflect") for p in ph])
                    + 1e-6)
    return {"mean": mean - mean.mean(0), "energy": energy - energy.mean(0)}


def blind_map(features: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Distances to the image's own robust Gaussian, back at pixel resolution."""
    d = trimmed_mahalanobis(features.astype(np.float32))
    up = np.kron(d, np.ones((PERIOD, PERIOD), np.float32))
    out = np.zeros(shape, np.float32)
    out[:up.shape[0], :up.shape[1]] = up
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("detector", type=Path)
    ap.add_argument("--bench", type=Path, action="append")
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--max-images", type=int, default=12)
    args = ap.parse_args()
    torch.set_num_threads(1)
    detector = Detector.load(args.detector)
    for bench in args.bench or [Path("data/val-unseen")]:
        means: dict[str, list[float]] = {}
        for name in [s for s in SETS if (bench / s).is_dir()]:
            dataset = read_folder(bench / name)
            results: dict[str, list[float]] = {}
            for sample in dataset.forged[:args.max_images]:
                image, mask = dataset.load(sample)
                mask = mask.astype(bool)
                shape = image.shape[:2]
                maps = {"noise-stats": noise_statistics_map(image)}
                learned = phase_descriptors(fingerprint(detector, image), args.window)
                fixed = highpass_residuals(image)
                fixed_l = phase_descriptors(fixed[2], args.window)  # luma Laplacian
                fixed_rgb = [phase_descriptors(fixed[c], args.window) for c in (4, 5, 6)]
                for kind in ("mean", "energy"):
                    maps[f"learned-{kind}"] = blind_map(learned[kind], shape)
                    maps[f"fixed-{kind}"] = blind_map(fixed_l[kind], shape)
                    maps[f"fixedrgb-{kind}"] = blind_map(
                        np.concatenate([d[kind][::4] for d in fixed_rgb]), shape)
                maps["learned-both"] = blind_map(
                    np.concatenate([learned["mean"], learned["energy"]]), shape)
                for key, heat in maps.items():
                    results.setdefault(key, []).append(pixel_auc(heat, mask))
            row = {k: round(float(np.nanmean(v)), 3) for k, v in results.items()}
            for k, v in row.items():
                means.setdefault(k, []).append(v)
            print(bench, name, row, flush=True)
        print(bench, "mean", {k: round(float(np.mean(v)), 3) for k, v in means.items()},
              flush=True)


if __name__ == "__main__":
    main()
