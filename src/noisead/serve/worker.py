"""The analysis worker: one separate process that decodes, analyses and renders uploads.

Why a process and not a thread: a time limit must really free what an overrunning analysis
holds (the CPU cores, the memory of a large decode, the detector's work buffers). Python
cannot stop a thread, but it can kill a process, and the operating system then takes back
everything it held. So the server hands each upload's bytes to this worker and waits for
the rendered result at most the time limit; past it, the worker is killed and a fresh one
is started for the next analysis (the model is loaded again, a few seconds).

A second benefit: the server process never decodes a user file, so a hostile image that
crashes a decoder or exhausts memory takes down the worker, not the viewer.

The worker is started with the ``spawn`` method: a fresh interpreter, not a fork of a
multi-threaded server whose PyTorch thread pools are not fork-safe.
"""

from __future__ import annotations

import multiprocessing
import pickle
import signal
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from noisead.anomaly.detector import Detector
from noisead.serve.results import AnalysisResult

__all__ = ["STARTUP_LIMIT_S", "AnalysisFailed", "AnalysisJob", "AnalysisTimedOut", "BadInput",
           "ModelUnavailable", "WorkerProcess", "worker_main"]

STARTUP_LIMIT_S = 300.0
"""How long a new worker may take to start and load its model (not part of the time limit
of an analysis: a slow first load must not be blamed on the analyst's photo)."""


class BadInput(ValueError):
    """The upload cannot be analysed (not an image, too large, too small, bad option)."""


class AnalysisFailed(RuntimeError):
    """The analysis broke for a reason that is not the upload's fault."""


class ModelUnavailable(RuntimeError):
    """The worker could not load the model (the reason is in the message)."""


class AnalysisTimedOut(RuntimeError):
    """The analysis ran past its time limit; the worker that ran it was killed."""


@dataclass(frozen=True)
class AnalysisJob:
    """One upload to analyse: its bytes and the options of the request."""

    data: bytes
    mode: str | None
    threshold: float | None
    max_pixels: int | None
    parts: str | None = None  # the noise statistics' parts (analyze(parts=...)); None: the model's


DetectorSource = Detector | str | Path | None


# --------------------------------------------------------------------------- the child


