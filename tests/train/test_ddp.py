"""Training on several processes: two gloo processes on 127.0.0.1 against one process.

"Identical in expectation" made exact: from the same weights, on the same global batch,
one step on two processes (each with its share) gives the loss and the weights that one
process gives. Each process draws its own models (disjoint), and a restored share sampler
goes on with the very batches it would have drawn. A short ``--nproc 2`` run of the
command line writes a checkpoint that resumes with two processes, and only with two.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from noisead.cli import main
from noisead.data.patches import BatchSpec, PatchBatch, PatchPairSampler
from noisead.models.registry import create_model
from noisead.train.batches import RankShareSampler, rank_seed, restore_sampler, sampler_state
from noisead.train.distributed import Ranks, current_ranks, wrap_model
from noisead.train.extractor import TrainConfig, read_training_log, train_extractor
from noisead.train.launch import spawn_group
from noisead.train.loss import dbl_loss, loss_features, training_positives
from noisead.train.step import training_step

CPU = torch.device("cpu")
SPEC = BatchSpec(patch_size=16, models_per_batch=4, images_per_model=3, positions_per_model=2)
# The two kinds of positives, clipping on the way. The DBL loss alone does not see a shift
# of all fingerprints (the last bias's gradient is rounding noise, which Adam's first step
# blows up to +-lr): the scale penalty gives every parameter a real gradient.
CONFIGS = {
    "position": TrainConfig(model="dncnn-tiny", lr=1e-3, fingerprint_norm="patch",
                            scale_penalty=0.5, grad_clip=1.0, batch=SPEC),
    "model": TrainConfig(model="dncnn-tiny", lr=1e-3, positives="model", scale_penalty=0.1,
                         batch=SPEC),
}


def _global_batch() -> PatchBatch:
    """16 + 6 patches of four models; cam0 has two images only, so the shares differ in size."""
    rng = np.random.default_rng(0)
    images = {f"cam{m}": [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                          for _ in range(2 if m == 0 else 3)] for m in range(4)}
    return PatchPairSampler(images, SPEC, seed=3).sample()


def _share(batch: PatchBatch, rank: int, world: int) -> PatchBatch:
    """Process ``rank``'s share: its models' patches, all their images and positions."""
    models = list(dict.fromkeys(batch.cameras))
    mine = set(models[rank::world])
    keep = torch.tensor([c in mine for c in batch.cameras])
    return PatchBatch(batch.patches[keep], batch.groups[keep], batch.image_ids[keep],
                      [c for c in batch.cameras if c in mine], batch.operation)


def _model(weights: Path) -> torch.nn.Module:
    model = create_model("dncnn-tiny")
    model.load_state_dict(load_file(str(weights)))
    return model.to(memory_format=torch.channels_last)


def _save_step(path: Path, model: torch.nn.Module, loss: torch.Tensor) -> None:
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file({**tensors, "loss": loss.detach().reshape(1)}, str(path))


def _one_step_per_process(weights: str, batch: PatchBatch, out: str) -> None:
    """In each of the spawned processes: one DDP step on this process's share."""
    ranks = current_ranks()
    assert ranks is not None and ranks.world == 2
    for name, config in CONFIGS.items():
        model = _model(Path(weights))
        net = wrap_model(model, CPU)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        loss, _ = training_step(net, opt, _share(batch, ranks.rank, ranks.world), config,
                                CPU, "fp32", ranks)
        _save_step(Path(out) / f"{name}-rank{ranks.rank}.safetensors", model, loss)


