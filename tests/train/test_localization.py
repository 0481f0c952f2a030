"""The localization loss on simulated splices (noisead.train.localization).

Composites hold the host's pixels outside a cell-aligned region of 20-50 % and the
donor's (another camera's) inside it; the loss is low for a fingerprint that tells the
two sources apart and high for one that does not; at weight 0 a training step is the
very step it was without the term.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch

from noisead.data.augment import Operation
from noisead.data.patches import BatchSpec, PatchBatch
from noisead.models.registry import create_model
from noisead.train.extractor import TrainConfig
from noisead.train.localization import (
    cells_of,
    localization_loss,
    make_composites,
    splice_region,
)
from noisead.train.loss import dbl_loss, loss_features, scale_penalty, training_positives
from noisead.train.step import training_step

CPU = torch.device("cpu")
P = 48


def _batch(models: int = 4, images: int = 2, size: int = P, seed: int = 0) -> PatchBatch:
    """Patches whose camera is written in them: each camera adds its own fixed 8x8
    periodic pattern (a stand-in for its traces) to smooth random content."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.randn(models, 3, 8, 8, generator=g) * 0.05
    patches, cameras, groups, ids = [], [], [], []
    for m in range(models):
        for i in range(images):
            coarse = torch.rand(1, 3, size // 8, size // 8, generator=g) * 0.5 + 0.25
            content = torch.nn.functional.interpolate(coarse, size=(size, size),
                                                      mode="bilinear")[0]
            patches.append(content + patterns[m].repeat(1, size // 8, size // 8))
            cameras.append(f"cam{m}")
            groups.append(m)
            ids.append(m * images + i)
    return PatchBatch(torch.stack(patches), torch.tensor(groups), torch.tensor(ids), cameras,
                      Operation(None, (0, 0), 1.0))


@pytest.mark.parametrize("cell", [8, 16])
def test_regions_are_whole_cells_covering_20_to_50_percent(cell: int) -> None:
    g = torch.Generator().manual_seed(1)
    shares = []
    for _ in range(60):
        region = splice_region(P, cell, g)
        assert region.shape == (P, P) and region.dtype == torch.bool
        per_cell = cells_of(region[None, None].float(), cell).flatten(2)
        assert bool(((per_cell == 0) | (per_cell == 1)).all()), "a cell is split"
        shares.append(float(region.float().mean()))
    assert 0.2 <= min(shares) and max(shares) <= 0.5
    assert len(set(shares)) > 1  # the size varies


def test_composites_hold_host_outside_and_donor_inside() -> None:
    batch = _batch()
    comp = make_composites(batch.patches, batch.cameras, 10, 8,
                           torch.Generator().manual_seed(2))
    assert comp.patches.shape == (10, 3, P, P)
    for k in range(10):
        host, donor = int(comp.hosts[k]), int(comp.donors[k])
        assert batch.cameras[host] != batch.cameras[donor]
        inside = comp.donor[k]
        assert 0.2 <= float(inside.float().mean()) <= 0.5
        assert torch.equal(comp.patches[k][:, inside], batch.patches[donor][:, inside])
        assert torch.equal(comp.patches[k][:, ~inside], batch.patches[host][:, ~inside])


def test_bad_inputs_are_refused() -> None:
    batch = _batch(models=1)
    with pytest.raises(ValueError, match="two cameras"):
        make_composites(batch.patches, batch.cameras, 2, 8)
    with pytest.raises(ValueError, match="divide"):
        splice_region(P, 10)
    with pytest.raises(ValueError, match="too few"):
        splice_region(P, 48)


def _high_pass(x: torch.Tensor) -> torch.Tensor:
    """A fixed fingerprint that sees the cameras' patterns: the patch minus its local mean."""
    blur = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    return (x - blur).mean(dim=1, keepdim=True)


def test_the_loss_is_lower_when_the_fingerprint_separates_the_sources() -> None:
    batch = _batch()
    comp = make_composites(batch.patches, batch.cameras, 8, 8, torch.Generator().manual_seed(3))
    separating = localization_loss(_high_pass(comp.patches), comp.donor, 8)
    g = torch.Generator().manual_seed(4)
    blind = localization_loss(torch.randn(8, 1, P, P, generator=g), comp.donor, 8)
    content_only = localization_loss(
        torch.nn.functional.avg_pool2d(comp.patches, 9, stride=1, padding=4).mean(1, True),
        comp.donor, 8)
    assert separating < 0.5 * blind and separating < 0.5 * content_only
    # cells are standardized: a fingerprint that differs between the sources only by its
    # level (the donor mask itself plus noise) tells them apart no better than noise
    level_only = comp.donor[:, None].float() + 0.01 * torch.randn(8, 1, P, P, generator=g)
    assert localization_loss(level_only, comp.donor, 8) > 0.5 * blind


def _reference_step(net: torch.nn.Module, opt: torch.optim.Optimizer, batch: PatchBatch,
                    config: TrainConfig) -> torch.Tensor:
    """One step as it is without the localization term (one process, float32)."""
    fp = net(batch.patches.contiguous(memory_format=torch.channels_last))
    loss = dbl_loss(loss_features(fp, config.fingerprint_norm),
                    training_positives(batch.groups, batch.image_ids, batch.cameras,
                                       config.positives), temperature=config.temperature)
    loss = loss + config.scale_penalty * scale_penalty(fp)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
    opt.step()
    return loss


def _one_step(config: TrainConfig, batch: PatchBatch, reference: bool = False
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor], bool]:
    """Loss, weights after one step from a seeded model, and whether the step drew
    from torch's global random stream (which a checkpoint saves)."""
    torch.manual_seed(0)
    net = create_model(config.model).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    rng_before = torch.get_rng_state()
    if reference:
        loss = _reference_step(net, opt, batch, config)
    else:
        loss, _ = training_step(net, opt, batch, config, CPU, "fp32")
    drew = not torch.equal(rng_before, torch.get_rng_state())
    return loss.detach(), copy.deepcopy(net.state_dict()), drew


def test_weight_zero_leaves_a_step_bit_identical_and_a_weight_changes_it() -> None:
    batch = _batch(size=16)
    config = TrainConfig(model="dncnn-tiny", lr=1e-3, fingerprint_norm="patch",
                         scale_penalty=0.5, grad_clip=1.0, localization_cell=8,
                         batch=BatchSpec(patch_size=16, models_per_batch=4,
                                         images_per_model=2, positions_per_model=1))
    assert config.localization_weight == 0.0  # off unless asked
    ref_loss, ref_weights, _ = _one_step(config, batch, reference=True)
    loss, weights, drew = _one_step(config, batch)
    assert torch.equal(loss, ref_loss)
    assert all(torch.equal(weights[k], ref_weights[k]) for k in ref_weights)
    assert not drew  # the random stream of a resumed run is the same too
    on_loss, on_weights, drew = _one_step(replace(config, localization_weight=1.0,
                                                  localization_composites=4), batch)
    assert drew and not torch.equal(on_loss, ref_loss)
    assert any(not torch.equal(on_weights[k], ref_weights[k]) for k in ref_weights)


def test_the_fields_round_trip_through_the_saved_config() -> None:
    config = TrainConfig(localization_weight=0.5, localization_composites=6,
                         localization_cell=8)
    again = TrainConfig.from_dict(config.to_dict())
    assert (again.localization_weight, again.localization_composites,
            again.localization_cell) == (0.5, 6, 8)
    old = config.to_dict()
    for key in ("localization_weight", "localization_composites", "localization_cell"):
        old.pop(key)
    assert TrainConfig.from_dict(old).localization_weight == 0.0  # older configs: off
