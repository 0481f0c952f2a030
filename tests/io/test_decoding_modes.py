"""load_image turns every PIL mode into float32 RGB in [0, 1], keeping 16-bit precision
and noting each conversion."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from io_support import encoded, png_rows, raw_png, save
from PIL import Image

from noisead.io import ImageLoadError, LoadedImage, load_image, to_uint8


def test_rgb_png_round_trip_exact(tmp_path: Path, rgb8: np.ndarray) -> None:
    path = save(Image.fromarray(rgb8), tmp_path / "a.png")
    img = load_image(path)
    assert isinstance(img, LoadedImage)
    assert img.pixels.dtype == np.float32 and img.pixels.shape == (9, 13, 3)
    assert img.pixels.flags.c_contiguous
    np.testing.assert_array_equal(img.pixels, rgb8.astype(np.float32) / 255)
    assert to_uint8(img.pixels).tolist() == rgb8.tolist()
    assert img.path == path
    assert img.original_mode == "RGB"
    assert img.original_size == (13, 9)
    assert img.notes == ()
    assert img.jpeg_quality_tables is None


def test_str_path_accepted(tmp_path: Path, rgb8: np.ndarray) -> None:
    path = save(Image.fromarray(rgb8), tmp_path / "a.png")
    assert load_image(str(path)).path == path


def test_gray_l_replicated(tmp_path: Path) -> None:
    g = np.array([[0, 128, 255]], dtype=np.uint8)
    img = load_image(save(Image.fromarray(g), tmp_path / "g.png"))
    assert img.original_mode == "L"
    assert img.pixels.shape == (1, 3, 3)
    np.testing.assert_array_equal(img.pixels[..., 0], g / np.float32(255))
    np.testing.assert_array_equal(img.pixels[..., 0], img.pixels[..., 2])
    assert img.pixels[0, 2, 1] == 1.0
    assert any("replicated" in n for n in img.notes)


def test_bilevel_mode_1(tmp_path: Path) -> None:
    im = Image.new("1", (3, 2), 0)
    im.putpixel((1, 0), 1)
    img = load_image(save(im, tmp_path / "b.png"))
    assert img.original_mode == "1"
    expected = np.zeros((2, 3), np.float32)
    expected[0, 1] = 1.0
    for c in range(3):
        np.testing.assert_array_equal(img.pixels[..., c], expected)
    assert any("1-bit" in n for n in img.notes)


def test_la_drops_alpha(tmp_path: Path) -> None:
    img = load_image(save(Image.new("LA", (2, 2), (100, 7)), tmp_path / "la.png"))
    assert img.original_mode == "LA"
    np.testing.assert_array_equal(img.pixels, np.full((2, 2, 3), 100 / np.float32(255)))
    assert "dropped alpha channel" in img.notes
    assert any("replicated" in n for n in img.notes)


def _palette_image() -> Image.Image:
    im = Image.new("P", (3, 2), 0)
    im.putpalette([10, 20, 30, 40, 50, 60, 250, 0, 129] + [0] * (256 * 3 - 9))
    im.putpixel((1, 0), 1)
    im.putpixel((2, 1), 2)
    return im


def _palette_expected() -> np.ndarray:
    e = np.zeros((2, 3, 3), np.uint8)
    e[:] = (10, 20, 30)
    e[0, 1] = (40, 50, 60)
    e[1, 2] = (250, 0, 129)
    return e


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "BMP"])
def test_palette_exact_colours(tmp_path: Path, fmt: str) -> None:
    img = load_image(save(_palette_image(), tmp_path / f"p.{fmt.lower()}", fmt))
    assert img.original_mode == "P"
    assert to_uint8(img.pixels).tolist() == _palette_expected().tolist()
    assert "palette image converted to RGB" in img.notes
    assert "dropped alpha channel" not in img.notes


def test_palette_with_transparency(tmp_path: Path) -> None:
    path = save(_palette_image(), tmp_path / "pt.png", "PNG", transparency=0)
    img = load_image(path)
    assert img.original_mode == "P"
    # Transparent pixels keep their palette colour: alpha is dropped, not composited.
    assert to_uint8(img.pixels).tolist() == _palette_expected().tolist()
    assert "dropped alpha channel" in img.notes


def test_rgba_drops_alpha_without_compositing(tmp_path: Path, rng: np.random.Generator) -> None:
    a = rng.integers(0, 256, size=(5, 4, 4), dtype=np.uint8)
    a[0, 0, 3] = 0
    img = load_image(save(Image.fromarray(a), tmp_path / "rgba.png"))
    assert img.original_mode == "RGBA"
    assert to_uint8(img.pixels).tolist() == a[..., :3].tolist()
    assert "dropped alpha channel" in img.notes


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = save(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), tmp_path / "c.jpg", "JPEG")
    img = load_image(path)
    assert img.original_mode == "CMYK"
    assert "converted CMYK to RGB" in img.notes
    np.testing.assert_allclose(img.pixels[8, 8], [1.0, 0.0, 0.0], atol=0.03)
    assert img.jpeg_quality_tables is not None


def test_cmyk_tiff_exact(tmp_path: Path) -> None:
    path = save(Image.new("CMYK", (3, 3), (0, 255, 255, 0)), tmp_path / "c.tif", "TIFF")
    img = load_image(path)
    assert img.original_mode == "CMYK"
    assert to_uint8(img.pixels)[1, 1].tolist() == [255, 0, 0]


def test_ycbcr_tiff(tmp_path: Path) -> None:
    src = Image.new("RGB", (4, 4), (200, 10, 30)).convert("YCbCr")
    img = load_image(save(src, tmp_path / "y.tif", "TIFF"))
    assert img.original_mode == "YCbCr"
    assert "converted YCbCr to RGB" in img.notes
    np.testing.assert_allclose(to_uint8(img.pixels)[0, 0], [200, 10, 30], atol=3)


def test_16bit_gray_png(tmp_path: Path) -> None:
    g = np.array([[0, 32768, 65535, 1]], dtype=np.uint16)
    img = load_image(save(Image.fromarray(g), tmp_path / "g16.png"))
    assert img.original_mode.startswith("I;16")
    px = img.pixels[0, :, 0]
    assert px[0] == 0.0 and px[2] == 1.0
    assert px[1] == pytest.approx(0.5, abs=1e-4)
    assert px[3] == pytest.approx(1 / 65535)  # precision kept, not truncated to 8 bits
    assert "16-bit image scaled to [0,1]" in img.notes


def test_16bit_gray_png_hand_built(tmp_path: Path) -> None:
    g = np.array([[[0], [32768], [65535]]], dtype=">u2")
    path = tmp_path / "g16b.png"
    path.write_bytes(raw_png(3, 1, 16, 0, png_rows(g)))
    img = load_image(path)
    np.testing.assert_allclose(img.pixels[0, :, 1], [0.0, 32768 / 65535, 1.0], rtol=0, atol=1e-7)


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("ext", [".png", ".tiff"])
def test_16bit_colour_keeps_precision(
    tmp_path: Path, rng: np.random.Generator, channels: int, ext: str
) -> None:
    rgb = rng.integers(0, 65536, size=(6, 7, channels), dtype=np.uint16)
    rgb[0, 0, :3] = [1, 257, 65534]  # differ below 8-bit resolution
    ok, buf = cv2.imencode(ext, rgb[..., [2, 1, 0, 3][:channels]])  # OpenCV wants BGR(A)
    assert ok
    path = tmp_path / f"c16{ext}"
    path.write_bytes(buf.tobytes())
    img = load_image(path)
    assert img.original_mode == ("RGB;16" if channels == 3 else "RGBA;16")
    np.testing.assert_allclose(img.pixels, rgb[..., :3] / 65535.0, rtol=0, atol=1e-7)
    assert "16-bit image scaled to [0,1]" in img.notes
    assert ("dropped alpha channel" in img.notes) == (channels == 4)


def test_16bit_gray_alpha_png(tmp_path: Path) -> None:
    a = np.array([[[40000, 1000], [65535, 0]]], dtype=">u2")  # 1 x 2, gray + alpha
    path = tmp_path / "la16.png"
    path.write_bytes(raw_png(2, 1, 16, 4, png_rows(a)))
    img = load_image(path)
    assert img.original_mode == "LA;16"
    np.testing.assert_allclose(img.pixels[0, :, 0], [40000 / 65535, 1.0], atol=1e-7)
    np.testing.assert_array_equal(img.pixels[..., 0], img.pixels[..., 2])
    assert "dropped alpha channel" in img.notes


def test_mode_i_tiff(tmp_path: Path) -> None:
    a = np.array([[0, 65535, 1000]], dtype=np.int32)
    img = load_image(save(Image.fromarray(a), tmp_path / "i.tif", "TIFF"))
    assert img.original_mode == "I"
    np.testing.assert_allclose(img.pixels[0, :, 0], a[0] / 65535.0, atol=1e-7)
    wide = np.array([[-10, 70000, 30]], dtype=np.int32)
    img = load_image(save(Image.fromarray(wide), tmp_path / "iw.tif", "TIFF"))
    np.testing.assert_allclose(img.pixels[0, :, 0], (wide[0] + 10) / 70010.0, atol=1e-6)
    assert any("rescaled" in n for n in img.notes)


def test_mode_f_tiff(tmp_path: Path) -> None:
    a = np.array([[0.0, 0.25, 1.0]], dtype=np.float32)
    img = load_image(save(Image.fromarray(a), tmp_path / "f.tif", "TIFF"))
    assert img.original_mode == "F"
    np.testing.assert_array_equal(img.pixels[0, :, 0], a[0])
    b = np.array([[-1.0, 1.0, 3.0]], dtype=np.float32)
    img = load_image(save(Image.fromarray(b), tmp_path / "f2.tif", "TIFF"))
    np.testing.assert_allclose(img.pixels[0, :, 2], [0.0, 0.5, 1.0])
    assert any("rescaled" in n for n in img.notes)
    c = np.array([[np.nan, 0.5]], dtype=np.float32)
    with pytest.raises(ImageLoadError, match="NaN"):
        load_image(save(Image.fromarray(c), tmp_path / "nan.tif", "TIFF"))


def test_tiny_1x1(tmp_path: Path) -> None:
    img = load_image(save(Image.new("RGB", (1, 1), (1, 2, 3)), tmp_path / "t.png"))
    assert img.pixels.shape == (1, 1, 3)
    assert to_uint8(img.pixels)[0, 0].tolist() == [1, 2, 3]


def test_jpeg_quality_tables(tmp_path: Path, rgb8: np.ndarray) -> None:
    path = save(Image.fromarray(rgb8), tmp_path / "q.jpg", "JPEG", quality=50)
    img = load_image(path)
    with Image.open(path) as ref:
        expected = {k: list(v) for k, v in ref.quantization.items()}
    assert img.jpeg_quality_tables == expected
    assert set(img.jpeg_quality_tables) == {0, 1}
    assert all(
        len(t) == 64 and all(type(x) is int for x in t) for t in img.jpeg_quality_tables.values()
    )


def test_wrong_extension_decoded_by_content(tmp_path: Path, rgb8: np.ndarray) -> None:
    path = tmp_path / "really_a_png.jpg"
    path.write_bytes(encoded(Image.fromarray(rgb8), "PNG"))
    img = load_image(path)
    assert to_uint8(img.pixels).tolist() == rgb8.tolist()
    assert img.jpeg_quality_tables is None
