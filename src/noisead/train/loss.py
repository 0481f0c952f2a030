"""The distance-based logistic (DBL) loss of Noiseprint (Cozzolino & Verdoliva, 2020).

For a batch of N patch fingerprints ``r_i``, with squared distances ``d_ij = ||r_i - r_j||^2``,
every patch ``i`` defines a softmax over all *other* patches,

    p_ij = exp(-d_ij) / sum_{k != i} exp(-d_ik),

and the loss asks that the mass falls on its positives (same camera model, same pixel
position, different image):

    L = sum_i -log( sum_{j in pos(i)} p_ij ).

Unlike a contrastive loss with a margin, no threshold has to be chosen: every negative is
pushed away in proportion to how close it is. Patches without any positive in the batch
contribute nothing (their term would be -log 0).

Scale. A denoiser's residual is small (its variance is the noise's, ~1e-4 on [0, 1]
images), so with raw distances every softmax starts uniform and the gradient is almost
nil: the network first has to learn to blow up its output. ``normalize="batch"`` (the
default) divides the distances by their mean over the batch (a constant for the
gradient), so the loss is invariant to the fingerprint's scale and ``temperature`` sets
how sharp the softmax is relative to a typical distance. ``"sum"`` is the paper's
literal form; ``"mean"`` divides by the number of elements of a fingerprint.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

Normalize = Literal["batch", "mean", "sum"]


def pairwise_squared_distances(features: Tensor, normalize: Normalize = "mean") -> Tensor:
    """Squared Euclidean distances between flattened fingerprints (N x N).

    ``normalize="mean"`` divides by the number of elements of a fingerprint, so that the
    loss's scale does not depend on the patch size (the paper's literal form is ``"sum"``).
    """
    flat = features.reshape(features.shape[0], -1).float()
    # Distances do not change when a common vector is removed, but the expanded form below
    # loses them to rounding when the fingerprints share a large component (a constant
    # offset: |r|^2 terms of 1e-4 cancelling to differences of 1e-7); centring first keeps
    # the small differences that the loss is about.
    flat = flat - flat.mean(dim=0, keepdim=True)
    sq = (flat * flat).sum(dim=1)
    d = sq[:, None] + sq[None, :] - 2.0 * flat @ flat.T
    d = d.clamp_min(0.0)
    if normalize == "mean":
        d = d / flat.shape[1]
    elif normalize == "batch":
        n = d.shape[0]
        off = d.sum() / max(n * (n - 1), 1)
        d = d / (off.detach() + 1e-12)
    elif normalize != "sum":
        raise ValueError(f"normalize must be 'batch', 'mean' or 'sum', got {normalize!r}")
    return d


def standardize_patches(features: Tensor, eps: float = 1e-12) -> Tensor:
    """Per patch, remove the mean and scale to unit RMS (a patch-wise z-score).

    Why: a fingerprint's energy follows the content (flat or saturated patches give almost
    none), so with raw distances all low-energy patches sit close together whatever their
    camera, and early in training the loss is ruled by content rather than by the traces.
    Standardized, two patches are close only when their noise *patterns* agree (the JPEG
    grid, the colour-filter phase), which is what the camera model determines.
    """
    flat = features.reshape(features.shape[0], -1).float()
    flat = flat - flat.mean(dim=1, keepdim=True)
    rms = flat.pow(2).mean(dim=1, keepdim=True).add(eps).sqrt()
    return (flat / rms).reshape(features.shape)


def positive_pair_mask(groups: Tensor, image_ids: Tensor) -> Tensor:
    """``mask[i, j]`` is True when i and j are a positive pair.

    ``groups`` labels (camera model, pixel position); ``image_ids`` labels the source image.
    A pair is positive when the group is the same and the images differ: the same patch
    of the same image is never its own positive.
    """
    same_group = groups[:, None] == groups[None, :]
    other_image = image_ids[:, None] != image_ids[None, :]
    return same_group & other_image


def training_positives(groups: Tensor, image_ids: Tensor, cameras: list[str],
                       kind: str = "position") -> Tensor:
    """The positive pairs a training batch is scored with.

    ``"position"`` is Noiseprint's choice (:func:`positive_pair_mask`): same model, same
    position, different image. ``"model"`` makes every other patch of the same camera
    model a positive, other positions and the same image included: all positions lie on
    the 8-pixel grid, so they share the colour-filter and JPEG phases, and asking them to
    agree teaches the model-level periodic traces (what tells a pasted region from its
    host) instead of a pattern tied to one sensor position, which an unseen camera lacks.
    """
    if kind == "position":
        return positive_pair_mask(groups, image_ids)
    if kind != "model":
        raise ValueError(f"positives must be 'position' or 'model', got {kind!r}")
    index = {c: i for i, c in enumerate(dict.fromkeys(cameras))}
    model = torch.tensor([index[c] for c in cameras])
    same = model[:, None] == model[None, :]
    return same & ~torch.eye(len(cameras), dtype=torch.bool)


def scale_penalty(fingerprints: Tensor) -> Tensor:
    """``log(mean square)^2`` of the raw fingerprints: zero at unit RMS.

    Why: the loss on standardized fingerprints does not see their scale, so nothing stops
    it from drifting (a DnCNN-small's RMS went from 1.6 to 11-35 in a few hundred steps),
    and the detector's Gaussians, fitted on the fingerprint beside the hidden layers it is
    tapped with, then fail (covariances no longer positive definite). This term, added
    with a weight, keeps the RMS near 1, where it no longer pulls. The mean square
    includes what all patches share (a fixed periodic pattern): anchoring only the
    differences between patches would blow that pattern up with them.
    """
    return fingerprints.float().pow(2).mean().add(1e-12).log().pow(2)


def dbl_loss(features: Tensor, positives: Tensor, *, temperature: float = 0.1,
             normalize: Normalize = "batch", reduction: str = "mean") -> Tensor:
    """Distance-based logistic loss over a batch of fingerprints.

    Args:
        features: N x ... fingerprints (flattened inside).
        positives: N x N boolean mask of positive pairs (diagonal ignored).
        temperature: distances are divided by it before the softmax.
        normalize: see :func:`pairwise_squared_distances`.
        reduction: "mean" over anchors that have positives, "sum", or "none".
    """
    n = features.shape[0]
    if positives.shape != (n, n):
        raise ValueError(f"positives must be {n}x{n}, got {tuple(positives.shape)}")
    eye = torch.eye(n, dtype=torch.bool, device=features.device)
    logits = -pairwise_squared_distances(features, normalize) / temperature
    logits = logits.masked_fill(eye, float("-inf"))
    log_p = torch.log_softmax(logits, dim=1)
    pos = positives & ~eye
    has_pos = pos.any(dim=1)
    pos_log_mass = torch.logsumexp(log_p.masked_fill(~pos, float("-inf")), dim=1)
    per_anchor = -pos_log_mass[has_pos]
    if reduction == "mean":
        return per_anchor.mean() if per_anchor.numel() else features.sum() * 0.0
    if reduction == "sum":
        return per_anchor.sum()
    if reduction == "none":
        return per_anchor
    raise ValueError(f"unknown reduction {reduction!r}")


def loss_features(fingerprints: torch.Tensor, fingerprint_norm: str) -> torch.Tensor:
    """The fingerprints as the loss sees them (float32, standardized if asked)."""
    if fingerprint_norm == "patch":
        return standardize_patches(fingerprints)
    if fingerprint_norm != "none":
        raise ValueError(f"fingerprint_norm must be 'none' or 'patch', got {fingerprint_norm!r}")
    return fingerprints.float()
