"""Readers for image-forgery benchmarks: one list of samples, one way to read their masks.

Every reader returns a :class:`ForgeryDataset`: an ordered list of :class:`Sample` records
(image path, mask path or ``None``, a unique stable name, forged or pristine, and the
*mask convention* that says how the stored mask file becomes a ``bool`` array).
Listing a dataset reads directory entries only; pixels are decoded lazily, through
:func:`noisead.io.load_image` like every other user-supplied file, when
:meth:`ForgeryDataset.load_image` or :meth:`ForgeryDataset.load_mask` is called. Masks are
never resized: a mask whose size differs from its image raises ``ValueError``, because a
resized mask silently shifts every localization score.

Names are the image path relative to the dataset root (or to the JSON file's folder),
without extension, in POSIX form (``"Canon_60D/tampered-realistic/r0a4e0f4bt"``): unique
even where a dataset stores a forgery and its pristine original under the same file name
(Korus), and stable across machines.

Layouts (folder and file names are matched case-insensitively on extensions; files that
are not images, hidden files and sub-folders not named below are ignored):

``folder`` (:func:`read_folder`) -- our own benchmark builder's layout, also used by many
  public copy-move sets (CVIP in ``../shared/forgeries/cvip-copymove``)::

      <root>/images/<stem>.<ext>        forged, or pristine when no mask matches
      <root>/masks/<stem>[_mask|_gt|-mask|-gt].<ext>   nonzero = tampered
      <root>/pristine/<stem>.<ext>      optional, always pristine

``DSO-1`` (:func:`read_dso1`) -- Carvalho et al., TIFS 2013, distributed as
  ``tifs-database``; layout as read by photoholmes (``datasets/dso1.py``)::

      <root>/DSO-1/splicing-XX.png      forged
      <root>/DSO-1/normal-XX.png        pristine
      <root>/DSO-1-Fake-Images-Masks/splicing-XX.png   (or <root>/masks/)

  The masks are inverted: BLACK = tampered, white = authentic (photoholmes binarizes
  with ``mask == 0``).

``Columbia`` uncompressed (:func:`read_columbia`) -- Hsu & Chang, ICME 2006; layout from
  the dataset's page (ee.columbia.edu/ln/dvmm/downloads/authsplcuncmp) and photoholmes::

      <root>/4cam_splc/<cam1>_<cam2>_sub_NN.tif   forged (TIFF or BMP)
      <root>/4cam_splc/edgemask/<stem>_edgemask.jpg
      <root>/4cam_auth/*.tif                      pristine

  Some copies nest the folders once more (``4cam_splc/4cam_splc``); both are accepted.
  The edge mask colours each pixel by the camera it came from: red (bright 255 near the
  splicing boundary, regular 200 elsewhere) for the first camera of the file name, green
  for the second. Tampered = the **green** (second-camera) region, as photoholmes
  (``TAMPERED_COLOR_INDEX = 1  # Green``) and other public loaders read it. Which region
  is the "host" is not fixed by the dataset itself (some loaders take the red one), which
  is one reason to report the sign-agnostic metrics of :mod:`noisead.evaluate.metrics`
  beside the plain ones on Columbia. The masks are JPEGs, so a pixel is tampered where
  its green channel exceeds its red one and is not dark (``G > R`` and ``G > 0.25``).
  The ``_edgemask_3.jpg`` variants are not used.

``CASIA v2`` (:func:`read_casia2`) -- Dong et al. 2013, ground truth by N. T. Pham
  (github.com/namtpham/casia2groundtruth)::

      <root>/Tp/Tp_*.jpg|tif            forged
      <root>/CASIA 2 Groundtruth/<stem>_gt.png    (also ``Gt/`` as in IMDL-BenCo)
      <root>/Au/Au_*.jpg|bmp|tif        pristine

  Masks are thresholded at mid-grey (> 0.5), which ignores the faint noise some
  ground-truth files carry.

``Korus`` realistic tampering (:func:`read_korus`) -- Korus & Huang, TIFS 2017; layout
  from the dataset's readme and photoholmes (``datasets/realistic_tampering.py``)::

      <root>[/<camera>]/tampered-realistic/<stem>.TIF   forged
      <root>[/<camera>]/ground-truth/<stem>.PNG         nonzero = tampered
      <root>[/<camera>]/pristine/<stem>.TIF             pristine

  Camera folders (``Canon_60D``, ``Nikon_D90``, ...) are optional. The ground truth has
  three levels (black authentic, white semantic change, grey collateral damage); following
  the dataset's readme ("both gray and white areas can be considered as tampered"), every
  nonzero pixel is tampered.

``IMDL-BenCo`` JSON (:func:`read_imdlbenco`) -- the ``JsonDataset`` format of IMDL-BenCo
  (docs: guide/quickstart/0_dataprepare)::

      [["Tp/a.jpg", "Gt/a_gt.png"], ["Au/b.jpg", "Negative"], ...]

  ``"Negative"`` (or ``null`` / ``""``) means a pristine image. Relative paths are resolved
  against the JSON file's folder; absolute paths are kept.

Mask conventions, applied by :func:`binarize_mask` to decoded pixels in ``[0, 1]``:
``"nonzero"`` (any channel > 0; lossless masks), ``"threshold"`` (brightest channel > 0.5;
used for JPEG-compressed masks in the generic readers, where ringing would otherwise turn
into tampered pixels), ``"inverted"`` (brightest channel < 0.5 is tampered; DSO-1),
``"columbia_green"`` (see above) and ``"none"`` (pristine: no mask file).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "IMAGE_EXTENSIONS",
    "MASK_COLUMBIA_GREEN",
    "MASK_CONVENTIONS",
    "MASK_INVERTED",
    "MASK_NONE",
    "MASK_NONZERO",
    "MASK_THRESHOLD",
    "DATASET_KINDS",
    "ForgeryDataset",
    "Sample",
    "binarize_mask",
    "detect_kind",
    "open_dataset",
    "read_casia2",
    "read_columbia",
    "read_dso1",
    "read_folder",
    "read_imdlbenco",
    "read_korus",
]

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
)
_JPEG_EXTENSIONS = frozenset({".jpg", ".jpeg"})

MASK_NONE = "none"
MASK_NONZERO = "nonzero"
MASK_THRESHOLD = "threshold"
MASK_INVERTED = "inverted"
MASK_COLUMBIA_GREEN = "columbia_green"
MASK_CONVENTIONS: frozenset[str] = frozenset(
    {MASK_NONE, MASK_NONZERO, MASK_THRESHOLD, MASK_INVERTED, MASK_COLUMBIA_GREEN}
)

# Masks hold 8-bit (or deeper) levels decoded to [0, 1]; "nonzero" means above half a level,
# so rounding in a float conversion can never flip a black pixel.
_NONZERO_EPS = 0.5 / 255.0
_COLUMBIA_MIN_GREEN = 0.25

_FOLDER_MASK_SUFFIXES = ("", "_mask", "_gt", "-mask", "-gt")
_CASIA_GT_DIRS = ("CASIA 2 Groundtruth", "CASIA2 Groundtruth", "Groundtruth", "Gt", "GT")
_DSO1_MASK_DIRS = ("DSO-1-Fake-Images-Masks", "masks")


@dataclass(frozen=True)
class Sample:
    """One image of a benchmark, with where its ground truth lives and how to read it.

    ``mask_path`` is ``None`` exactly for pristine images; ``mask_convention`` names the rule
    of :func:`binarize_mask` that turns the stored mask file into ``True`` = tampered.
    """

    image_path: Path
    mask_path: Path | None
    name: str
    is_forged: bool
    mask_convention: str


def binarize_mask(pixels: np.ndarray, convention: str) -> np.ndarray:
    """Turn decoded mask pixels (``H x W`` or ``H x W x C``, values in ``[0, 1]``) into a bool mask.

    Datasets store their ground truth in different ways (white or black for tampered,
    colour-coded regions, lossy JPEG); naming the rule per sample keeps the decoding in
    one place and makes the choice visible in every :class:`Sample`.
    """
    arr = np.asarray(pixels, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(f"mask pixels must be HxW or HxWxC, got shape {arr.shape}")
    if convention == MASK_NONZERO:
        return arr.max(axis=2) > _NONZERO_EPS
    if convention == MASK_THRESHOLD:
        return arr.max(axis=2) > 0.5
    if convention == MASK_INVERTED:
        return arr.max(axis=2) < 0.5
    if convention == MASK_COLUMBIA_GREEN:
        if arr.shape[2] < 3:
            raise ValueError("the Columbia edge-mask convention needs an RGB mask")
        red, green = arr[:, :, 0], arr[:, :, 1]
        return (green > red) & (green > _COLUMBIA_MIN_GREEN)
    if convention == MASK_NONE:
        raise ValueError("mask convention 'none' belongs to pristine samples, which have no mask")
    raise ValueError(
        f"unknown mask convention {convention!r}; expected one of {sorted(MASK_CONVENTIONS)}"
    )


def _load_pixels(path: Path) -> np.ndarray:
    """Decode a file through the project's one safe decoder (imported late on purpose).

    Importing inside the function keeps this module importable on its own, and routes every
    image and mask through the same size limits, mode conversion and EXIF orientation, so
    an image and its mask can never disagree about which way is up.
    """
    from noisead.io import load_image

    return load_image(path).pixels


class ForgeryDataset:
    """An ordered, indexable list of :class:`Sample` plus the readers' bookkeeping.

    ``skipped`` lists images a reader left out (a forged image whose mask is missing, a file
    whose role it cannot tell), so that a count that looks short can be explained.
    """

    def __init__(
        self,
        name: str,
        root: Path,
        samples: Iterable[Sample],
        *,
        kind: str = "custom",
        skipped: Iterable[Path] = (),
    ) -> None:
        self.name = name
        self.root = Path(root)
        self.kind = kind
        self.samples: list[Sample] = list(samples)
        self.skipped: list[Path] = list(skipped)
        seen: set[str] = set()
        for sample in self.samples:
            if sample.name in seen:
                raise ValueError(f"dataset {name!r}: duplicate sample name {sample.name!r}")
            seen.add(sample.name)
            if sample.mask_convention not in MASK_CONVENTIONS:
                raise ValueError(
                    f"sample {sample.name!r}: unknown mask convention {sample.mask_convention!r}"
                )
            if (sample.mask_path is not None) != sample.is_forged or (
                sample.mask_convention == MASK_NONE
            ) == sample.is_forged:
                raise ValueError(
                    f"sample {sample.name!r}: forged samples need a mask path and a mask "
                    "convention; pristine samples have neither (convention 'none')"
                )

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __repr__(self) -> str:
        return (
            f"ForgeryDataset(name={self.name!r}, kind={self.kind!r}, root={str(self.root)!r}, "
            f"forged={len(self.forged)}, pristine={len(self.pristine)}, "
            f"skipped={len(self.skipped)})"
        )

    @property
    def forged(self) -> list[Sample]:
        """The forged samples, in dataset order (localization metrics average over these)."""
        return [s for s in self.samples if s.is_forged]

    @property
    def pristine(self) -> list[Sample]:
        """The pristine samples, in dataset order (the negatives of image-level detection)."""
        return [s for s in self.samples if not s.is_forged]

    def load_image(self, sample: Sample) -> np.ndarray:
        """Decode the sample's image: ``float32`` ``H x W x 3`` RGB in ``[0, 1]``."""
        return _load_pixels(sample.image_path)

    def load_mask(
        self, sample: Sample, image_shape: Sequence[int] | None = None
    ) -> np.ndarray | None:
        """The sample's ground truth as ``bool`` ``H x W`` (``True`` = tampered), or ``None``.

        Pristine samples return ``None``: callers that need an all-``False`` mask can make one
        at the image size. The mask must have the image's size; pass ``image_shape`` when the
        image is already decoded, otherwise the image is decoded to learn it. A mismatch raises
        ``ValueError`` instead of resizing, since a resized mask misplaces every boundary.
        """
        if sample.mask_path is None:
            return None
        mask = binarize_mask(_load_pixels(sample.mask_path), sample.mask_convention)
        if image_shape is None:
            image_shape = self.load_image(sample).shape
        height, width = int(image_shape[0]), int(image_shape[1])
        if mask.shape != (height, width):
            raise ValueError(
                f"mask {sample.mask_path} is {mask.shape[1]}x{mask.shape[0]} (WxH) but image "
                f"{sample.image_path} is {width}x{height}; masks are never resized, fix or "
                "drop this sample"
            )
        return mask

    def load(self, sample: Sample) -> tuple[np.ndarray, np.ndarray | None]:
        """Decode image and mask together (the mask checked against the image's size)."""
        image = self.load_image(sample)
        return image, self.load_mask(sample, image_shape=image.shape)


