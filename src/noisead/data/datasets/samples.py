"""Samples, their mask conventions, and :class:`ForgeryDataset`, the list every reader returns."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from noisead.io import load_image

__all__ = [
    "MASK_COLUMBIA_GREEN",
    "MASK_CONVENTIONS",
    "MASK_INVERTED",
    "MASK_NONE",
    "MASK_NONZERO",
    "MASK_THRESHOLD",
    "ForgeryDataset",
    "Sample",
    "binarize_mask",
]

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
    """Decode through the project's one safe decoder, so that an image and its mask get the
    same size limits, mode conversion and EXIF orientation (they can never disagree about
    which way is up)."""
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
