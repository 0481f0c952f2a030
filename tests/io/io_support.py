"""Hand-built image files for the tests of noisead.io (PNG chunks, 16-bit TIFFs, EXIF)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

PNG_SIG = b"\x89PNG\r\n\x1a\n"

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
