"""What load_image reads from: paths, bytes, file objects (seekable or not), and the first
frame of a multi-frame file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from io_support import encoded, save
from PIL import Image

from noisead.io import ImageLoadError, load_image, to_uint8


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
