"""Large foreign regions: splices covering 5, 15, 30 and 50 % of the image, two cameras.

A splice that covers a quarter to a half of the image is not an outlier of the image's
camera: it is a second camera. This benchmark measures how blind mode (one camera plus
outliers, and the two-part explanation of ``DetectorConfig.blind_parts="auto"``), the
reference mode and the learned map alone (fusion off) localize such regions.

Each forged image pastes an object-shaped region (``object_like_mask``, the bucket's area
fraction +-10 %) of a photo of one held-out camera model into a photo of another. No JPEG
grid helps: both photos are downscaled by 0.75 (area resampling) before the splice, which
removes the cameras' 8 x 8 JPEG lattices and their colour-filter periodicity as such, and
keeps their noise differences (level, spectrum, what demosaicing and processing left in the
residual), and the region is pasted at a random offset. Real pairs come from
``../shared/cameras``, simulated ones from the rendered scenes of ``data/simcams``; pairs
alternate between the two.

    .venv/bin/python benchmarks/large_splices.py --per-bucket 12 --out docs/BENCHMARKS.md

Test cameras (default) are the Makefile's held-out models; ``--cameras validation`` uses
the validation models instead (data/cams-val's real ones and data/simcams-valunseen), which
is what ``experiments/validate_two_part.py`` chose the two-part settings on. The maps are
the detector's raw maps (pixel AUC and best-threshold MCC do not change under the
monotone calibration). The markdown goes between ``<!-- large-splices:begin -->`` and
``<!-- large-splices:end -->`` of ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve
from tqdm import tqdm

from noisead.anomaly.detector import Detector
from noisead.anomaly.fusion import evidence_deviations, fuse
from noisead.anomaly.gaussian import mask_to_blocks
from noisead.anomaly.modes import two_part
from noisead.anomaly.noise_parts import NOISE_PART_SETTINGS, find_noise_parts
from noisead.data.forge import object_like_mask, splice
from noisead.evaluate.report import replace_doc_section
from noisead.infer import load_detector
from noisead.io import IMAGE_EXTENSIONS, load_image

BUCKETS = (0.05, 0.15, 0.30, 0.50)
SCALE = 0.75
TEST_REAL = ("Canon-EOS-80D", "NIKON-D90", "SONY-ILCE-7M2", "Apple-iPhone-XR",
             "Hewlett-Packard-Photosmart-M627", "SAMSUNG-GT-P5210")
TEST_SIM = ("simcam20", "simcam21", "simcam22", "simcam23")
VAL_REAL = ("Apple-iPhone-4", "Canon-PowerShot-SX150-IS", "Hewlett-Packard-Photosmart-M425",
            "NIKON-D70", "SEIKO-PhotoPC-3100Z", "samsung-SM-J330F")
VAL_SIM = tuple(f"unseen{i:02d}" for i in range(6))

#: (name, learned map's mode, blind_parts, fused with the evidence sources, the learned
#: map's weight in the fusion, statistics_parts)
METHODS = (("blind", "blind", "one", True, 1.0, "one"),
           ("blind, two parts", "blind", "auto", True, 1.0, "one"),
           ("reference", "reference", "one", True, 1.0, "one"),
           ("blind, two-part statistics", "blind", "one", True, 1.0, "auto"),
           ("reference, two-part statistics", "reference", "one", True, 1.0, "auto"),
           ("evidence sources alone", "blind", "one", True, 0.0, "one"),
           ("evidence sources alone, two-part statistics", "blind", "one", True, 0.0, "auto"),
           ("learned alone, blind", "blind", "one", False, 1.0, "one"),
           ("learned alone, blind, two parts", "blind", "auto", False, 1.0, "one"),
           ("learned alone, reference", "reference", "one", False, 1.0, "one"))
#: The refit variant's upper bound: blind Gaussians refitted on the true host's pixels.
ORACLE = "learned alone, blind, refit on the true host"


@dataclass
class Case:
    """One forged image, its mask and its unforged target, and where they came from."""

    bucket: float
    forged: np.ndarray
    mask: np.ndarray
    pristine: np.ndarray
    target: str
    donor: str


def camera_photos(root: Path, camera: str) -> list[Path]:
    """The photos of one camera model folder, in name order."""
    files = sorted(p for p in (root / camera).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise FileNotFoundError(f"no images in {root / camera}")
    return files


def downscaled(path: Path) -> np.ndarray:
    """The photo, decoded as taken (no EXIF rotation), downscaled by :data:`SCALE`."""
    pixels = load_image(path, apply_exif_orientation=False).pixels
    h, w = pixels.shape[:2]
    size = (round(w * SCALE), round(h * SCALE))
    return np.clip(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA), 0, 1)


def build_cases(pools: list[tuple[Path, tuple[str, ...]]], per_bucket: int, seed: int
                ) -> list[Case]:
    """``per_bucket`` splices per area bucket; the i-th of each bucket draws its two
    camera models from pool ``i % len(pools)``."""
    rng = np.random.default_rng(seed)
    cases = []
    for bucket in BUCKETS:
        for i in range(per_bucket):
            root, cameras = pools[i % len(pools)]
            target_cam, donor_cam = rng.choice(len(cameras), 2, replace=False)
            targets = camera_photos(root, cameras[target_cam])
            donors = camera_photos(root, cameras[donor_cam])
            target_path = targets[int(rng.integers(len(targets)))]
            donor_path = donors[int(rng.integers(len(donors)))]
            target, donor = downscaled(target_path), downscaled(donor_path)
            h, w = min(target.shape[0], donor.shape[0]), min(target.shape[1], donor.shape[1])
            target, donor = target[:h, :w], donor[:h, :w]
            mask = object_like_mask((h, w), rng, area_fraction=(0.9 * bucket, 1.1 * bucket))
            forged = splice(target, donor, mask, rng)
            cases.append(Case(bucket, forged, mask, target,
                              f"{cameras[target_cam]}/{target_path.name}",
                              f"{cameras[donor_cam]}/{donor_path.name}"))
    return cases


def best_mcc(mask: np.ndarray, score: np.ndarray) -> float:
    """The best Matthews correlation over every threshold of ``score`` (high = forged)."""
    fpr, tpr, _ = roc_curve(mask.ravel(), score.ravel())
    p, n = float(mask.sum()), float(mask.size - mask.sum())
    tp, fp = tpr * p, fpr * n
    fn, tn = p - tp, n - fp
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    mcc = np.where(den > 0, (tp * tn - fp * fn) / np.where(den > 0, den, 1), 0.0)
    return float(mcc.max())


def learned_map(detector: Detector, image: np.ndarray, mode: str, parts: str) -> np.ndarray:
    """The learned map alone (no evidence sources) in ``mode`` with ``blind_parts``."""
    config = dataclasses.replace(detector.config, evidence=(), blind_parts=parts)
    return dataclasses.replace(detector, config=config).score_image(image, mode).raw


@contextlib.contextmanager
def true_host(mask: np.ndarray) -> Iterator[None]:
    """Blind mode's two parts replaced by the truth (the host is where ``mask`` is False):
    what the refit variant would give if it found the parts exactly."""
    found = two_part.find_two_parts

    def oracle(detector, canvas, g, cache, keep, settings=None):
        period = detector.config.position_period
        host = {}
        for t, _ in cache:
            m = np.zeros((t.y1 - t.y0, t.x1 - t.x0), bool)
            h, w = canvas.inside(t)
            m[:h, :w] = ~mask[t.y0:t.y0 + h, t.x0:t.x0 + w]
            host[t] = mask_to_blocks(torch.from_numpy(m), period)
        return two_part.TwoParts(host, {}, period, float("inf"))

    two_part.find_two_parts = oracle
    try:
        yield
    finally:
        two_part.find_two_parts = found


def case_maps(detector: Detector, image: np.ndarray) -> tuple[dict[str, np.ndarray], bool]:
    """Every method's raw map of ``image``, and whether two parts won in blind mode."""
    learned = {(mode, parts): learned_map(detector, image, mode, parts)
               for mode, parts in {(m[1], m[2]) for m in METHODS}}
    two_won = not np.array_equal(learned["blind", "one"], learned["blind", "auto"])
    maps = {}
    # the sources' one-part maps, computed once for every fused method
    deviations = evidence_deviations(image, detector.config)
    for name, mode, parts, fused, weight, statistics in METHODS:
        raw = learned[mode, parts]
        config = dataclasses.replace(detector.config, learned_weight=weight,
                                     statistics_parts=statistics)
        maps[name] = fuse(raw.copy(), image, config, deviations).raw if fused else raw
    return maps, two_won