def worker_main(conn: Connection, source: bytes | str | None) -> None:
    """The worker's whole life: load the model, then answer jobs until the pipe closes.

    ``source`` is a pickled :class:`Detector`, a model name or path, or None (default
    model). Every answer is a ``(kind, payload)`` pair: ``("ready", model name)`` or
    ``("model-error", message)`` once, then per job ``("ok", AnalysisResult)``,
    ``("bad-input", message)`` or ``("failed", message)``.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the server's to handle
    try:
        detector = _load(source)
    except Exception as e:  # any failure to load a model file: say what it was
        _send(conn, ("model-error", str(e) or type(e).__name__))
        return
    if not _send(conn, ("ready", str(detector.info.get("name", "custom")))):
        return
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the server closed the pipe or died
            return
        if job is None or not _send(conn, run_job(detector, job)):
            return


def run_job(detector: Detector, job: AnalysisJob) -> tuple[str, Any]:
    """Decode (with the job's pixel cap, from the declared size), analyse and render."""
    from noisead.infer import ImageTooSmallError, analyze
    from noisead.io import ImageLoadError, load_image
    from noisead.serve.render import render

    try:
        loaded = load_image(job.data, max_pixels=job.max_pixels)
        analysis = analyze(loaded, detector, mode=job.mode, threshold=job.threshold,
                           parts=job.parts)
        return "ok", render(analysis, loaded.pixels)
    except (ImageLoadError, ImageTooSmallError) as e:
        return "bad-input", (str(e).replace("'<bytes>'", "the uploaded file")
                             .replace("pass a larger max_pixels to load it anyway",
                                      "the viewer's limit is set with --max-pixels"))
    except MemoryError:
        return "failed", "not enough memory to analyse this image"
    except ValueError as e:  # e.g. mode="reference" with a blind-only detector, or two
        # parts asked of a model without noise statistics
        return "bad-input", f"analysis failed: {e}"
    except Exception as e:
        traceback.print_exc()
        return "failed", f"the analysis failed: {type(e).__name__}: {e}"


def _load(source: bytes | str | None) -> Detector:
    if isinstance(source, bytes):
        return pickle.loads(source)  # from our own parent process, never from a request
    from noisead.infer import load_detector

    return load_detector(source)


def _send(conn: Connection, message: tuple[str, Any]) -> bool:
    try:
        conn.send(message)
        return True
    except (BrokenPipeError, OSError):  # the server is gone: nobody to answer
        return False


# --------------------------------------------------------------------------- the parent


class WorkerProcess:
    """The server's handle on its worker: start it, run one job under a time limit, kill it.

    Not thread-safe: :class:`noisead.serve.jobs.AnalysisQueue` serialises every call.
    """

    def __init__(self, detector: DetectorSource = None,
                 startup_limit: float = STARTUP_LIMIT_S) -> None:
        if isinstance(detector, Detector):
            self._source: bytes | str | None = pickle.dumps(detector)
            self.model_name: str | None = str(detector.info.get("name", "custom"))
        else:
            self._source = None if detector is None else str(detector)
            self.model_name = None
        self.startup_limit = startup_limit
        self._context = multiprocessing.get_context("spawn")
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None

    @property
    def pid(self) -> int | None:
        """The running worker's process id (None when none is running)."""
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        """Whether a worker process exists and runs (it may still be loading the model)."""
        return self._process is not None and self._process.is_alive()

    @property
    def ready(self) -> bool:
        return self._conn is not None

    def start(self) -> None:
        """Start the worker and wait until it has loaded the model (no-op when running).

        A worker that died while idle (killed from outside, say) is replaced. Raises
        :class:`ModelUnavailable` when the model cannot be loaded or the worker does not
        come up within ``startup_limit`` seconds; the next call tries again.
        """
        if self._conn is not None:
            if self.alive:
                return
            self.stop()
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(target=worker_main, args=(child_end, self._source),
                                        name="noisead-analysis", daemon=True)
        process.start()
        child_end.close()  # only the child holds it now: its death reads as EOF here
        self._process = process
        try:
            if not parent_end.poll(self.startup_limit):
                raise ModelUnavailable(f"the analysis process did not load the model within "
                                       f"{self.startup_limit:g} s")
            kind, payload = parent_end.recv()
        except EOFError:
            self._reap(parent_end)
            raise ModelUnavailable(f"the analysis process stopped while starting (exit code "
                                   f"{process.exitcode})") from None
        except ModelUnavailable:
            self._reap(parent_end)
            raise
        if kind != "ready":
            self._reap(parent_end)
            raise ModelUnavailable(f"the model could not be loaded: {payload}")
        self.model_name = payload
        self._conn = parent_end

    def run(self, job: AnalysisJob, time_limit: float) -> AnalysisResult:
        """Run ``job`` in the worker; kill the worker if it takes longer than ``time_limit``.

        Raises :class:`BadInput`, :class:`AnalysisFailed` or :class:`AnalysisTimedOut`.
        """
        self.start()
        conn = self._conn
        assert conn is not None
        try:
            conn.send(job)
            if not conn.poll(time_limit):
                self.stop()
                raise AnalysisTimedOut(f"the analysis took longer than the time limit of "
                                       f"{time_limit:g} s and was stopped")
            kind, payload = conn.recv()
        except (EOFError, OSError):
            code = self._process.exitcode if self._process is not None else None
            self.stop()
            raise AnalysisFailed("the analysis process stopped unexpectedly (exit code "
                                 f"{code}; out of memory?)") from None
        if kind == "ok":
            return payload
        if kind == "bad-input":
            raise BadInput(payload)
        raise AnalysisFailed(payload)

    def stop(self) -> None:
        """Kill the worker now (whatever it is doing) and wait until it is gone."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._reap(conn)

    def kill(self) -> None:
        """Kill the worker without waiting (safe while another thread is in :meth:`run`)."""
        process = self._process
        if process is not None and process.is_alive():
            process.kill()

    def _reap(self, conn: Connection) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(timeout=30)
            if process.exitcode is not None:
                process.close()
        conn.close()
