"""Tests for noisead.io: safe decoding of hostile/odd files and atomic writers."""

from __future__ import annotations

import io
import json
import os
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageFile, ImageOps

from noisead import io as nio
from noisead.io import (
    DEFAULT_MAX_PIXELS,
    ImageLoadError,
    LoadedImage,
    OutputError,
    atomic_write_bytes,
    ensure_writable_dir,
    image_from_array,
    load_image,
    save_json,
    save_png,
    to_uint8,
)

PNG_SIG = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- helpers


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(width: int, height: int, depth: int, color_type: int, rows: bytes | None) -> bytes:
    """Hand-built PNG; ``rows=None`` gives a header-only file (no pixel data at all)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    out = PNG_SIG + png_chunk(b"IHDR", ihdr)
    if rows is not None:
        out += png_chunk(b"IDAT", zlib.compress(rows))
    return out + png_chunk(b"IEND", b"")


def png_rows(a: np.ndarray) -> bytes:
    """Filter-type-0 scanlines for a big-endian array of shape H x W x C."""
    return b"".join(b"\x00" + row.tobytes() for row in a)


def insert_exif_chunk(png: bytes, orientation: int) -> bytes:
    """Insert an eXIf chunk right after IHDR (PNG 1.5 allows it anywhere before IDAT)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    payload = exif.tobytes()
    ihdr_end = 8 + 8 + 13 + 4
    return png[:ihdr_end] + png_chunk(b"eXIf", payload) + png[ihdr_end:]


def raw_tiff_rgb16(a: np.ndarray, orientation: int | None = None) -> bytes:
    """Minimal little-endian uncompressed 16-bit RGB TIFF (one strip)."""
    h, w, c = a.shape
    pixels = a.astype("<u2").tobytes()
    entries: list[tuple[int, int, int, int]] = []
    n_tags = 10 + (orientation is not None)
    ifd_offset = 8
    ifd_size = 2 + 12 * n_tags + 4
    bps_offset = ifd_offset + ifd_size
    data_offset = bps_offset + 2 * c

    def e(tag, typ, count, value):
        entries.append((tag, typ, count, value))

    e(256, 4, 1, w)
    e(257, 4, 1, h)
    e(258, 3, c, bps_offset)
    e(259, 3, 1, 1)
    e(262, 3, 1, 2)
    e(273, 4, 1, data_offset)
    if orientation is not None:
        e(274, 3, 1, orientation)
    e(277, 3, 1, c)
    e(278, 4, 1, h)
    e(279, 4, 1, len(pixels))
    e(284, 3, 1, 1)
    entries.sort()
    out = b"II*\x00" + struct.pack("<I", ifd_offset) + struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        if typ == 3 and count == 1:
            out += struct.pack("<HHIHH", tag, typ, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, typ, count, value)
    out += struct.pack("<I", 0)
    out += struct.pack("<" + "H" * c, *([16] * c))
    return out + pixels


def save(im: Image.Image, path: Path, fmt: str | None = None, **kw) -> Path:
    im.save(path, format=fmt, **kw)
    return path