def measure(detector: Detector, cases: list[Case]) -> list[dict]:
    """One row per case: each method's AUC and best MCC, and where two parts won."""
    rows = []
    for case in tqdm(cases, desc="large splices"):
        maps, two_won = case_maps(detector, case.forged)
        with true_host(case.mask):
            maps[ORACLE] = learned_map(detector, case.forged, "blind", "auto")
        pristine_two = not np.array_equal(
            learned_map(detector, case.pristine, "blind", "one"),
            learned_map(detector, case.pristine, "blind", "auto"))
        row = {"bucket": case.bucket, "area": float(case.mask.mean()), "target": case.target,
               "donor": case.donor, "two_parts": two_won, "pristine_two_parts": pristine_two,
               "statistics_two_parts": find_noise_parts(case.forged) is not None,
               "pristine_statistics_two_parts": find_noise_parts(case.pristine) is not None}
        for name, m in maps.items():
            row[f"auc {name}"] = float(roc_auc_score(case.mask.ravel(), m.ravel()))
            row[f"mcc {name}"] = best_mcc(case.mask, m)
            row[f"mcc either {name}"] = max(row[f"mcc {name}"], best_mcc(case.mask, -m))
        rows.append(row)
    return rows


def to_markdown(rows: list[dict], command: str, model: str, cameras: str) -> str:
    out = ["## Large foreign regions (two cameras, 5-50 % of the image)", "",
           f"Command: `{command}` (`make large-splices`)", "",
           f"Model: `{model}`; cameras: {cameras}. Each forged image pastes an object-shaped "
           "region of a photo of one camera model into a photo of another; both photos are "
           f"downscaled by {SCALE} first (no JPEG grid to help), the region pasted at a random "
           "offset; real and simulated pairs alternate. Pixel AUC (and max(AUC, 1 - AUC), "
           "either polarity) and best-threshold MCC (and either polarity) of the raw maps, "
           "mean over the images of each bucket. Two parts: how many forged images (and "
           "their unforged targets) blind mode explained as two cameras. Two-part settings "
           f"(chosen on the validation cameras): `{two_part.SETTINGS}`. *Two-part "
           "statistics* (`statistics_parts=\"auto\"`): the noise level and spectrum take "
           "their norm from the larger of two parts of the image's own noise descriptors "
           f"(`noisead.anomaly.noise_parts`, `{NOISE_PART_SETTINGS}`); *evidence sources "
           "alone*: the learned map left out of the fusion (`learned_weight` 0). The last "
           "row refits blind mode's Gaussians on the true host (the mask known): the most "
           "that finding the two parts and refitting on the larger one could give.", ""]
    for bucket in BUCKETS:
        sub = [r for r in rows if r["bucket"] == bucket]
        if not sub:
            continue
        wins = sum(r["two_parts"] for r in sub)
        false_wins = sum(r["pristine_two_parts"] for r in sub)
        noise_wins = sum(r["statistics_two_parts"] for r in sub)
        noise_false = sum(r["pristine_statistics_two_parts"] for r in sub)
        out += [f"**{bucket:.0%} of the area** ({len(sub)} forged images; blind mode's two "
                f"parts won on {wins}, and on {false_wins} of their unforged targets; the "
                f"statistics' two parts on {noise_wins} and {noise_false})", "",
                "| method | AUC | AUC either | MCC | MCC either |", "|---|---|---|---|---|"]
        for name in [m[0] for m in METHODS] + [ORACLE]:
            auc = np.array([r[f"auc {name}"] for r in sub])
            mcc = np.array([r[f"mcc {name}"] for r in sub])
            mcc2 = np.array([r[f"mcc either {name}"] for r in sub])
            out.append(f"| {name} | {auc.mean():.3f} | {np.maximum(auc, 1 - auc).mean():.3f} "
                       f"| {mcc.mean():.3f} | {mcc2.mean():.3f} |")
        out.append("")
    return "\n".join(out) + "\n"


def camera_pools(which: str, shared: Path, data: Path) -> list[tuple[Path, tuple[str, ...]]]:
    """The real and the simulated camera pool of the test or the validation models."""
    if which == "test":
        return [(shared / "cameras", TEST_REAL), (data / "simcams", TEST_SIM)]
    return [(shared / "cameras", VAL_REAL), (data / "simcams-valunseen", VAL_SIM)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path("../shared"))
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--cameras", choices=("test", "validation"), default="test")
    ap.add_argument("--model", default=None, help="shipped model name or detector path")
    ap.add_argument("--per-bucket", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="markdown file to update")
    args = ap.parse_args(argv)
    pools = camera_pools(args.cameras, args.shared, args.data)
    rows = measure(load_detector(args.model), build_cases(pools, args.per_bucket, args.seed))
    names = ", ".join(c for _, cams in pools for c in cams)
    md = to_markdown(rows, shlex.join(["python", *sys.argv]), args.model or "default",
                     f"{args.cameras} ({names})")
    print(md)
    if args.out:
        replace_doc_section(args.out, "large-splices", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