# --------------------------------------------------------------------------- helpers


def _is_image(path: Path) -> bool:
    return (
        path.is_file()
        and not path.name.startswith(".")
        and (path.suffix.lower() in IMAGE_EXTENSIONS)
    )


def _list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (not recursive), sorted for a stable order."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if _is_image(p)), key=lambda p: p.name)


def _stem_index(folder: Path) -> dict[str, Path]:
    """Map lower-case stem -> image file in ``folder``; the first by name wins on a clash."""
    index: dict[str, Path] = {}
    for path in _list_images(folder):
        index.setdefault(path.stem.lower(), path)
    return index


def _sample_name(base: Path, path: Path) -> str:
    try:
        rel = path.relative_to(base)
    except ValueError:
        rel = path
    return rel.with_suffix("").as_posix()


def _lossless_or_jpeg(mask_path: Path) -> str:
    """``nonzero`` for lossless masks, ``threshold`` for JPEG ones (whose ringing is not tamper)."""
    return MASK_THRESHOLD if mask_path.suffix.lower() in _JPEG_EXTENSIONS else MASK_NONZERO


def _child_dir(parent: Path, name: str) -> Path | None:
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


def _nested_dir(parent: Path, name: str) -> Path | None:
    """``parent/name``, or ``parent/name/name`` where an archive was unpacked one level deep."""
    outer = _child_dir(parent, name)
    if outer is None:
        return None
    inner = _child_dir(outer, name)
    if inner is not None and not _list_images(outer) and _list_images(inner):
        return inner
    return outer


