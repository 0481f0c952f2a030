"""What a batch run has done, kept in an SQLite database inside the output folder.

Why a database: a run may be killed at any moment and rerun with other inputs; the output
folder must then still say exactly what is done, for which input and with which result.
Each input (by resolved path) has one row: its size, modification time and SHA-256, the
output stem it owns for good, its result (score, decision, verdict sentence, evidence,
caveat, seconds) or its error, and a status: ``pending`` (stem reserved, no result yet),
``done``, ``no-texture`` (judged unjudgeable, no score) or ``failed``. summary.csv,
failures.csv and report.html are rebuilt from it, never merged from an older CSV.

The per-image JSON stays the durable record of each result: it names its input (path,
size, SHA-256). :meth:`BatchState.reconcile` brings the database in line with the JSONs on
disk at the start of every run, and a missing or damaged database is rebuilt from them.
One connection, in the process that holds the folder's lock, writes (WAL mode, one commit
per image, so a kill loses at most the image in progress).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from noisead.batch.naming import candidates, output_files, taken_on_disk

DB_NAME = ".noisead.sqlite"
SCHEMA_VERSION = 1

PENDING, DONE, NO_TEXTURE, FAILED = "pending", "done", "no-texture", "failed"
#: Statuses of an input whose result files exist and are listed in summary.csv.
RESULT_STATUSES = (DONE, NO_TEXTURE)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inputs (
    path BLOB PRIMARY KEY,      -- os.fsencode of the resolved path
    display TEXT NOT NULL,      -- the path as text (undecodable bytes as \\xNN)
    size INTEGER, mtime_ns INTEGER, sha256 TEXT,
    stem TEXT UNIQUE,           -- the output stem, never given to another input
    status TEXT NOT NULL,
    files TEXT,                 -- JSON: kind -> file name
    model TEXT, score REAL, decision TEXT, verdict TEXT, evidence TEXT, caveat TEXT,
    seconds REAL, error TEXT,
    updated_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS inputs_status ON inputs(status);
"""

_COLUMNS = ("path", "display", "size", "mtime_ns", "sha256", "stem", "status", "files",
            "model", "score", "decision", "verdict", "evidence", "caveat", "seconds", "error")


@dataclass
class InputRecord:
    """One input's row. ``path`` is the resolved path (the key)."""

    path: Path
    display: str
    status: str
    stem: str | None = None
    size: int | None = None
    mtime_ns: int | None = None
    sha256: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    score: float | None = None
    decision: str | None = None
    verdict: str | None = None
    evidence: str | None = None
    caveat: str | None = None
    seconds: float | None = None
    error: str | None = None

    @property
    def has_result(self) -> bool:
        return self.status in RESULT_STATUSES


def _key(path: Path) -> bytes:
    return os.fsencode(path)


