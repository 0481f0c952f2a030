"""Which reader a dataset needs: by name (with spelling variants) or from its layout."""

from __future__ import annotations

from pathlib import Path

from noisead.data.datasets import readers
from noisead.data.datasets.listing import child_dir, list_images
from noisead.data.datasets.readers import CASIA_GT_DIRS
from noisead.data.datasets.samples import ForgeryDataset

__all__ = ["DATASET_KINDS", "detect_kind", "open_dataset"]

_READERS = {
    "folder": readers.read_folder,
    "dso1": readers.read_dso1,
    "columbia": readers.read_columbia,
    "casia2": readers.read_casia2,
    "korus": readers.read_korus,
    "imdlbenco": readers.read_imdlbenco,
}
DATASET_KINDS: tuple[str, ...] = tuple(_READERS)

_ALIASES = {
    "generic": "folder",
    "dso": "dso1",
    "casia": "casia2",
    "casiav2": "casia2",
    "casia20": "casia2",
    "realistic": "korus",
    "realistictampering": "korus",
    "imdl": "imdlbenco",
    "json": "imdlbenco",
}


def _normalize_kind(kind: str) -> str:
    key = "".join(ch for ch in kind.lower() if ch.isalnum())
    key = _ALIASES.get(key, key)
    if key not in _READERS and key != "auto":
        raise ValueError(
            f"unknown dataset kind {kind!r}; expected 'auto' or one of {DATASET_KINDS}"
        )
    return key


def detect_kind(root: Path) -> str:
    """Guess a dataset's kind from its layout, checking the most specific layouts first.

    A ``.json`` file is an IMDL-BenCo list; then DSO-1, Columbia, CASIA v2 and Korus are
    recognised by their folder names, and ``images/`` or ``pristine/`` means the generic
    layout. Raises ``ValueError`` when nothing matches.
    """
    root = Path(root)
    if root.is_file():
        if root.suffix.lower() == ".json":
            return "imdlbenco"
        raise ValueError(f"{root} is a file but not a .json list")
    if not root.is_dir():
        raise ValueError(f"{root} does not exist")
    if child_dir(root, "DSO-1") is not None or (
        root.name.lower() == "dso-1"
        and any(p.name.lower().startswith("splicing-") for p in list_images(root))
    ):
        return "dso1"
    if child_dir(root, "4cam_splc") is not None or child_dir(root, "4cam_auth") is not None:
        return "columbia"
    if child_dir(root, "Tp") is not None and (
        child_dir(root, "Au") is not None
        or any(child_dir(root, n) is not None for n in CASIA_GT_DIRS)
    ):
        return "casia2"
    subdirs = [root] + sorted(p for p in root.iterdir() if p.is_dir())
    if any(child_dir(d, "tampered-realistic") is not None for d in subdirs):
        return "korus"
    if child_dir(root, "images") is not None or child_dir(root, "pristine") is not None:
        return "folder"
    raise ValueError(
        f"cannot tell the layout of {root}: expected DSO-1/, 4cam_splc/ or 4cam_auth/, Tp/ + Au/, "
        "tampered-realistic/, images/ (+ masks/), or an IMDL-BenCo .json file"
    )


def open_dataset(root: Path, kind: str = "auto") -> ForgeryDataset:
    """Open a forgery dataset, detecting its layout when ``kind`` is ``"auto"``.

    ``kind`` is one of :data:`DATASET_KINDS` (``folder``, ``dso1``, ``columbia``, ``casia2``,
    ``korus``, ``imdlbenco``); spelling variants such as ``"DSO-1"`` or ``"CASIA"`` work too.
    """
    root = Path(root)
    key = _normalize_kind(kind)
    if key == "auto":
        key = detect_kind(root)
    return _READERS[key](root)
