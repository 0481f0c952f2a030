"""The viewer's analyses: a bounded queue in front of one worker, each under a time limit.

A 324-byte PNG can declare two megapixels and keep the detector busy for seconds, so
without bounds a few tiny uploads (from one page, or from many) would pile up threads,
memory and waiting analysts without end. Three bounds:

* **one analysis at a time**, in the worker process (two at once would only fight over
  the same CPU cores and double the memory);
* **a bounded queue**: at most ``max_pending`` analyses are running or waiting; the next
  upload is answered at once with 503 and a ``Retry-After`` header instead of waiting;
* **a time limit** per analysis, counted from the moment the worker starts it (not while
  it waits its turn, nor while a new worker loads the model): past it the worker process
  is killed, which really frees its CPU and memory, the client gets 504 with the reason,
  and the queue slot is released; the next analysis starts a fresh worker.
"""

from __future__ import annotations

import math
import threading
import time

from noisead.serve.results import AnalysisResult
from noisead.serve.worker import AnalysisJob, DetectorSource, WorkerProcess

__all__ = ["DEFAULT_MAX_PENDING", "DEFAULT_TIME_LIMIT_S", "AnalysisQueue", "QueueFull"]

DEFAULT_MAX_PENDING = 4
DEFAULT_TIME_LIMIT_S = 120.0


class QueueFull(RuntimeError):
    """Too many analyses are running or waiting; ``retry_after`` is in whole seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AnalysisQueue:
    """Admits at most ``max_pending`` analyses and runs them one by one in the worker."""

    def __init__(self, detector: DetectorSource = None, *,
                 max_pending: int = DEFAULT_MAX_PENDING,
                 time_limit: float = DEFAULT_TIME_LIMIT_S,
                 worker: WorkerProcess | None = None) -> None:
        if isinstance(max_pending, bool) or max_pending < 1:
            raise ValueError(f"max_pending must be an int >= 1, got {max_pending!r}")
        if not (isinstance(time_limit, (int, float)) and time_limit > 0
                and math.isfinite(time_limit)):
            raise ValueError(f"time_limit must be a positive number of seconds, "
                             f"got {time_limit!r}")
        self.max_pending = max_pending
        self.time_limit = float(time_limit)
        self.worker = worker or WorkerProcess(detector)
        self._admission = threading.Lock()
        self._pending = 0
        self._turn = threading.Lock()      # held while the worker is in use
        self._running_since: float | None = None

    @property
    def pending(self) -> int:
        """Analyses admitted and not finished (running or waiting for their turn)."""
        with self._admission:
            return self._pending

    @property
    def running(self) -> bool:
        """Whether the worker is analysing an upload right now (the clock is running)."""
        return self._running_since is not None

    @property
    def model_name(self) -> str | None:
        return self.worker.model_name

    @property
    def model_loaded(self) -> bool:
        return self.worker.ready

    def submit(self, job: AnalysisJob) -> AnalysisResult:
        """Run ``job`` when its turn comes; raise :class:`QueueFull` at once when full.

        Other errors are the worker's: ``BadInput``, ``AnalysisFailed``,
        ``AnalysisTimedOut``, ``ModelUnavailable`` (see :mod:`noisead.serve.worker`).
        """
        with self._admission:
            if self._pending >= self.max_pending:
                retry = self._retry_after()
                raise QueueFull(f"the viewer is busy: {self._pending} analyses are running "
                                f"or waiting (the limit is {self.max_pending}); try again in "
                                f"{retry} s", retry)
            self._pending += 1
        try:
            with self._turn:
                self.worker.start()  # a new worker loads the model outside the time limit
                self._running_since = time.monotonic()
                try:
                    return self.worker.run(job, self.time_limit)
                finally:
                    self._running_since = None
        finally:
            with self._admission:
                self._pending -= 1

    def warm_up(self) -> None:
        """Start the worker (and load the model) now, so the first upload need not wait.

        A model that cannot load is only logged by the caller: each upload tries again and
        reports the reason to the page.
        """
        with self._turn:
            self.worker.start()

    def close(self, wait: float = 5.0) -> None:
        """Stop the worker: at once if it is idle, else kill it (its request gets 500)."""
        if self._turn.acquire(timeout=wait):
            try:
                self.worker.stop()
            finally:
                self._turn.release()
        else:
            self.worker.kill()

    def _retry_after(self) -> int:
        """Seconds until the running analysis ends at the latest (a slot frees by then)."""
        since = self._running_since
        left = self.time_limit if since is None else self.time_limit - (time.monotonic() - since)
        return max(1, math.ceil(left))

