"""The files of one result: the visual PNGs, the 16-bit heatmap, the arrays, thumbnails, JSON.

Which files are written is the run's choice (:class:`OutputOptions`, ``noisead analyze
--outputs``): a person looks at the PNGs; a researcher scoring noisead with their own
metrics wants the float maps (``<stem>.npz``) or a lossless 16-bit heatmap
(``<stem>.heatmap16.png``), and a large batch pays for every file it writes.

Every file is written atomically (``noisead.io``), and the JSON last: it is the durable
record of the result (what was analysed, with which model and version, and what was
found), so a JSON on disk means the files beside it are complete.
"""

from __future__ import annotations

import functools
import io
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from noisead.batch.naming import THUMB_KINDS, THUMBS_DIR, output_files
from noisead.batch.records import result_document
from noisead.batch.state import InputRecord
from noisead.batch.summary import atomic_binary_file
from noisead.infer import Analysis, colorize, fingerprint_view, overlay
from noisead.io import atomic_write_bytes, ensure_writable_dir, save_json, save_png, to_uint8
from noisead.runtime import run_concurrently

THUMB_SIDE = 256

#: Every kind of file a result can have (the JSON, which names the others, is written last).
OUTPUT_CHOICES = ("heatmap", "mask", "overlay", "fingerprint", "heatmap16", "npz", "json")
#: What ``noisead analyze`` writes unless ``--outputs`` says otherwise: the JSON and the
#: PNGs a person looks at. The arrays are opt-in: the ``.npz`` takes 14 bytes a pixel,
#: several times all the PNGs together (docs/BENCHMARKS.md, "Result files").
DEFAULT_OUTPUTS = frozenset({"json", "heatmap", "mask", "overlay", "fingerprint"})
#: Arrays in ``<stem>.npz``, for the README and the tests.
NPZ_KEYS = ("heatmap", "raw", "fingerprint", "mask", "score", "image_statistic")


def parse_output_kinds(text: str | Iterable[str]) -> frozenset[str]:
    """``"heatmap,npz"`` (or an iterable of kinds; ``"all"`` for every kind) as a set of
    ``OUTPUT_CHOICES``. The JSON is always included: it is the record of the result."""
    words = text.split(",") if isinstance(text, str) else list(text)
    kinds = {w.strip() for w in words if w.strip()}
    if "all" in kinds:
        return frozenset(OUTPUT_CHOICES)
    unknown = sorted(kinds - set(OUTPUT_CHOICES))
    if unknown:
        raise ValueError(f"unknown output kind(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(OUTPUT_CHOICES)} or all")
    return frozenset(kinds | {"json"})


@dataclass(frozen=True)
class OutputOptions:
    """What a run writes for each result.

    ``kinds``: a subset of ``OUTPUT_CHOICES``. ``provenance``: the JSON's
    ``records.PROVENANCE_KEYS`` (model name and SHA-256s, mode, threshold), the same for
    every image of a run (``records.model_provenance``).
    """

    kinds: frozenset[str] = DEFAULT_OUTPUTS
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def satisfied_by(self, record: InputRecord) -> bool:
        """Whether ``record``'s result has every kind of file asked for. An input judged
        without an analysis (smaller than one patch: no analysis time) has only its JSON
        and never gets more."""
        return record.seconds is None or self.kinds <= set(record.files)


