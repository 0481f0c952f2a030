"""The hardened loader: every user-supplied image file goes through :func:`load_image`.

Forensic analysts hand us arbitrary files: huge, truncated, mislabelled, exotic modes,
hostile. :func:`load_image`

* refuses decompression bombs from the *declared* size, before any pixel is decoded;
* refuses truncated or corrupt files with a one-line :class:`ImageLoadError` (never a raw
  PIL traceback, and never by silently padding a truncated file with grey);
* decodes by content, not by file name, and only with a whitelist of well-trodden decoders
  (:data:`noisead.io.formats.SUPPORTED_FORMATS`);
* converts every PIL mode to the house image format (``float32`` ``H x W x 3`` RGB in
  ``[0, 1]``), keeping 16-bit precision, and records each conversion in
  :attr:`LoadedImage.notes` so a report can say exactly what was analysed.
"""

from __future__ import annotations

import dataclasses
import io
import os
import warnings
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps

from noisead.io.conversion import (
    GRAY_NOTE,
    decode_16bit_colour,
    pil_to_float_rgb,
    sixteen_bit_colour_mode,
)
from noisead.io.errors import ImageLoadError, bomb_error, failure_reason, too_large
from noisead.io.formats import available_formats
from noisead.io.orientation import (
    INVERSE_ORIENTATION,
    orient_array,
    read_orientation,
    tiff_layout,
)
from noisead.io.pixel_limit import pil_pixel_limit

__all__ = ["DEFAULT_MAX_PIXELS", "LoadedImage", "load_image"]

DEFAULT_MAX_PIXELS: int = 200_000_000
"""Default cap on declared ``width * height`` (a 200 MP photo still loads; bombs do not)."""


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """A decoded image plus the provenance a forensic report needs.

    ``eq=False``: equality is identity, since comparing pixel arrays field-wise is
    ambiguous (and an ndarray is not hashable).
    """

    pixels: np.ndarray
    """``float32`` ``H x W x 3`` RGB in ``[0, 1]``, EXIF orientation applied if requested."""
    path: Path | None
    """The file it came from, or ``None`` for bytes and file objects."""
    original_mode: str
    """PIL mode as decoded (``"RGB;16"``/``"RGBA;16"`` for 16-bit colour, which PIL lacks)."""
    original_size: tuple[int, int]
    """``(width, height)`` as stored in the file, before EXIF rotation."""
    notes: tuple[str, ...]
    """Human-readable conversions applied, in order."""
    jpeg_quality_tables: dict[int, list[int]] | None
    """PIL's ``quantization`` tables for JPEG files (double-compression forensics), else None."""


def load_image(
    source: str | Path | bytes | BinaryIO,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    apply_exif_orientation: bool = True,
) -> LoadedImage:
    """Decode a user-supplied image into the house format, refusing anything unsafe.

    ``source`` is a path, the file's bytes, or a binary file object (read from its start;
    it is not closed). The format is detected from the content, never from the name.

    The declared ``width * height`` is checked against ``max_pixels`` before any pixel is
    decoded, so a tiny file declaring a gigapixel canvas is refused instantly instead of
    exhausting memory; ``max_pixels=None`` disables the cap (trusted input only).

    Raises :class:`ImageLoadError` (a ``ValueError``) for every problem with the input:
    missing file, empty, truncated, corrupt, unsupported format or mode, too large.
    """
    if max_pixels is not None and (isinstance(max_pixels, bool) or max_pixels < 1):
        raise ValueError(f"max_pixels must be a positive int or None, got {max_pixels!r}")
    name, path, fp, owned = _open_source(source)
    try:
        return _decode(fp, name, path, max_pixels, apply_exif_orientation)
    finally:
        if owned:
            fp.close()


