"""Training options made for GPU runs: device choice, worker-drawn batches, snapshots,
gradient clipping. They must also work on a CPU-only machine (CI)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from noisead.data.patches import BatchSpec, PatchPairSampler
from noisead.runtime import resolve_device
from noisead.train.extractor import TrainConfig, _SamplerStream, batch_stream, train_extractor


def _cameras(root, rng, n_models=3, n_images=4, size=64):
    for m in range(n_models):
        (root / f"cam{m}").mkdir()
        for i in range(n_images):
            img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(img).save(root / f"cam{m}" / f"{i}.png")
    return root


def _arrays(rng, n_models=3, n_images=3, size=64):
    return {f"cam{m}": [rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                        for _ in range(n_images)] for m in range(n_models)}


def test_resolve_device_auto_falls_back_to_cpu_and_rejects_missing_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        resolve_device("cuda")


def test_worker_streams_are_seeded_per_worker_and_first_step():
    rng = np.random.default_rng(0)
    images = _arrays(rng)
    config = TrainConfig(batch=BatchSpec(patch_size=16, models_per_batch=2, images_per_model=2,
                                         positions_per_model=2))
    first = next(iter(_SamplerStream(images, config, first_step=0)))
    again = next(iter(_SamplerStream(images, config, first_step=0)))
    later = next(iter(_SamplerStream(images, config, first_step=100)))
    assert torch.equal(first.patches, again.patches)      # reproducible
    assert not torch.equal(first.patches, later.patches)  # a resumed run draws new batches


def test_batch_stream_with_workers_gives_valid_batches():
    rng = np.random.default_rng(1)
    images = _arrays(rng)
    spec = BatchSpec(patch_size=16, models_per_batch=2, images_per_model=2,
                     positions_per_model=2)
    config = TrainConfig(batch=spec, loader_workers=1)
    stream = batch_stream(PatchPairSampler(images, spec), images, config, first_step=0)
    for _ in range(3):
        b = next(stream)
        assert b.patches.shape == (spec.batch_size, 3, 16, 16)
        assert b.patches.dtype == torch.float32 and 0 <= b.patches.min() <= b.patches.max() <= 1
        assert len(b.groups) == len(b.image_ids) == spec.batch_size
    del stream


def test_snapshots_and_clipping(tmp_path, monkeypatch):
    (tmp_path / "cams").mkdir()
    root = _cameras(tmp_path / "cams", np.random.default_rng(2), n_images=5)
    clipped = []
    real_clip = torch.nn.utils.clip_grad_norm_

    def recording_clip(params, max_norm, *args, **kwargs):
        params = list(params)
        total = real_clip(params, max_norm, *args, **kwargs)
        after = torch.norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
        clipped.append((float(max_norm), float(total), float(after)))
        return total

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording_clip)
    config = TrainConfig(model="dncnn-tiny", steps=4, lr=1e-3, snapshot_every=2,
                         grad_clip=1e-6, val_fraction=0.0, precision="fp32", device="cpu",
                         batch=BatchSpec(patch_size=16, models_per_batch=3,
                                         images_per_model=2, positions_per_model=2))
    run = tmp_path / "run"
    train_extractor([root], run, config, progress=False)
    assert sorted(p.name for p in run.glob("extractor-step*.safetensors")) == [
        "extractor-step2.safetensors", "extractor-step4.safetensors"]
    assert len(clipped) == 4  # once per step
    assert all(limit == 1e-6 and total > 1e-6 and after <= 1.01e-6
               for limit, total, after in clipped)


def test_a_collapsed_model_stops_early(tmp_path):
    """All-zero weights give the same fingerprint for every patch: training must stop after
    ``collapse_patience`` steps and say so, rather than spend its budget on a dead net."""
    from noisead.models.registry import create_model, save_extractor

    (tmp_path / "cams").mkdir()
    root = _cameras(tmp_path / "cams", np.random.default_rng(3), n_images=4)
    dead = create_model("dncnn-tiny")
    with torch.no_grad():
        for prm in dead.parameters():
            prm.zero_()
    init = save_extractor(dead, tmp_path / "dead.safetensors")
    config = TrainConfig(model="dncnn-tiny", init_from=str(init), steps=50, lr=1e-3,
                         collapse_patience=3, val_fraction=0.0, precision="fp32",
                         batch=BatchSpec(patch_size=16, models_per_batch=3,
                                         images_per_model=2, positions_per_model=2))
    result = train_extractor([root], tmp_path / "run", config, progress=False)
    assert [h["step"] for h in result.history] == [1, 2, 3]
    assert result.history[-1].get("collapsed") is True