def _finish(
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


def _pristine(base: Path, paths: Iterable[Path]) -> list[Sample]:
    return [Sample(p, None, _sample_name(base, p), False, MASK_NONE) for p in paths]


# --------------------------------------------------------------------------- readers


def read_folder(
    root: Path,
    *,
    images_dir: str = "images",
    masks_dir: str = "masks",
    pristine_dir: str = "pristine",
) -> ForgeryDataset:
    """Read the generic ``images/`` + ``masks/`` (+ ``pristine/``) layout.

    This is the layout our benchmark builder writes, so our own benchmarks and most simple
    public sets share one reader. An image is forged exactly when a mask with its stem
    (optionally followed by ``_mask``, ``_gt``, ``-mask`` or ``-gt``) exists in ``masks/``;
    images without one, and everything in ``pristine/``, are pristine.
    """
    root = Path(root)
    image_folder = root / images_dir
    pristine_folder = root / pristine_dir
    if not image_folder.is_dir() and not pristine_folder.is_dir():
        raise ValueError(f"{root} has neither {images_dir}/ nor {pristine_dir}/")
    masks = _stem_index(root / masks_dir)
    samples: list[Sample] = []
    for image in _list_images(image_folder):
        stem = image.stem.lower()
        mask = next(
            (masks[stem + sfx] for sfx in _FOLDER_MASK_SUFFIXES if stem + sfx in masks), None
        )
        if mask is None:
            samples.extend(_pristine(root, [image]))
        else:
            samples.append(
                Sample(image, mask, _sample_name(root, image), True, _lossless_or_jpeg(mask))
            )
    samples.extend(_pristine(root, _list_images(pristine_folder)))
    return _finish(root.name or str(root), "folder", root, samples, [])


def read_dso1(root: Path) -> ForgeryDataset:
    """Read DSO-1 (``splicing-XX.png`` forged, ``normal-XX.png`` pristine, inverted masks).

    ``root`` may be the folder that holds ``DSO-1/`` (``tifs-database``) or ``DSO-1/`` itself.
    """
    root = Path(root)
    image_dir = _child_dir(root, "DSO-1")
    if image_dir is None:
        if not any(p.name.lower().startswith(("splicing-", "normal-")) for p in _list_images(root)):
            raise ValueError(f"{root} holds no DSO-1/ folder nor splicing-*/normal-* images")
        image_dir = root
    # Masks sit beside DSO-1/ in the original archive; some copies keep them in masks/.
    candidates = [(root, n) for n in _DSO1_MASK_DIRS] + [(image_dir, "masks")]
    if image_dir == root:
        candidates.append((root.parent, _DSO1_MASK_DIRS[0]))
    mask_dir = next((d for base, n in candidates if (d := _child_dir(base, n))), None)
    masks = _stem_index(mask_dir) if mask_dir is not None else {}
    samples: list[Sample] = []
    pristine: list[Path] = []
    skipped: list[Path] = []
    for image in _list_images(image_dir):
        lowered = image.name.lower()
        if lowered.startswith("normal-"):
            pristine.append(image)
        elif lowered.startswith("splicing-") and image.stem.lower() in masks:
            mask = masks[image.stem.lower()]
            samples.append(Sample(image, mask, _sample_name(root, image), True, MASK_INVERTED))
        else:
            skipped.append(image)
    samples.extend(_pristine(root, pristine))
    return _finish("DSO-1", "dso1", root, samples, skipped)


def read_columbia(root: Path) -> ForgeryDataset:
    """Read the Columbia uncompressed splicing set (``4cam_splc`` + edge masks, ``4cam_auth``).

    Tampered = the green (second-camera) region of ``edgemask/<stem>_edgemask.jpg``; see the
    module docstring for the colour code and why it is worth reporting sign-agnostic scores.
    """
    root = Path(root)
    splc = _nested_dir(root, "4cam_splc")
    auth = _nested_dir(root, "4cam_auth")
    if splc is None and auth is None:
        raise ValueError(f"{root} holds neither 4cam_splc/ nor 4cam_auth/")
    samples: list[Sample] = []
    skipped: list[Path] = []
    if splc is not None:
        edge_dir = _child_dir(splc, "edgemask")
        masks = _stem_index(edge_dir) if edge_dir is not None else {}
        for image in _list_images(splc):
            mask = masks.get(image.stem.lower() + "_edgemask")
            if mask is None:
                skipped.append(image)
                continue
            samples.append(
                Sample(image, mask, _sample_name(root, image), True, MASK_COLUMBIA_GREEN)
            )
    if auth is not None:
        samples.extend(_pristine(root, _list_images(auth)))
    return _finish("Columbia", "columbia", root, samples, skipped)


def read_casia2(root: Path) -> ForgeryDataset:
    """Read CASIA v2 (``Tp/`` forged with ``<stem>_gt.png`` ground truth, ``Au/`` pristine).

    The ground-truth folder is ``CASIA 2 Groundtruth/`` (N. T. Pham's release) or ``Gt/``
    (IMDL-BenCo); a mask named after the plain stem is accepted as well.
    """
    root = Path(root)
    tp = _child_dir(root, "Tp")
    au = _child_dir(root, "Au")
    if tp is None and au is None:
        raise ValueError(f"{root} holds neither Tp/ nor Au/")
    gt_dir = next((d for n in _CASIA_GT_DIRS if (d := _child_dir(root, n))), None)
    masks = _stem_index(gt_dir) if gt_dir is not None else {}
    samples: list[Sample] = []
    skipped: list[Path] = []
    for image in _list_images(tp) if tp is not None else []:
        stem = image.stem.lower()
        mask = masks.get(stem + "_gt", masks.get(stem))
        if mask is None:
            skipped.append(image)
            continue
        samples.append(Sample(image, mask, _sample_name(root, image), True, MASK_THRESHOLD))
    if au is not None:
        samples.extend(_pristine(root, _list_images(au)))
    return _finish("CASIAv2", "casia2", root, samples, skipped)


def read_korus(root: Path) -> ForgeryDataset:
    """Read Korus's realistic tampering set (``tampered-realistic/``, ``ground-truth/``, ...).

    ``root`` may hold those folders directly or one camera folder per camera model
    (``Canon_60D/``, ``Nikon_D90/``, ...). Grey (collateral damage) and white pixels of the
    three-level ground truth are both tampered, as the dataset's readme advises.
    """
    root = Path(root)
    candidates = [root] + sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    groups = [g for g in candidates if _child_dir(g, "tampered-realistic") is not None]
    if not groups:
        raise ValueError(f"{root} holds no tampered-realistic/ folder (directly or per camera)")
    samples: list[Sample] = []
    skipped: list[Path] = []
    for group in groups:
        tampered = _child_dir(group, "tampered-realistic")
        gt_dir = _child_dir(group, "ground-truth")
        masks = _stem_index(gt_dir) if gt_dir is not None else {}
        for image in _list_images(tampered) if tampered is not None else []:
            mask = masks.get(image.stem.lower())
            if mask is None:
                skipped.append(image)
                continue
            samples.append(Sample(image, mask, _sample_name(root, image), True, MASK_NONZERO))
        pristine = _child_dir(group, "pristine")
        if pristine is not None:
            samples.extend(_pristine(root, _list_images(pristine)))
    return _finish("Korus", "korus", root, samples, skipped)


# IMDL-BenCo writes "Negative"; null and "" are read the same way.
_NEGATIVE_MARKERS = ("negative", "")


def read_imdlbenco(json_path: Path) -> ForgeryDataset:
    """Read an IMDL-BenCo ``JsonDataset`` list: ``[[image, mask_or_"Negative"], ...]``.

    Relative paths are resolved against the JSON file's folder, so a list can travel with its
    data. Entries whose files are missing are skipped (and listed in ``skipped``) rather than
    failing the whole list.
    """
    json_path = Path(json_path)
    try:
        entries = json.loads(json_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{json_path} is not valid JSON: {exc}") from exc
    if not isinstance(entries, list):
        raise ValueError(f"{json_path}: expected a JSON list of [image, mask] pairs")
    base = json_path.parent
    samples: list[Sample] = []
    skipped: list[Path] = []
    for i, entry in enumerate(entries):
        if (
            not isinstance(entry, list | tuple)
            or len(entry) != 2
            or not isinstance(entry[0], str)
            or not (entry[1] is None or isinstance(entry[1], str))
        ):
            raise ValueError(
                f"{json_path}: entry {i} is {entry!r}; expected [image_path, mask_path] "
                'with mask_path "Negative" for pristine images'
            )
        image = (base / entry[0]).resolve() if not Path(entry[0]).is_absolute() else Path(entry[0])
        raw_mask = entry[1]
        if raw_mask is None or raw_mask.strip().lower() in _NEGATIVE_MARKERS:
            mask = None
        else:
            mask = Path(raw_mask) if Path(raw_mask).is_absolute() else (base / raw_mask).resolve()
        if not image.is_file() or (mask is not None and not mask.is_file()):
            skipped.append(image)
            continue
        name = _sample_name(base.resolve(), image)
        if mask is None:
            samples.append(Sample(image, None, name, False, MASK_NONE))
        else:
            samples.append(Sample(image, mask, name, True, _lossless_or_jpeg(mask)))
    if not samples:
        raise ValueError(f"no usable entries in {json_path}")
    if skipped:
        warnings.warn(
            f"{json_path.name}: skipped {len(skipped)} entr(y/ies) whose files are missing "
            f"(first: {skipped[0]})",
            stacklevel=2,
        )
    return ForgeryDataset(json_path.stem, json_path, samples, kind="imdlbenco", skipped=skipped)


# --------------------------------------------------------------------------- dispatch

_READERS = {
    "folder": read_folder,
    "dso1": read_dso1,
    "columbia": read_columbia,
    "casia2": read_casia2,
    "korus": read_korus,
    "imdlbenco": read_imdlbenco,
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
    if _child_dir(root, "DSO-1") is not None or (
        root.name.lower() == "dso-1"
        and any(p.name.lower().startswith("splicing-") for p in _list_images(root))
    ):
        return "dso1"
    if _child_dir(root, "4cam_splc") is not None or _child_dir(root, "4cam_auth") is not None:
        return "columbia"
    if _child_dir(root, "Tp") is not None and (
        _child_dir(root, "Au") is not None
        or any(_child_dir(root, n) is not None for n in _CASIA_GT_DIRS)
    ):
        return "casia2"
    subdirs = [root] + sorted(p for p in root.iterdir() if p.is_dir())
    if any(_child_dir(d, "tampered-realistic") is not None for d in subdirs):
        return "korus"
    if _child_dir(root, "images") is not None or _child_dir(root, "pristine") is not None:
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
