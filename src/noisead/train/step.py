"""One optimiser step of the extractor's training, on one process or several.

The same function serves both, so that what a test checks of it (one step on two
processes equals one step on one, :mod:`noisead.train.distributed`) is what a run does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from noisead.data.patches import PatchBatch
from noisead.runtime import autocast
from noisead.train.distributed import Ranks, gather_batch, scaled
from noisead.train.localization import localization_loss, make_composites
from noisead.train.loss import dbl_loss, loss_features, scale_penalty, training_positives

if TYPE_CHECKING:
    from noisead.train.extractor import TrainConfig


def training_step(net: torch.nn.Module, opt: torch.optim.Optimizer, batch: PatchBatch,
                  config: TrainConfig, device: torch.device, precision: str,
                  ranks: Ranks | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimise the DBL loss (plus the scale penalty, plus the localization loss on
    simulated splices when ``config.localization_weight`` is set: see
    :mod:`noisead.train.localization`) on ``batch`` by one step of ``opt``.

    ``batch`` is the whole batch on one process, this process's share under DDP (``net``
    then wrapped in DistributedDataParallel, ``ranks`` given). Returns the loss and the
    fingerprints it was computed on: the global batch's in both cases (the loss includes
    this process's localization term, the fingerprints are the batch's alone).
    """
    x = batch.patches.to(device, non_blocking=True)
    composites = None
    if config.localization_weight:  # simulated splices ride along in the same forward pass
        composites = make_composites(batch.patches, batch.cameras,
                                     config.localization_composites, config.localization_cell)
        x = torch.cat([x, composites.patches.to(device, non_blocking=True)])
    with autocast(precision):
        fp = net(x.contiguous(memory_format=torch.channels_last))
    if composites is not None:
        fp, composite_fp = fp[:len(batch.patches)], fp[len(batch.patches):]
    groups, image_ids, cameras = batch.groups, batch.image_ids, batch.cameras
    if ranks is not None:  # the loss is the global batch's (see train.distributed)
        whole = gather_batch(fp, batch, ranks)
        fp, groups, image_ids, cameras = (whole.fingerprints, whole.groups, whole.image_ids,
                                          whole.cameras)
    loss = dbl_loss(loss_features(fp, config.fingerprint_norm),
                    training_positives(groups, image_ids, cameras, config.positives).to(device),
                    temperature=config.temperature)
    loss = loss + config.scale_penalty * scale_penalty(fp) if config.scale_penalty else loss
    total = scaled(loss, ranks)
    if composites is not None:
        # A local term under DDP: each process's own composites, not gathered; unscaled,
        # DDP's average of the processes' gradients is that of the mean of their terms.
        local = config.localization_weight * localization_loss(
            composite_fp, composites.donor.to(device), config.localization_cell,
            temperature=config.temperature)
        total, loss = total + local, loss + local.detach()
    opt.zero_grad(set_to_none=True)
    total.backward()
    if config.grad_clip:
        torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
    opt.step()
    return loss, fp