def encoded(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture
def rgb8(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=(9, 13, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- modes


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


# --------------------------------------------------------------------------- EXIF


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
    np.testing.assert_array_equal(nio._orient_array(a, orientation), expected)


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
        img.pixels, nio._orient_array(rgb, orientation) / 65535.0, rtol=0, atol=1e-7
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
    assert to_uint8(img.pixels).tolist() == nio._orient_array(a, orientation).tolist()
    raw = load_image(data, apply_exif_orientation=False)
    assert to_uint8(raw.pixels).tolist() == a.tolist()


# --------------------------------------------------------------------------- multi-frame


def test_animated_gif_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (4, 3), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    img = load_image(path)
    assert to_uint8(img.pixels)[1, 1].tolist() == [255, 0, 0]
    assert any("first frame" in n and "3 frames" in n for n in img.notes)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WEBP"])
def test_multiframe_first_frame(tmp_path: Path, fmt: str) -> None:
    frames = [Image.new("RGB", (4, 3), c) for c in [(255, 0, 0), (0, 255, 0)]]
    path = tmp_path / f"multi.{fmt.lower()}"
    kw = {"lossless": True} if fmt == "WEBP" else {}
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], **kw)
    img = load_image(path)
    assert to_uint8(img.pixels)[1, 1].tolist() == [255, 0, 0]
    assert any("first frame" in n for n in img.notes)


def test_single_frame_has_no_frame_note(tmp_path: Path) -> None:
    img = load_image(save(Image.new("RGB", (4, 3)), tmp_path / "one.gif"))
    assert not any("frame" in n for n in img.notes)


# --------------------------------------------------------------------------- sources


def test_bytes_and_file_object_sources(tmp_path: Path, rgb8: np.ndarray) -> None:
    data = encoded(Image.fromarray(rgb8), "PNG")
    expected = rgb8.astype(np.float32) / 255
    for src in (data, bytearray(data), memoryview(data)):
        img = load_image(src)
        np.testing.assert_array_equal(img.pixels, expected)
        assert img.path is None
    stream = io.BytesIO(b"junk" + data)
    stream.seek(4)
    with pytest.raises(ImageLoadError):  # read from the start of the stream, like PIL
        load_image(stream)
    stream = io.BytesIO(data)
    stream.read(10)
    np.testing.assert_array_equal(load_image(stream).pixels, expected)
    assert not stream.closed  # caller owns it
    path = tmp_path / "f.png"
    path.write_bytes(data)
    with open(path, "rb") as fh:
        np.testing.assert_array_equal(load_image(fh).pixels, expected)
        assert not fh.closed


class _NonSeekable(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b) -> int:  # type: ignore[override]
        chunk = self._buf.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


def test_non_seekable_stream(rgb8: np.ndarray) -> None:
    data = encoded(Image.fromarray(rgb8), "PNG")
    img = load_image(io.BufferedReader(_NonSeekable(data)))
    assert to_uint8(img.pixels).tolist() == rgb8.tolist()


def test_text_mode_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(encoded(Image.new("RGB", (2, 2)), "PNG"))
    with open(path, encoding="latin-1") as fh, pytest.raises(ImageLoadError, match="text mode"):
        load_image(fh)  # type: ignore[arg-type]


def test_bad_source_type() -> None:
    with pytest.raises(TypeError):
        load_image(12345)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- refusals


def _assert_refused(source, *words: str, **kw) -> ImageLoadError:
    with pytest.raises(ImageLoadError) as info:
        load_image(source, **kw)
    msg = str(info.value)
    assert msg.startswith("cannot "), msg
    assert "Traceback" not in msg
    for w in words:
        assert w in msg, msg
    return info.value


def test_missing_file_and_directory(tmp_path: Path) -> None:
    _assert_refused(tmp_path / "nope.png", "nope.png", "no such file")
    _assert_refused(tmp_path, "directory")


def test_zero_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    _assert_refused(path, "'" + str(path) + "'", "empty")
    _assert_refused(b"", "empty")
    _assert_refused(io.BytesIO(), "empty")


def test_random_bytes_and_text(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "noise.jpg"
    path.write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    _assert_refused(path, "noise.jpg", "not a recognised image format")
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n" * 20)
    _assert_refused(text, "notes.png", "not a recognised image format")


def test_truncated_jpeg(tmp_path: Path, rng: np.random.Generator) -> None:
    a = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    data = encoded(Image.fromarray(a), "JPEG", quality=90)
    for cut in (len(data) // 2, len(data) - 2, 300):
        path = tmp_path / f"t{cut}.jpg"
        path.write_bytes(data[:cut])
        _assert_refused(path, path.name, "truncated")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_png(tmp_path: Path, rng: np.random.Generator) -> None:
    a = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    data = encoded(Image.fromarray(a), "PNG")
    path = tmp_path / "t.png"
    path.write_bytes(data[: len(data) // 2])
    _assert_refused(path, "t.png", "truncated")
    path.write_bytes(data[:30])  # inside IHDR
    _assert_refused(path, "t.png", "PNG", "truncated")


def test_corrupt_png_crc(tmp_path: Path) -> None:
    data = bytearray(encoded(Image.new("RGB", (8, 8), (9, 9, 9)), "PNG"))
    data[29] ^= 0xFF  # IHDR CRC
    _assert_refused(bytes(data), "<bytes>")


def test_huge_declared_png_refused_instantly(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(raw_png(100_000, 100_000, 8, 2, rows=b"\x00" * 10))
    t0 = time.perf_counter()
    _assert_refused(path, "bomb.png", "10,000,000,000 pixels", "200,000,000", "max_pixels")
    path.write_bytes(raw_png(100_000, 100_000, 8, 2, rows=None))  # no pixel data at all
    _assert_refused(path, "10,000,000,000 pixels")
    _assert_refused(path, "bomb.png", max_pixels=None)  # no cap: refused (no data), no hang
    assert time.perf_counter() - t0 < 2.0


def test_declared_size_just_above_cap_names_dimensions(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(raw_png(1000, 1500, 8, 2, rows=None))
    _assert_refused(path, "1000x1500", "1,500,000 pixels", "1,000,000", max_pixels=1_000_000)


def test_huge_declared_gif_refused(tmp_path: Path) -> None:
    data = bytearray(encoded(Image.new("P", (1, 1)), "GIF"))
    data[6:10] = struct.pack("<HH", 65535, 65535)  # logical screen size
    _assert_refused(bytes(data), "4,294,836,225 pixels")


def test_max_pixels_override(tmp_path: Path) -> None:
    path = save(Image.new("RGB", (64, 32)), tmp_path / "m.png")
    _assert_refused(path, "64x32", max_pixels=2047)
    assert load_image(path, max_pixels=2048).pixels.shape == (32, 64, 3)
    assert load_image(path, max_pixels=None).pixels.shape == (32, 64, 3)
    with pytest.raises(ValueError):
        load_image(path, max_pixels=0)


def test_pil_global_limit_is_not_the_mechanism(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tiny PIL limit must neither refuse images under our cap nor be left changed."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    path = save(Image.new("RGB", (64, 64)), tmp_path / "p.png")
    assert load_image(path).pixels.shape == (64, 64, 3)
    assert Image.MAX_IMAGE_PIXELS == 100
    with pytest.raises(ImageLoadError):
        load_image(path, max_pixels=100)
    assert Image.MAX_IMAGE_PIXELS == 100
    assert DEFAULT_MAX_PIXELS == 200_000_000


def test_pil_bomb_errors_become_image_load_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save(Image.new("RGB", (8, 8)), tmp_path / "p.png")

    def boom(*args, **kwargs):
        raise Image.DecompressionBombError("Image size (999999999 pixels) exceeds limit")

    monkeypatch.setattr(Image, "open", boom)
    _assert_refused(path, "p.png", "999,999,999")


def test_excluded_formats_are_refused() -> None:
    data = encoded(Image.new("RGB", (4, 4)), "TGA")
    _assert_refused(data, "not a recognised image format")


def test_concurrent_loads(tmp_path: Path, rgb8: np.ndarray) -> None:
    path = save(Image.fromarray(rgb8), tmp_path / "c.png")
    before = Image.MAX_IMAGE_PIXELS
    errors: list[BaseException] = []

    def worker(cap: int | None) -> None:
        try:
            for _ in range(20):
                assert load_image(path, max_pixels=cap).pixels.shape == (9, 13, 3)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(c,)) for c in (None, 200, 10**6, 10**9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert Image.MAX_IMAGE_PIXELS == before


# --------------------------------------------------------------------------- property tests

MAGICS = [
    b"",
    PNG_SIG,
    b"\xff\xd8\xff\xe0",
    b"GIF89a",
    b"II*\x00",
    b"MM\x00*",
    b"BM",
    b"RIFF\x00\x00\x00\x00WEBP",
    b"P6\n",
    b"\x00\x00\x00\x0cjP  \r\n\x87\n",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from(MAGICS), body=st.binary(max_size=600))
def test_random_bytes_never_crash(prefix: bytes, body: bytes) -> None:
    try:
        img = load_image(prefix + body, max_pixels=1_000_000)
    except ImageLoadError as exc:
        assert str(exc).startswith("cannot ")
    else:
        assert img.pixels.dtype == np.float32 and img.pixels.ndim == 3
        assert img.pixels.shape[2] == 3
        assert np.isfinite(img.pixels).all()
        assert img.pixels.min() >= 0.0 and img.pixels.max() <= 1.0


@settings(max_examples=150, deadline=None)
@given(data=st.data(), cut=st.floats(0.0, 1.0))
def test_damaged_real_files_never_crash(data: st.DataObject, cut: float) -> None:
    fmt = data.draw(st.sampled_from(["PNG", "JPEG", "GIF", "TIFF", "BMP", "WEBP"]))
    im = Image.new("RGB", (16, 12), (10, 200, 30))
    raw = bytearray(encoded(im, fmt))
    for _ in range(data.draw(st.integers(0, 3))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    raw = raw[: max(1, int(len(raw) * cut))]
    try:
        img = load_image(bytes(raw), max_pixels=1_000_000)
    except ImageLoadError:
        return
    assert img.pixels.dtype == np.float32 and img.pixels.shape[2] == 3


_DTYPES = [
    np.uint8,
    np.uint16,
    np.float32,
    np.float64,
    np.float16,
    np.int32,
    np.int64,
    np.bool_,
    np.int8,
]


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_image_from_array_property(data: st.DataObject) -> None:
    dtype = np.dtype(data.draw(st.sampled_from(_DTYPES)))
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5))
    if dtype.kind == "f":
        elements = st.one_of(
            st.floats(-0.5, 1.5, width=min(dtype.itemsize * 8, 64)),
            st.sampled_from([float("nan"), float("inf"), -float("inf")]),
        )
    else:
        elements = None
    arr = data.draw(hnp.arrays(dtype, shape, elements=elements))
    ok_shape = (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 3, 4))) and (
        arr.shape[0] > 0 and arr.shape[1] > 0
    )
    ok_dtype = dtype in (np.uint8, np.uint16) or (
        dtype.kind == "f"
        and arr.size > 0
        and bool(np.isfinite(arr).all())
        and float(arr.min()) >= -1e-3
        and float(arr.max()) <= 1 + 1e-3
    )
    if not (ok_shape and ok_dtype):
        with pytest.raises(ValueError):
            image_from_array(arr)
        return
    out = image_from_array(arr)
    h, w = arr.shape[:2]
    assert out.shape == (h, w, 3) and out.dtype == np.float32
    assert not np.shares_memory(out, arr)
    a3 = arr.reshape(h, w, -1)
    src = a3[..., :3] if a3.shape[2] >= 3 else np.repeat(a3, 3, axis=2)
    if dtype == np.uint8:
        expected = src / 255.0
    elif dtype == np.uint16:
        expected = src / 65535.0
    else:
        expected = np.clip(src.astype(np.float64), 0, 1)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- arrays


def test_image_from_array_cases() -> None:
    assert image_from_array(np.full((2, 2), 255, np.uint8)).tolist() == np.ones((2, 2, 3)).tolist()
    assert image_from_array(np.full((1, 1, 1), 65535, np.uint16))[0, 0].tolist() == [1, 1, 1]
    rgba = np.zeros((1, 1, 4), np.float32)
    rgba[..., 3] = 1
    assert image_from_array(rgba).shape == (1, 1, 3)
    np.testing.assert_array_equal(image_from_array(np.array([[1.0005]])), np.ones((1, 1, 3)))
    with pytest.raises(ValueError, match="divide by 255"):
        image_from_array(np.full((2, 2, 3), 200.0))
    with pytest.raises(ValueError, match="mask"):
        image_from_array(np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match="dtype"):
        image_from_array(np.zeros((2, 2), np.int64))
    with pytest.raises(ValueError, match="shape"):
        image_from_array(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        image_from_array(np.zeros((0, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        image_from_array(np.full((2, 2), np.nan, np.float32))
    with pytest.raises(ValueError):
        image_from_array([[0.5]])  # type: ignore[arg-type]


def test_to_uint8() -> None:
    every = np.arange(256, dtype=np.uint8)
    assert (to_uint8(every.astype(np.float32) / 255) == every).all()
    assert to_uint8(np.array([-0.2, 0.0, 0.5, 0.999, 1.7, np.nan])).tolist() == [
        0,
        0,
        128,
        255,
        255,
        0,
    ]
    assert to_uint8(np.array([True, False])).tolist() == [255, 0]
    u = np.array([3], np.uint8)
    assert to_uint8(u).tolist() == [3] and not np.shares_memory(to_uint8(u), u)
    with pytest.raises(ValueError):
        to_uint8(np.array([1], np.int32))


# --------------------------------------------------------------------------- writing


def test_atomic_write_creates_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "dir" / "out.bin"
    atomic_write_bytes(target, b"one")
    assert target.read_bytes() == b"one"
    atomic_write_bytes(str(target), b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]


def test_atomic_write_honours_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "perm.bin", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "perm.bin").stat().st_mode & 0o777 == 0o644


def test_atomic_write_failure_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "result.json"
    target.write_bytes(b"good old result")

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OutputError, match="result.json"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"good old result"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # temp file removed


def test_atomic_write_failure_in_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "mask.png"
    target.write_bytes(b"old")
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(5, "I/O error")))
    with pytest.raises(OSError):
        save_png(target, np.zeros((2, 2), bool))
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["mask.png"]


def test_atomic_write_under_regular_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="file.txt"):
        atomic_write_bytes(blocker / "out.bin", b"data")
    assert blocker.read_text() == "x"


def test_ensure_writable_dir(tmp_path: Path) -> None:
    d = ensure_writable_dir(tmp_path / "a" / "b")
    assert d.is_dir() and list(d.iterdir()) == []  # probe removed
    assert ensure_writable_dir(str(d)) == d
    blocker = tmp_path / "plain_file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="plain_file") as info:
        ensure_writable_dir(blocker / "sub")  # root cannot create a dir under a file either
    assert isinstance(info.value, OSError)
    with pytest.raises(OutputError, match="plain_file"):
        ensure_writable_dir(blocker)


def test_save_png_bool_mask(tmp_path: Path) -> None:
    mask = np.zeros((3, 4), bool)
    mask[1, 2] = True
    path = tmp_path / "mask.png"
    save_png(path, mask)
    with Image.open(path) as im:
        assert im.mode == "L"
        arr = np.asarray(im)
    assert set(np.unique(arr).tolist()) == {0, 255}
    assert ((arr > 127) == mask).all()


def test_save_png_float_and_uint8(tmp_path: Path, rgb8: np.ndarray) -> None:
    save_png(tmp_path / "rgb.png", rgb8.astype(np.float32) / 255)
    assert to_uint8(load_image(tmp_path / "rgb.png").pixels).tolist() == rgb8.tolist()
    heat = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    save_png(tmp_path / "heat.png", heat)
    with Image.open(tmp_path / "heat.png") as im:
        assert im.mode == "L"
        assert np.asarray(im).tolist() == to_uint8(heat).tolist()
    rgba = np.dstack([rgb8, np.full(rgb8.shape[:2], 7, np.uint8)])
    save_png(tmp_path / "rgba.png", rgba)
    with Image.open(tmp_path / "rgba.png") as im:
        assert im.mode == "RGBA" and np.asarray(im).tolist() == rgba.tolist()
    save_png(tmp_path / "g1.png", rgb8[..., :1])
    with Image.open(tmp_path / "g1.png") as im:
        assert im.mode == "L"


def test_save_png_uint16_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    rgb = rng.integers(0, 65536, size=(4, 5, 3), dtype=np.uint16)
    save_png(tmp_path / "c16.png", rgb)
    np.testing.assert_allclose(load_image(tmp_path / "c16.png").pixels, rgb / 65535.0, atol=1e-7)
    gray = rng.integers(0, 65536, size=(4, 5), dtype=np.uint16)
    save_png(tmp_path / "g16.png", gray)
    np.testing.assert_allclose(
        load_image(tmp_path / "g16.png").pixels[..., 0], gray / 65535.0, atol=1e-7
    )


def test_save_png_rejects_bad_input(tmp_path: Path) -> None:
    for bad in (
        np.zeros((2, 2), np.int64),
        np.zeros((2, 2, 2), np.uint8),
        np.zeros((0, 3)),
        np.zeros((2, 2, 3), bool),
    ):
        with pytest.raises(ValueError):
            save_png(tmp_path / "bad.png", bad)
    assert list(tmp_path.iterdir()) == []


@dataclass
class _Cfg:
    name: str = "x"
    out: Path = Path("/tmp/out")


def test_save_json(tmp_path: Path) -> None:
    obj = {
        "z_first": 1,
        "a_second": np.float32(0.5),
        "int": np.int64(7),
        "bool": np.bool_(True),
        "arr": np.arange(4).reshape(2, 2),
        "path": Path("/data/img.jpg"),
        "nan": float("nan"),
        "inf": np.float64("inf"),
        "tuple": (1, 2),
        "cfg": _Cfg(),
        "unicode": "caf\u00e9",
        np.int64(3): "numpy key",
    }
    path = tmp_path / "r.json"
    save_json(path, obj)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    assert '\n  "z_first": 1,' in text  # indent=2
    loaded = json.loads(text)
    assert list(loaded) == [
        "z_first",
        "a_second",
        "int",
        "bool",
        "arr",
        "path",
        "nan",
        "inf",
        "tuple",
        "cfg",
        "unicode",
        "3",
    ]
    assert loaded["a_second"] == 0.5 and loaded["int"] == 7 and loaded["bool"] is True
    assert loaded["arr"] == [[0, 1], [2, 3]]
    assert loaded["path"] == "/data/img.jpg"
    assert loaded["nan"] is None and loaded["inf"] is None
    assert loaded["cfg"] == {"name": "x", "out": "/tmp/out"}
    assert loaded["unicode"] == "caf\u00e9"


def test_save_json_unserialisable_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("{}")
    with pytest.raises(TypeError):
        save_json(path, {"bad": object()})
    assert path.read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


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