class BatchState:
    """The state database of one output folder. Use as a context manager."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.db_path = out_dir / DB_NAME
        try:
            self._conn = self._connect()
        except sqlite3.DatabaseError:
            self._set_aside_damaged()
            self._conn = self._connect()

    # -- opening ----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, timeout=5.0)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("quick_check failed")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise sqlite3.DatabaseError(f"unknown schema version {version}")
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.commit()
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    def _set_aside_damaged(self) -> None:
        """Keep a damaged database beside the results for inspection; start a new one."""
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.db_path}{suffix}")
            if src.exists():
                os.replace(src, Path(f"{self.db_path}.damaged{suffix}"))

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> BatchState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------

    def get(self, path: Path) -> InputRecord | None:
        row = self._conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM inputs WHERE path = ?",
                                 (_key(path),)).fetchone()
        return _record(row) if row else None

    def results(self) -> Iterator[InputRecord]:
        """Inputs with a result: flagged first, then by score (highest first), unjudged last."""
        yield from self._select(
            "status IN (?, ?) ORDER BY CASE decision WHEN 'flagged' THEN 0 "
            "WHEN 'not flagged' THEN 1 ELSE 2 END, score IS NULL, score DESC, display",
            RESULT_STATUSES)

    def failures(self) -> Iterator[InputRecord]:
        yield from self._select("status = ? ORDER BY display", (FAILED,))

    def count(self, *statuses: str) -> int:
        marks = ", ".join("?" * len(statuses))
        return int(self._conn.execute(f"SELECT COUNT(*) FROM inputs WHERE status IN ({marks})",
                                      statuses).fetchone()[0])

    def _select(self, where: str, args: tuple[Any, ...]) -> Iterator[InputRecord]:
        cursor = self._conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM inputs WHERE {where}",
                                    args)
        for row in cursor:
            yield _record(row)

    def _stem_in_use(self, stem: str) -> bool:
        return self._conn.execute("SELECT 1 FROM inputs WHERE stem = ?",
                                  (stem,)).fetchone() is not None

    # -- writing ----------------------------------------------------------------------

    def reserve(self, path: Path, display: str) -> InputRecord:
        """The row of ``path``, created as ``pending`` with a stem of its own if it has none.

        A stem is free when no other input in the database holds it and no output file of
        that name exists on disk.
        """
        record = self.get(path)
        if record is not None and record.stem is not None:
            return record
        stem = next(s for s in candidates(path)
                    if not self._stem_in_use(s) and not taken_on_disk(self.out_dir, s))
        if record is None:
            record = InputRecord(path=path, display=display, status=PENDING, stem=stem)
            self._upsert(record)
        else:
            record.stem = stem
            self._upsert(record)
        return record

    def invalidate(self, record: InputRecord) -> None:
        """Forget ``record``'s result before it is redone: the row goes back to ``pending``
        and its output files are deleted, so that a crash from here on cannot leave an old
        result listed as the new input's (or files listed for a failed input)."""
        record.status = PENDING
        self._upsert(record)
        if record.stem is not None:
            # the JSON (the durable record) first
            files = output_files(self.out_dir, record.stem)
            for kind in ("json", *[k for k in files if k != "json"]):
                files[kind].unlink(missing_ok=True)

    def save(self, record: InputRecord) -> None:
        """Store ``record`` (a result, a failure, a new modification time) and commit."""
        self._upsert(record)

    def _upsert(self, record: InputRecord) -> None:
        values = (_key(record.path), record.display, record.size, record.mtime_ns,
                  record.sha256, record.stem, record.status,
                  json.dumps(record.files) if record.files else None, record.model,
                  record.score, record.decision, record.verdict, record.evidence,
                  record.caveat, record.seconds, record.error, time.time_ns())
        marks = ", ".join("?" * len(values))
        self._conn.execute(f"INSERT OR REPLACE INTO inputs ({', '.join(_COLUMNS)}, updated_ns) "
                           f"VALUES ({marks})", values)
        self._conn.commit()

    # -- agreement with the files on disk ----------------------------------------------

    def reconcile(self) -> None:
        """Make the database agree with the result JSONs in the output folder.

        A result whose JSON is gone goes back to ``pending`` (its stem stays reserved); a
        noisead result JSON the database does not list (a kill between writing it and
        committing, or a lost database) is read back in. The folder's listing is compared
        with the database inside SQLite (a temporary table), and the JSONs to read back
        are taken a page at a time, so a folder of a million results is reconciled in
        bounded memory.
        """
        from noisead.batch.records import record_from_json

        conn = self._conn
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS on_disk (stem TEXT PRIMARY KEY)")
        conn.execute("DELETE FROM on_disk")
        conn.executemany("INSERT OR IGNORE INTO on_disk VALUES (?)",
                         ((stem,) for stem in self._json_stems()))
        marks = ", ".join("?" * len(RESULT_STATUSES))
        conn.execute(f"UPDATE inputs SET status = ? WHERE status IN ({marks}) "
                     "AND stem NOT IN (SELECT stem FROM on_disk)",
                     (PENDING, *RESULT_STATUSES))
        last = ""
        while True:
            page = [row[0] for row in conn.execute(
                "SELECT stem FROM on_disk WHERE stem > ? AND stem NOT IN (SELECT stem FROM "
                f"inputs WHERE stem IS NOT NULL AND status IN ({marks})) ORDER BY stem "
                "LIMIT 500", (last, *RESULT_STATUSES))]
            if not page:
                break
            for stem in page:
                record = record_from_json(self.out_dir / f"{stem}.json", stem)
                if record is None:
                    continue  # not a noisead result (an analyst's file, an older format)
                existing = self.get(record.path)
                own_row = existing is not None and existing.stem == stem
                free = (not self._stem_in_use(stem)
                        and (existing is None or existing.stem is None))
                if own_row or free:
                    self._upsert(record)
            last = page[-1]
        conn.execute("DELETE FROM on_disk")
        conn.commit()

    def _json_stems(self) -> Iterator[str]:
        """The stems of the visible ``*.json`` files of the output folder (a name that is
        not UTF-8 cannot be one of ours: stems are)."""
        with os.scandir(self.out_dir) as entries:
            for entry in entries:
                name = entry.name
                if (name.endswith(".json") and not name.startswith(".")
                        and entry.is_file(follow_symlinks=False)):
                    try:
                        name.encode("utf-8")
                    except UnicodeEncodeError:
                        continue
                    yield name[:-5]


def _record(row: tuple[Any, ...]) -> InputRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["path"] = Path(os.fsdecode(values["path"]))
    values["files"] = json.loads(values["files"]) if values["files"] else {}
    return InputRecord(**values)
