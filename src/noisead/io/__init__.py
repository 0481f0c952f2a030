"""Files in and out: hardened decoding, array conversion, atomic writing, JPEG.

One module a job:

* :mod:`~noisead.io.decoding` — :func:`load_image`, the one decoder of user files
  (size limits, whitelisted formats, mode conversion, EXIF orientation), helped by
  :mod:`~noisead.io.formats`, :mod:`~noisead.io.conversion`, :mod:`~noisead.io.orientation`,
  :mod:`~noisead.io.pixel_limit` and :mod:`~noisead.io.errors`;
* :mod:`~noisead.io.arrays` — :func:`image_from_array` and :func:`to_uint8`, the one
  float-to-8-bit conversion;
* :mod:`~noisead.io.writing` — atomic writes, the one PNG encoder, the one JSON rule;
* :mod:`~noisead.io.jpeg` — quantization tables, quality estimate, encode, round trip.

Everything a caller needs is importable from ``noisead.io`` itself.
"""

from noisead.io.arrays import image_from_array, to_uint8
from noisead.io.decoding import DEFAULT_MAX_PIXELS, LoadedImage, load_image
from noisead.io.errors import ImageLoadError, OutputError
from noisead.io.formats import IMAGE_EXTENSIONS, SUPPORTED_FORMATS
from noisead.io.writing import (
    PNG_FAST,
    PNG_SMALL,
    atomic_write_bytes,
    encode_png,
    ensure_writable_dir,
    jsonable,
    save_json,
    save_png,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "PNG_FAST",
    "PNG_SMALL",
    "SUPPORTED_FORMATS",
    "ImageLoadError",
    "LoadedImage",
    "OutputError",
    "atomic_write_bytes",
    "encode_png",
    "ensure_writable_dir",
    "image_from_array",
    "jsonable",
    "load_image",
    "save_json",
    "save_png",
    "to_uint8",
]
