"""The images a person names on the command line, as paths.

Shell conventions a command-line tool is expected to follow: a quoted glob
(``'photos/**/*.jpg'``, e.g. where the shell does not expand it, or the list is too long
for it) is expanded here, and ``-`` reads one image from standard input. Folders are
walked by the batch run itself (:mod:`noisead.batch.inputs`), which also reports what it
cannot read.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import secrets
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from noisead.data.cameras import IMAGE_SUFFIXES
from noisead.io import ensure_writable_dir

#: The name that stands for standard input.
STDIN = "-"
#: Where an image read from standard input is kept, inside the output folder.
STDIN_DIR = "stdin"
_GLOB_MAGIC = re.compile(r"[*?\[]")
_CHUNK = 1 << 20


def expand_globs(items: Sequence[str]) -> list[str]:
    """Each item as given, except a glob pattern that is not itself an existing path:
    its matches, sorted (``**`` matches folders recursively). A pattern that matches
    nothing stays as given, so that the run reports it as missing instead of silently
    analysing nothing."""
    out: list[str] = []
    for item in items:
        if item != STDIN and _GLOB_MAGIC.search(item) and not os.path.lexists(item):
            out.extend(sorted(glob.glob(item, recursive=True)) or [item])
        else:
            out.append(item)
    return out


def expand_inputs(inputs: Sequence[str]) -> list[Path]:
    """Files as given (globs expanded); folders expanded to the images they contain
    (sorted, recursive). For commands that take a plain list of images (fit-detector)."""
    out: list[Path] = []
    for item in expand_globs(inputs):
        p = Path(item)
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*")
                              if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)  # missing files are reported by the caller, not here
    return out


def analysis_inputs(inputs: Sequence[str], out_dir: Path, stdin: BinaryIO) -> list[str]:
    """``noisead analyze``'s inputs: globs expanded, and ``-`` replaced by the image read
    from ``stdin`` (:func:`keep_stdin`).

    Raises:
        ValueError: ``-`` given twice, or standard input is a terminal.
    """
    if list(inputs).count(STDIN) > 1:
        raise ValueError("'-' (standard input) can be given only once")
    return [str(keep_stdin(stdin, out_dir)) if item == STDIN else item
            for item in expand_globs(inputs)]


def keep_stdin(stdin: BinaryIO, out_dir: Path) -> Path:
    """Copy an image from ``stdin`` to ``<out_dir>/stdin/stdin-<12 hex of its SHA-256>``.

    Why a file named by its content, in the output folder: the batch run hashes, decodes,
    names and resumes files; the same bytes piped again reach the same file, whose result
    is then current, and the result's JSON points to a copy of exactly what was analysed.
    The copy is streamed (any size) and written atomically.

    Raises:
        ValueError: ``stdin`` is a terminal (nothing was piped in).
    """
    if stdin.isatty():
        raise ValueError("'-' reads an image from standard input, which is a terminal: "
                         "pipe an image in, e.g. noisead analyze - -o out < photo.jpg")
    folder = ensure_writable_dir(out_dir / STDIN_DIR)
    tmp = folder / f".stdin.{secrets.token_hex(6)}.tmp"
    digest = hashlib.sha256()
    try:
        with open(tmp, "xb") as fh:
            while chunk := stdin.read(_CHUNK):
                digest.update(chunk)
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        target = folder / f"stdin-{digest.hexdigest()[:12]}"
        os.replace(tmp, target)
    finally:
        with suppress(FileNotFoundError):
            tmp.unlink()
    return target
