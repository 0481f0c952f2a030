"""The extractor's training under DistributedDataParallel: who is who, and the global loss.

Each process (rank) draws its share of the global batch (:mod:`noisead.train.batches`),
runs the model on it, and takes part in the loss of the *whole* global batch.

Why the loss is the global batch's and not each share's own. The DBL loss is no sum over
sub-batches: every patch's softmax runs over all other patches of the batch (its
negatives), and the distances are divided by their mean over the batch. A loss computed
per process on its share would see W times fewer negatives on another scale: another
objective, not just a noisier estimate of the same one. So the processes exchange their
fingerprints (:func:`gather_batch`) and each computes the very number one process
computes on the same global batch.

The gradient. In the gathered batch only the process's own share carries a gradient (the
others' are received copies), so its backward pass yields the part of the global
gradient that flows through its own patches. DistributedDataParallel *averages* the W
processes' gradients; the loss is scaled by W before the backward pass (:func:`scaled`),
so that the average is the sum of the parts: the global batch's gradient, to rounding,
with no communication in the backward pass but DDP's own all-reduce.
(``torch.distributed.nn.functional.all_gather`` would sum the same parts by an exchange
of fingerprint gradients in the backward pass; it is deprecated.)

Backends: gloo on the CPU, nccl on GPUs (one GPU per process, ``cuda:<local rank>``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from noisead.data.patches import PatchBatch


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run: global rank and count, and on its machine."""

    rank: int
    world: int
    local_rank: int
    local_world: int

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes files (checkpoints, logs, extractors) and validates."""
        return self.rank == 0


def current_ranks() -> Ranks | None:
    """This process's ranks when it belongs to an initialised process group, else None
    (training on one process). The machine-local values come from torchrun's variables."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    rank, world = dist.get_rank(), dist.get_world_size()
    return Ranks(rank, world, int(os.environ.get("LOCAL_RANK", rank)),
                 int(os.environ.get("LOCAL_WORLD_SIZE", world)))


def backend_for(device: torch.device) -> str:
    """gloo for processes on CPUs, nccl for processes on GPUs."""
    return "nccl" if device.type == "cuda" else "gloo"


def threads_per_process(nproc: int) -> int:
    """Torch threads for each of ``nproc`` processes on one machine: its cores shared."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(1, nproc))


def process_device(device: torch.device, ranks: Ranks) -> torch.device:
    """A GPU of its own for each process of a machine (``cuda:<local rank>``)."""
    if device.type != "cuda":
        return device
    if ranks.local_rank >= torch.cuda.device_count():
        raise RuntimeError(f"process {ranks.local_rank} of this machine has no GPU of its own "
                           f"({torch.cuda.device_count()} visible)")
    torch.cuda.set_device(ranks.local_rank)
    return torch.device("cuda", ranks.local_rank)


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` under DistributedDataParallel (which makes every process start from rank
    0's weights). Batch normalisation is refused: its statistics would be each share's,
    not the global batch's, and no preset model uses it."""
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        raise ValueError("training on several processes does not support batch "
                         "normalisation (its statistics would be per process)")
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


@dataclass
class GlobalBatch:
    """The fingerprints and labels of the global batch, in rank order."""

    fingerprints: torch.Tensor  # float32; only this process's share carries a gradient
    groups: torch.Tensor        # (model, position) labels, distinct between shares
    image_ids: torch.Tensor
    cameras: list[str]          # "<rank>:<camera>": fresh cameras are per share


def gather_batch(fingerprints: torch.Tensor, batch: PatchBatch, ranks: Ranks) -> GlobalBatch:
    """Every share's fingerprints and labels, gathered in every process.

    Shares may differ in size (a camera with fewer images than ``images_per_model``), so
    the fingerprints travel padded to the largest share. Group labels are offset per
    share: a positive pair never spans two shares (their models are disjoint).
    """
    labels: list[Any] = [None] * ranks.world
    dist.all_gather_object(labels, (batch.groups.tolist(), batch.image_ids.tolist(),
                                    batch.cameras))
    sizes = [len(groups) for groups, _, _ in labels]
    local = fingerprints.float()
    sent = local.detach().contiguous()
    if (pad := max(sizes) - sent.shape[0]) > 0:
        sent = torch.cat([sent, sent.new_zeros((pad, *sent.shape[1:]))])
    received = [torch.empty_like(sent) for _ in range(ranks.world)]
    dist.all_gather(received, sent)
    parts = [local if r == ranks.rank else received[r][:n] for r, n in enumerate(sizes)]
    groups, offset = [], 0
    for share_groups, _, _ in labels:
        groups.append(torch.tensor(share_groups, dtype=torch.long) + offset)
        offset += max(share_groups, default=-1) + 1
    return GlobalBatch(
        fingerprints=torch.cat(parts), groups=torch.cat(groups),
        image_ids=torch.tensor([i for _, ids, _ in labels for i in ids], dtype=torch.long),
        cameras=[f"{r}:{c}" for r, (_, _, cams) in enumerate(labels) for c in cams])


def scaled(loss: torch.Tensor, ranks: Ranks | None) -> torch.Tensor:
    """What the backward pass starts from: ``loss`` times the number of processes, so that
    DDP's average of the processes' parts is their sum (see the module's docstring)."""
    return loss if ranks is None else loss * ranks.world


def any_process(flag: bool, device: torch.device) -> bool:
    """True in every process when ``flag`` is true in one (a time limit reached on one
    clock stops all processes at the same step)."""
    value = torch.tensor([int(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def gather_objects(obj: Any, ranks: Ranks) -> list[Any]:
    """``obj`` of every process, in rank order (e.g. the samplers' random states)."""
    out: list[Any] = [None] * ranks.world
    dist.all_gather_object(out, obj)
    return out
