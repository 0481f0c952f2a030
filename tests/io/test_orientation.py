"""EXIF and TIFF orientation: applied like PIL's exif_transpose, on 8- and 16-bit files;
damaged EXIF costs a note, never the pixels."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from io_support import encoded, insert_exif_chunk, png_chunk, raw_tiff_rgb16, save
from PIL import Image, ImageOps

from noisead.io import load_image, to_uint8
from noisead.io.orientation import orient_array


def _halves(width: int = 32, height: int = 16) -> Image.Image:
    """Left half white, right half black: orientation is visible even after JPEG."""
    a = np.zeros((height, width, 3), np.uint8)
    a[:, : width // 2] = 255
    return Image.fromarray(a)


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_orientation_jpeg(tmp_path: Path, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = save(_halves(), tmp_path / "o.jpg", "JPEG", exif=exif, quality=95)
    img = load_image(path)
    assert img.original_size == (32, 16)
    assert img.pixels.shape == (32, 16, 3)  # transposed
    assert f"applied EXIF orientation {orientation}" in img.notes
    top, bottom = img.pixels[:16].mean(), img.pixels[16:].mean()
    # 6 = rotate 90 degrees clockwise to display: the stored left (white) goes to the top.
    if orientation == 6:
        assert top > 0.9 and bottom < 0.1
    else:
        assert top < 0.1 and bottom > 0.9
    raw = load_image(path, apply_exif_orientation=False)
    assert raw.pixels.shape == (16, 32, 3)
    assert f"EXIF orientation {orientation} present but not applied" in raw.notes


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orient_array_matches_pil(orientation: int, rng: np.random.Generator) -> None:
    a = rng.integers(0, 256, size=(3, 5, 3), dtype=np.uint8)
    im = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = orientation
    with Image.open(io.BytesIO(encoded(im, "PNG", exif=exif))) as reloaded:
        expected = np.asarray(ImageOps.exif_transpose(reloaded))
    np.testing.assert_array_equal(orient_array(a, orientation), expected)


def test_exif_orientation_on_16bit_colour_png(tmp_path: Path, rng: np.random.Generator) -> None:
    rgb = rng.integers(0, 65536, size=(3, 5, 3), dtype=np.uint16)
    ok, buf = cv2.imencode(".png", rgb[..., ::-1])
    assert ok
    path = tmp_path / "o16.png"
    path.write_bytes(insert_exif_chunk(buf.tobytes(), 6))
    img = load_image(path)
    assert img.original_mode == "RGB;16"
    assert img.original_size == (5, 3)
    np.testing.assert_allclose(img.pixels, np.rot90(rgb, k=-1) / 65535.0, atol=1e-7)
    assert "applied EXIF orientation 6" in img.notes


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_16bit_tiff(orientation: int, rng: np.random.Generator) -> None:
    rgb = rng.integers(0, 65536, size=(3, 5, 3), dtype=np.uint16)
    data = raw_tiff_rgb16(rgb, orientation)
    img = load_image(data)
    assert img.original_mode == "RGB;16"
    assert img.original_size == (5, 3)
    np.testing.assert_allclose(
        img.pixels, orient_array(rgb, orientation) / 65535.0, rtol=0, atol=1e-7
    )
    raw = load_image(data, apply_exif_orientation=False)
    np.testing.assert_allclose(raw.pixels, rgb / 65535.0, rtol=0, atol=1e-7)
    if orientation > 1:
        assert f"applied EXIF orientation {orientation}" in img.notes
        assert f"EXIF orientation {orientation} present but not applied" in raw.notes


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_8bit_tiff(orientation: int, rng: np.random.Generator) -> None:
    a = rng.integers(0, 256, size=(3, 5, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encoded(Image.fromarray(a), "TIFF", exif=exif)
    img = load_image(data)
    assert img.original_size == (5, 3)
    assert to_uint8(img.pixels).tolist() == orient_array(a, orientation).tolist()
    raw = load_image(data, apply_exif_orientation=False)
    assert to_uint8(raw.pixels).tolist() == a.tolist()



def test_damaged_exif_becomes_notes_not_errors() -> None:
    good = encoded(Image.new("RGB", (4, 4), (1, 2, 3)), "PNG")
    ihdr_end = 8 + 8 + 13 + 4
    short = good[:ihdr_end] + png_chunk(b"eXIf", b"MM\x00*\x00\x00\x00\x08\x00\x05\x01\x12")
    img = load_image(short + good[ihdr_end:])
    assert to_uint8(img.pixels)[0, 0].tolist() == [1, 2, 3]
    assert any(n.startswith("decoder warning: Corrupt EXIF") for n in img.notes)
    garbage = good[:ihdr_end] + png_chunk(b"eXIf", b"garbage") + good[ihdr_end:]
    img = load_image(garbage)
    assert "EXIF metadata could not be parsed; orientation ignored" in img.notes
