"""Batches with simulated camera models drawn fresh per batch (noisead.data.fresh_cameras)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from noisead.data.augment import AugmentConfig
from noisead.data.fresh_cameras import FreshCameraSampler, FreshCameraSpec, load_scenes
from noisead.data.patches import BatchSpec

SPEC = BatchSpec(patch_size=16, models_per_batch=4, images_per_model=2, positions_per_model=2)


def _scenes(rng, n=4, size=(96, 112)):
    # smooth random fields, like photographs more than white noise
    out = []
    for _ in range(n):
        small = rng.integers(0, 256, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
        out.append(np.asarray(Image.fromarray(small).resize(size[::-1], Image.BILINEAR)))
    return out


def _folder_cameras(rng, n_models=3, n_images=3, size=80):
    return {f"cam{m}": [rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                        for _ in range(n_images)] for m in range(n_models)}


def test_batches_mix_folder_cameras_with_new_pipelines_every_time():
    rng = np.random.default_rng(0)
    sampler = FreshCameraSampler(_folder_cameras(rng), SPEC, None,
                                 FreshCameraSpec(share=0.5, crop=80), _scenes(rng), seed=1)
    a, b = sampler.sample(), sampler.sample()
    assert a.patches.shape == (SPEC.batch_size, 3, 16, 16)
    assert 0 <= float(a.patches.min()) <= float(a.patches.max()) <= 1
    assert sum(c.startswith("fresh") for c in a.cameras) == SPEC.batch_size // 2
    assert sum(c.startswith("cam") for c in a.cameras) == SPEC.batch_size // 2
    # each (model, position) group holds one patch per image, from different images
    for g in a.groups.unique():
        ids = a.image_ids[a.groups == g]
        assert len(ids) == SPEC.images_per_model and len(ids.unique()) == len(ids)
    # the simulated models of the next batch are new pipelines: other pixels
    fresh_a = a.patches[[c.startswith("fresh") for c in a.cameras]]
    fresh_b = b.patches[[c.startswith("fresh") for c in b.cameras]]
    assert not torch.equal(fresh_a, fresh_b)


def test_restoring_the_random_stream_redraws_the_same_batch():
    rng = np.random.default_rng(2)
    images, scenes = _folder_cameras(rng), _scenes(rng)
    aug = AugmentConfig(p_jpeg=0.5, p_resize=0.5)
    spec = BatchSpec(patch_size=16, models_per_batch=3, images_per_model=2,
                     positions_per_model=2)
    first = FreshCameraSampler(images, spec, aug, FreshCameraSpec(share=1.0, crop=80), scenes, 3)
    first.sample()
    state = first.rng.bit_generator.state
    expected = first.sample()
    resumed = FreshCameraSampler(images, spec, aug, FreshCameraSpec(share=1.0, crop=80),
                                 scenes, 99)
    resumed.rng.bit_generator.state = state
    again = resumed.sample()
    assert torch.equal(expected.patches, again.patches)
    assert torch.equal(expected.groups, again.groups)
    assert all(c.startswith("fresh") for c in again.cameras)


def test_invalid_settings_are_refused(tmp_path):
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError, match="share"):
        FreshCameraSpec(share=1.5)
    with pytest.raises(ValueError, match="multiple of 16"):
        FreshCameraSpec(crop=90)
    with pytest.raises(ValueError, match="too few positions"):
        FreshCameraSampler(_folder_cameras(rng), BatchSpec(patch_size=48), None,
                           FreshCameraSpec(share=0.5, crop=64), _scenes(rng), 0)
    with pytest.raises(FileNotFoundError):
        load_scenes(tmp_path / "missing", 64)
    for i, scene in enumerate(_scenes(rng, n=3, size=(48, 48))):
        Image.fromarray(scene).save(tmp_path / f"s{i}.png")
    with pytest.raises(ValueError, match="at least two scenes"):
        load_scenes(tmp_path, 64)
    assert len(load_scenes(tmp_path, 48)) == 3