def thumbnail(image: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """A uint8 RGB copy of ``image`` whose longer side is at most ``side`` pixels."""
    pil = Image.fromarray(to_uint8(image) if image.dtype != np.uint8 else image)
    pil.thumbnail((side, side), Image.Resampling.LANCZOS)
    return np.asarray(pil)


def save_thumbnails(out_dir: Path, stem: str, image: np.ndarray, overlay_rgb: np.ndarray
                    ) -> dict[str, str]:
    """Write ``thumbs/<stem>.image.png`` and ``thumbs/<stem>.overlay.png``; relative paths."""
    names = {}
    for kind, arr in zip(THUMB_KINDS, (image, overlay_rgb), strict=True):
        rel = f"{THUMBS_DIR}/{stem}.{kind}.png"
        save_png(out_dir / rel, thumbnail(arr))
        names[kind] = rel
    return names


def heatmap16(heatmap: np.ndarray) -> np.ndarray:
    """The calibrated heatmap as 16-bit grey levels: ``round(heatmap * 65535)``."""
    return np.round(np.clip(heatmap, 0.0, 1.0) * 65535.0).astype(np.uint16)


def save_heatmap16(path: Path, heatmap: np.ndarray) -> None:
    """Write :func:`heatmap16` as a greyscale 16-bit PNG, at zlib level 1: much faster
    than the default level for a few more bytes (docs/BENCHMARKS.md, "Result files")."""
    buffer = io.BytesIO()
    Image.fromarray(heatmap16(heatmap)).save(buffer, format="PNG", compress_level=1)
    atomic_write_bytes(path, buffer.getvalue())


def npz_arrays(analysis: Analysis) -> dict[str, np.ndarray]:
    """What ``<stem>.npz`` holds: the calibrated ``heatmap`` (float32), the uncalibrated
    ``raw`` map, the ``fingerprint``, the ``mask`` (bool), the calibrated ``score`` (NaN
    when the image could not be judged, as the JSON's null) and the uncalibrated
    ``image_statistic``; with an evidence map, ``evidence`` (uint8 codes) and
    ``evidence_names`` (the statistic each code stands for)."""
    judged = analysis.verdict is None or analysis.verdict.score is not None
    stat = analysis.image_statistic
    arrays = {"heatmap": analysis.heatmap.astype(np.float32, copy=False),
              "raw": analysis.raw.astype(np.float32, copy=False),
              "fingerprint": analysis.fingerprint.astype(np.float32, copy=False),
              "mask": analysis.mask.astype(bool, copy=False),
              "score": np.float64(analysis.score if judged else np.nan),
              "image_statistic": np.float64(np.nan if stat is None else stat)}
    if analysis.evidence is not None:
        from noisead.anomaly.evidence import EVIDENCE

        arrays["evidence"] = analysis.evidence.astype(np.uint8, copy=False)
        arrays["evidence_names"] = np.array(EVIDENCE)
    return arrays


def save_npz(path: Path, analysis: Analysis) -> None:
    """Write :func:`npz_arrays` uncompressed (compressing noise-like maps saves only part
    of the bytes for many times the CPU time: docs/BENCHMARKS.md), streamed to disk,
    atomically."""
    with atomic_binary_file(path) as fh:
        np.savez(fh, **npz_arrays(analysis))


def write_outputs(analysis: Analysis, image: np.ndarray, out_dir: str | Path, stem: str,
                  record: dict[str, Any] | None = None,
                  options: OutputOptions | None = None) -> dict[str, Path]:
    """Write the files ``options`` asks for (default :data:`DEFAULT_OUTPUTS`), the
    thumbnails with the overlay, and the JSON last, atomically.

    ``record`` (the JSON header: input path, size and SHA-256, noisead version) starts the
    JSON (:func:`noisead.batch.records.result_document`). Returns the paths by kind.
    """
    options = options or OutputOptions()
    out = ensure_writable_dir(out_dir)
    names = output_files(out, stem)
    started = time.monotonic()
    paths: dict[str, Path] = {}
    thumbs: dict[str, str] = {}

    def overlay_files(path: Path) -> None:
        overlay_rgb = overlay(image, analysis.heatmap, analysis.mask)
        save_png(path, overlay_rgb)
        thumbs.update(save_thumbnails(out, stem, image, overlay_rgb))

    writers: dict[str, Callable[[Path], None]] = {
        "heatmap": lambda path: save_png(path, colorize(analysis.heatmap)),
        "mask": lambda path: save_png(path, analysis.mask),
        "overlay": overlay_files,
        "fingerprint": lambda path: save_png(path, fingerprint_view(analysis.fingerprint)),
        "heatmap16": lambda path: save_heatmap16(path, analysis.heatmap),
        "npz": lambda path: save_npz(path, analysis),
    }
    tasks = []
    for kind in OUTPUT_CHOICES:
        if kind not in options.kinds or kind == "json":
            continue
        path = paths[kind] = names[kind]
        # the overlay (and its thumbnails) takes longest: started first
        tasks.insert(0 if kind == "overlay" else len(tasks),
                     functools.partial(writers[kind], path))
    # Each file is rendered and encoded on its own thread (libpng and NumPy release the
    # GIL); the JSON, which names them, is written once they all are.
    run_concurrently(tasks)
    paths["json"] = names["json"]
    timings = {"analysis_s": round(analysis.seconds, 3),
               "write_s": round(time.monotonic() - started, 3)}
    save_json(paths["json"], result_document(
        record or {}, options.provenance, analysis.summary(),
        image_statistic=analysis.image_statistic, timings=timings,
        files={k: v.name for k, v in paths.items()}, thumbnails=thumbs))
    return paths


def write_unjudged(out_dir: Path, stem: str, summary: dict[str, Any],
                   record: dict[str, Any] | None = None,
                   options: OutputOptions | None = None) -> Path:
    """The JSON of an input that was judged without an analysis (e.g. smaller than one
    patch): no images, only the decision and why."""
    options = options or OutputOptions()
    path = out_dir / f"{stem}.json"
    save_json(path, result_document(
        record or {}, options.provenance, summary, image_statistic=None,
        timings={"analysis_s": None, "write_s": None}, files={"json": path.name},
        thumbnails={}))
    return path


#: Temporary files of ``noisead.io.atomic_write_bytes`` (``.<name>.<12 hex>.tmp``) and
#: the write probes of ``ensure_writable_dir`` (``.noisead-write-probe-<pid>-<8 hex>``).
_LEFTOVER = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$|^\.noisead-write-probe-\d+-[0-9a-f]{8}$")


def remove_leftover_temporaries(out_dir: Path) -> int:
    """Delete the temporary files a killed run left in ``out_dir`` and its ``thumbs/``.

    Only call it while holding the folder's lock: a running writer's temporaries look the
    same. Returns how many were removed.
    """
    removed = 0
    for folder in (out_dir, out_dir / THUMBS_DIR):
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            if _LEFTOVER.match(entry.name) and entry.is_file(follow_symlinks=False):
                with suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed += 1
    return removed
