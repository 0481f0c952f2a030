"""Where a batch run's images are analysed: in the main process, or in N worker processes.

An engine takes the run's jobs lazily (``(key, ImageJob)`` pairs, the key staying in the
main process) and yields ``(key, ImageResult)`` as each job finishes, in any order. It
takes a job only when it has room for it, so a huge folder never sits in memory and a
killed run loses at most the jobs in flight; the main process records each result in the
state database (``noisead.batch.run``). The Ray engine, for many machines, is in
:mod:`noisead.batch.ray_engine`.

:class:`InProcessEngine` decodes the next image in a background thread while the current
one is analysed (``noisead.prefetch``). :class:`ProcessPoolEngine` (``noisead analyze
--workers N``) runs N worker processes, each loading the detector once and using
``max(1, cores // N)`` PyTorch threads; a worker that dies (killed, out of memory) breaks
the pool, which is started again and given the jobs that were in flight once more.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import threading
from collections import deque
from collections.abc import Generator, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol, TypeVar

from noisead.batch.jobs import (
    AnalyzeFn,
    AnalyzerFactory,
    ImageJob,
    ImageResult,
    RunSettings,
    error_text,
    finish_job,
    read_job,
    run_job,
)

K = TypeVar("K")

ENGINES = ("local", "ray")


class Engine(Protocol):
    """Runs jobs and yields their results as they finish; a generator, closed by the run
    when it stops early (Ctrl+C, an error), which stops what is still running."""

    def run(self, jobs: Iterable[tuple[K, ImageJob]], settings: RunSettings
            ) -> Generator[tuple[K, ImageResult], None, None]: ...


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class InProcessEngine:
    """Analyses in the calling process, one image at a time, the next one decoded ahead."""

    def __init__(self, analyze: AnalyzeFn) -> None:
        self.analyze = analyze

    def run(self, jobs: Iterable[tuple[K, ImageJob]], settings: RunSettings
            ) -> Generator[tuple[K, ImageResult], None, None]:
        from noisead.prefetch import prefetch

        for (key, job), read in prefetch(jobs, lambda pair: read_job(pair[1], settings)):
            yield key, finish_job(job, read, settings, self.analyze)


# -- worker processes ---------------------------------------------------------------------

_worker_factory: AnalyzerFactory | None = None
_worker_analyze: AnalyzeFn | None = None
_worker_settings: RunSettings | None = None


class WorkerSetupError(RuntimeError):
    """A worker process could not build the analysis (e.g. load the model)."""


def _end_with(pid: int) -> None:
    """End this process as soon as process ``pid`` (the run's main process) ends, however
    it ends (``kill -9`` too), so that no worker goes on writing into a folder whose lock
    is released. Watched by a thread on a pidfd (Linux); elsewhere a worker ends after its
    current image, when it finds its queue closed."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:  # already gone
        os._exit(1)
    except (AttributeError, OSError):
        return

    def watch() -> None:
        select.select([fd], [], [])  # readable once the process has ended
        os._exit(1)

    threading.Thread(target=watch, name="noisead-run-watch", daemon=True).start()


def _start_worker(factory: AnalyzerFactory, settings: RunSettings, threads: int,
                  main_pid: int) -> None:
    """A worker's initializer: Ctrl+C is the main process's to handle (it stops the
    workers), the worker ends with the run, PyTorch gets its share of the cores."""
    global _worker_factory, _worker_settings
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _end_with(main_pid)
    import torch

    torch.set_num_threads(threads)
    _worker_factory, _worker_settings = factory, settings


def _work(job: ImageJob) -> ImageResult:
    """One job in a worker; the analysis is built on the first (once per process), so
    that a model that cannot be loaded is an error the main process sees, not a pool
    that dies on every start."""
    global _worker_analyze
    assert _worker_factory is not None and _worker_settings is not None
    if _worker_analyze is None:
        try:
            _worker_analyze = _worker_factory()
        except Exception as exc:
            raise WorkerSetupError(f"a worker process could not load the analysis: "
                                   f"{error_text(exc)}") from None
    return run_job(job, _worker_settings, _worker_analyze)


def _crashed(attempts: int) -> ImageResult:
    return ImageResult.failure(
        f"the worker process analysing it ended unexpectedly {attempts} time(s) (killed, "
        "or out of memory); it was not analysed")


class ProcessPoolEngine:
    """``workers`` processes from ``concurrent.futures``, at most ``2 * workers`` jobs in
    flight. A job whose worker died is given to a new pool, up to ``attempts`` times in
    all (every job in flight when a pool breaks counts it: which worker died is not told).
    """

    def __init__(self, factory: AnalyzerFactory, workers: int, threads: int | None = None,
                 attempts: int = 3) -> None:
        if workers < 1:
            raise ValueError(f"--workers must be at least 1, got {workers}")
        self.factory, self.workers, self.attempts = factory, workers, attempts
        self.threads = threads or max(1, usable_cores() // workers)

    def _pool(self, settings: RunSettings) -> ProcessPoolExecutor:
        # forkserver: workers start from a clean, single-threaded process that imported
        # noisead once, not from this one (its threads) nor from scratch (spawn)
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["noisead.batch.jobs"])
        return ProcessPoolExecutor(self.workers, mp_context=context,
                                   initializer=_start_worker,
                                   initargs=(self.factory, settings, self.threads,
                                             os.getpid()))

    def run(self, jobs: Iterable[tuple[K, ImageJob]], settings: RunSettings
            ) -> Generator[tuple[K, ImageResult], None, None]:
        source = iter(jobs)
        again: deque[tuple[K, ImageJob, int]] = deque()  # (key, job, attempts so far)
        pending: dict[Future[ImageResult], tuple[K, ImageJob, int]] = {}
        pool: ProcessPoolExecutor | None = None
        try:
            while True:
                while len(pending) < 2 * self.workers:
                    if again:
                        key, job, tries = again.popleft()
                    else:
                        pair = next(source, None)
                        if pair is None:
                            break
                        (key, job), tries = pair, 0
                    if pool is None:  # started on the first job: a run with all done
                        pool = self._pool(settings)  # starts no process
                    pending[pool.submit(_work, job)] = (key, job, tries)
                if not pending:
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                    wait(pending)  # every job in flight ends with the pool
                    done = set(pending)
                    assert pool is not None
                    pool.shutdown(wait=True)
                    pool = None
                for future in done:
                    key, job, tries = pending.pop(future)
                    if not isinstance(future.exception(), BrokenProcessPool):
                        yield key, future.result()
                    elif tries + 1 < self.attempts:
                        again.append((key, job, tries + 1))
                    else:
                        yield key, _crashed(tries + 1)
        finally:
            if pool is not None:
                _stop(pool, bool(pending))


def _stop(pool: ProcessPoolExecutor, unfinished: bool) -> None:
    """Shut ``pool`` down; with jobs unfinished (Ctrl+C, an error), end its workers now
    rather than after their current image. What a killed worker leaves half-written is
    cleaned up by the next run (temporary files), and a result it finished is read back
    from its JSON."""
    if unfinished:
        terminate = getattr(pool, "terminate_workers", None)  # Python 3.14
        if terminate is not None:
            terminate()
        else:
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def make_engine(engine: str, workers: int, address: str | None,
                factory: AnalyzerFactory, analyze: AnalyzeFn | None = None) -> Engine:
    """The engine ``noisead analyze --engine E --workers N --address A`` asks for.

    ``analyze``: the analysis already loaded in this process, for a local run with one
    worker (no process is started). Raises ``ValueError`` for a combination that does not
    make sense.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    if address is not None and engine != "ray":
        raise ValueError("--address is the address of a Ray cluster: use it with --engine ray")
    if engine == "ray":
        if workers != 1:
            raise ValueError("--workers is for --engine local; a Ray run uses every CPU "
                             "of the cluster")
        from noisead.batch.ray_engine import RayEngine

        return RayEngine(factory, address=address)
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    if workers == 1:
        return InProcessEngine(analyze if analyze is not None else factory())
    return ProcessPoolEngine(factory, workers)
