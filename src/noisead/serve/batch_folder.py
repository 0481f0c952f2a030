"""A batch run's output folder, read for the viewer: list, filter, and serve its results.

``noisead serve --batch OUT_DIR`` opens the results of ``noisead analyze -o OUT_DIR`` in
the viewer. The folder is named once, on the command line. A request names only a
result's *stem* and a *kind* of output (``heatmap``, ``mask``, ...); both are looked up in
the batch's own records (the state database, then the per-image JSON), and the file name
served is the one the record holds, never one from the request. So no path from a request
reaches the file system, and a record that was tampered with cannot lead out of the folder
either: a served file must be a plain file (not a link) directly in the folder or in its
``thumbs/``, and is opened without following a link.

Everything is read-only: the state database is opened with SQLite's ``mode=ro`` (a run
may be writing it at the same time; its WAL journal lets both go on), one connection per
call, so a long-lived viewer never holds a transaction open against a running batch.

The original photo is not among the outputs; the viewer shows it when the input file is
still where the batch found it *and* its SHA-256 is still the one recorded (otherwise the
maps would be laid over another picture), and its thumbnail otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import numpy as np
from PIL import Image

from noisead.batch.naming import THUMBS_DIR
from noisead.batch.state import DB_NAME, FAILED, PENDING, RESULT_STATUSES
from noisead.verdict import Decision

__all__ = ["FAILED_FILTER", "MAX_PAGE", "BatchFolder", "BatchQuery", "BatchUnreadable",
           "NotInBatch", "OutputFile", "Photo"]

FAILED_FILTER = "failed"
"""The decision filter that lists the inputs that could not be analysed."""
DECISIONS: tuple[str, ...] = tuple(d.value for d in Decision)
MAX_PAGE = 200
MAX_JSON_BYTES = 4 * 1024 * 1024
MAX_PHOTO_BYTES = 256 * 1024 * 1024
"""Larger inputs are shown by their thumbnail (the browser would struggle anyway)."""

_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"), (b"BM", "image/bmp"),
)
_MIMETYPES = {".png": "image/png", ".json": "application/json"}
_ORDER = ("CASE decision WHEN 'flagged' THEN 0 WHEN 'not flagged' THEN 1 ELSE 2 END, "
          "score IS NULL, score DESC, display")
"""The order of report.html: flagged first, then by score (highest first)."""
_LIST_COLUMNS = ("stem, display, status, decision, score, verdict, evidence, error, seconds, "
                 "files")


class NotInBatch(LookupError):
    """The batch holds no such result or output (the message says which)."""


class BatchUnreadable(ValueError):
    """The batch's state database cannot be read (damaged, or not a noisead state)."""


@dataclass(frozen=True)
class BatchQuery:
    """Which results to list: filters, then one page of them."""

    decision: str | None = None   # a Decision value, or FAILED_FILTER
    min_score: float | None = None
    max_score: float | None = None
    name: str | None = None       # a part of the input's path, any case
    offset: int = 0
    limit: int = 50

    def __post_init__(self) -> None:
        if self.decision is not None and self.decision not in (*DECISIONS, FAILED_FILTER):
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)} or "
                             f"{FAILED_FILTER}, got {self.decision!r:.60}")
        for bound in (self.min_score, self.max_score):
            if bound is not None and not 0.0 <= bound <= 1.0:
                raise ValueError(f"score bounds must be between 0 and 1, got {bound:g}")
        if self.offset < 0 or not 1 <= self.limit <= MAX_PAGE:
            raise ValueError(f"offset must be >= 0 and limit between 1 and {MAX_PAGE}")


@dataclass(frozen=True)
class OutputFile:
    """An opened output of the batch: read ``stream`` and close it."""

    stream: IO[bytes]
    name: str
    mimetype: str


@dataclass(frozen=True)
class Photo:
    """The analysed photo's bytes (``original`` True) or its thumbnail's (False); no
    bytes at all for an input that has changed and has no thumbnail (one judged without an
    analysis, being smaller than one patch)."""

    data: bytes | None
    mimetype: str
    original: bool
    reason: str | None = None  # why the thumbnail is shown instead of the original


