"""Experiment (session 4): log local-energy embeddings scored by a blind, trimmed Gaussian.

Why: on unseen cameras the per-position Gaussians over raw activations trail a plain
noise-level statistic. This script asks whether the *local log-variance* of each channel
(of the extractor's hooked maps, or of seven fixed high-pass residuals) fitted by one
robust Gaussian on the image itself localizes better. It prints the mean pixel AUC per
val-unseen set for each feature family, next to the residual-variance baseline.

Usage: python scripts/energy_features.py DETECTOR.safetensors [WINDOW [BENCH]]
(BENCH: a folder of benchmark sets, data/val-unseen by default)
Not yet part of the package: see docs/BENCHMARKS.md (session 4) for what it measured.
"""
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from noisead.anomaly.detector import Detector
from noisead.data.datasets import read_folder
from noisead.evaluate.baselines import _local_variance, luma, noise_residual_variance

torch.set_num_threads(2)
det = Detector.load(sys.argv[1])
W = int(sys.argv[2]) if len(sys.argv) > 2 else 16
BENCH = sys.argv[3] if len(sys.argv) > 3 else "data/val-unseen"
sets = ["splice-png", "splice-jpeg", "generative-png", "generative-jpeg"]

def full_emb(img):
    h, w = img.shape[:2]
    out = None
    for t, emb, fp in det.iter_embeddings(img):
        if out is None:
            out = np.zeros((emb.shape[0] + 1, h, w), np.float32)
        out[:-1, t.y0:t.y1, t.x0:t.x1] = emb.float().numpy()
        out[-1, t.y0:t.y1, t.x0:t.x1] = fp.float().numpy()
    return out

def log_energy(f, w, local_var=True):
    e = np.stack([_local_variance(c, w) if local_var
                  else ndimage.uniform_filter(c * c, w, mode="reflect") for c in f])
    med = np.median(e.reshape(len(e), -1), axis=1)[:, None, None]
    return np.log(e + 1e-3 * med + 1e-12)

def robust_maha(feat, trim=0.2, iters=2, step=4):
    D = feat.shape[0]
    X = feat[:, ::step, ::step].reshape(D, -1).T.astype(np.float64)
    keep = np.ones(len(X), bool)
    for _ in range(iters + 1):
        mu = X[keep].mean(0)
        cov = np.cov(X[keep].T)
        C = cov + 1e-3 * np.eye(D) * np.trace(cov) / D
        P = np.linalg.inv(C)
        d = np.einsum("nd,de,ne->n", X - mu, P, X - mu)
        keep = d <= np.quantile(d, 1 - trim)
    Y = feat.reshape(D, -1).T - mu
    return np.einsum("nd,de,ne->n", Y, P, Y).reshape(feat.shape[1:])

def fixed_filters(img):
    y = luma(img) * 255
    k3 = np.array([1., -3, 3, -1])
    fs = [ndimage.convolve1d(y, k3, axis=1), ndimage.convolve1d(y, k3, axis=0),
          ndimage.laplace(y),
          ndimage.convolve1d(ndimage.convolve1d(y, [1., -2, 1], axis=0), [1., -2, 1], axis=1)]
    for ch in range(3):
        c = img[..., ch].astype(np.float32) * 255
        fs.append(ndimage.laplace(c))
    return np.stack(fs).astype(np.float32)

res = {}
sets = [s for s in sets if (Path(BENCH) / s).is_dir()]
for s in sets:
    ds = read_folder(f"{BENCH}/{s}")
    for smp in ds.forged:
        img, mask = ds.load(smp)
        m = mask.astype(bool).ravel()
        f = full_emb(img)
        learned, fixed = log_energy(f, W), log_energy(fixed_filters(img), W)
        scores = {
          "rv": noise_residual_variance(img),
          "learned_e": robust_maha(learned),
          "learned_e_nolv": robust_maha(log_energy(f, W, False)),
          "fixed_e": robust_maha(fixed),
          "both_e": robust_maha(np.concatenate([learned, fixed])),
        }
        for k, v in scores.items():
            res.setdefault((s, k), []).append(roc_auc_score(m, v.ravel()))
    print(s, {k: round(float(np.mean(v)), 3) for (ss, k), v in res.items() if ss == s}, flush=True)
keys = sorted({k for _, k in res})
print("mean", {k: round(float(np.mean([np.mean(res[(s, k)]) for s in sets])), 3) for k in keys})
