"""The fusion ablation of docs/BENCHMARKS.md (``make ablation``; issue 19).

Scores every test set under every condition with the shipped default's fusion variants
(:mod:`noisead.evaluate.ablation`: learned alone, noise statistics alone, JPEG lattice
alone, fused without the learned map, fused), from one analysis per image, each variant
calibrated on the default's own pristine calibration crops; then, on the validation sets
only, the fused map with other weights of the learned map. With ``--doc`` the tables
replace the ``<!-- ablation:begin -->`` ... ``<!-- ablation:end -->`` section.

    python scripts/ablation_table.py --doc docs/BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from noisead.anomaly.fit import split_calibration
from noisead.anomaly.recipe import detector_pristine_images
from noisead.evaluate.ablation import FUSION_VARIANTS, prepare_variants
from noisead.evaluate.ablation_report import (
    TABLE_KEYS,
    WEIGHT_KEYS,
    format_ablation,
    format_weights,
)
from noisead.evaluate.config import WEB_LIKE
from noisead.evaluate.report import replace_doc_section
from noisead.evaluate.run import EvalConfig, evaluate
from noisead.infer import load_detector

VARIANT = {v.key: v for v in FUSION_VARIANTS}
TEST_SETS = "splice-png,splice-jpeg,generative-png,generative-jpeg,cvip-copymove"


def _summary(results: dict) -> dict:
    return {(r["condition"], r["method"]): r for r in results["summary"]}


def _calibration_crops(detector, roots: list[Path]) -> list:
    """The pristine crops the detector's own calibration was fitted on (as ``fit``)."""
    try:
        images = detector_pristine_images(detector, roots)
    except ValueError as exc:
        raise SystemExit(f"{exc} under {', '.join(map(str, roots))}") from exc
    cal_idx, fit_idx = split_calibration(len(images), 0.25, detector.config.seed)
    return [images[i] for i in (cal_idx if len(cal_idx) else fit_idx[:8])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--shared", type=Path, default=Path("../shared"))
    ap.add_argument("--out", type=Path, default=Path("runs/ablation"))
    ap.add_argument("--model", default="default")
    ap.add_argument("--sets", default=TEST_SETS)
    ap.add_argument("--max-images", type=int, default=12)
    ap.add_argument("--jpeg", default="100,95,90")
    ap.add_argument("--resize", default="0.8,0.9,1.1,1.2")
    ap.add_argument("--val", default="val,val-unseen",
                    help="validation folders under DATA for the learned weight ('' : none)")
    ap.add_argument("--doc", type=Path, default=None)
    args = ap.parse_args()
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)

    detector = load_detector(args.model)
    crops = _calibration_crops(detector, [args.shared / "cameras", args.data / "simcams"])
    prepare_variants(detector, crops, FUSION_VARIANTS)

    sections = []
    for name in args.sets.split(","):
        root = (args.shared / "forgeries" / name if name == "cvip-copymove"
                else args.data / "bench" / name)
        config = EvalConfig(methods=tuple(VARIANT[k].method_name for k in TABLE_KEYS),
                            jpeg=(None, *(int(q) for q in args.jpeg.split(","))),
                            resize=(None, *(float(s) for s in args.resize.split(","))),
                            web=True, fixed_threshold=0.99, max_images=args.max_images,
                            n_figures=0)
        results = evaluate(root, args.out / name, detector, config)
        sections.append(format_ablation(name, _summary(results), results["conditions"],
                                        results["dataset"]["n_forged"],
                                        results["dataset"]["n_pristine"]))

    weights_md, preferred = "", None
    val_results = {}
    for folder in filter(None, args.val.split(",")):
        for root in sorted(p for p in (args.data / folder).iterdir() if p.is_dir()):
            config = EvalConfig(methods=tuple(VARIANT[k].method_name
                                              for k in ("learned-alone", *WEIGHT_KEYS)),
                                fixed_threshold=0.99, n_figures=0)
            results = evaluate(root, args.out / f"{folder}-{root.name}", detector, config)
            val_results[f"{folder}/{root.name}"] = _summary(results)
    if val_results:
        weights_md, preferred = format_weights(val_results)

    body = [f"Command: `{command}` (`make ablation`).", "",
            f"The shipped default ({args.model}, its configured mode), one analysis per image "
            "for every variant, each variant calibrated on the default's own pristine "
            "calibration crops. Test sets as in tables 1-4: the first "
            f"{args.max_images} forged and {args.max_images} pristine images of each "
            "(the CVIP copy-move set has no pristine images: no detection AUC). "
            "Conditions: clean, the forged image recompressed (JPEG 100/95/90) or resized "
            f"(0.8-1.2), and {WEB_LIKE.label}: per image, a size drawn uniformly in "
            f"{WEB_LIKE.megapixels[0]:g}-{WEB_LIKE.megapixels[1]:g} MP and a quality in "
            f"{WEB_LIKE.quality[0]}-{WEB_LIKE.quality[1]} from a seed of its own pixels; "
            f"downscaled (Lanczos) by min({WEB_LIKE.max_scale:g}, sqrt(size / its size)) — "
            "our 512 x 512 test crops are 0.26 MP, so they end at 0.10-0.21 MP, the "
            "1024 x 768 copy-moves at 0.10-0.50 MP — then saved as a 4:2:0 JPEG; the mask "
            "resized with nearest neighbour."]
    for section in sections:
        body += ["", section]
    if weights_md:
        body += ["", "#### The learned map's weight, on the validation sets only "
                 "(clean; pixel AUC / best-threshold MCC)", "",
                 "The fused map with the learned map's robust z times the weight before the "
                 "maximum (0: fused without learned; 1: the shipped default), each weight "
                 "calibrated on its own. Sets: " + ", ".join(val_results) + ".", "",
                 weights_md, "",
                 f"Validation prefers weight **{preferred:g}** (best mean pixel AUC, ties by "
                 "MCC, then the lower weight). The shipped model is unchanged "
                 "(learned_weight 1)."]
    text = "\n".join(body)
    print(text)
    if args.doc:
        replace_doc_section(args.doc, "ablation", text)


if __name__ == "__main__":
    main()
