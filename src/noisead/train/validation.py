"""The validation figure of a training run: pair-verification AUC on fixed batches.

How well the distance between two fingerprints tells "same model, same position, other
image" from "different models", on batches drawn once from held-back images. It is cheap
enough to log during training; it measures the training cameras, not localization on
unseen ones (scripts/select_snapshot.py and scripts/score_extractors.py do that).
"""

from __future__ import annotations

import numpy as np
import torch

from noisead.data.patches import PatchBatch
from noisead.runtime import autocast
from noisead.train.loss import (
    dbl_loss,
    loss_features,
    pairwise_squared_distances,
    positive_pair_mask,
)


def pair_verification_auc(model: torch.nn.Module, batches: list[PatchBatch],
                          precision: str = "fp32", fingerprint_norm: str = "none",
                          device: torch.device | str = "cpu") -> tuple[float, float]:
    """(AUC, mean loss) of fingerprint distance as a same-model/same-position detector.

    Positives: same model, same position, different image. Negatives: different models
    (same-model different-position pairs are left out: they are neither).
    """
    from sklearn.metrics import roc_auc_score  # a second to import: only where it is used

    model.eval()
    scores, labels, losses = [], [], []
    with torch.no_grad(), autocast(precision):
        for b in batches:
            x = b.patches.to(device).contiguous(memory_format=torch.channels_last)
            fp = loss_features(model(x), fingerprint_norm)
            pos = positive_pair_mask(b.groups, b.image_ids)
            losses.append(dbl_loss(fp, pos.to(device)).item())
            d = pairwise_squared_distances(fp).cpu()
            cams = np.array(b.cameras)
            neg = torch.from_numpy(cams[:, None] != cams[None, :])
            iu = torch.triu_indices(len(cams), len(cams), 1)
            pos_u, neg_u, d_u = pos[iu[0], iu[1]], neg[iu[0], iu[1]], d[iu[0], iu[1]]
            keep = pos_u | neg_u
            scores.append((-d_u[keep]).numpy())
            labels.append(pos_u[keep].numpy())
    model.train()
    y = np.concatenate(labels)
    if y.all() or not y.any():
        return float("nan"), float(np.mean(losses))
    return float(roc_auc_score(y, np.concatenate(scores))), float(np.mean(losses))
