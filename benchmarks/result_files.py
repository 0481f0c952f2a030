"""Write time and size of each kind of result file on a 12 MP photo (``make bench-outputs``).

Why: ``noisead analyze --outputs`` chooses which files each image gets, and the default set
must not make a large batch pay for files few people read. The photo is a 4096 x 3072
mosaic of twelve 1024 x 1024 camera crops of ``../shared/cameras`` (twelve camera models,
so the maps carry real, varied noise); it is analysed once with the default model, then
each kind is written alone (best of ``--repeat``), as ``write_outputs`` writes it. Two
rejected alternatives are timed beside them: the ``.npz`` compressed, and the 16-bit PNG
at zlib's default level.

    .venv/bin/python benchmarks/result_files.py --out docs/BENCHMARKS.md

The markdown replaces the section between ``<!-- result-files:begin -->`` and
``<!-- result-files:end -->`` in ``--out``.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from noisead.batch.outputs import (
    DEFAULT_OUTPUTS,
    OUTPUT_CHOICES,
    OutputOptions,
    heatmap16,
    npz_arrays,
    write_outputs,
)
from noisead.evaluate.report import replace_doc_section
from noisead.infer import Analysis, analyze, load_detector
from noisead.io import load_image

REPO = Path(__file__).resolve().parents[1]
SIDE, COLS, ROWS = 1024, 4, 3


def mosaic(cameras: Path) -> np.ndarray:
    """A COLS x ROWS mosaic of the first image of the first COLS * ROWS camera folders."""
    folders = [f for f in sorted(cameras.iterdir()) if f.is_dir() and any(f.glob("*.jpg"))]
    tiles = [load_image(sorted(f.glob("*.jpg"))[0]).pixels[:SIDE, :SIDE]
             for f in folders[:COLS * ROWS]]
    if len(tiles) < COLS * ROWS or any(t.shape[:2] != (SIDE, SIDE) for t in tiles):
        raise SystemExit(f"need {COLS * ROWS} camera folders with {SIDE}px images in {cameras}")
    return np.concatenate([np.concatenate(tiles[r * COLS:(r + 1) * COLS], axis=1)
                           for r in range(ROWS)], axis=0)


def best_of(repeat: int, write: Callable[[], None]) -> tuple[float, float]:
    """The least (CPU seconds, wall seconds) of ``repeat`` calls. CPU time is the figure
    to compare on a shared machine: waiting for a core does not count in it."""
    cpu, wall = [], []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        write()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
    return min(cpu), min(wall)


Row = tuple[str, tuple[float, float], int]


def measure(analysis: Analysis, image: np.ndarray, repeat: int) -> list[Row]:
    """(what, (CPU s, wall s), bytes) for each kind alone, the default set and all."""
    rows = []
    sets = [(kind, frozenset({kind, "json"})) for kind in OUTPUT_CHOICES if kind != "json"]
    sets += [("default set", DEFAULT_OUTPUTS), ("all", frozenset(OUTPUT_CHOICES))]
    for label, kinds in sets:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            seconds = best_of(repeat, lambda kinds=kinds, out=out: write_outputs(
                analysis, image, out, "photo", {}, OutputOptions(kinds)))
            size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()
                       and p.name != "photo.json")
        rows.append((label, seconds, size))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "photo.npz"
        seconds = best_of(1, lambda: np.savez_compressed(path, **npz_arrays(analysis)))
        rows.append(("npz, compressed (not used)", seconds, path.stat().st_size))
    buffer = io.BytesIO()
    seconds = best_of(repeat, lambda: (buffer.seek(0), buffer.truncate(),
                                       Image.fromarray(heatmap16(analysis.heatmap)).save(
                                           buffer, format="PNG")))
    rows.append(("heatmap16 at zlib's default level (not used)", seconds, len(buffer.getvalue())))
    return rows


def markdown(rows: list[Row], analysis_s: float, shape: tuple[int, int]) -> str:
    h, w = shape
    lines = ["## Result files: write time and size (`benchmarks/result_files.py`)", "",
             f"One {w} x {h} photo ({w * h / 1e6:.1f} MP; a mosaic of twelve camera crops), "
             f"analysed once with the default model in {analysis_s:.0f} s; then each kind "
             "of file written alone by `write_outputs` (seconds: the least of the "
             "repeats; MB: the files of that kind, thumbnails with the overlay, without "
             "the JSON). Measured on this project's shared 2-core development machine "
             "while other work ran: the CPU seconds are the figures to compare (wall "
             "time includes waiting for a core), and only with each other.", "",
             "| files | CPU s | wall s | MB |", "|---|---:|---:|---:|"]
    lines += [f"| {label} | {cpu:.2f} | {wall:.2f} | {size / 1e6:.1f} |"
              for label, (cpu, wall), size in rows]
    lines += ["", "The default set (`--outputs json,heatmap,mask,overlay,fingerprint`) is "
              "what a person looks at. The `.npz` is cheap to write but is by far the "
              "largest file, so it is opt-in (`--outputs npz` or `all`); it is written "
              "uncompressed because compressing noise-like float maps saves only part of "
              "the bytes for many times the CPU time. The 16-bit PNG is written at zlib "
              "level 1 for the same reason."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cameras", type=Path, default=REPO.parent / "shared" / "cameras")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="markdown file to update")
    args = parser.parse_args()
    image = mosaic(args.cameras)
    t0 = time.perf_counter()
    analysis = analyze(image, load_detector())
    analysis_s = time.perf_counter() - t0
    text = markdown(measure(analysis, image, args.repeat), analysis_s, image.shape[:2])
    print(text)
    if args.out is not None:
        replace_doc_section(args.out, "result-files", text)
        print(f"written to {os.fspath(args.out)}")


if __name__ == "__main__":
    main()
