"""What ``noisead analyze`` tells as it goes, and the exit code it ends with.

For a person, one line per input (its verdict, or why it failed) and the totals. With
``--json``, each input's result document goes to standard output as one JSON line (schema
``noisead.schemas`` "result", or "failure"), so that a pipeline reads results as they
come, and every line for a person moves to standard error beside the progress bar.

Exit codes (documented in the README): 0 nothing failed (and, with
``--fail-on-detection``, nothing was flagged), 1 an input failed, 3 an input was flagged
under ``--fail-on-detection``; failures win over detections, as an incomplete run cannot
vouch for the images it could not read. 2 (a usage error) and 130 (interrupted) come
from :func:`noisead.cli.main`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from noisead.batch.escape import display_path, for_terminal
from noisead.batch.state import InputRecord
from noisead.schemas import RESULT_SCHEMA_VERSION

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_FLAGGED = 0, 1, 2, 3
#: ``run_batch``'s outcome -> the ``outcome`` of a JSON line.
_OUTCOME = {"done": "analysed", "skipped": "skipped", "failed": "failed"}


class AnalyzeReporter:
    """The ``on_item`` callback of a batch run: prints each input's line(s) and counts.

    Counted here rather than read from the run's report, so that the exit code depends
    only on what each input's outcome was.
    """

    def __init__(self, out_dir: Path, json_lines: bool = False,
                 stdout: TextIO | None = None) -> None:
        self.out_dir, self.json_lines = out_dir, json_lines
        self.stdout = stdout or sys.stdout
        self.counts = {"done": 0, "skipped": 0, "failed": 0}
        self.flagged = 0

    @property
    def people(self) -> TextIO:
        """Where lines for a person go: stdout, or stderr when stdout carries JSON."""
        return sys.stderr if self.json_lines else self.stdout

    def __call__(self, outcome: str, record: InputRecord) -> None:
        self.counts[outcome] += 1
        if outcome != "failed" and record.decision == "flagged":
            self.flagged += 1
        tqdm.write(self._line(outcome, record),
                   file=sys.stderr if outcome == "failed" else self.people)
        if self.json_lines:
            self.stdout.write(json.dumps(self.document(outcome, record)) + "\n")
            self.stdout.flush()

    def _line(self, outcome: str, record: InputRecord) -> str:
        where = for_terminal(display_path(self.out_dir / f"{record.stem}")) + ".*"
        image = for_terminal(record.display)
        if outcome == "failed":
            return f"{image}: FAILED: {for_terminal(record.error)}"
        if outcome == "skipped":
            return f"{image}: already analysed -> {where} (use --redo to analyse again)"
        line = f"{image}: {for_terminal(record.verdict)}"
        if record.decision == "flagged" and record.evidence:
            line += f" Set by: {for_terminal(record.evidence)}."
        return f"{line} -> {where}"

    def document(self, outcome: str, record: InputRecord) -> dict[str, Any]:
        """The JSON line of one input: its result JSON with its ``outcome``, or a failure."""
        if outcome != "failed":
            try:
                result = json.loads((self.out_dir / record.files["json"]).read_bytes())
            except (OSError, KeyError, ValueError) as exc:  # vanished since it was written
                return failure_document(record.display, f"result JSON unreadable: {exc}")
            head = {k: result.pop(k) for k in ("schema", "schema_version") if k in result}
            return {**head, "outcome": _OUTCOME[outcome], **result}
        return failure_document(record.display, record.error or "unknown error")

    def summary(self, duplicates: int = 0) -> str:
        """The totals line."""
        twice = f", {duplicates} given twice" if duplicates else ""
        return (f"{self.counts['done']} analysed, {self.counts['skipped']} skipped, "
                f"{self.counts['failed']} failed{twice}; results in "
                f"{for_terminal(self.out_dir)}")

    def exit_code(self, fail_on_detection: bool) -> int:
        if self.counts["failed"]:
            return EXIT_FAILURES
        if fail_on_detection and self.flagged:
            return EXIT_FLAGGED
        return EXIT_OK


def failure_document(path: str, error: str) -> dict[str, Any]:
    """A ``--json`` line for an input that could not be analysed (schema "failure")."""
    return {"schema": "noisead.failure", "schema_version": RESULT_SCHEMA_VERSION,
            "outcome": "failed", "input": {"path": path}, "error": error}
