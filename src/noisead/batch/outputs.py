"""The files of one result: heatmap, mask, overlay and fingerprint PNGs, thumbnails, JSON.

Every file is written atomically (``noisead.io``), and the JSON last: it is the durable
record of the result (what was analysed, with which model and version, and what was
found), so a JSON on disk means the PNGs beside it are complete.
"""

from __future__ import annotations

import os
import re
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from noisead.batch.naming import OUTPUT_KINDS, THUMB_KINDS, THUMBS_DIR
from noisead.infer import Analysis, colorize, fingerprint_view, overlay
from noisead.io import ensure_writable_dir, save_json, save_png, to_uint8

THUMB_SIDE = 256


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


def write_outputs(analysis: Analysis, image: np.ndarray, out_dir: str | Path, stem: str,
                  record: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write heatmap, mask, overlay, fingerprint PNGs, thumbnails and a JSON (atomically).

    ``record`` (e.g. the input's path, size and SHA-256, the noisead version) is added to
    the JSON beside the analysis summary. Returns the paths by kind.
    """
    out = ensure_writable_dir(out_dir)
    paths = {k: out / f"{stem}.{k}.png" for k in OUTPUT_KINDS}
    save_png(paths["heatmap"], colorize(analysis.heatmap))
    save_png(paths["mask"], analysis.mask)
    overlay_rgb = overlay(image, analysis.heatmap, analysis.mask)
    save_png(paths["overlay"], overlay_rgb)
    save_png(paths["fingerprint"], fingerprint_view(analysis.fingerprint))
    paths["json"] = out / f"{stem}.json"
    thumbs = save_thumbnails(out, stem, image, overlay_rgb)
    save_json(paths["json"], {**(record or {}), **analysis.summary(),
                              "files": {k: v.name for k, v in paths.items()},
                              "thumbnails": thumbs})
    return paths


def write_unjudged(out_dir: Path, stem: str, summary: dict[str, Any],
                   record: dict[str, Any] | None = None) -> Path:
    """The JSON of an input that was judged without an analysis (e.g. smaller than one
    patch): no images, only the decision and why."""
    path = out_dir / f"{stem}.json"
    save_json(path, {**(record or {}), **summary, "files": {"json": path.name},
                     "thumbnails": {}})
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
