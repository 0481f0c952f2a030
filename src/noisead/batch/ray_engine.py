"""Many machines: a batch run's images spread over the workers of a Ray cluster.

``noisead analyze --engine ray [--address ADDR]``: the driver (the process that holds the
output folder's lock and its state database) submits one Ray task per image, at most a
few per CPU of the cluster at a time, and records each result as it comes back; the
tasks write their result files into the output folder themselves, at the path the driver
gives, so **the output folder must be on a file system every node sees at the same path**
(as must the input files and a model given as a file). Results land where a local run
would put them, under the stems the driver reserved.

A worker killed in the middle of a task (a node lost, the OOM killer, ``kill -9``) has its
task retried by Ray (``max_retries``); a retried task writes the same stem's files again,
each by atomic replacement, and returns its result once, so nothing is lost or doubled. A
task that fails every attempt is reported as that image's failure and the run goes on.

Each Ray worker process builds the analysis once (the model loaded on its first task of
the run) and gives PyTorch the CPUs its task reserved.
"""

from __future__ import annotations

import logging
import signal
import uuid
from collections.abc import Generator, Iterable
from typing import Any, TypeVar

from noisead.batch.jobs import (
    AnalyzeFn,
    AnalyzerFactory,
    ImageJob,
    ImageResult,
    RunSettings,
    run_job,
)

K = TypeVar("K")

#: Tries of a task whose worker died, after the first (Ray's ``max_retries``).
MAX_RETRIES = 3

_cached: tuple[str, AnalyzeFn] | None = None  # (run id, analysis) in a Ray worker


def _analysis_for(run_id: str, factory: AnalyzerFactory, threads: int) -> AnalyzeFn:
    """This worker's analysis for run ``run_id``, built on its first task of the run."""
    global _cached
    if _cached is None or _cached[0] != run_id:
        import torch

        _cached = None
        torch.set_num_threads(threads)
        _cached = (run_id, factory())
    return _cached[1]


def analyse_in_task(shared: tuple[AnalyzerFactory, RunSettings, str, int],
                    job: ImageJob) -> ImageResult:
    """The body of a Ray task: one image, read and written on the worker's node."""
    factory, settings, run_id, threads = shared
    return run_job(job, settings, _analysis_for(run_id, factory, threads))


class RayEngine:
    """Runs jobs as Ray tasks on the cluster at ``address`` (None: the cluster that
    ``ray.init()`` finds, e.g. from ``RAY_ADDRESS`` or a ``ray start`` on this machine, or
    a new one-machine cluster), ``cpus_per_task`` CPUs each, at most ``in_flight`` tasks at
    a time (default: twice the cluster's CPUs over ``cpus_per_task``)."""

    def __init__(self, factory: AnalyzerFactory, address: str | None = None,
                 cpus_per_task: int = 1, in_flight: int | None = None,
                 max_retries: int = MAX_RETRIES) -> None:
        import ray  # noqa: F401 - missing: said now (naming the extra), not mid-run

        self.factory, self.address = factory, address
        self.cpus_per_task, self.in_flight = cpus_per_task, in_flight
        self.max_retries = max_retries

    def run(self, jobs: Iterable[tuple[K, ImageJob]], settings: RunSettings
            ) -> Generator[tuple[K, ImageResult], None, None]:
        import ray

        connected_here = not ray.is_initialized()
        if connected_here:
            sigterm = signal.getsignal(signal.SIGTERM)  # ray.init sets its own
            ray.init(address=self.address, logging_level=logging.WARNING)
        pending: dict[Any, tuple[K, ImageJob]] = {}
        try:
            task = ray.remote(analyse_in_task).options(
                num_cpus=self.cpus_per_task, max_retries=self.max_retries,
                retry_exceptions=False)
            shared = ray.put((self.factory, settings, uuid.uuid4().hex, self.cpus_per_task))
            limit = self.in_flight or max(
                2, 2 * int(ray.cluster_resources().get("CPU", 1) // self.cpus_per_task))
            source = iter(jobs)
            while True:
                while len(pending) < limit:
                    pair = next(source, None)
                    if pair is None:
                        break
                    pending[task.remote(shared, pair[1])] = pair
                if not pending:
                    return
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    key, _job = pending.pop(ref)
                    yield key, _result_of(ray, ref)
        finally:
            for ref in pending:  # interrupted: stop what still runs
                ray.cancel(ref, force=True)
            if connected_here:
                ray.shutdown()
                signal.signal(signal.SIGTERM, sigterm)


def _result_of(ray: Any, ref: Any) -> ImageResult:
    """A task's result, or the failure of a task Ray gave up on (its workers died on
    every try, or the task could not be run at all)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return ImageResult.failure(f"the Ray task analysing it failed "
                                   f"({type(exc).__name__}): {first_line}")
