"""Starting the extractor's training on several processes (``train-extractor --ddp``).

Two ways in, both torch's own launchers:

* ``torchrun --nproc-per-node N -m noisead.cli train-extractor ... --ddp`` (one machine or
  several: torchrun's ``--nnodes``/``--rdzv-endpoint``): every process torchrun starts
  joins the process group that its environment describes (:func:`train_in_torchrun`);
* ``noisead train-extractor ... --nproc N``: this process starts N processes on this
  machine with :func:`torch.multiprocessing.spawn` (:func:`train_on_processes`), which
  meet through a TCP store that this process serves on 127.0.0.1 on a port the system
  chooses (no port to guess, none taken by another run).

Every process gets ``max(1, cores // processes-on-its-machine)`` torch threads, and a GPU
of its own when the device is CUDA (backend nccl; gloo on CPUs).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from noisead.runtime import resolve_device
from noisead.train.batches import share_spec
from noisead.train.distributed import backend_for, threads_per_process
from noisead.train.extractor import TrainConfig, TrainResult, read_training_log, train_extractor

_TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def under_torchrun() -> bool:
    """True in a process that torchrun started (its rendezvous variables are set)."""
    return all(name in os.environ for name in _TORCHRUN_VARIABLES)


def train_in_torchrun(camera_roots: list[str | Path], out_dir: str | Path,
                      config: TrainConfig, *, progress: bool = True,
                      resume: bool = True) -> TrainResult | None:
    """This process's part of a run that torchrun started; the result in rank 0, None in
    the others."""
    if not under_torchrun():
        raise ValueError("--ddp without --nproc joins the processes that torchrun starts "
                         "(torchrun --nproc-per-node N -m noisead.cli train-extractor ... "
                         "--ddp); to start N processes here, give --nproc N")
    share_spec(config.batch, int(os.environ["WORLD_SIZE"]))  # a clear error before joining
    device = resolve_device(config.device)
    dist.init_process_group(backend_for(device), init_method="env://")
    rank = dist.get_rank()
    torch.set_num_threads(threads_per_process(int(os.environ.get("LOCAL_WORLD_SIZE", 1))))
    try:
        result = train_extractor(camera_roots, out_dir, config, progress=progress,
                                 resume=resume)
    finally:
        dist.destroy_process_group()
    return result if rank == 0 else None


def _group_process(rank: int, nproc: int, port: int, backend: str,
                   fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """One of the processes :func:`spawn_group` starts (``rank`` given by spawn)."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(nproc), LOCAL_RANK=str(rank),
                      LOCAL_WORLD_SIZE=str(nproc))
    store = dist.TCPStore("127.0.0.1", port, is_master=False)
    dist.init_process_group(backend, store=store, rank=rank, world_size=nproc)
    torch.set_num_threads(threads_per_process(nproc))
    try:
        fn(*args)
    finally:
        dist.destroy_process_group()


def spawn_group(nproc: int, backend: str, fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn(*args)`` in ``nproc`` processes of this machine that form a process group.

    They meet through a TCP store that this process serves on 127.0.0.1, on a port the
    system picks. Returns when all have ended; a failed one ends the others and its error
    is raised here (``torch.multiprocessing.ProcessRaisedException``).
    """
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    torch.multiprocessing.spawn(_group_process, nprocs=nproc, join=True,
                                args=(nproc, store.port, backend, fn, args))


def _train_process(roots: list[str], out_dir: str, config: TrainConfig, progress: bool,
                   resume: bool) -> None:
    train_extractor(roots, out_dir, config, progress=progress, resume=resume)


def train_on_processes(camera_roots: list[str | Path], out_dir: str | Path,
                       config: TrainConfig, nproc: int, *, progress: bool = True,
                       resume: bool = True) -> TrainResult:
    """Train on ``nproc`` processes of this machine; returns rank 0's extractor and log.

    The processes end with the run (a failed one ends the others, and its error is raised
    here). The log is the run's ``log.jsonl``, as complete as one process's history.
    """
    if nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {nproc}")
    if under_torchrun():
        raise ValueError("--nproc starts processes itself: under torchrun, use --ddp alone")
    share_spec(config.batch, nproc)  # a clear error here rather than in every process
    if resolve_device(config.device).type == "cuda" and torch.cuda.device_count() < nproc:
        raise ValueError(f"{nproc} processes need {nproc} GPUs, "
                         f"{torch.cuda.device_count()} visible")
    spawn_group(nproc, backend_for(resolve_device(config.device)), _train_process,
                [str(r) for r in camera_roots], str(out_dir), config, progress, resume)
    out_dir = Path(out_dir)
    return TrainResult(out_dir / "extractor.safetensors",
                       read_training_log(out_dir / "log.jsonl"))


def train_distributed(camera_roots: list[str | Path], out_dir: str | Path,
                      config: TrainConfig, nproc: int | None, *, progress: bool = True,
                      resume: bool = True) -> TrainResult | None:
    """``--nproc N``: N processes started here; ``--ddp`` alone: this process's part of a
    torchrun run (None in the processes other than rank 0)."""
    if nproc is not None:
        return train_on_processes(camera_roots, out_dir, config, nproc, progress=progress,
                                  resume=resume)
    return train_in_torchrun(camera_roots, out_dir, config, progress=progress, resume=resume)
