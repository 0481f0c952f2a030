"""Between a result and its two records: the per-image JSON and the database row.

The JSON (schema ``noisead.schemas`` "result", versioned) carries an ``input`` section
(path, size, modification time, SHA-256), the noisead version, the model with the SHA-256
of its files, the mode and thresholds, so that it alone says which bytes its result
belongs to and how it was made; :func:`record_from_json` reads a database row back from
it when the database is lost.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import noisead
from noisead.batch.source import SourceFile
from noisead.batch.state import DONE, NO_TEXTURE, InputRecord
from noisead.infer import evidence_text
from noisead.schemas import RESULT_SCHEMA_VERSION
from noisead.verdict import Decision

#: What a result JSON says about how it was made, besides its input. ``null`` in a JSON
#: written by a run that was not told (``run_batch`` called from Python without them).
PROVENANCE_KEYS = ("model", "model_sha256", "model_sidecar_sha256", "mode", "threshold")


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
    """What a result JSON starts with: its schema and version, its input, the output
    stem, the noisead version."""
    return {"schema": "noisead.result", "schema_version": RESULT_SCHEMA_VERSION,
            "input": input_section(path, source), "output": stem,
            "noisead_version": noisead.__version__}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def model_provenance(weights: Path, name: str, mode: str, threshold: float
                     ) -> dict[str, Any]:
    """The ``PROVENANCE_KEYS`` of a run with the model file ``weights`` (its ``.json``
    sidecar beside it): results can then be traced to the exact model bytes."""
    sidecar = weights.with_suffix(".json")
    return {"model": name, "model_sha256": file_sha256(weights),
            "model_sidecar_sha256": file_sha256(sidecar) if sidecar.is_file() else None,
            "mode": str(mode), "threshold": float(threshold)}


def result_document(header: Mapping[str, Any], provenance: Mapping[str, Any],
                    summary: Mapping[str, Any], *, image_statistic: float | None,
                    timings: Mapping[str, float | None], files: Mapping[str, str],
                    thumbnails: Mapping[str, str]) -> dict[str, Any]:
    """The per-image JSON, in the order a person reads it: what (header), how
    (provenance), what was found (``summary``: ``Analysis.summary()`` or an unjudged
    input's decision), then timings and files. The summary's own mode, threshold and
    model name win over the provenance's (they are the analysis' own)."""
    made = {key: provenance.get(key) for key in PROVENANCE_KEYS}
    return {**header, **made, **summary, "image_statistic": image_statistic,
            "timings": dict(timings), "files": dict(files), "thumbnails": dict(thumbnails)}


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
