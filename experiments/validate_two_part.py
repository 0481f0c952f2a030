"""Which two-part settings (window, features, variant, BIC gain) localize large splices best?

Run on the *validation* camera models only (data/cams-val's real ones and
data/simcams-valunseen), with the case builder of benchmarks/large_splices.py:

    OMP_NUM_THREADS=1 .venv/bin/python experiments/validate_two_part.py --per-bucket 5

For every setting, blind mode's learned map alone is computed with two parts forced
wherever the mixture finds a smaller part of at least ``min_part`` (``min_gain`` -inf) and
BIC's gain per window is recorded; each candidate ``min_gain`` then takes the two-part map
only where the gain reaches it. Printed: mean pixel AUC (either polarity) by bucket, and
how often two parts win on the forged images and on their unforged targets (a win on an
untouched photo changes the map that the blind calibration was fitted on).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from large_splices import BUCKETS, build_cases, camera_pools, learned_map  # noqa: E402

from noisead.anomaly.modes import two_part  # noqa: E402
from noisead.infer import load_detector  # noqa: E402

GAINS = (-np.inf, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)


def with_gain(settings: two_part.TwoPartSettings, detector, image) -> tuple[np.ndarray, float]:
    """The two-part learned map under ``settings`` (forced) and BIC's gain per window."""
    seen = []
    decide = two_part.decide_parts

    def recording(features, s, seed, fit_on=None):
        posterior, gain = decide(features, s, seed, fit_on)
        seen.append(gain)
        return posterior, gain

    two_part.SETTINGS = dataclasses.replace(settings, min_gain=-np.inf)
    two_part.decide_parts = recording
    try:
        raw = learned_map(detector, image, "blind", "auto")
    finally:
        two_part.decide_parts = decide
    return raw, seen[0] if seen else -np.inf


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shared", type=Path, default=Path("../shared"))
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--per-bucket", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--windows", default="32,64")
    ap.add_argument("--features", default="both,energy")
    ap.add_argument("--variants", default="refit,posterior")
    ap.add_argument("--dims", default="4")
    ap.add_argument("--content", default="0,1")
    args = ap.parse_args()
    detector = load_detector(None)
    cases = build_cases(camera_pools("validation", args.shared, args.data), args.per_bucket,
                        args.seed)
    base = [learned_map(detector, c.forged, "blind", "one") for c in cases]

    def either(mask, m):
        a = roc_auc_score(mask.ravel(), m.ravel())
        return max(a, 1 - a)

    base_auc = np.array([either(c.mask, m) for c, m in zip(cases, base, strict=True)])
    buckets = np.array([c.bucket for c in cases])
    print("blind today (learned alone):",
          " ".join(f"{b:.0%}: {base_auc[buckets == b].mean():.3f}" for b in BUCKETS))
    for window, feats, variant, dims, content in itertools.product(
            [int(w) for w in args.windows.split(",")], args.features.split(","),
            args.variants.split(","), [int(d) for d in args.dims.split(",")],
            [bool(int(c)) for c in args.content.split(",")]):
        settings = two_part.TwoPartSettings(window=window, features=feats, dims=dims,
                                            variant=variant, content=content)
        forced = [with_gain(settings, detector, c.forged) for c in cases]
        pristine_gain = np.array([with_gain(settings, detector, c.pristine)[1]
                                  for c in cases]) if variant == "refit" else None
        auc2 = np.array([either(c.mask, m) for c, (m, _) in zip(cases, forced, strict=True)])
        gains = np.array([g for _, g in forced])
        for tau in GAINS:
            won = gains >= tau
            auc = np.where(won, auc2, base_auc)
            line = " ".join(f"{b:.0%}: {auc[buckets == b].mean():.3f}" for b in BUCKETS)
            false = ("" if pristine_gain is None
                     else f", pristine wins {(pristine_gain >= tau).sum()}/{len(cases)}")
            print(f"window {window} features {feats} dims {dims} {variant} content {content} "
                  f"min_gain {tau}: "
                  f"{line}; wins {won.sum()}/{len(cases)}{false}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
