"""One batch run per output folder at a time.

Two runs writing the same folder would hand out the same stems, overwrite each other's
results and race on summary.csv. The first run takes an exclusive ``flock`` on
``<out>/.noisead.lock`` without waiting; a second one fails at once with a clear message.
The kernel drops the lock when its process ends, however it ends (``kill -9`` included),
so a stale lock file never blocks a later run.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from noisead.batch.escape import display_path

LOCK_NAME = ".noisead.lock"


class OutputFolderBusyError(RuntimeError):
    """Another process holds the output folder's lock."""


@contextmanager
def hold_output_lock(out_dir: Path) -> Iterator[Path]:
    """Hold the exclusive lock of ``out_dir`` for the duration of the ``with`` block."""
    lock_path = out_dir / LOCK_NAME
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            who = f" (process {holder})" if holder.isdigit() else ""
            raise OutputFolderBusyError(
                f"another noisead run{who} is writing to {display_path(out_dir)!r}; wait for "
                "it to finish or choose another output folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield lock_path
    finally:
        os.close(fd)  # releases the lock
