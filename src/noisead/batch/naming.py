"""Output names: one stem per input, never handed to two inputs.

Every result of an input is written as ``<stem>.<kind>.png``, ``<stem>.npz``,
``<stem>.json`` and ``thumbs/<stem>.<kind>.png``. Two inputs that share a file name
(``a/x.jpg``, ``b/x.jpg``) or whose names collide with a numbered stem (``c/x-1.jpg``)
must still get distinct stems, and a stem given to an input in an earlier run stays its
own: otherwise one input's result overwrites another's, or is handed out as another's.
The run keeps the stems in its state database; this module makes candidate names and
says whether one is free on disk.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

#: The PNGs of one result (beside ``<stem>.json``).
OUTPUT_KINDS = ("heatmap", "mask", "overlay", "fingerprint")
#: The data files a result may have besides (``--outputs``), by kind: file name suffix.
DATA_FILES = {"heatmap16": "heatmap16.png", "npz": "npz"}
#: The thumbnails of one result, in ``thumbs/``.
THUMB_KINDS = ("image", "overlay")
THUMBS_DIR = "thumbs"

#: Longest stem, in UTF-8 bytes: leaves room in a 255-byte file name for the longest
#: suffix and the atomic writer's temporary name (``.<name>.<12 hex>.tmp``).
MAX_STEM_BYTES = 180

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def base_stem(path: Path) -> str:
    """The stem an input would like: its file name without the extension, with control
    characters and undecodable bytes replaced by ``_`` and cut to ``MAX_STEM_BYTES``."""
    stem = path.stem.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    stem = _UNSAFE.sub("_", stem.replace("\ufffd", "_")).strip() or "image"
    if stem in (".", ".."):
        stem = "image"
    raw = stem.encode("utf-8")
    if len(raw) > MAX_STEM_BYTES:
        stem = raw[:MAX_STEM_BYTES].decode("utf-8", "ignore")
    return stem


def candidates(path: Path) -> Iterator[str]:
    """``x``, ``x-1``, ``x-2``, ... for an input named ``x.<ext>``."""
    stem = base_stem(path)
    yield stem
    n = 1
    while True:
        yield f"{stem}-{n}"
        n += 1


def output_files(out_dir: Path, stem: str) -> dict[str, Path]:
    """Every file a result named ``stem`` has or may have in ``out_dir``, by kind."""
    files = {kind: out_dir / f"{stem}.{kind}.png" for kind in OUTPUT_KINDS}
    files.update({kind: out_dir / f"{stem}.{suffix}" for kind, suffix in DATA_FILES.items()})
    files["json"] = out_dir / f"{stem}.json"
    for kind in THUMB_KINDS:
        files[f"thumb_{kind}"] = out_dir / THUMBS_DIR / f"{stem}.{kind}.png"
    return files


def taken_on_disk(out_dir: Path, stem: str) -> bool:
    """Whether any output file of ``stem`` already exists (a result the database does not
    know of, e.g. from a run whose database was deleted, must not be overwritten)."""
    return any(p.exists() or p.is_symlink() for p in output_files(out_dir, stem).values())