class BatchFolder:
    """The output folder of one batch run (``noisead analyze -o``), opened read-only."""

    def __init__(self, out_dir: str | Path) -> None:
        root = Path(out_dir).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"the batch folder {str(root)!r} does not exist or is "
                                    "not a folder")
        self.root = root.resolve()
        self.db_path = self.root / DB_NAME
        if not self.db_path.is_file():
            raise ValueError(f"{str(self.root)!r} holds no batch state ({DB_NAME}): give the "
                             "folder that noisead analyze -o wrote (a rerun there rebuilds "
                             "a lost state from the result JSONs)")
        with self._connect() as conn:  # fail now, at start-up, on a damaged database
            conn.execute("SELECT COUNT(*) FROM inputs").fetchone()

    # -- the database --------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._open_connection()
        except sqlite3.DatabaseError as e:
            raise BatchUnreadable(f"cannot open the batch state {str(self.db_path)!r}: {e}"
                                  ) from e
        with closing(conn):
            try:
                yield conn
            except sqlite3.DatabaseError as e:
                raise BatchUnreadable(f"cannot read the batch state {str(self.db_path)!r}: "
                                      f"{e}") from e

    def _open_connection(self) -> sqlite3.Connection:
        uri = f"file:{quote(str(self.db_path))}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=5.0)
            conn.execute("PRAGMA query_only=1")
            conn.execute("PRAGMA schema_version").fetchone()  # opens the file now
            return conn
        except sqlite3.OperationalError:
            # a folder we may not write to (read-only media): nobody can be writing there
            conn = sqlite3.connect(uri + "&immutable=1", uri=True, timeout=5.0)
            conn.execute("PRAGMA query_only=1")
            return conn

    def overview(self) -> dict[str, Any]:
        """The folder's name, the models used and how many results of each decision."""
        with self._connect() as conn:
            counts = dict(conn.execute(
                "SELECT decision, COUNT(*) FROM inputs WHERE status IN (?, ?) "
                "GROUP BY decision", RESULT_STATUSES).fetchall())
            failed, pending = (conn.execute("SELECT COUNT(*) FROM inputs WHERE status = ?",
                                            (s,)).fetchone()[0] for s in (FAILED, PENDING))
            models = [m for (m,) in conn.execute(
                "SELECT DISTINCT model FROM inputs WHERE model IS NOT NULL ORDER BY model")]
        return {"folder": self.root.name, "models": models,
                "counts": {d: int(counts.get(d, 0)) for d in DECISIONS},
                "failed": int(failed), "pending": int(pending),
                "decisions": [*DECISIONS, FAILED_FILTER]}

    def list(self, query: BatchQuery) -> dict[str, Any]:
        """One page of the results that pass ``query``'s filters, in the report's order."""
        where, args = self._where(query)
        with self._connect() as conn:
            total = conn.execute(f"SELECT COUNT(*) FROM inputs WHERE {where}",
                                 args).fetchone()[0]
            rows = conn.execute(f"SELECT {_LIST_COLUMNS} FROM inputs WHERE {where} "
                                f"ORDER BY {_ORDER} LIMIT ? OFFSET ?",
                                (*args, query.limit, query.offset)).fetchall()
        keys = _LIST_COLUMNS.split(", ")
        items = [dict(zip(keys, row, strict=True)) for row in rows]
        for item in items:  # the kinds of output each result has
            item["files"] = sorted(_kinds(item["files"]))
        return {"total": int(total), "offset": query.offset, "limit": query.limit,
                "items": items}

    @staticmethod
    def _where(query: BatchQuery) -> tuple[str, tuple[Any, ...]]:
        if query.decision == FAILED_FILTER:
            clauses, args = ["status = ?"], [FAILED]
        else:
            clauses, args = ["status IN (?, ?)"], list(RESULT_STATUSES)
            if query.decision is not None:
                clauses.append("decision = ?")
                args.append(query.decision)
        if query.min_score is not None:
            clauses.append("score >= ?")
            args.append(query.min_score)
        if query.max_score is not None:
            clauses.append("score <= ?")
            args.append(query.max_score)
        if query.name:
            escaped = query.name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append("display LIKE ? ESCAPE '\\'")
            args.append(f"%{escaped}%")
        return " AND ".join(clauses), tuple(args)

    def files(self, stem: str) -> dict[str, str]:
        """The outputs of ``stem`` by kind, as the state database lists them."""
        return dict(self._row(stem)["files"])

    def _row(self, stem: str) -> dict[str, Any]:
        """The database row of the result named ``stem`` (NotInBatch when there is none)."""
        with self._connect() as conn:
            row = conn.execute("SELECT path, size, sha256, files FROM inputs "
                               "WHERE stem = ? AND status IN (?, ?)",
                               (stem, *RESULT_STATUSES)).fetchone()
        if row is None:
            raise NotInBatch(f"the batch has no result named {stem!r:.80}")
        path, size, sha256, files = row
        return {"path": Path(os.fsdecode(path)), "size": size, "sha256": sha256,
                "files": _kinds(files)}

    # -- one result -------------------------------------------------------------------

    def record(self, stem: str) -> dict[str, Any]:
        """The per-image JSON of the result ``stem``, as the batch run wrote it."""
        self._row(stem)
        with self._open(f"{stem}.json") as stream:
            raw = stream.read(MAX_JSON_BYTES + 1)
        try:
            data = json.loads(raw) if len(raw) <= MAX_JSON_BYTES else None
        except ValueError:
            data = None
        if not isinstance(data, dict) or data.get("output", stem) != stem:
            raise NotInBatch(f"the record of {stem!r:.80} is not a noisead result JSON")
        return data

    def output(self, stem: str, kind: str) -> OutputFile:
        """The output ``kind`` of ``stem`` as its records list it: a kind of the JSON's
        ``files`` (``heatmap``, ``mask``, ``overlay``, ``fingerprint``, ``json``, ...) or
        ``thumb-<kind>`` for one of its ``thumbnails``."""
        row = self._row(stem)
        if kind.startswith("thumb-"):
            thumbs = self.record(stem).get("thumbnails")
            name = thumbs.get(kind[len("thumb-"):]) if isinstance(thumbs, dict) else None
        else:
            name = row["files"].get(kind)
        if not isinstance(name, str) or not name:
            raise NotInBatch(f"the result {stem!r:.80} has no output {kind!r:.40}")
        stream = self._open(name)
        mimetype = _MIMETYPES.get(Path(name).suffix.lower(), "application/octet-stream")
        return OutputFile(stream, Path(name).name, mimetype)

    def heat16(self, stem: str) -> np.ndarray:
        """The run's 16-bit calibrated heatmap of ``stem`` (``--outputs heatmap16``), as
        uint16 levels; refused unless it is a 16-bit grey PNG of the recorded size (its
        size is read before any pixel is decoded)."""
        record = self.record(stem)
        with self.output(stem, "heatmap16").stream as stream, Image.open(stream) as image:
            if image.format != "PNG" or image.mode not in ("I;16", "I") or image.size != (
                    record.get("width"), record.get("height")):
                raise NotInBatch(f"the heatmap16 of {stem!r:.80} is not a 16-bit heatmap of "
                                 "the recorded size")
            return np.asarray(image).astype(np.uint16)

    def photo(self, stem: str) -> Photo:
        """The input the result was computed from, if it is unchanged; else its thumbnail.

        The browser decodes it (the server never decodes an input), so only formats it
        shows are sent as they are; it applies the EXIF orientation as the analysis did.
        """
        row = self._row(stem)
        reason = _unchanged_input(row["path"], row["size"], row["sha256"])
        if isinstance(reason, bytes):
            mimetype = next((m for magic, m in _IMAGE_MAGIC if reason.startswith(magic)),
                            None)
            if mimetype is None and reason[:4] == b"RIFF" and reason[8:12] == b"WEBP":
                mimetype = "image/webp"
            if mimetype is not None:
                return Photo(reason, mimetype, original=True)
            reason = "the browser cannot show this file format"
        try:
            with self.output(stem, "thumb-image").stream as stream:
                thumb: bytes | None = stream.read()
        except NotInBatch:
            thumb = None
        return Photo(thumb, "image/png", original=False, reason=reason)

    def _open(self, name: str) -> IO[bytes]:
        """Open ``name`` (a record's file name) if it is a plain file of the folder or of
        its ``thumbs/``: no absolute path, no ``..``, no link anywhere on the way."""
        parts = name.split("/")
        bad = (len(parts) > 2 or (len(parts) == 2 and parts[0] != THUMBS_DIR)
               or any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts))
        if bad:
            raise NotInBatch(f"refused to serve {name!r:.80}: not a file of the batch folder")
        if len(parts) == 2 and not stat.S_ISDIR(os.lstat(self.root / THUMBS_DIR).st_mode):
            raise NotInBatch(f"refused to serve {name!r:.80}: {THUMBS_DIR} is not a folder")
        try:
            fd = os.open(self.root / name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as e:
            raise NotInBatch(f"the output {name!r:.80} cannot be read: "
                             f"{e.strerror or e}") from None
        stream = os.fdopen(fd, "rb")
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            stream.close()
            raise NotInBatch(f"refused to serve {name!r:.80}: not a plain file")
        return stream


def _kinds(files: str | None) -> dict[str, str]:
    """The database's ``files`` column (JSON: kind -> file name) as a dict ({} if bad)."""
    try:
        listed = json.loads(files) if files else {}
    except ValueError:
        return {}
    return listed if isinstance(listed, dict) else {}


def _unchanged_input(path: Path, size: int | None, sha256: str | None) -> bytes | str:
    """The input's bytes when they are still the recorded ones, else why not."""
    try:  # non-blocking: a FIFO put where the input was must not hang the request
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return "the input file is no longer where the batch found it"
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return "the input is no longer a plain file"
        if info.st_size != size:
            return "the input file has changed since the batch ran"
        if info.st_size > MAX_PHOTO_BYTES:
            return "the input file is too large to show"
        data = fh.read(MAX_PHOTO_BYTES + 1)
    if hashlib.sha256(data).hexdigest() != sha256:
        return "the input file has changed since the batch ran"
    return data
