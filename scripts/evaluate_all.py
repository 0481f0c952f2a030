"""Run ``noisead evaluate`` over every benchmark set and gather the tables (``make evaluate``).

Sets: the test benchmarks built by ``scripts/build_benchmarks.py`` (held-out cameras) and
the real CVIP copy-move set of ../shared. Each set's outputs go to ``OUT/<set>/``; the
markdown of all sets is printed and, with ``--doc``, written between the markers
``<!-- eval:begin -->`` and ``<!-- eval:end -->`` of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from noisead.evaluate.report import replace_doc_section
from noisead.evaluate.run import EvalConfig, evaluate, format_markdown


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--shared", type=Path, default=Path("../shared"))
    ap.add_argument("--out", type=Path, default=Path("runs/eval"))
    ap.add_argument("--model", default=None)
    ap.add_argument("--bench", type=Path, default=None,
                    help="folder of benchmark sets (default: DATA/bench, the test sets; "
                         "DATA/val-unseen for model selection)")
    ap.add_argument("--sets", default="splice-png,splice-jpeg,generative-png,generative-jpeg,"
                    "cvip-copymove")
    ap.add_argument("--methods", default="noisead-blind,noisead-reference,noi1,ela,"
                    "noise_residual_variance")
    ap.add_argument("--jpeg", default="100,95,90")
    ap.add_argument("--resize", default="0.8,0.9,1.1,1.2")
    ap.add_argument("--sweep-sets", default="splice-jpeg,generative-jpeg",
                    help="sets that get the robustness sweeps (others: clean only)")
    ap.add_argument("--max-images", type=int, default=None)
    ap.add_argument("--fixed-threshold", type=float, default=0.99)
    ap.add_argument("--doc", type=Path, default=None)
    args = ap.parse_args()
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    sections = []
    for name in args.sets.split(","):
        root = (args.shared / "forgeries" / name if name == "cvip-copymove"
                else (args.bench or args.data / "bench") / name)
        sweep = name in args.sweep_sets.split(",")
        config = EvalConfig(
            methods=tuple(args.methods.split(",")),
            jpeg=(None, *(int(q) for q in args.jpeg.split(","))) if sweep else (None,),
            resize=(None, *(float(s) for s in args.resize.split(","))) if sweep else (None,),
            fixed_threshold=args.fixed_threshold, max_images=args.max_images)
        results = evaluate(root, args.out / name, args.model, config)
        sections.append(f"### {name}\n\n{format_markdown(results)}")
    body = f"Command: `{command}`\n\n" + "\n\n".join(sections)
    print(body)
    if args.doc:
        replace_doc_section(args.doc, "eval", body)


if __name__ == "__main__":
    main()
