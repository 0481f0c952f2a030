"""noisead.io.jpeg: libjpeg's tables, the quality estimate, encoding and the round trip."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from noisead.io import load_image
from noisead.io.jpeg import (
    decode_jpeg,
    encode_jpeg,
    estimate_jpeg_quality,
    ijg_quant_tables,
    jpeg_round_trip,
)


def _textured(rng: np.random.Generator, size: int = 48) -> np.ndarray:
    base = rng.normal(128, 40, (size // 8, size // 8, 3))
    img = np.kron(base, np.ones((8, 8, 1))) + rng.normal(0, 6, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _pillow_jpeg(img: np.ndarray, **options) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", **options)
    return buf.getvalue()


def test_ijg_tables_match_the_standard() -> None:
    luma75, chroma75 = ijg_quant_tables(75)
    assert luma75[:8] == (8, 6, 5, 8, 12, 20, 26, 31)  # Annex K luma row 0 at q75
    assert chroma75[:4] == (9, 9, 12, 24)
    assert ijg_quant_tables(100) == ((1,) * 64, (1,) * 64)
    assert ijg_quant_tables(0) == ijg_quant_tables(1)  # clipped to libjpeg's range


@pytest.mark.parametrize("quality", [10, 50, 75, 90, 97])
def test_tables_are_the_ones_libjpeg_writes(rng: np.random.Generator, quality: int) -> None:
    tables = load_image(encode_jpeg(_textured(rng), quality=quality)).jpeg_quality_tables
    assert tables is not None
    assert (tuple(tables[0]), tuple(tables[1])) == ijg_quant_tables(quality)
    assert estimate_jpeg_quality(tables[0]) == quality


def test_estimate_is_order_blind_and_refuses_foreign_tables(rng: np.random.Generator) -> None:
    luma = list(ijg_quant_tables(80)[0])
    assert estimate_jpeg_quality(luma[::-1]) == 80  # zigzag or natural order alike
    assert estimate_jpeg_quality([int(v) for v in rng.integers(2, 40, 64)]) is None
    assert estimate_jpeg_quality(luma[:10]) is None


def test_encode_takes_tables_over_quality_and_default_90(rng: np.random.Generator) -> None:
    img = _textured(rng)
    own = [int(v) for v in rng.integers(2, 40, 64)]
    tables = load_image(encode_jpeg(img, quality=30, qtables=[own, own])).jpeg_quality_tables
    assert tables is not None and tables[0] == own
    assert encode_jpeg(img) == encode_jpeg(img, quality=90)
    assert encode_jpeg(img, quality=85) == _pillow_jpeg(img, quality=85, subsampling="4:2:0")
    assert encode_jpeg(img, quality=85, subsampling=None) == _pillow_jpeg(img, quality=85)
    with pytest.raises(ValueError, match="H x W x 3"):
        encode_jpeg(img[..., 0])


@pytest.mark.parametrize("subsampling", ["4:4:4", 2, None])
def test_round_trip_is_what_a_reader_of_the_file_sees(rng: np.random.Generator,
                                                      subsampling) -> None:
    img = _textured(rng)
    options = {} if subsampling is None else {"subsampling": subsampling}
    with Image.open(io.BytesIO(_pillow_jpeg(img, quality=70, **options))) as im:
        expected = np.asarray(im.convert("RGB"))
    out = jpeg_round_trip(img, 70, subsampling=subsampling)
    assert out.dtype == np.uint8 and np.array_equal(out, expected)
    assert not np.array_equal(out, img)  # lossy at 70
    # a strided view is encoded as the pixels it shows
    assert np.array_equal(jpeg_round_trip(img[::2, ::2], 90), decode_jpeg(
        encode_jpeg(np.ascontiguousarray(img[::2, ::2]), quality=90)))
