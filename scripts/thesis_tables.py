"""The thesis-shaped comparison tables of docs/BENCHMARKS.md (issue 4, item 5).

Reads the evaluation runs below (each made by ``scripts/evaluate_all.py``; the commands
are in docs/BENCHMARKS.md) and renders tables 1-4 with one row per extractor, mode and
baseline, plus the thesis' published figures (its own data, not ours). With ``--doc``
the tables replace the ``<!-- thesis:begin -->`` ... ``<!-- thesis:end -->`` section.

    python scripts/thesis_tables.py --doc docs/BENCHMARKS.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

from noisead.evaluate.compare import Source, collect_cells, format_comparison
from noisead.evaluate.report import replace_doc_section

SETS = ("splice-png", "splice-jpeg", "generative-png", "generative-jpeg", "cvip-copymove")

#: (label, run folder, method). The runs:
#: runs/eval-small: the shipped default (fused) in both modes, and the baselines;
#: runs/eval-learned: the default's DnCNN-small Gaussians alone (fusions off);
#: runs/eval-restormer: Restormer-tiny's Gaussians (refinement block + fingerprint).
SOURCES = (
    ("DnCNN-small, learned scores alone", "runs/eval-learned", "noisead-reference"),
    ("Restormer-tiny, learned scores alone", "runs/eval-restormer", "noisead-reference"),
    ("**noisead default (fused), reference**", "runs/eval-small", "noisead-reference"),
    ("noisead default (fused), blind", "runs/eval-small", "noisead-blind"),
    ("noise statistics alone", "runs/eval-small", "noise_statistics"),
    ("JPEG lattice alone", "runs/eval-small", "jpeg_lattice"),
    ("noise residual variance", "runs/eval-small", "noise_residual_variance"),
    ("NOI1 (Mahdian & Saic)", "runs/eval-small", "noi1"),
    ("ELA", "runs/eval-small", "ela"),
)

#: The thesis' figures as issue 4 quotes them (pixel AUC / MCC), on its own datasets.
PUBLISHED = {
    "thesis, DnCNN (its data)": {
        ("generative-jpeg", "clean"): "0.975 / 0.838", ("generative-png", "clean"): "0.834 / 0.545",
        ("dso-1", "clean"): "0.951 / 0.731", ("thesis", "jpeg95"): "0.682",
        ("thesis", "jpeg90"): "0.643", ("thesis", "resize0.9"): "0.657"},
    "thesis, Restormer (its data)": {
        ("generative-jpeg", "clean"): "0.952 / 0.859", ("generative-png", "clean"): "0.750 / 0.520",
        ("dso-1", "clean"): "0.968 / 0.843", ("thesis", "jpeg95"): "0.644",
        ("thesis", "jpeg90"): "0.598", ("thesis", "resize0.9"): "0.714"},
    "Noiseprint, as the thesis reports it": {
        ("generative-png", "clean"): "0.938 / 0.769", ("dso-1", "clean"): "0.926 / 0.722"},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--doc", type=Path, default=None)
    args = ap.parse_args()
    rows = {label: collect_cells(Source(label, Path(run), method), SETS)
            for label, run, method in SOURCES}
    missing = [label for label, cells in rows.items() if not cells]
    body = ("Command: `python scripts/thesis_tables.py --doc docs/BENCHMARKS.md` (after the "
            "three evaluation runs it reads; see the comments in the script).\n\n"
            + format_comparison(rows, PUBLISHED))
    if missing:
        body += "\nNot evaluated yet: " + ", ".join(missing) + "\n"
    print(body)
    if args.doc:
        replace_doc_section(args.doc, "thesis", body)


if __name__ == "__main__":
    main()
