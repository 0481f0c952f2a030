"""The batch loop: many inputs, one output folder, nothing lost or mixed up.

``run_batch`` takes the folder's lock, removes what a killed run left half-written, brings
the state database in line with the result files, and then analyses each input that has
no current result: new files, files whose content changed (size and modification time
first, SHA-256 when they differ), failures from before, everything with ``redo``. Each
result is written (JSON last) and committed to the database as it comes back; the CSVs
and the HTML report are rebuilt from the database every ``refresh_seconds`` and at the
end, also when the run is interrupted, so the folder always holds a valid summary of what
is done (after a ``kill -9`` it may lag behind by the images since its last rebuild, and
list the image whose result was being replaced; the next run rebuilds it). A file that
fails is reported and the run goes on.

Where the images are analysed is the ``engine``'s business (``noisead.batch.engines``: in
this process, in worker processes, or on a Ray cluster): it gets small jobs and hands
back small results, and this process alone writes the database. The run keeps no record
per image in memory: counts and the last few failures (:class:`BatchReport`); the rest is
in the database. The analysis itself is a parameter (``analyze``, or the engine's
factory), so that tests can drive the whole machinery with a cheap stand-in.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from noisead.batch.engines import Engine, InProcessEngine
from noisead.batch.escape import display_path
from noisead.batch.inputs import scan_inputs
from noisead.batch.jobs import AnalyzeFn, ImageJob, ImageResult, RunSettings
from noisead.batch.lock import hold_output_lock
from noisead.batch.outputs import OutputOptions, remove_leftover_temporaries
from noisead.batch.records import record_from_summary
from noisead.batch.report import write_report
from noisead.batch.source import sha256_of
from noisead.batch.state import FAILED, BatchState, InputRecord
from noisead.batch.summary import write_summaries
from noisead.io import DEFAULT_MAX_PIXELS, ensure_writable_dir
from noisead.verdict import OperatingPoint
from noisead.verdict.decision import NOMINAL

__all__ = ["AnalyzeFn", "BatchReport", "run_batch"]

#: Failures a :class:`BatchReport` keeps (all of them are in the database and failures.csv).
RECENT_FAILURES = 20


@dataclass
class BatchReport:
    """What one run did: how many inputs were analysed, skipped (current already) and
    failed, how many were given twice, and the last ``RECENT_FAILURES`` failures. Every
    input's record is in the state database (``BatchState(out).results()``,
    ``.failures()``), not here: a run of a million images keeps no per-image list."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    duplicates: int = 0
    recent_failures: deque[InputRecord] = field(
        default_factory=lambda: deque(maxlen=RECENT_FAILURES))


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
              analyze: AnalyzeFn | None = None, *, model: str, redo: bool = False,
              max_pixels: int | None = DEFAULT_MAX_PIXELS,
              operating_point: OperatingPoint = NOMINAL, refresh_seconds: float = 5.0,
              progress: bool = True,
              on_item: Callable[[str, InputRecord], None] | None = None,
              outputs: OutputOptions | None = None,
              engine: Engine | None = None) -> BatchReport:
    """Analyse files and folders into ``out_dir``; see the module docstring.

    Args:
        inputs: image files and folders (walked recursively; ``out_dir`` is skipped).
        analyze: the analysis of one decoded image (may raise ``ImageTooSmallError``),
            run in this process; or None with an ``engine``.
        model: the model's name, for the report.
        redo: analyse inputs again even when their result is current.
        operating_point: the decision threshold of the model (for images too small to
            analyse, which get "not enough texture to judge").
        refresh_seconds: how often summary.csv, failures.csv and report.html are rebuilt
            during the run (always at the end; 0: after every image).
        on_item: called as ``on_item(outcome, record)`` after each input, outcome being
            "done", "skipped" or "failed", in this process, in the order results come.
        outputs: which files each result gets and the provenance its JSON records
            (default: ``OutputOptions()``); a current result that lacks a file asked for
            is analysed again.
        engine: where the images are analysed (``noisead.batch.engines``); default:
            ``analyze`` in this process.

    Raises:
        OutputError: ``out_dir`` cannot be created or written.
        OutputFolderBusyError: another run holds ``out_dir``.
    """
    if (analyze is None) == (engine is None):
        raise TypeError("run_batch needs either analyze or engine")
    out = ensure_writable_dir(out_dir)
    report = BatchReport()
    bar = tqdm(desc="analysing", disable=not progress, unit="image")

    def tell(outcome: str, record: InputRecord) -> None:
        setattr(report, outcome, getattr(report, outcome) + 1)
        if outcome == "failed":
            report.recent_failures.append(record)
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
            settings = RunSettings(out.absolute(), max_pixels, operating_point, model,
                                   outputs)
            jobs = _plan(scan.images, state, redo, tell, outputs)
            runner = engine if engine is not None else InProcessEngine(analyze)  # type: ignore[arg-type]
            with closing(runner.run(jobs, settings)) as results:
                for record, result in results:
                    tell(*_record(state, record, result))
                    refresher.maybe()
        finally:
            refresher.now()
    return report


def _plan(images: list[Path], state: BatchState, redo: bool,
          tell: Callable[[str, InputRecord], None], outputs: OutputOptions
          ) -> Iterator[tuple[InputRecord, ImageJob]]:
    """Inputs to analyse, one at a time as the engine takes them (a huge folder starts at
    once); current results are skipped. Each new input gets its stem here, reserved in the
    database; an input's old result (or failure) is forgotten as it is handed out."""
    for given in images:
        path = given.resolve()
        record = state.get(path)
        if (record is not None and record.has_result and not redo
                and outputs.satisfied_by(record) and _unchanged(record, path, state)):
            tell("skipped", record)
            continue
        record = state.reserve(path, display_path(path))
        if record.has_result or record.status == FAILED:
            state.invalidate(record)  # its old result, if any, is about to be replaced
        assert record.stem is not None
        yield record, ImageJob(given, record.path, record.stem)


def _record(state: BatchState, record: InputRecord, result: ImageResult
            ) -> tuple[str, InputRecord]:
    """Commit one job's result to the database: ``("done" or "failed", its row)``."""
    if result.error is not None or result.source is None or result.summary is None:
        record.status = FAILED
        record.error = result.error or "no result"
        state.save(record)
        return "failed", record
    assert record.stem is not None
    new = record_from_summary(record.path, record.display, record.stem, result.source,
                              result.summary, result.files)
    state.save(new)
    return "done", new


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
