"""Safe image decoding and atomic writes.

Forensic analysts hand us arbitrary files: huge, truncated, mislabelled, exotic modes,
hostile. Every decode of a user-supplied file goes through :func:`load_image`, which

* refuses decompression bombs from the *declared* size, before any pixel is decoded;
* refuses truncated or corrupt files with a one-line :class:`ImageLoadError` (never a raw
  PIL traceback, and never by silently padding a truncated file with grey);
* decodes by content, not by file name, and only with a whitelist of well-trodden decoders;
* converts every PIL mode to the house image format (``float32`` ``H x W x 3`` RGB in
  ``[0, 1]``), keeping 16-bit precision, and records each conversion in
  :attr:`LoadedImage.notes` so a report can say exactly what was analysed.

Every result we write goes through the atomic writers (:func:`atomic_write_bytes`,
:func:`save_png`, :func:`save_json`), so an interrupted run never leaves a half-written
mask or report beside the evidence, and never clobbers a previous good result.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import re
import secrets
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "SUPPORTED_FORMATS",
    "ImageLoadError",
    "LoadedImage",
    "OutputError",
    "atomic_write_bytes",
    "ensure_writable_dir",
    "image_from_array",
    "load_image",
    "save_json",
    "save_png",
    "to_uint8",
]

DEFAULT_MAX_PIXELS: int = 200_000_000
"""Default cap on declared ``width * height`` (a 200 MP photo still loads; bombs do not)."""

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

_EXIF_ORIENTATION = ExifTags.Base.Orientation

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)


class ImageLoadError(ValueError):
    """A user file could not be turned into an image; the message names the file and why."""


class OutputError(OSError):
    """A result could not be written; the message names the path and why."""


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


# --------------------------------------------------------------------------- decoding


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


_pil_limit_lock = threading.Lock()
_active_caps: list[int | None] = []
_saved_pil_limit: int | None = None


@contextmanager
def _pil_pixel_limit(cap: int | None) -> Iterator[None]:
    """Make PIL's own bomb check agree with our cap while we decode.

    PIL's check reads a process-wide global (default ~89 MP warning, ~179 MP error),
    which would refuse legitimate 100-200 MP photos below our cap. While any
    :func:`load_image` runs, the global is set to the most permissive active cap (so
    concurrent loads with different caps never refuse each other's images) and restored
    afterwards. Our own check on the declared size is the mechanism (with dimensions in
    its message); PIL's stays as a backstop at twice the cap, for internal buffers (GIF
    disposal areas, TIFF tiles) and for declared sizes that far over, where it fires first,
    inside ``Image.open``. The global is shared with other threads that use PIL directly.
    """
    global _saved_pil_limit
    with _pil_limit_lock:
        if not _active_caps:
            _saved_pil_limit = Image.MAX_IMAGE_PIXELS
        _active_caps.append(cap)
        _apply_pil_limit()
    try:
        yield
    finally:
        with _pil_limit_lock:
            _active_caps.remove(cap)
            if _active_caps:
                _apply_pil_limit()
            else:
                Image.MAX_IMAGE_PIXELS = _saved_pil_limit


def _apply_pil_limit() -> None:
    if any(c is None for c in _active_caps):
        Image.MAX_IMAGE_PIXELS = None
    else:
        Image.MAX_IMAGE_PIXELS = max(c for c in _active_caps if c is not None)


def _too_large(name: str, width: int, height: int, cap: int) -> ImageLoadError:
    return ImageLoadError(
        f"cannot decode {name!r}: image declares {width}x{height} = {width * height:,} "
        f"pixels, above the limit of {cap:,} (possible decompression bomb; pass a larger "
        "max_pixels to load it anyway)"
    )


def _bomb_error(name: str, exc: BaseException, cap: int | None) -> ImageLoadError:
    """PIL's backstop fired (declared size above twice the cap, or a huge internal buffer)."""
    match = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(match.group(1)):,} pixels" if match else "too many pixels"
    limit = f"the limit of {cap:,}" if cap is not None else "PIL's limit"
    return ImageLoadError(
        f"cannot decode {name!r}: image declares {size}, above {limit} "
        "(possible decompression bomb; pass a larger max_pixels to load it anyway)"
    )


