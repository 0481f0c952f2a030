"""The batch loop: many inputs, one output folder, nothing lost or mixed up.

``run_batch`` takes the folder's lock, removes what a killed run left half-written, brings
the state database in line with the result files, and then analyses each input that has
no current result: new files, files whose content changed (size and modification time
first, SHA-256 when they differ), failures from before, everything with ``redo``. Each
result is written (JSON last) and committed to the database before the next image; the
CSVs and the HTML report are rebuilt from the database every ``refresh_seconds`` and at
the end, also when the run is interrupted, so the folder always holds a valid summary of
what is done (after a ``kill -9`` it may lag behind by the images since its last rebuild,
and list the image whose result was being replaced; the next run rebuilds it). A file
that fails is reported and the run goes on.

The analysis itself is a parameter (``analyze``: a decoded image in, an ``Analysis``
out), so that tests can drive the whole machinery with a cheap stand-in.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from noisead.batch.escape import display_path
from noisead.batch.inputs import scan_inputs
from noisead.batch.lock import hold_output_lock
from noisead.batch.outputs import (
    OutputOptions,
    remove_leftover_temporaries,
    write_outputs,
    write_unjudged,
)
from noisead.batch.records import json_header, record_from_summary
from noisead.batch.report import write_report
from noisead.batch.source import ReadInput, read_input, sha256_of
from noisead.batch.state import FAILED, BatchState, InputRecord
from noisead.batch.summary import write_summaries
from noisead.infer import Analysis, ImageTooSmallError
from noisead.io import DEFAULT_MAX_PIXELS, LoadedImage, ensure_writable_dir
from noisead.verdict import OperatingPoint, TextureCheck, decide
from noisead.verdict.decision import NOMINAL

AnalyzeFn = Callable[[LoadedImage], Analysis]


@dataclass
class BatchReport:
    """What one run did, input by input (its records as stored)."""

    done: list[InputRecord] = field(default_factory=list)
    skipped: list[InputRecord] = field(default_factory=list)
    failed: list[InputRecord] = field(default_factory=list)
    duplicates: int = 0


@dataclass
class _Task:
    given: Path          # as named by the user (or found in a folder)
    record: InputRecord  # its row, with its stem


class _Refresher:
    """Rebuilds the CSVs and the report at most every ``interval`` seconds, and never
    spends more than about a tenth of the run's time on it (a huge folder's report takes
    a while to write)."""

    def __init__(self, state: BatchState, out: Path, model: str, interval: float) -> None:
        self.state, self.out, self.model, self.interval = state, out, model, interval
        self.last, self.cost = time.monotonic(), 0.0

    def maybe(self) -> None:
        """Rebuild if due (an interval of 0 or less: after every image)."""
        if (self.interval <= 0
                or time.monotonic() - self.last >= max(self.interval, 10 * self.cost)):
            self.now()

    def now(self) -> None:
        t0 = time.monotonic()
        write_summaries(self.state, self.out)
        write_report(self.state, self.out, model=self.model)
        self.last = time.monotonic()
        self.cost = self.last - t0


def run_batch(inputs: Sequence[str | os.PathLike[str]], out_dir: str | Path,
              analyze: AnalyzeFn, *, model: str, redo: bool = False,
              max_pixels: int | None = DEFAULT_MAX_PIXELS,
              operating_point: OperatingPoint = NOMINAL, refresh_seconds: float = 5.0,
              progress: bool = True,
              on_item: Callable[[str, InputRecord], None] | None = None,
              outputs: OutputOptions | None = None) -> BatchReport:
    """Analyse files and folders into ``out_dir``; see the module docstring.

    Args:
        inputs: image files and folders (walked recursively; ``out_dir`` is skipped).
        analyze: the analysis of one decoded image (may raise ``ImageTooSmallError``).
        model: the model's name, for the report.
        redo: analyse inputs again even when their result is current.
        operating_point: the decision threshold of the model (for images too small to
            analyse, which get "not enough texture to judge").
        refresh_seconds: how often summary.csv, failures.csv and report.html are rebuilt
            during the run (always at the end; 0: after every image).
        on_item: called as ``on_item(outcome, record)`` after each input, outcome being
            "done", "skipped" or "failed".
        outputs: which files each result gets and the provenance its JSON records
            (default: ``OutputOptions()``); a current result that lacks a file asked for
            is analysed again.

    Raises:
        OutputError: ``out_dir`` cannot be created or written.
        OutputFolderBusyError: another run holds ``out_dir``.
    """
    out = ensure_writable_dir(out_dir)
    report = BatchReport()
    bar = tqdm(desc="analysing", disable=not progress, unit="image")

    def tell(outcome: str, record: InputRecord) -> None:
        getattr(report, outcome).append(record)
        if outcome != "failed" or record.stem is not None:  # an input, not a rejected file
            bar.update(1)
        if on_item is not None:
            on_item(outcome, record)

    with hold_output_lock(out), BatchState(out) as state, bar:
        remove_leftover_temporaries(out)
        state.reconcile()
        scan = scan_inputs(inputs, out)
        report.duplicates = scan.duplicates
        bar.total = len(scan.images)
        refresher = _Refresher(state, out, model, refresh_seconds)
        try:
            for rejected in scan.rejected:
                path = rejected.path.resolve()  # a dangling link: its target
                record = state.get(path) or InputRecord(path, "", FAILED)
                if record.has_result:
                    state.invalidate(record)
                record.display = display_path(os.path.abspath(rejected.path))  # the link
                record.status, record.error = FAILED, rejected.reason
                state.save(record)
                tell("failed", record)
            outputs = outputs or OutputOptions()
            work = _Worker(state, out, analyze, operating_point, model, outputs)
            tasks = _plan(scan.images, state, redo, tell, outputs)
            for task, read in _prefetch_reads(tasks, max_pixels):
                tell(work.process(task, read), task.record)
                refresher.maybe()
        finally:
            refresher.now()
    return report


def _plan(images: list[Path], state: BatchState, redo: bool,
          tell: Callable[[str, InputRecord], None], outputs: OutputOptions
          ) -> Iterator[_Task]:
    """Inputs to analyse, one at a time (a huge folder starts at once); current results
    are skipped. Each new input gets its stem here, reserved in the database."""
    for given in images:
        path = given.resolve()
        record = state.get(path)
        if (record is not None and record.has_result and not redo
                and outputs.satisfied_by(record) and _unchanged(record, path, state)):
            tell("skipped", record)
            continue
        record = state.reserve(path, display_path(path))
        yield _Task(given, record)


def _unchanged(record: InputRecord, path: Path, state: BatchState) -> bool:
    """Whether ``path`` still holds the content ``record``'s result is for: same size and
    modification time, or, where those differ, the same SHA-256."""
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_size != record.size:
        return False
    if st.st_mtime_ns == record.mtime_ns:
        return True
    try:
        current = sha256_of(path)
    except (OSError, ValueError):
        return False
    if current.sha256 != record.sha256:
        return False
    record.mtime_ns = current.mtime_ns  # touched, not changed: remember the new time
    state.save(record)
    return True


def _prefetch_reads(tasks: Iterator[_Task], max_pixels: int | None
                    ) -> Iterator[tuple[_Task, ReadInput | Exception]]:
    from noisead.prefetch import prefetch

    return prefetch(tasks, lambda task: read_input(task.given, max_pixels))


class _Worker:
    """Analyses one read input, writes its files and records the outcome."""

    def __init__(self, state: BatchState, out: Path, analyze: AnalyzeFn,
                 point: OperatingPoint, model: str, outputs: OutputOptions) -> None:
        self.state, self.out, self.analyze = state, out, analyze
        self.point, self.model, self.outputs = point, model, outputs

    def process(self, task: _Task, read: ReadInput | Exception) -> str:
        record = task.record
        if record.has_result or record.status == FAILED:
            self.state.invalidate(record)  # its old result, if any, is about to be replaced
        if isinstance(read, Exception):
            return self._fail(record, read)
        stem = record.stem
        assert stem is not None
        header = json_header(record.path, read.source, stem)
        try:
            try:
                analysis = self.analyze(read.image)
            except ImageTooSmallError as exc:
                summary = self._unjudged(str(exc))
                path = write_unjudged(self.out, stem, summary, header, self.outputs)
                files = {"json": path.name}
            else:
                summary = analysis.summary()
                paths = write_outputs(analysis, read.image.pixels, self.out, stem, header,
                                      self.outputs)
                files = {k: v.name for k, v in paths.items()}
        except Exception as exc:  # a bad file must not stop the batch
            return self._fail(record, exc)
        new = record_from_summary(record.path, record.display, stem, read.source, summary,
                                  files)
        self.state.save(new)
        task.record = new
        return "done"

    def _unjudged(self, why: str) -> dict[str, object]:
        texture = TextureCheck(False, 0, why)
        verdict = decide(None, texture, self.point)
        return {"score": None, "decision": verdict.to_dict(), "model": self.model,
                "texture": texture.to_dict()}

    def _fail(self, record: InputRecord, exc: Exception) -> str:
        record.status = FAILED
        record.error = str(exc) or type(exc).__name__
        if not isinstance(exc, (OSError, ValueError)):
            record.error = f"{type(exc).__name__}: {record.error}"
        self.state.save(record)
        return "failed"
