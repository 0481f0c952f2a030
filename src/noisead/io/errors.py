"""The two errors of :mod:`noisead.io`, and the one-line reasons a refused file is given.

A person handed a damaged or hostile file must learn in one line what is wrong with it,
never from a decoder's traceback: every decoding failure is turned into an
:class:`ImageLoadError` whose message names the file and the reason.
"""

from __future__ import annotations

import re

from PIL import UnidentifiedImageError

from noisead.io.formats import MAGIC_NUMBERS, available_formats

__all__ = ["ImageLoadError", "OutputError", "bomb_error", "failure_reason", "too_large"]


class ImageLoadError(ValueError):
    """A user file could not be turned into an image; the message names the file and why."""


class OutputError(OSError):
    """A result could not be written; the message names the path and why."""


def too_large(name: str, width: int, height: int, cap: int) -> ImageLoadError:
    """The refusal of an image whose declared size is above ``cap`` pixels."""
    return ImageLoadError(
        f"cannot decode {name!r}: image declares {width}x{height} = {width * height:,} "
        f"pixels, above the limit of {cap:,} (possible decompression bomb; pass a larger "
        "max_pixels to load it anyway)"
    )


def bomb_error(name: str, exc: BaseException, cap: int | None) -> ImageLoadError:
    """PIL's backstop fired (declared size above twice the cap, or a huge internal buffer)."""
    match = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(match.group(1)):,} pixels" if match else "too many pixels"
    limit = f"the limit of {cap:,}" if cap is not None else "PIL's limit"
    return ImageLoadError(
        f"cannot decode {name!r}: image declares {size}, above {limit} "
        "(possible decompression bomb; pass a larger max_pixels to load it anyway)"
    )


def failure_reason(exc: BaseException, header: bytes) -> str:
    """Turn whatever a decoder raised into a short reason a user can act on."""
    if isinstance(exc, UnidentifiedImageError):
        for magic, fmt in MAGIC_NUMBERS:
            if header.startswith(magic):
                return f"looks like a {fmt} file but its header is truncated or corrupt"
        return "not a recognised image format (supported: " + ", ".join(available_formats()) + ")"
    if isinstance(exc, MemoryError):
        return "not enough memory to decode it"
    text = str(exc)
    if isinstance(exc, EOFError) or "truncated" in text.lower():
        return "file is truncated"
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return f"file is corrupt ({detail})"
