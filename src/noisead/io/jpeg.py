"""JPEG in one place: libjpeg's quantization tables, the quality a file was saved at,
encoding, and the in-memory round trip that every recompression goes through.

Who uses it: the camera simulator (each model's JPEG), the forgery builder and the
training augmentation (sources shared once), the benchmarks' post-processing and ELA
(recompression), and :func:`noisead.infer.jpeg_input_caveat` (the quality of the file
under analysis). Every encoder is Pillow's libjpeg, so one quality means one table
everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO

import numpy as np
from PIL import Image

__all__ = [
    "decode_jpeg",
    "encode_jpeg",
    "estimate_jpeg_quality",
    "ijg_quant_tables",
    "jpeg_round_trip",
]

# IJG (libjpeg) reference tables, Annex K of ITU-T T.81, natural (row-major) order —
# the same order as PIL's ``Image.quantization`` and its ``qtables=`` argument.
_IJG_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
_IJG_CHROMA = (
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
)  # fmt: skip

Subsampling = str | int | None
"""Pillow's ``subsampling``: ``"4:4:4"``/``"4:2:2"``/``"4:2:0"`` or 0/1/2; None: Pillow's
default (4:2:0 for RGB)."""


def ijg_quant_tables(quality: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The (luma, chroma) tables libjpeg writes for ``quality`` (baseline, natural order)."""
    q = int(np.clip(quality, 1, 100))
    scale = 5000 // q if q < 50 else 200 - 2 * q

    def one(base: Sequence[int]) -> tuple[int, ...]:
        return tuple(int(np.clip((b * scale + 50) // 100, 1, 255)) for b in base)

    return one(_IJG_LUMA), one(_IJG_CHROMA)


def estimate_jpeg_quality(luma_table: Sequence[int], tolerance: float = 1.0) -> int | None:
    """The libjpeg quality whose luma table matches ``luma_table``, or None if none does.

    ``luma_table``: the 64 values of a JPEG file's first quantization table (PIL's
    ``quantization[0]``). They are compared as a sorted multiset, because PIL has returned
    the tables in zigzag order in some versions and in natural order in others; the values
    alone identify a libjpeg quality. None when no quality is within ``tolerance`` per
    coefficient on average: the file has tables of its own, as cameras and some editors write.
    """
    table = np.sort(np.asarray(list(luma_table), dtype=np.float64))
    if table.size != 64:
        return None

    errors = [np.abs(np.sort(ijg_quant_tables(q)[0]) - table).mean() for q in range(1, 101)]
    best = int(np.argmin(errors))
    return best + 1 if errors[best] <= tolerance else None


def encode_jpeg(
    pixels: np.ndarray,
    *,
    quality: int | None = None,
    qtables: Sequence[Sequence[int]] | None = None,
    subsampling: Subsampling = "4:2:0",
) -> bytes:
    """Encode an ``H x W x 3`` uint8 RGB image with Pillow's libjpeg, in memory.

    ``qtables`` (natural order, as :func:`ijg_quant_tables` gives them) win over
    ``quality`` (default 90); the grid starts at the image's top-left corner.
    """
    rgb = np.ascontiguousarray(pixels, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"encode_jpeg takes an H x W x 3 RGB image, got shape {rgb.shape}")
    im = Image.fromarray(rgb)
    options: dict[str, object] = {}
    if subsampling is not None:
        options["subsampling"] = subsampling
    if qtables is not None:
        options["qtables"] = [list(t) for t in qtables]
    else:
        options["quality"] = int(quality if quality is not None else 90)
    buf = BytesIO()
    im.save(buf, "JPEG", **options)
    return buf.getvalue()


def decode_jpeg(data: bytes) -> np.ndarray:
    """JPEG bytes we encoded ourselves back to ``H x W x 3`` uint8 RGB (trusted input:
    a user's file goes through :func:`noisead.io.load_image`)."""
    with Image.open(BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def jpeg_round_trip(pixels: np.ndarray, quality: int, *,
                    subsampling: Subsampling = "4:2:0") -> np.ndarray:
    """``pixels`` (uint8 RGB) as a reader of them saved at libjpeg ``quality`` would see them."""
    return decode_jpeg(encode_jpeg(pixels, quality=int(quality), subsampling=subsampling))
