"""summary.csv and failures.csv, rebuilt from the state database.

Why rebuilt, not appended: the CSVs must list what the output folder holds *now* (every
result of every run, each failure that has not since succeeded), however the runs before
were interrupted. Each file is streamed to a temporary file and renamed over the old one,
so a reader (or a crash) only ever sees a complete CSV. Every text cell is neutralised
against spreadsheet formulas (:func:`noisead.batch.escape.for_csv_cell`).
"""

from __future__ import annotations

import csv
import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from noisead.batch.escape import for_csv_cell
from noisead.batch.state import BatchState, InputRecord

SUMMARY_COLUMNS = ("image", "output", "decision", "score", "verdict", "evidence",
                   "score_caveat", "sha256", "model", "seconds")
FAILURE_COLUMNS = ("image", "error")


@contextmanager
def _atomic_file(path: Path, binary: bool) -> Iterator[IO[Any]]:
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        with (open(tmp, "xb") if binary
              else open(tmp, "x", encoding="utf-8", newline="")) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with suppress(FileNotFoundError):
            tmp.unlink()


def atomic_text_file(path: Path) -> AbstractContextManager[IO[str]]:
    """Write a text file by streaming into ``.<name>.<hex>.tmp`` and renaming it over
    ``path`` when the block ends without error (the temporary file is removed otherwise).
    Same naming as ``noisead.io.atomic_write_bytes``, so a run's clean-up finds leftovers.
    """
    return _atomic_file(path, binary=False)


def atomic_binary_file(path: Path) -> AbstractContextManager[IO[bytes]]:
    """:func:`atomic_text_file` for bytes: a large file (the arrays of a 12 MP result)
    is streamed to disk instead of being built in memory first."""
    return _atomic_file(path, binary=True)


def summary_row(record: InputRecord) -> dict[str, Any]:
    """One line of summary.csv (no score for an image without enough texture)."""
    return {"image": record.display, "output": record.stem, "decision": record.decision,
            "score": "" if record.score is None else f"{record.score:.6f}",
            "verdict": record.verdict, "evidence": record.evidence or "",
            "score_caveat": record.caveat or "", "sha256": record.sha256,
            "model": record.model or "",
            "seconds": "" if record.seconds is None else f"{record.seconds:.3f}"}


def write_csv(path: Path, columns: Iterable[str], rows: Iterable[dict[str, Any]]) -> None:
    """Write ``rows`` atomically, each text cell neutralised against formulas."""
    with atomic_text_file(path) as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: for_csv_cell(v) for k, v in row.items()})


def write_summaries(state: BatchState, out_dir: Path) -> None:
    """Rebuild summary.csv (every result) and failures.csv (every standing failure)."""
    write_csv(out_dir / "summary.csv", SUMMARY_COLUMNS,
              (summary_row(r) for r in state.results()))
    write_csv(out_dir / "failures.csv", FAILURE_COLUMNS,
              ({"image": r.display, "error": r.error} for r in state.failures()))
