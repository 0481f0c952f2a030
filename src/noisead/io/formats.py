"""Which files noisead reads: the decoders it trusts and the extensions a folder scan takes.

Two lists with two jobs. :data:`SUPPORTED_FORMATS` names the PIL decoders that
:func:`noisead.io.load_image` lets open a user's file (decided from the content, never the
name). :data:`IMAGE_EXTENSIONS` is what every folder scan picks up as a photograph (the
command line, batch runs, camera folders, benchmark readers, the data builders): the
formats photographs come in, so that a folder's GIF icons or PPM dumps are not analysed
as photos unless someone names them.
"""

from __future__ import annotations

from PIL import Image

__all__ = ["IMAGE_EXTENSIONS", "MAGIC_NUMBERS", "SUPPORTED_FORMATS", "available_formats"]

SUPPORTED_FORMATS: tuple[str, ...] = (
    "JPEG",
    "MPO",  # camera JPEGs carrying an MPF preview open as MPO
    "PNG",
    "TIFF",
    "BMP",
    "DIB",
    "GIF",
    "WEBP",
    "PPM",
    "JPEG2000",
    "AVIF",
    "HEIF",  # only when a HEIF plugin is installed
)
"""PIL formats we let decode user files. Exotic decoders (EPS runs Ghostscript, TGA has
no magic number and matches random bytes, ...) are deliberately left out: they add attack
surface and produce garbage from non-image files instead of a clear refusal."""

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}
)
"""Lower-case file name endings a folder scan takes as photographs (compare with
``path.suffix.lower()``). Each is decoded by one of :data:`SUPPORTED_FORMATS`."""

MAGIC_NUMBERS: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)
"""File headers of the common formats, to tell a damaged image from a file of another kind."""

_formats_cache: tuple[str, ...] | None = None


def available_formats() -> tuple[str, ...]:
    """The whitelisted formats this PIL build can actually open (unknown ones crash open)."""
    global _formats_cache
    if _formats_cache is None:
        Image.init()
        _formats_cache = tuple(f for f in SUPPORTED_FORMATS if f in Image.OPEN)
    return _formats_cache
