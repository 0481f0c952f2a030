"""Reading a dataset's folders: image files, stems, sample names, case-insensitive folders."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

from noisead.data.datasets.samples import (
    MASK_NONE,
    MASK_NONZERO,
    MASK_THRESHOLD,
    ForgeryDataset,
    Sample,
)
from noisead.io import IMAGE_EXTENSIONS

__all__ = ["child_dir", "finish", "list_images", "lossless_or_jpeg", "nested_dir",
           "pristine_samples", "sample_name", "stem_index"]

_JPEG_EXTENSIONS = frozenset({".jpg", ".jpeg"})


def _is_image(path: Path) -> bool:
    return (
        path.is_file()
        and not path.name.startswith(".")
        and (path.suffix.lower() in IMAGE_EXTENSIONS)
    )


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (not recursive), sorted for a stable order."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if _is_image(p)), key=lambda p: p.name)


def stem_index(folder: Path) -> dict[str, Path]:
    """Map lower-case stem -> image file in ``folder``; the first by name wins on a clash."""
    index: dict[str, Path] = {}
    for path in list_images(folder):
        index.setdefault(path.stem.lower(), path)
    return index


def sample_name(base: Path, path: Path) -> str:
    try:
        rel = path.relative_to(base)
    except ValueError:
        rel = path
    return rel.with_suffix("").as_posix()


def lossless_or_jpeg(mask_path: Path) -> str:
    """``nonzero`` for lossless masks, ``threshold`` for JPEG ones (whose ringing is not tamper)."""
    return MASK_THRESHOLD if mask_path.suffix.lower() in _JPEG_EXTENSIONS else MASK_NONZERO


def child_dir(parent: Path, name: str) -> Path | None:
    """``parent/name`` if it is a directory, matching the name case-insensitively."""
    direct = parent / name
    if direct.is_dir():
        return direct
    if not parent.is_dir():
        return None
    lowered = name.lower()
    for child in sorted(parent.iterdir()):
        if child.is_dir() and child.name.lower() == lowered:
            return child
    return None


def nested_dir(parent: Path, name: str) -> Path | None:
    """``parent/name``, or ``parent/name/name`` where an archive was unpacked one level deep."""
    outer = child_dir(parent, name)
    if outer is None:
        return None
    inner = child_dir(outer, name)
    if inner is not None and not list_images(outer) and list_images(inner):
        return inner
    return outer


def finish(
    name: str, kind: str, root: Path, samples: list[Sample], skipped: list[Path]
) -> ForgeryDataset:
    if not samples:
        raise ValueError(f"no {kind} samples found under {root}")
    if skipped:
        warnings.warn(
            f"{name}: skipped {len(skipped)} image(s) without a usable ground truth "
            f"(first: {skipped[0]}); see ForgeryDataset.skipped",
            stacklevel=3,
        )
    return ForgeryDataset(name, root, samples, kind=kind, skipped=skipped)


def pristine_samples(base: Path, paths: Iterable[Path]) -> list[Sample]:
    return [Sample(p, None, sample_name(base, p), False, MASK_NONE) for p in paths]
