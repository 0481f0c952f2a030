"""Turn the files and folders a person named into the list of images to analyse.

Why a module of its own: a folder is hostile ground. It may hold the run's own output
folder (analysing our heatmaps as photos on every rerun), the same photo reached through
two paths or a symbolic link, links that point nowhere, FIFOs (opening one blocks
forever), and files noisead cannot read. Each of these is decided here, from ``stat``
alone (nothing is opened), and every file that will not be analysed is *reported* with
its reason instead of disappearing silently.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from noisead.data.cameras import IMAGE_SUFFIXES

#: A file's identity on this machine: the same file through any path or link.
FileId = tuple[int, int]


@dataclass(frozen=True)
class Rejected:
    """A file that will not be analysed, and why (shown in failures.csv)."""

    path: Path
    reason: str


@dataclass
class InputScan:
    """What :func:`scan_inputs` found: images in order, rejected files, duplicates dropped."""

    images: list[Path] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    duplicates: int = 0


def scan_inputs(inputs: Sequence[str | os.PathLike[str]], output_dir: str | Path | None = None
                ) -> InputScan:
    """Expand files and folders into the images to analyse.

    Files named explicitly are kept whatever their extension (the decoder reads the
    content, not the name); folders are walked recursively, in sorted order, keeping the
    extensions noisead reads (``IMAGE_SUFFIXES``) and reporting other files. ``output_dir``
    and everything under it is skipped. Each file is listed once, however many paths or
    links lead to it. Links to folders are followed once (loops are cut).
    """
    scan = InputScan()
    seen: set[FileId] = set()
    skip_dir = _file_id(Path(output_dir)) if output_dir is not None else None
    visited_dirs: set[FileId] = set()
    for item in inputs:
        path = Path(item)
        st = _stat(path)
        if st is None:
            reason = "dangling symbolic link" if path.is_symlink() else "no such file"
            scan.rejected.append(Rejected(path, reason))
        elif stat.S_ISDIR(st.st_mode):
            for found, reason in _walk(path, skip_dir, visited_dirs):
                _add(scan, seen, found, reason)
        else:
            _add(scan, seen, path, _not_regular(st))
    return scan


def _add(scan: InputScan, seen: set[FileId], path: Path, reason: str | None) -> None:
    if reason is not None:
        scan.rejected.append(Rejected(path, reason))
        return
    ident = _file_id(path)
    if ident is None:  # vanished meanwhile
        scan.rejected.append(Rejected(path, "no such file"))
    elif ident in seen:
        scan.duplicates += 1
    else:
        seen.add(ident)
        scan.images.append(path)


def _walk(folder: Path, skip_dir: FileId | None, visited: set[FileId]
          ) -> Iterator[tuple[Path, str | None]]:
    """``(file, None)`` for each image under ``folder``, ``(file, reason)`` for the others."""
    ident = _file_id(folder)
    if ident is None or ident == skip_dir or ident in visited:
        return
    visited.add(ident)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        yield folder, f"cannot list folder ({exc.strerror or exc})"
        return
    for entry in entries:
        path = Path(entry.path)
        st = _stat(path)
        if st is None:
            yield path, ("dangling symbolic link" if entry.is_symlink() else "no such file")
        elif stat.S_ISDIR(st.st_mode):
            yield from _walk(path, skip_dir, visited)
        elif (reason := _not_regular(st)) is not None:
            yield path, reason
        elif path.suffix.lower() not in IMAGE_SUFFIXES:
            kind = f"'{path.suffix}'" if path.suffix else "without an extension"
            yield path, (f"not a file type noisead reads ({kind}; it reads "
                         f"{', '.join(sorted(IMAGE_SUFFIXES))})")
        else:
            yield path, None


def _stat(path: Path) -> os.stat_result | None:
    """``stat`` following links; None when the path or its link target does not exist."""
    try:
        return path.stat()
    except OSError:  # missing, a link to nowhere, a link loop
        return None


def _not_regular(st: os.stat_result) -> str | None:
    """Why a file that is not a regular file cannot be analysed (it is never opened)."""
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return None
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return f"not a regular file ({name}); it is not opened"
    return "not a regular file; it is not opened"


def _file_id(path: Path) -> FileId | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino
