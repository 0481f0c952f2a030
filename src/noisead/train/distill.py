"""Start a smaller extractor as a copy of a pretrained denoiser (knowledge distillation).

Noiseprint starts its Siamese training from a denoiser, because a denoiser already
separates noise from content, which is what a camera fingerprint is made of. The shipped
denoiser (17 layers x 64) is too slow for the speed target on two CPU cores, and its
weights do not fit a smaller DnCNN. So the small network is first taught to reproduce the
big one's output (its noise residual) on camera patches, by mean squared error, and the
DBL training starts from there.

The teacher runs once, on a fixed set of crops (its output is cached), so a distillation
step costs one student forward and backward. Crops are larger than the training patch by
the teacher's receptive-field margin, and only the centre (free of the teacher's zero
padding) enters the loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

__all__ = ["distill_denoiser", "sample_crops"]


def sample_crops(images: Sequence[np.ndarray], n: int, size: int, rng: np.random.Generator,
                 grid: int = 8) -> torch.Tensor:
    """``n`` random ``size x size`` uint8 crops (on the ``grid``) → N x 3 x S x S float32."""
    usable = [im for im in images if min(im.shape[:2]) >= size]
    if not usable:
        raise ValueError(f"no image is at least {size}x{size} pixels")
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        im = usable[int(rng.integers(len(usable)))]
        y = int(rng.integers((im.shape[0] - size) // grid + 1)) * grid
        x = int(rng.integers((im.shape[1] - size) // grid + 1)) * grid
        out[i] = im[y:y + size, x:x + size, :3]
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)


def distill_denoiser(student: nn.Module, teacher: nn.Module, images: Sequence[np.ndarray], *,
                     steps: int = 400, batch_size: int = 32, patch_size: int = 48,
                     margin: int = 16, n_crops: int = 2048, lr: float = 1e-3, seed: int = 0,
                     progress: bool = True, device: torch.device | str = "cpu") -> list[float]:
    """Train ``student`` to output what ``teacher`` outputs; returns the loss per step.

    The loss is normalised by the teacher's output variance, so 1.0 means "no better than
    predicting zero" and the figure reads the same for any denoiser.
    """
    rng = np.random.default_rng(seed)
    size = patch_size + 2 * margin
    crops = sample_crops(images, n_crops, size, rng).to(device)
    teacher.to(device).eval()
    student.to(device)
    targets = []
    with torch.no_grad():
        for chunk in torch.split(crops, 64):
            out = teacher(chunk.contiguous(memory_format=torch.channels_last))
            targets.append(out[:, :, margin:-margin, margin:-margin].float())
    target = torch.cat(targets)
    scale = target.var().clamp_min(1e-12)
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    student.train()
    losses: list[float] = []
    bar = tqdm(range(steps), desc="distilling the denoiser", disable=not progress)
    for _ in bar:
        idx = torch.from_numpy(rng.choice(n_crops, size=batch_size, replace=False)).to(device)
        pred = student(crops[idx].contiguous(memory_format=torch.channels_last))
        pred = pred[:, :, margin:-margin, margin:-margin]
        loss = (pred.float() - target[idx]).pow(2).mean() / scale
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    return losses