def _failure_reason(exc: BaseException, header: bytes) -> str:
    """Turn whatever a decoder raised into a short reason a user can act on."""
    if isinstance(exc, UnidentifiedImageError):
        for magic, fmt in _MAGIC:
            if header.startswith(magic):
                return f"looks like a {fmt} file but its header is truncated or corrupt"
        return "not a recognised image format (supported: " + ", ".join(_available_formats()) + ")"
    if isinstance(exc, MemoryError):
        return "not enough memory to decode it"
    text = str(exc)
    if isinstance(exc, EOFError) or "truncated" in text.lower():
        return "file is truncated"
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return f"file is corrupt ({detail})"


_formats_cache: tuple[str, ...] | None = None


def _available_formats() -> tuple[str, ...]:
    """The whitelisted formats this PIL build can actually open (unknown ones crash open)."""
    global _formats_cache
    if _formats_cache is None:
        Image.init()
        _formats_cache = tuple(f for f in SUPPORTED_FORMATS if f in Image.OPEN)
    return _formats_cache


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
    with _pil_pixel_limit(max_pixels), warnings.catch_warnings(record=True) as caught:
        # Decoder complaints ("Corrupt EXIF data", ...) matter to an analyst: they go into
        # the notes instead of scrolling past on stderr.
        warnings.simplefilter("always")
        try:
            with warnings.catch_warnings():
                # PIL warns from its own check during open; ours below refuses oversize
                # images with a clearer message. Its error (above 2x the cap) still fires.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im = Image.open(fp, formats=list(_available_formats()))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb_error(name, exc, max_pixels) from exc
        except Exception as exc:  # decoders raise anything on hostile input
            reason = _failure_reason(exc, header)
            raise ImageLoadError(f"cannot decode {name!r}: {reason}") from exc
        # Context exit (unlike im.close()) leaves a caller's file object open.
        with im:
            width, height = im.size
            if max_pixels is not None and width * height > max_pixels:
                raise _too_large(name, width, height, max_pixels)
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
    stored_size, tiff_orientation = _tiff_layout(im)
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
        raise _bomb_error(name, exc, max_pixels) from exc
    except Exception as exc:  # decoders raise anything on hostile input
        raise ImageLoadError(f"cannot decode {name!r}: {_failure_reason(exc, header)}") from exc
    if max_pixels is not None and im.size[0] * im.size[1] > max_pixels:
        raise _too_large(name, im.size[0], im.size[1], max_pixels)
    if n_frames > 1:
        notes.append(f"first frame of an animated/multi-frame image used ({n_frames} frames)")

    quant = None
    if fmt in ("JPEG", "MPO"):
        raw_q = getattr(im, "quantization", None)
        if raw_q:
            quant = {int(k): [int(x) for x in v] for k, v in raw_q.items()}

    orientation = _read_orientation(im, notes)
    # Recent Pillow applies a TIFF's Orientation tag itself during load() and deletes the
    # tag; the pixels we hold are then already in display layout.
    pil_oriented = orientation is None and tiff_orientation is not None
    if pil_oriented:
        orientation = tiff_orientation
    original_mode = im.mode
    mode16 = _16bit_colour_mode(im, header)  # before exif_transpose, whose copy has no format

    if orientation is not None and apply_exif_orientation and not pil_oriented:
        try:
            im = ImageOps.exif_transpose(im)
        except Exception as exc:
            raise ImageLoadError(
                f"cannot decode {name!r}: failed to apply EXIF orientation ({exc})"
            ) from exc
    try:
        pil_arr = _pil_to_float_rgb(im, notes)
    except ImageLoadError as exc:
        raise ImageLoadError(f"cannot decode {name!r}: {exc}") from exc
    except Exception as exc:
        raise ImageLoadError(
            f"cannot decode {name!r}: cannot convert mode {im.mode!r} to RGB ({exc})"
        ) from exc
    if orientation is not None and pil_oriented and not apply_exif_orientation:
        pil_arr = _orient_array(pil_arr, _INVERSE_ORIENTATION[orientation])  # undo PIL's
    pixels = pil_arr  # now in the layout the caller asked for

    if mode16 is not None:
        full = _decode_16bit_colour(fp, mode16, orientation, apply_exif_orientation, pil_arr)
        if full is None:
            notes.append("16-bit colour could not be decoded at full precision; 8-bit used")
        else:
            pixels = full
            original_mode = mode16
            # The 8-bit notes describe the same conversions; keep them, add what differs.
            if mode16.startswith("LA") and "grayscale replicated to 3 channels" not in notes:
                notes.append("grayscale replicated to 3 channels")
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


