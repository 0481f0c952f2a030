"""Read an input file once: its identity (size, modification time, SHA-256) and its pixels.

Why together: the result must be tied to the exact bytes that were analysed. Hashing the
file and decoding it in two separate reads would let a file that changes in between be
recorded with one content's hash and another's result. The file is opened without
blocking and checked to be a regular file first, so a FIFO swapped in after the folder
was listed cannot hang the run.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from noisead.io import ImageLoadError, LoadedImage, load_image


@dataclass(frozen=True)
class SourceFile:
    """What identifies the content of an input file."""

    size: int
    mtime_ns: int
    sha256: str


@dataclass(frozen=True)
class ReadInput:
    """An input's identity and its decoded image."""

    source: SourceFile
    image: LoadedImage


def _open_regular(path: Path) -> int:
    """A read-only descriptor of ``path``, refused (and never blocking) unless regular."""
    name = os.fsencode(path).decode("utf-8", "backslashreplace")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ImageLoadError(f"cannot read {name!r}: no such file") from None
    except OSError as exc:
        raise ImageLoadError(f"cannot read {name!r}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ImageLoadError(f"cannot read {name!r}: not a regular file")
    return fd


def sha256_of(path: Path) -> SourceFile:
    """Size, modification time and SHA-256 of ``path``, read in chunks."""
    fd = _open_regular(path)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    return SourceFile(st.st_size, st.st_mtime_ns, digest)


def read_input(path: Path, max_pixels: int | None) -> ReadInput:
    """Read ``path`` once, hash the bytes and decode those same bytes.

    Raises :class:`ImageLoadError` for anything wrong with the file (its message names
    the file, as ``load_image``'s do).
    """
    fd = _open_regular(path)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        data = fh.read()
    source = SourceFile(len(data), st.st_mtime_ns, hashlib.sha256(data).hexdigest())
    buffer = io.BytesIO(data)
    buffer.name = os.fsencode(path).decode("utf-8", "backslashreplace")  # for its messages
    return ReadInput(source, load_image(buffer, max_pixels=max_pixels))
