"""One image's work in a batch run, wherever it runs: read, analyse, write, describe.

Why a module of its own: a batch run's images may be analysed in the main process, in
worker processes on the same machine or in Ray tasks on other machines, but the state
database has one writer, the main process (``noisead.batch.run``). So the work on one
image is split at the one place where it can cross a process boundary cheaply: a small
:class:`ImageJob` (which file, which output stem) goes out, the result files are written
atomically where the job says, and a small :class:`ImageResult` (the file's identity, the
summary its JSON holds, the names of the files written, or why it failed) comes back, for
the main process to record. A job done twice (a retried task) writes the same stem's files
again by atomic replacement, so nothing is doubled.

The analysis reaches a worker as an :data:`AnalyzerFactory`: a picklable callable that
builds the analysis once per worker process (:class:`DetectorAnalyzer` loads a model).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from noisead.batch.outputs import OutputOptions, write_outputs, write_unjudged
from noisead.batch.records import json_header
from noisead.batch.source import ReadInput, SourceFile, read_input
from noisead.infer import Analysis, ImageTooSmallError
from noisead.io import LoadedImage
from noisead.verdict import OperatingPoint, TextureCheck, decide

AnalyzeFn = Callable[[LoadedImage], Analysis]
#: Builds an :data:`AnalyzeFn` in the process that will use it (must be picklable).
AnalyzerFactory = Callable[[], AnalyzeFn]


@dataclass(frozen=True)
class RunSettings:
    """What every job of one run shares (sent once to each worker)."""

    out_dir: Path
    max_pixels: int | None
    operating_point: OperatingPoint
    model: str
    outputs: OutputOptions = field(default_factory=OutputOptions)


@dataclass(frozen=True)
class ImageJob:
    """One input to analyse: ``given`` is read (as named by the user), ``path`` (resolved)
    is what its JSON records, ``stem`` names its result files."""

    given: Path
    path: Path
    stem: str


@dataclass(frozen=True)
class ImageResult:
    """What a job hands back to the run's one writer.

    A success has ``source``, ``summary`` (what the JSON says about the image) and
    ``files`` (kind -> file name); a failure has ``error`` (and ``source`` when the file
    was read).
    """

    source: SourceFile | None = None
    summary: dict[str, Any] | None = None
    files: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @classmethod
    def failure(cls, exc: BaseException | str, source: SourceFile | None = None
                ) -> ImageResult:
        return cls(source=source, error=exc if isinstance(exc, str) else error_text(exc))


def error_text(exc: BaseException) -> str:
    """How a failure reads in failures.csv: the message of a file's problem (``OSError``,
    ``ValueError``: they name the file and why), the exception's type before any other."""
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, (OSError, ValueError)):
        text = f"{type(exc).__name__}: {text}"
    return text


def read_job(job: ImageJob, settings: RunSettings) -> ReadInput:
    """Read, hash and decode the job's file (raises ``ImageLoadError`` for a bad file)."""
    return read_input(job.given, settings.max_pixels)


def finish_job(job: ImageJob, read: ReadInput | Exception, settings: RunSettings,
               analyze: AnalyzeFn) -> ImageResult:
    """Analyse an input already read (or report why it could not be) and write its files.

    Any ``Exception`` becomes a failed result (a bad file must not stop the batch);
    ``KeyboardInterrupt`` and ``SystemExit`` stop the run.
    """
    if isinstance(read, Exception):
        return ImageResult.failure(read)
    header = json_header(job.path, read.source, job.stem)
    out = settings.out_dir
    try:
        try:
            analysis = analyze(read.image)
        except ImageTooSmallError as exc:
            summary = unjudged_summary(str(exc), settings)
            path = write_unjudged(out, job.stem, summary, header, settings.outputs)
            files = {"json": path.name}
        else:
            summary = analysis.summary()
            paths = write_outputs(analysis, read.image.pixels, out, job.stem, header,
                                  settings.outputs)
            files = {k: v.name for k, v in paths.items()}
    except Exception as exc:
        return ImageResult.failure(exc, read.source)
    return ImageResult(source=read.source, summary=summary, files=files)


def run_job(job: ImageJob, settings: RunSettings, analyze: AnalyzeFn) -> ImageResult:
    """Read, analyse and write one input: the whole job, as a worker runs it."""
    try:
        read: ReadInput | Exception = read_job(job, settings)
    except Exception as exc:
        read = exc
    return finish_job(job, read, settings, analyze)


def unjudged_summary(why: str, settings: RunSettings) -> dict[str, Any]:
    """The summary of an image judged without an analysis (smaller than one patch)."""
    texture = TextureCheck(False, 0, why)
    verdict = decide(None, texture, settings.operating_point)
    return {"score": None, "decision": verdict.to_dict(), "model": settings.model,
            "texture": texture.to_dict()}


@dataclass(frozen=True)
class DetectorAnalyzer:
    """The :data:`AnalyzerFactory` of ``noisead analyze``: loads ``model`` (a shipped
    name, or a ``.safetensors`` path that every worker can read) in the worker, once,
    and analyses with ``mode``, ``threshold`` and ``parts`` (None: the model's own)."""

    model: str | None = None
    mode: str | None = None
    threshold: float | None = None
    parts: str | None = None

    def __call__(self) -> AnalyzeFn:
        from noisead.infer import analyze, load_detector

        detector = load_detector(self.model)
        return functools.partial(analyze, detector=detector, mode=self.mode,
                                 threshold=self.threshold, parts=self.parts)