def _tiff_layout(im: Image.Image) -> tuple[tuple[int, int], int | None]:
    """Stored ``(width, height)`` and TIFF orientation, read before PIL can rotate anything."""
    size = (int(im.size[0]), int(im.size[1]))
    if im.format != "TIFF":
        return size, None
    tags = getattr(im, "tag_v2", None)
    if tags is None:
        return size, None
    width, height = tags.get(256), tags.get(257)
    if isinstance(width, int) and isinstance(height, int):
        size = (width, height)
    orientation = tags.get(_EXIF_ORIENTATION)
    return size, orientation if orientation in (2, 3, 4, 5, 6, 7, 8) else None


_INVERSE_ORIENTATION = {2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}


def _read_orientation(im: Image.Image, notes: list[str]) -> int | None:
    """EXIF orientation 2..8 if the image needs transposing, else None."""
    try:
        value = im.getexif().get(_EXIF_ORIENTATION)
    except Exception:  # damaged EXIF must not cost us the pixels
        notes.append("EXIF metadata could not be parsed; orientation ignored")
        return None
    if value is None or value == 1:
        return None
    if isinstance(value, int) and 2 <= value <= 8:
        return value
    notes.append(f"ignored invalid EXIF orientation {value!r}")
    return None


def _orient_array(a: np.ndarray, orientation: int) -> np.ndarray:
    """Same transform as ``ImageOps.exif_transpose`` for an ``H x W x C`` array."""
    if orientation == 2:
        out = a[:, ::-1]
    elif orientation == 3:
        out = a[::-1, ::-1]
    elif orientation == 4:
        out = a[::-1]
    elif orientation == 5:
        out = a.swapaxes(0, 1)
    elif orientation == 6:
        out = np.rot90(a, k=-1)
    elif orientation == 7:
        out = a[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        out = np.rot90(a, k=1)
    else:
        out = a
    return np.ascontiguousarray(out)


def _16bit_colour_mode(im: Image.Image, header: bytes) -> str | None:
    """Label 16-bit colour / gray+alpha PNG and TIFF files, which PIL truncates to 8 bits.

    Returns ``"RGB;16"``, ``"RGBA;16"`` or ``"LA;16"`` (PIL has no such modes: it opens
    these as 8-bit ``RGB``/``RGBA``), else None.
    """
    if im.format == "PNG" and header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR":
        if header[24] == 16:
            return {2: "RGB;16", 4: "LA;16", 6: "RGBA;16"}.get(header[25])
        return None
    if im.format == "TIFF" and im.mode in ("RGB", "RGBA", "RGBX", "LA"):
        tags = getattr(im, "tag_v2", {})
        bits = tags.get(258)
        bits = tuple(bits) if isinstance(bits, (tuple, list)) else (bits,)
        sample_format = tags.get(339, 1)
        sample_format = (
            tuple(sample_format) if isinstance(sample_format, (tuple, list)) else (sample_format,)
        )
        if all(b == 16 for b in bits) and all(s == 1 for s in sample_format):
            return {2: "LA;16", 3: "RGB;16", 4: "RGBA;16"}.get(len(bits))
    return None


def _decode_16bit_colour(
    fp: BinaryIO,
    mode: str,
    orientation: int | None,
    apply_orientation: bool,
    reference: np.ndarray,
) -> np.ndarray | None:
    """Full-precision decode with OpenCV, verified against PIL's 8-bit decode.

    OpenCV applies orientation for some codecs (TIFF) and not others (PNG eXIf), varying
    with its version, so instead of guessing we try the candidate layouts and keep the one
    whose high bytes match PIL's 8-bit pixels (``reference``, float ``H x W x 3`` already in
    the requested layout). None if OpenCV fails or nothing matches.
    """
    import cv2  # local: only this rare path needs OpenCV

    fp.seek(0)
    buf = np.frombuffer(fp.read(), dtype=np.uint8)
    try:
        arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    if arr is None or arr.dtype != np.uint16:
        return None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if mode.startswith("LA") or arr.shape[2] < 3:
        rgb = np.repeat(arr[:, :, :1], 3, axis=2)  # OpenCV replicates gray into B, G, R
    else:
        rgb = arr[:, :, 2::-1]  # BGR(A) -> RGB
    candidates = [rgb]
    if orientation is not None:
        fix = orientation if apply_orientation else _INVERSE_ORIENTATION[orientation]
        candidates.append(_orient_array(rgb, fix))
    expected8 = np.rint(reference * np.float32(255.0)).astype(np.int16)
    for cand in candidates:
        if cand.shape != reference.shape:
            continue
        high = (cand >> 8).astype(np.int16)
        if np.abs(high - expected8).max() <= 1:
            return _scale(cand, 65535.0)
    return None


def _scale(a: np.ndarray, full: float) -> np.ndarray:
    """Integer samples to float32 [0, 1]; division keeps ``full -> 1.0`` exact."""
    return np.ascontiguousarray(np.divide(a, np.float32(full), dtype=np.float32))


def _gray3(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(a[:, :, None], 3, axis=2), dtype=np.float32)


def _pil_to_float_rgb(im: Image.Image, notes: list[str]) -> np.ndarray:
    """Every PIL mode we may meet -> float32 H x W x 3 in [0, 1], noting what changed."""
    mode = im.mode
    gray_note = "grayscale replicated to 3 channels"
    alpha_note = "dropped alpha channel"
    if mode == "1":
        notes.append("1-bit black-and-white image replicated to 3 channels")
        return _gray3(np.asarray(im, dtype=bool).astype(np.float32))
    if mode == "L":
        notes.append(gray_note)
        return _gray3(_scale(np.asarray(im), 255.0))
    if mode in ("LA", "La"):
        if mode == "La":
            im = im.convert("LA")
        notes.extend([alpha_note, gray_note])
        return _gray3(_scale(np.asarray(im)[:, :, 0], 255.0))
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        notes.append("palette image converted to RGB")
        if has_alpha:
            notes.append(alpha_note)
            return _scale(np.asarray(im.convert("RGBA"))[:, :, :3], 255.0)
        return _scale(np.asarray(im.convert("RGB")), 255.0)
    if mode == "RGB":
        return _scale(np.asarray(im), 255.0)
    if mode in ("RGBA", "RGBa", "RGBX"):
        if mode == "RGBa":
            im = im.convert("RGBA")
        if mode != "RGBX":
            notes.append(alpha_note)
        return _scale(np.asarray(im)[:, :, :3], 255.0)
    if mode.startswith("I;16"):
        notes.extend(["16-bit image scaled to [0,1]", gray_note])
        return _gray3(_scale(np.asarray(im), 65535.0))
    if mode == "I":
        a = np.asarray(im)
        lo, hi = int(a.min()), int(a.max())
        if lo >= 0 and hi <= 65535:
            notes.extend(["32-bit integer image scaled as 16-bit to [0,1]", gray_note])
            return _gray3(_scale(a, 65535.0))
        notes.extend([f"32-bit integer image rescaled from [{lo}, {hi}] to [0,1]", gray_note])
        return _gray3(_rescale(a, lo, hi))
    if mode == "F":
        a = np.asarray(im, dtype=np.float32)
        if not np.isfinite(a).all():
            raise ImageLoadError("floating-point image contains NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo >= 0.0 and hi <= 1.0:
            notes.extend(["32-bit float image used as-is", gray_note])
            return _gray3(a)
        notes.extend([f"32-bit float image rescaled from [{lo:g}, {hi:g}] to [0,1]", gray_note])
        return _gray3(_rescale(a, lo, hi))
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        notes.append(f"converted {mode} to RGB")
        return _scale(np.asarray(im.convert("RGB")), 255.0)
    raise ImageLoadError(f"unsupported image mode {mode!r}")


def _rescale(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if hi == lo:
        return np.zeros(a.shape, dtype=np.float32)
    return ((a - lo) / (hi - lo)).astype(np.float32)


# --------------------------------------------------------------------------- arrays


def image_from_array(array: np.ndarray) -> np.ndarray:
    """Validate a caller-supplied array and return a new float32 ``H x W x 3`` RGB in [0, 1].

    Accepted: ``uint8`` (/255), ``uint16`` (/65535) or floating point already in
    ``[0, 1]`` (overshoot up to 1e-3 from resampling is clipped); shapes ``H x W``,
    ``H x W x 1`` (gray, replicated), ``H x W x 3`` (RGB) and ``H x W x 4`` (RGBA, alpha
    dropped). Anything else raises ``ValueError`` naming the problem, because a silently
    mis-scaled image (e.g. floats in 0..255) ruins a noise analysis without any error.
    """
    if not isinstance(array, np.ndarray):
        raise ValueError(f"expected a numpy array, got {type(array).__name__}")
    a = array
    if a.ndim == 3 and a.shape[2] in (1, 3, 4):
        pass
    elif a.ndim == 2:
        a = a[:, :, None]
    else:
        raise ValueError(
            f"expected an image of shape HxW, HxWx1, HxWx3 or HxWx4, got shape {array.shape}"
        )
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"image is empty (shape {array.shape})")
    if a.dtype == np.uint8:
        out = _scale(a, 255.0)
    elif a.dtype == np.uint16:
        out = _scale(a, 65535.0)
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ValueError("image contains NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo < -1e-3 or hi > 1.0 + 1e-3:
            hint = " (divide by 255?)" if hi > 1.0 + 1e-3 and hi <= 255.0 else ""
            raise ValueError(
                f"float image values must lie in [0, 1], got range [{lo:g}, {hi:g}]{hint}"
            )
        out = np.clip(a, 0.0, 1.0).astype(np.float32)
    elif a.dtype == np.bool_:
        raise ValueError("got a bool array: that is a mask, not an image")
    else:
        raise ValueError(f"unsupported image dtype {a.dtype}; use uint8, uint16 or float in [0, 1]")
    channels = out.shape[2]
    if channels == 1:
        out = np.repeat(out, 3, axis=2)
    elif channels == 4:
        out = out[:, :, :3]
    return np.ascontiguousarray(out, dtype=np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] -> uint8, rounding to nearest and clipping out-of-range values.

    Rounding (not truncation) makes ``to_uint8(x / 255) == x`` exact for every uint8 ``x``,
    so saving a loaded 8-bit image is lossless. NaN maps to 0. ``uint8`` input is returned
    as a copy and ``bool`` input maps to 0/255; other integer types raise ``ValueError``
    because their scale is ambiguous.
    """
    a = np.asarray(image)
    if a.dtype == np.uint8:
        return a.copy()
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * np.uint8(255)
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"to_uint8 expects a float image in [0, 1], got dtype {a.dtype}")
    if a.ndim == 0:
        return _float_band_to_uint8(a[None])[0]
    out = np.empty(a.shape, np.uint8)
    # converted in bands of rows, so a 24-megapixel RGB image needs ~16 MB of float work
    # space instead of several full-size float copies
    rows = max(1, _UINT8_BAND_ELEMENTS // max(1, a[0].size))
    for r0 in range(0, a.shape[0], rows):
        out[r0:r0 + rows] = _float_band_to_uint8(a[r0:r0 + rows])
    return out


_UINT8_BAND_ELEMENTS = 1 << 22


def _float_band_to_uint8(band: np.ndarray) -> np.ndarray:
    scaled = np.multiply(band, np.float32(255.0), dtype=np.float32)
    np.nan_to_num(scaled, copy=False, nan=0.0)
    np.clip(scaled, 0, 255, out=scaled)
    np.rint(scaled, out=scaled)
    return scaled.astype(np.uint8)


# --------------------------------------------------------------------------- writing


def ensure_writable_dir(path: str | Path) -> Path:
    """Create ``path`` (and parents) if needed and prove we can write there.

    Checked with a real probe file (then removed) rather than ``os.access``, which lies
    for root, ACLs, read-only mounts and full disks. Failing here, before a long analysis,
    beats failing when the results are ready. Raises :class:`OutputError`.
    """
    p = Path(path).expanduser()
    try:
        p.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise OutputError(f"cannot use {str(p)!r} as output directory: it is a file") from exc
    except OSError as exc:
        raise OutputError(
            f"cannot create output directory {str(p)!r}: {exc.strerror or exc}"
        ) from exc
    if not p.is_dir():
        raise OutputError(f"cannot use {str(p)!r} as output directory: not a directory")
    probe = p / f".noisead-write-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
    except OSError as exc:
        raise OutputError(
            f"output directory {str(p)!r} is not writable: {exc.strerror or exc}"
        ) from exc
    finally:
        with suppress(OSError):
            probe.unlink()
    return p


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see either the old file or the complete new one.

    The bytes go to a temporary file in the same directory (same filesystem, so the rename
    is atomic), are fsynced, then ``os.replace`` d over the target. On any failure the
    temporary file is removed and an existing target is left untouched. The new file gets
    the usual permissions (``0o666`` minus umask), unlike ``mkstemp``'s ``0o600``.
    Missing parent directories are created. Raises :class:`OutputError`.
    """
    target = Path(path).expanduser()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot write {str(target)!r}: cannot create directory {str(parent)!r} "
            f"({exc.strerror or exc})"
        ) from exc
    tmp: Path | None = None
    try:
        fd = -1
        for _ in range(100):
            candidate = parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
            try:
                fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue
            tmp = candidate
            break
        if tmp is None:
            raise FileExistsError("could not create a unique temporary file")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise OutputError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from exc
    finally:
        if tmp is not None:
            with suppress(OSError):
                tmp.unlink()
    _fsync_dir(parent)


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself (best effort: not every platform can fsync a directory)."""
    with suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_png(path: str | Path, array: np.ndarray) -> None:
    """Atomically write a mask, heatmap or image as PNG.

    * ``bool`` mask ``H x W`` -> 8-bit gray with 0/255 (viewable, and ``> 127`` recovers it);
    * float in [0, 1], gray or RGB(A) -> 8-bit via :func:`to_uint8` (rounded, clipped);
    * ``uint8`` gray / RGB / RGBA as is; ``uint16`` gray / RGB / RGBA as 16-bit PNG.
    """
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise ValueError(
            f"save_png expects HxW, HxWx1, HxWx3 or HxWx4, got shape {np.shape(array)}"
        )
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"cannot save an empty image (shape {np.shape(array)})")
    if a.dtype == np.bool_:
        if a.ndim != 2:
            raise ValueError(f"a bool mask must be HxW, got shape {np.shape(array)}")
        a = a.astype(np.uint8) * np.uint8(255)
    elif np.issubdtype(a.dtype, np.floating):
        a = to_uint8(a)
    if a.dtype == np.uint8:
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(a)).save(buf, format="PNG")
        data = buf.getvalue()
    elif a.dtype == np.uint16:
        if a.ndim == 2:
            buf = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(a)).save(buf, format="PNG")
            data = buf.getvalue()
        else:
            import cv2

            bgr = np.ascontiguousarray(a[:, :, [2, 1, 0, 3][: a.shape[2]]])
            ok, enc = cv2.imencode(".png", bgr)
            if not ok:
                raise ValueError("OpenCV failed to encode the 16-bit image as PNG")
            data = enc.tobytes()
    else:
        raise ValueError(
            f"save_png cannot write dtype {a.dtype}; use bool, uint8, uint16 or float in [0, 1]"
        )
    atomic_write_bytes(path, data)


def save_json(path: str | Path, obj: Any) -> None:
    """Atomically write ``obj`` as UTF-8 JSON (indent 2, keys in insertion order).

    Converts what our results contain: numpy scalars and arrays, ``Path``, tuples, sets
    and dataclasses (configs). Non-finite floats (NaN, inf) become ``null`` so the file is
    strict JSON that browsers and ``jq`` accept. Other types raise ``TypeError``.
    """
    text = json.dumps(
        _jsonable(obj), indent=2, sort_keys=False, ensure_ascii=False, allow_nan=False
    )
    atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def _jsonable(obj: Any) -> Any:
    if obj is None or isinstance(obj, (bool, str, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, dict):
        return {_json_key(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        items = [_jsonable(v) for v in obj]
        with suppress(TypeError):
            items.sort()
        return items
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    raise TypeError(f"save_json cannot serialise {type(obj).__name__}: {obj!r:.80}")


def _json_key(key: Any) -> str | int | float | bool | None:
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, os.PathLike):
        return os.fspath(key)
    if key is None or isinstance(key, (str, int, float, bool)):
        return key
    raise TypeError(f"save_json cannot use {type(key).__name__} as a key: {key!r:.80}")
