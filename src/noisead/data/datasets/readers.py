"""One reader per benchmark layout (the layouts: the package's docstring)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from noisead.data.datasets.listing import (
    child_dir,
    finish,
    list_images,
    lossless_or_jpeg,
    nested_dir,
    pristine_samples,
    sample_name,
    stem_index,
)
from noisead.data.datasets.samples import (
    MASK_COLUMBIA_GREEN,
    MASK_INVERTED,
    MASK_NONZERO,
    MASK_THRESHOLD,
    ForgeryDataset,
    Sample,
)

__all__ = ["CASIA_GT_DIRS", "read_casia2", "read_columbia", "read_dso1", "read_folder",
           "read_imdlbenco", "read_korus"]

_FOLDER_MASK_SUFFIXES = ("", "_mask", "_gt", "-mask", "-gt")
CASIA_GT_DIRS = ("CASIA 2 Groundtruth", "CASIA2 Groundtruth", "Groundtruth", "Gt", "GT")
_DSO1_MASK_DIRS = ("DSO-1-Fake-Images-Masks", "masks")


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
    masks = stem_index(root / masks_dir)
    samples: list[Sample] = []
    for image in list_images(image_folder):
        stem = image.stem.lower()
        mask = next(
            (masks[stem + sfx] for sfx in _FOLDER_MASK_SUFFIXES if stem + sfx in masks), None
        )
        if mask is None:
            samples.extend(pristine_samples(root, [image]))
        else:
            samples.append(
                Sample(image, mask, sample_name(root, image), True, lossless_or_jpeg(mask))
            )
    samples.extend(pristine_samples(root, list_images(pristine_folder)))
    return finish(root.name or str(root), "folder", root, samples, [])


def read_dso1(root: Path) -> ForgeryDataset:
    """Read DSO-1 (``splicing-XX.png`` forged, ``normal-XX.png`` pristine, inverted masks).

    ``root`` may be the folder that holds ``DSO-1/`` (``tifs-database``) or ``DSO-1/`` itself.
    """
    root = Path(root)
    image_dir = child_dir(root, "DSO-1")
    if image_dir is None:
        if not any(p.name.lower().startswith(("splicing-", "normal-")) for p in list_images(root)):
            raise ValueError(f"{root} holds no DSO-1/ folder nor splicing-*/normal-* images")
        image_dir = root
    # Masks sit beside DSO-1/ in the original archive; some copies keep them in masks/.
    candidates = [(root, n) for n in _DSO1_MASK_DIRS] + [(image_dir, "masks")]
    if image_dir == root:
        candidates.append((root.parent, _DSO1_MASK_DIRS[0]))
    mask_dir = next((d for base, n in candidates if (d := child_dir(base, n))), None)
    masks = stem_index(mask_dir) if mask_dir is not None else {}
    samples: list[Sample] = []
    pristine: list[Path] = []
    skipped: list[Path] = []
    for image in list_images(image_dir):
        lowered = image.name.lower()
        if lowered.startswith("normal-"):
            pristine.append(image)
        elif lowered.startswith("splicing-") and image.stem.lower() in masks:
            mask = masks[image.stem.lower()]
            samples.append(Sample(image, mask, sample_name(root, image), True, MASK_INVERTED))
        else:
            skipped.append(image)
    samples.extend(pristine_samples(root, pristine))
    return finish("DSO-1", "dso1", root, samples, skipped)


def read_columbia(root: Path) -> ForgeryDataset:
    """Read the Columbia uncompressed splicing set (``4cam_splc`` + edge masks, ``4cam_auth``).

    Tampered = the green (second-camera) region of ``edgemask/<stem>_edgemask.jpg``; see the
    module docstring for the colour code and why it is worth reporting sign-agnostic scores.
    """
    root = Path(root)
    splc = nested_dir(root, "4cam_splc")
    auth = nested_dir(root, "4cam_auth")
    if splc is None and auth is None:
        raise ValueError(f"{root} holds neither 4cam_splc/ nor 4cam_auth/")
    samples: list[Sample] = []
    skipped: list[Path] = []
    if splc is not None:
        edge_dir = child_dir(splc, "edgemask")
        masks = stem_index(edge_dir) if edge_dir is not None else {}
        for image in list_images(splc):
            mask = masks.get(image.stem.lower() + "_edgemask")
            if mask is None:
                skipped.append(image)
                continue
            samples.append(
                Sample(image, mask, sample_name(root, image), True, MASK_COLUMBIA_GREEN)
            )
    if auth is not None:
        samples.extend(pristine_samples(root, list_images(auth)))
    return finish("Columbia", "columbia", root, samples, skipped)


def read_casia2(root: Path) -> ForgeryDataset:
    """Read CASIA v2 (``Tp/`` forged with ``<stem>_gt.png`` ground truth, ``Au/`` pristine).

    The ground-truth folder is ``CASIA 2 Groundtruth/`` (N. T. Pham's release) or ``Gt/``
    (IMDL-BenCo); a mask named after the plain stem is accepted as well.
    """
    root = Path(root)
    tp = child_dir(root, "Tp")
    au = child_dir(root, "Au")
    if tp is None and au is None:
        raise ValueError(f"{root} holds neither Tp/ nor Au/")
    gt_dir = next((d for n in CASIA_GT_DIRS if (d := child_dir(root, n))), None)
    masks = stem_index(gt_dir) if gt_dir is not None else {}
    samples: list[Sample] = []
    skipped: list[Path] = []
    for image in list_images(tp) if tp is not None else []:
        stem = image.stem.lower()
        mask = masks.get(stem + "_gt", masks.get(stem))
        if mask is None:
            skipped.append(image)
            continue
        samples.append(Sample(image, mask, sample_name(root, image), True, MASK_THRESHOLD))
    if au is not None:
        samples.extend(pristine_samples(root, list_images(au)))
    return finish("CASIAv2", "casia2", root, samples, skipped)


def read_korus(root: Path) -> ForgeryDataset:
    """Read Korus's realistic tampering set (``tampered-realistic/``, ``ground-truth/``, ...).

    ``root`` may hold those folders directly or one camera folder per camera model
    (``Canon_60D/``, ``Nikon_D90/``, ...). Grey (collateral damage) and white pixels of the
    three-level ground truth are both tampered, as the dataset's readme advises.
    """
    root = Path(root)
    candidates = [root] + sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    groups = [g for g in candidates if child_dir(g, "tampered-realistic") is not None]
    if not groups:
        raise ValueError(f"{root} holds no tampered-realistic/ folder (directly or per camera)")
    samples: list[Sample] = []
    skipped: list[Path] = []
    for group in groups:
        tampered = child_dir(group, "tampered-realistic")
        gt_dir = child_dir(group, "ground-truth")
        masks = stem_index(gt_dir) if gt_dir is not None else {}
        for image in list_images(tampered) if tampered is not None else []:
            mask = masks.get(image.stem.lower())
            if mask is None:
                skipped.append(image)
                continue
            samples.append(Sample(image, mask, sample_name(root, image), True, MASK_NONZERO))
        pristine = child_dir(group, "pristine")
        if pristine is not None:
            samples.extend(pristine_samples(root, list_images(pristine)))
    return finish("Korus", "korus", root, samples, skipped)


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
        name = sample_name(base.resolve(), image)
        if mask is None:
            samples.extend(pristine_samples(base.resolve(), [image]))
        else:
            samples.append(Sample(image, mask, name, True, lossless_or_jpeg(mask)))
    if not samples:
        raise ValueError(f"no usable entries in {json_path}")
    if skipped:
        warnings.warn(
            f"{json_path.name}: skipped {len(skipped)} entr(y/ies) whose files are missing "
            f"(first: {skipped[0]})",
            stacklevel=2,
        )
    return ForgeryDataset(json_path.stem, json_path, samples, kind="imdlbenco", skipped=skipped)
