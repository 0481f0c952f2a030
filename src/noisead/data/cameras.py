"""Camera-labelled image folders: ``ROOT/<camera-model>/<image>``.

The extractor learns camera-model fingerprints, so its training data is grouped by camera
model. This module lists such folders, holds back a share of each model's images for
validation, and sorts an unsorted folder of photos into that layout from their EXIF make
and model.
"""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from noisead.io import IMAGE_EXTENSIONS

#: The same set as :data:`noisead.io.IMAGE_EXTENSIONS`, under the name the command line's
#: input scan imports.
IMAGE_SUFFIXES = IMAGE_EXTENSIONS


def list_camera_images(*roots: str | Path, min_images: int = 2) -> dict[str, list[Path]]:
    """Map camera model → sorted image paths, over one or more ``ROOT/<model>/`` folders.

    Models with fewer than ``min_images`` images are dropped: a model needs two images to
    form a positive pair. The same model name in two roots is kept apart by prefixing
    the root's name, since a simulated "camera-03" is not a real one.
    """
    out: dict[str, list[Path]] = {}
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"camera folder not found: {root}")
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            files = sorted(p for p in sub.iterdir()
                           if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if len(files) < min_images:
                continue
            name = sub.name if sub.name not in out else f"{root.name}/{sub.name}"
            out[name] = files
    if not out:
        raise ValueError(f"no camera folders with >= {min_images} images under "
                         f"{', '.join(map(str, roots))}")
    return out


def split_images(cameras: dict[str, list[Path]], fraction: float, seed: int = 0,
                 min_keep: int = 2) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    """Hold back a fraction of each model's images (for validation of the same models)."""
    rng = random.Random(seed)
    train, held = {}, {}
    for name in sorted(cameras):
        files = list(cameras[name])
        rng.shuffle(files)
        k = min(int(round(fraction * len(files))), len(files) - min_keep)
        if k >= 2:
            held[name] = sorted(files[:k])
            train[name] = sorted(files[k:])
        else:
            train[name] = sorted(files)
    return train, held


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text.strip()).strip("-") or "unknown"


def exif_camera_model(path: str | Path) -> str | None:
    """``"<Make>-<Model>"`` from EXIF (tags 271 and 272), or None when absent."""
    try:
        with Image.open(path) as im:
            exif = im.getexif()
    except (UnidentifiedImageError, OSError):
        return None
    make, model = str(exif.get(271, "")).strip(), str(exif.get(272, "")).strip()
    if not make and not model:
        return None
    if make and model.lower().startswith(make.lower().split()[0]):
        return _slug(model)
    return _slug(f"{make} {model}")


def sort_by_exif(source: str | Path, destination: str | Path, *, move: bool = False
                 ) -> dict[str, list[str]]:
    """Copy (or move) photos into ``destination/<Make-Model>/`` by their EXIF.

    Files without EXIF make/model go to the ``unknown`` key of the returned summary and
    are left where they are. Existing files in the destination are never overwritten.
    """
    source, destination = Path(source), Path(destination)
    summary: dict[str, list[str]] = {}
    for path in sorted(p for p in source.rglob("*") if p.is_file()
                       and p.suffix.lower() in IMAGE_EXTENSIONS):
        model = exif_camera_model(path)
        if model is None:
            summary.setdefault("unknown", []).append(str(path))
            continue
        target = destination / model / path.name
        if target.exists():
            summary.setdefault("skipped-existing", []).append(str(path))
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.move if move else shutil.copy2)(path, target)
        summary.setdefault(model, []).append(str(target))
    return summary