def test_one_step_on_two_processes_equals_one_step_on_one(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "initial.safetensors"
    save_file(create_model("dncnn-tiny").state_dict(), str(weights))
    batch = _global_batch()
    shares = [_share(batch, r, 2) for r in range(2)]
    assert len(shares[0].groups) != len(shares[1].groups)  # padded exchange exercised

    spawn_group(2, "gloo", _one_step_per_process, str(weights), batch, str(tmp_path))

    initial = load_file(str(weights))
    for name, config in CONFIGS.items():
        model = _model(weights)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        loss, fp = training_step(model, opt, batch, config, CPU, "fp32")
        one = {k: v.detach() for k, v in model.state_dict().items()}
        ranks = [load_file(str(tmp_path / f"{name}-rank{r}.safetensors")) for r in range(2)]
        for got in ranks:
            assert got["loss"].item() == pytest.approx(loss.item(), rel=1e-5)
            for k, w in one.items():
                torch.testing.assert_close(got[k], w, rtol=1e-5, atol=1e-6)
                assert not torch.equal(w, initial[k])  # the step did move every tensor
        # the gathered loss is the point: each share's own loss is another number
        sizes = [len(s.groups) for s in shares]
        share_losses = [
            dbl_loss(loss_features(part, config.fingerprint_norm),
                     training_positives(s.groups, s.image_ids, s.cameras, config.positives),
                     temperature=config.temperature).item()
            for part, s in zip(fp.detach().split(sizes), shares, strict=True)]
        assert abs(np.mean(share_losses) - loss.item()) > 1e-2


def test_shares_of_a_step_are_disjoint_and_cover_the_global_batch(rng):
    images = {f"cam{m}": [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
              for m in range(7)}
    config = TrainConfig(batch=replace(SPEC, models_per_batch=4))
    samplers = [RankShareSampler(images, config, Ranks(r, 2, r, 2), seed=r) for r in range(2)]
    for step in range(5):
        parts = [set(s.cameras_at(step)) for s in samplers]
        assert not parts[0] & parts[1] and parts[0] | parts[1] == set(images)
        shares = [s.sample() for s in samplers]
        drawn = [set(b.cameras) for b in shares]
        assert all(len(d) == 2 and d <= p for d, p in zip(drawn, parts, strict=True))
    with pytest.raises(ValueError, match="split evenly"):
        RankShareSampler(images, config, Ranks(0, 3, 0, 3), seed=0)


def test_a_restored_share_sampler_draws_what_the_interrupted_one_would_have(rng):
    images = {f"cam{m}": [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
              for m in range(4)}
    config = TrainConfig(batch=SPEC)
    ranks = [Ranks(r, 2, r, 2) for r in range(2)]
    running = [RankShareSampler(images, config, k, seed=rank_seed(0, k.rank)) for k in ranks]
    for sampler in running:
        sampler.sample()
    meta = {"step": 1, "world_size": 2,
            "numpy_rng_ranks": [sampler_state(s) for s in running]}
    for k, sampler in zip(ranks, running, strict=True):
        restored = RankShareSampler(images, config, k, seed=12345)
        restore_sampler(restored, meta, k)
        a, b = sampler.sample(), restored.sample()
        assert a.cameras == b.cameras and torch.equal(a.patches, b.patches)
    with pytest.raises(ValueError, match="same number"):
        restore_sampler(running[0], {**meta, "world_size": 1}, ranks[0])


def _cameras(root: Path) -> Path:
    rng = np.random.default_rng(5)
    for m in range(4):
        (root / f"cam{m}").mkdir(parents=True)
        for i in range(4):
            img = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(img).save(root / f"cam{m}" / f"{i}.png")
    return root


def _train(cams: Path, run: Path, config: Path, steps: int) -> None:
    argv = ["train-extractor", str(cams), "-o", str(run), "--config", str(config),
            "--steps", str(steps), "--nproc", "2", "--quiet"]
    assert main(argv) == 0


def test_ddp_run_writes_a_checkpoint_that_resumes(tmp_path):
    cams = _cameras(tmp_path / "cams")
    config = tmp_path / "train.json"
    config.write_text(json.dumps(replace(
        CONFIGS["position"], val_fraction=0.5, val_every=2, val_batches=1,
        batch=replace(SPEC, images_per_model=2)).to_dict()))
    run = tmp_path / "run"

    _train(cams, run, config, steps=2)
    meta = json.loads((run / "checkpoint.json").read_text())
    assert meta["step"] == 2 and meta["world_size"] == 2
    assert meta["numpy_rng_ranks"][0] != meta["numpy_rng_ranks"][1]  # a stream per process
    first = read_training_log(run / "log.jsonl")
    assert [h["step"] for h in first] == [1, 2] and "val_auc" in first[1]  # rank 0 validated

    _train(cams, run, config, steps=3)
    log = read_training_log(run / "log.jsonl")
    assert log[:2] == first and log[2]["step"] == 3 and np.isfinite(log[2]["loss"])
    resumed = json.loads((run / "checkpoint.json").read_text())
    assert resumed["step"] == 3
    for rank in range(2):  # each process went on with its own stream, from where it was
        assert resumed["numpy_rng_ranks"][rank] != meta["numpy_rng_ranks"][rank]
    sidecar = json.loads((run / "extractor.json").read_text())
    assert sidecar["training"]["processes"] == 2 and sidecar["metrics"]["steps"] == 3

    with pytest.raises(ValueError, match="same number"):  # one process cannot take it over
        train_extractor([cams], run, TrainConfig.from_dict(json.loads(config.read_text())),
                        progress=False)
    assert json.loads((run / "checkpoint.json").read_text()) == resumed  # nothing lost
