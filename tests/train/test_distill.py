import numpy as np
import pytest
import torch

from noisead.models.registry import create_model
from noisead.train.distill import distill_denoiser, sample_crops


def test_crops_lie_on_the_grid_and_keep_the_pixels():
    rng = np.random.default_rng(0)
    im = (np.arange(64 * 80 * 3) % 251).astype(np.uint8).reshape(64, 80, 3)
    crops = sample_crops([im], 5, 24, rng, grid=8)
    assert crops.shape == (5, 3, 24, 24)
    for c in crops:
        hwc = (c.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        hits = [(y, x) for y in range(0, 41, 8) for x in range(0, 57, 8)
                if (im[y:y + 24, x:x + 24] == hwc).all()]
        assert hits
    with pytest.raises(ValueError, match="at least"):
        sample_crops([im[:10]], 1, 24, rng)


def test_student_learns_to_reproduce_the_teacher():
    torch.manual_seed(0)
    teacher = create_model("dncnn-tiny")
    student = create_model("dncnn-tiny", depth=4)
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(4)]
    losses = distill_denoiser(student, teacher, images, steps=150, batch_size=8,
                              patch_size=16, margin=6, n_crops=64, lr=3e-3, progress=False)
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:3])