def _open_source(source: Any) -> tuple[str, Path | None, BinaryIO, bool]:
    """Return (display name, path, binary file object, whether we must close it)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>", None, io.BytesIO(bytes(source)), True
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = str(source)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ImageLoadError(f"cannot read {name!r}: no such file") from None
        except OSError as exc:
            raise ImageLoadError(f"cannot read {name!r}: {exc.strerror or exc}") from exc
        if path.is_dir():
            raise ImageLoadError(f"cannot read {name!r}: it is a directory, not an image file")
        if not path.is_file():
            # FIFOs and devices could block forever or never end.
            raise ImageLoadError(f"cannot read {name!r}: not a regular file")
        if st.st_size == 0:
            raise ImageLoadError(f"cannot decode {name!r}: file is empty (0 bytes)")
        try:
            fp = open(path, "rb")  # closed by load_image
        except OSError as exc:
            raise ImageLoadError(f"cannot read {name!r}: {exc.strerror or exc}") from exc
        return name, path, fp, True
    if hasattr(source, "read"):
        raw_name = getattr(source, "name", None)
        name = raw_name if isinstance(raw_name, str) else "<stream>"
        if isinstance(source, io.TextIOBase):
            raise ImageLoadError(
                f"cannot read {name!r}: file object is in text mode; open it with 'rb'"
            )
        seekable = False
        with suppress(Exception):
            seekable = bool(source.seekable())
        if seekable:
            return name, None, source, False
        try:
            data = source.read()
        except Exception as exc:  # arbitrary user stream
            raise ImageLoadError(f"cannot read {name!r}: {exc}") from exc
        if not isinstance(data, (bytes, bytearray)):
            raise ImageLoadError(f"cannot read {name!r}: file object did not return bytes")
        return name, None, io.BytesIO(bytes(data)), True
    raise TypeError(
        f"load_image expects a path, bytes or a binary file object, got {type(source).__name__}"
    )


def _decode(
    fp: BinaryIO,
    name: str,
    path: Path | None,
    max_pixels: int | None,
    apply_exif_orientation: bool,
) -> LoadedImage:
    try:
        fp.seek(0)
        header = fp.read(64)
        fp.seek(0)
    except Exception as exc:  # arbitrary user stream
        raise ImageLoadError(f"cannot read {name!r}: {exc}") from exc
    if not header:
        raise ImageLoadError(f"cannot decode {name!r}: file is empty (0 bytes)")

    notes: list[str] = []
    with pil_pixel_limit(max_pixels), warnings.catch_warnings(record=True) as caught:
        # Decoder complaints ("Corrupt EXIF data", ...) matter to an analyst: they go into
        # the notes instead of scrolling past on stderr.
        warnings.simplefilter("always")
        try:
            with warnings.catch_warnings():
                # PIL warns from its own check during open; ours below refuses oversize
                # images with a clearer message. Its error (above 2x the cap) still fires.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im = Image.open(fp, formats=list(available_formats()))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise bomb_error(name, exc, max_pixels) from exc
        except Exception as exc:  # decoders raise anything on hostile input
            reason = failure_reason(exc, header)
            raise ImageLoadError(f"cannot decode {name!r}: {reason}") from exc
        # Context exit (unlike im.close()) leaves a caller's file object open.
        with im:
            width, height = im.size
            if max_pixels is not None and width * height > max_pixels:
                raise too_large(name, width, height, max_pixels)
            if width < 1 or height < 1:
                raise ImageLoadError(f"cannot decode {name!r}: image has size {width}x{height}")
            loaded = _decode_opened(
                im, fp, name, path, header, max_pixels, apply_exif_orientation, notes
            )
    decoder_notes: list[str] = []
    for w in caught:
        from_pil = "PIL" in Path(w.filename).parts
        if not from_pil or issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            continue
        note = f"decoder warning: {w.message}".strip()
        if note not in decoder_notes:
            decoder_notes.append(note)
    if decoder_notes:
        loaded = dataclasses.replace(loaded, notes=loaded.notes + tuple(decoder_notes))
    return loaded


def _load_first_frame(im: Image.Image, name: str, header: bytes, max_pixels: int | None) -> int:
    """Decode frame 0's pixels; returns the number of frames (1 where it cannot be read)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            n_frames = 1
            try:
                n_frames = int(getattr(im, "n_frames", 1))
            except Exception:  # damaged later frames: frame 0 may be fine
                n_frames = 1
            if im.tell() != 0:
                im.seek(0)
            im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise bomb_error(name, exc, max_pixels) from exc
    except Exception as exc:  # decoders raise anything on hostile input
        raise ImageLoadError(f"cannot decode {name!r}: {failure_reason(exc, header)}") from exc
    if max_pixels is not None and im.size[0] * im.size[1] > max_pixels:
        raise too_large(name, im.size[0], im.size[1], max_pixels)
    return n_frames


def _decode_opened(
    im: Image.Image,
    fp: BinaryIO,
    name: str,
    path: Path | None,
    header: bytes,
    max_pixels: int | None,
    apply_exif_orientation: bool,
    notes: list[str],
) -> LoadedImage:
    fmt = im.format
    stored_size, tiff_orientation = tiff_layout(im)
    n_frames = _load_first_frame(im, name, header, max_pixels)
    if n_frames > 1:
        notes.append(f"first frame of an animated/multi-frame image used ({n_frames} frames)")

    quant = None
    if fmt in ("JPEG", "MPO"):
        raw_q = getattr(im, "quantization", None)
        if raw_q:
            quant = {int(k): [int(x) for x in v] for k, v in raw_q.items()}

    orientation = read_orientation(im, notes)
    # Recent Pillow applies a TIFF's Orientation tag itself during load() and deletes the
    # tag; the pixels we hold are then already in display layout.
    pil_oriented = orientation is None and tiff_orientation is not None
    if pil_oriented:
        orientation = tiff_orientation
    original_mode = im.mode
    mode16 = sixteen_bit_colour_mode(im, header)  # before exif_transpose: its copy has no format

    if orientation is not None and apply_exif_orientation and not pil_oriented:
        try:
            im = ImageOps.exif_transpose(im)
        except Exception as exc:
            raise ImageLoadError(
                f"cannot decode {name!r}: failed to apply EXIF orientation ({exc})"
            ) from exc
    try:
        pil_arr = pil_to_float_rgb(im, notes)
    except ImageLoadError as exc:
        raise ImageLoadError(f"cannot decode {name!r}: {exc}") from exc
    except Exception as exc:
        raise ImageLoadError(
            f"cannot decode {name!r}: cannot convert mode {im.mode!r} to RGB ({exc})"
        ) from exc
    if orientation is not None and pil_oriented and not apply_exif_orientation:
        pil_arr = orient_array(pil_arr, INVERSE_ORIENTATION[orientation])  # undo PIL's
    pixels = pil_arr  # now in the layout the caller asked for

    if mode16 is not None:
        full = decode_16bit_colour(fp, mode16, orientation, apply_exif_orientation, pil_arr)
        if full is None:
            notes.append("16-bit colour could not be decoded at full precision; 8-bit used")
        else:
            pixels = full
            original_mode = mode16
            # The 8-bit notes describe the same conversions; keep them, add what differs.
            if mode16.startswith("LA") and GRAY_NOTE not in notes:
                notes.append(GRAY_NOTE)
            notes.append("16-bit image scaled to [0,1]")

    if orientation is not None:
        if apply_exif_orientation:
            notes.append(f"applied EXIF orientation {orientation}")
        else:
            notes.append(f"EXIF orientation {orientation} present but not applied")

    return LoadedImage(
        pixels=pixels,
        path=path,
        original_mode=original_mode,
        original_size=stored_size,
        notes=tuple(notes),
        jpeg_quality_tables=quant,
    )
