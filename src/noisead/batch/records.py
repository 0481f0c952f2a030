"""Between a result and its two records: the per-image JSON and the database row.

The JSON carries an ``input`` section (path, size, modification time, SHA-256), the
noisead version and the model, so that it alone says which bytes its result belongs to;
:func:`record_from_json` reads a database row back from it when the database is lost.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import noisead
from noisead.batch.source import SourceFile
from noisead.batch.state import DONE, NO_TEXTURE, InputRecord
from noisead.infer import evidence_text
from noisead.verdict import Decision


def input_section(path: Path, source: SourceFile) -> dict[str, Any]:
    """The JSON's record of what was analysed (``path_hex`` only for undecodable names)."""
    raw = os.fsencode(path)
    section: dict[str, Any] = {"path": raw.decode("utf-8", "backslashreplace"),
                               "size": source.size, "mtime_ns": source.mtime_ns,
                               "sha256": source.sha256}
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        section["path_hex"] = raw.hex()
    return section


def json_header(path: Path, source: SourceFile, stem: str) -> dict[str, Any]:
    """What a result JSON starts with: its input, the output stem, the noisead version."""
    return {"input": input_section(path, source), "output": stem,
            "noisead_version": noisead.__version__}


def status_of(decision: str | None) -> str:
    return NO_TEXTURE if decision == Decision.NO_TEXTURE.value else DONE


def record_from_summary(path: Path, display: str, stem: str, source: SourceFile,
                        summary: dict[str, Any], files: dict[str, str]) -> InputRecord:
    """The database row of a result, from what its JSON holds."""
    verdict = summary.get("decision") or {}
    decision = verdict.get("decision")
    return InputRecord(
        path=path, display=display, status=status_of(decision), stem=stem,
        size=source.size, mtime_ns=source.mtime_ns, sha256=source.sha256, files=files,
        model=summary.get("model"), score=summary.get("score"), decision=decision,
        verdict=verdict.get("text"),
        evidence=evidence_text(summary.get("evidence_in_mask") or {}) or None,
        caveat=summary.get("score_caveat"), seconds=summary.get("seconds"))


def record_from_json(json_path: Path, stem: str) -> InputRecord | None:
    """The row a result JSON describes, or None when it is not a noisead batch result."""
    try:
        data = json.loads(json_path.read_bytes())
        section = data["input"]
        raw = (bytes.fromhex(section["path_hex"]) if "path_hex" in section
               else os.fsencode(section["path"]))
        source = SourceFile(int(section["size"]), int(section.get("mtime_ns") or 0),
                            str(section["sha256"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if data.get("output", stem) != stem:
        return None  # a JSON copied or renamed by hand: not the result of this stem
    path = Path(os.fsdecode(raw))
    return record_from_summary(path, raw.decode("utf-8", "backslashreplace"), stem, source,
                               data, data.get("files") or {})
