"""Experiment: a two-part explanation of the *noise statistics* for large foreign regions.

Why: a splice covering 30-50 % of the image is a second camera, not an outlier; the noise
statistics score each window against the image's own robust Gaussian (one camera plus
outliers), which cannot separate two halves. This asks whether a two-component Gaussian
mixture on the same window descriptors (the seven high-pass residuals' local
log-energies) separates them, and whether BIC tells forged from untouched photos.

Run on the *validation* camera models (benchmarks/large_splices.py's case builder):

    OMP_NUM_THREADS=1 .venv/bin/python experiments/two_part_statistics.py --per-bucket 5

Printed per bucket: mean pixel AUC in either polarity of each map (the one-part noise
statistics; the package's two-part statistics at each ``--gains`` threshold, and how often
two parts won there on the forged images and on their unforged targets; for each
``--kinds`` x ``--windows`` descriptor, the smaller part's posterior and the distances to a
Gaussian refitted on the larger part), and the BIC gain of two components over one on the
forged images and on their unforged targets.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from large_splices import BUCKETS, build_cases, camera_pools  # noqa: E402

from noisead.anomaly.modes.two_part import decide_parts  # noqa: E402
from noisead.anomaly.noise_parts import NOISE_PART_SETTINGS, find_noise_parts  # noqa: E402
from noisead.anomaly.noise_statistics import (  # noqa: E402
    _upsample,
    local_log_energy,
    noise_statistics_map,
)


def descriptors(image: np.ndarray, window: int, step: int, kind: str) -> np.ndarray:
    """``D x H' x W'`` window descriptors: log-energies (``full``) or their shape."""
    e = local_log_energy(image, window, step)
    if kind.endswith("+content"):
        luma = image.mean(2)
        m = ndimage.uniform_filter(luma, window)[::step, ::step]
        v = ndimage.uniform_filter(luma * luma, window)[::step, ::step] - m * m
        design = np.stack([np.ones_like(m), m, m * m, np.log(np.sqrt(np.maximum(v, 0)) + 1e-4)])
        a = design.reshape(4, -1).T
        b = e.reshape(len(e), -1).T
        coef, *_ = np.linalg.lstsq(a, b, rcond=None)
        e = (b - a @ coef).T.reshape(e.shape).astype(np.float32)
    if kind.startswith("shape"):
        e = np.concatenate([e - e.mean(0, keepdims=True), e.mean(0, keepdims=True)])[:-1]
    return e


def two_part_map(features: np.ndarray, smoothing: float, seed: int = 0
                 ) -> tuple[np.ndarray, float]:
    """Posterior of the smaller of two Gaussian components, and BIC(1) - BIC(2) per window."""
    d = features.shape[0]
    x = features.reshape(d, -1).T.astype(np.float64)
    x = (x - x.mean(0)) / (x.std(0) + 1e-9)
    one = GaussianMixture(1, covariance_type="full", random_state=seed).fit(x)
    two = GaussianMixture(2, covariance_type="full", n_init=3, random_state=seed).fit(x)
    post = two.predict_proba(x)
    smaller = int(np.argmin(two.weights_))
    p = post[:, smaller].reshape(features.shape[1:])
    p = ndimage.gaussian_filter(p, smoothing, mode="reflect")
    return p.astype(np.float32), float((one.bic(x) - two.bic(x)) / len(x))


def host_refit_map(features: np.ndarray, posterior: np.ndarray) -> np.ndarray:
    """Distances of every window to a trimmed Gaussian fitted on the larger part only."""
    d = features.shape[0]
    x = features.reshape(d, -1).T.astype(np.float64)
    host = posterior.ravel() < 0.5
    if host.mean() < 0.5:
        host = ~host
    mu = x[host].mean(0)
    cov = np.cov(x[host].T) + 1e-3 * np.eye(d) * np.trace(np.cov(x[host].T)) / d
    prec = np.linalg.inv(cov)
    c = x - mu
    return np.einsum("nd,de,ne->n", c, prec, c).reshape(features.shape[1:])


def statistics_two_part(image: np.ndarray, min_gain: float, min_part: float
                        ) -> tuple[np.ndarray, float]:
    """The package's two-part noise statistics (:mod:`noisead.anomaly.noise_parts`) with
    ``min_gain`` and ``min_part``, and BIC's gain of two parts per window."""
    settings = dataclasses.replace(NOISE_PART_SETTINGS, min_gain=-np.inf, min_part=0.0)
    energies = local_log_energy(image, settings.window, settings.window // 4)
    _, gain = decide_parts(energies.reshape(len(energies), -1).T, settings, 0)
    parts = find_noise_parts(image, dataclasses.replace(settings, min_gain=min_gain,
                                                        min_part=min_part))
    return noise_statistics_map(image, None if parts is None else parts.host), gain


def either(mask: np.ndarray, score: np.ndarray) -> float:
    a = roc_auc_score(mask.ravel(), score.ravel())
    return max(a, 1 - a)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared"))
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--per-bucket", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kinds", default="full,shape")
    ap.add_argument("--windows", default="32")
    ap.add_argument("--gains", default="-inf")
    ap.add_argument("--min-parts", default="0.05")
    ap.add_argument("--smoothing", type=float, default=1.0)
    ap.add_argument("--json", type=Path, help="append one JSON line per case here")
    args = ap.parse_args()
    cases = build_cases(camera_pools("validation", args.shared, args.data), args.per_bucket,
                        args.seed)
    step = 8
    variants = {f"{kind} w{w}": (kind, w) for kind in filter(None, args.kinds.split(","))
                for w in map(int, args.windows.split(","))}
    rows: dict[float, dict[str, list[float]]] = {}
    for case in cases:
        h, w = case.mask.shape
        row = rows.setdefault(case.bucket, {})
        row.setdefault("noise statistics", []).append(
            either(case.mask, noise_statistics_map(case.forged)))
        for g, part in itertools.product(map(float, args.gains.split(",")),
                                         map(float, args.min_parts.split(","))):
            m, _ = statistics_two_part(case.forged, g, part)
            row.setdefault(f"stats two-part g{g} p{part}", []).append(either(case.mask, m))
        for name, (kind, window) in variants.items():
            feats = descriptors(case.forged, window, step, kind)
            p, gain = two_part_map(feats, args.smoothing)
            row.setdefault(name, []).append(either(case.mask, _upsample(p, h, w, step)))
            refit = ndimage.gaussian_filter(host_refit_map(feats, p), args.smoothing)
            row.setdefault(f"{name} refit", []).append(
                either(case.mask, _upsample(refit.astype(np.float32), h, w, step)))
            row.setdefault(f"{name} gain forged", []).append(gain)
            _, gain0 = two_part_map(descriptors(case.pristine, window, step, kind), args.smoothing)
            row.setdefault(f"{name} gain pristine", []).append(gain0)
        last = {k: round(v[-1], 4) for k, v in row.items()}
        print(f"{case.bucket:.2f}", last, flush=True)
        if args.json:
            with args.json.open("a") as f:
                f.write(json.dumps({"bucket": case.bucket, "smoothing": args.smoothing,
                                    **last}) + "\n")
    for bucket in BUCKETS:
        print(f"bucket {bucket:.2f}",
              {k: round(float(np.mean(v)), 3) for k, v in rows.get(bucket, {}).items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
