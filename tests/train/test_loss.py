import math

import numpy as np
import pytest
import torch

from noisead.train.loss import (
    dbl_loss,
    pairwise_squared_distances,
    positive_pair_mask,
    standardize_patches,
    training_positives,
)


def _reference_loss(f: np.ndarray, pos: np.ndarray) -> float:
    """The DBL loss written out with plain loops, straight from the paper's formula."""
    n = len(f)
    d = np.array([[np.sum((f[i] - f[j]) ** 2) for j in range(n)] for i in range(n)])
    total, count = 0.0, 0
    for i in range(n):
        denom = sum(math.exp(-d[i, k]) for k in range(n) if k != i)
        mass = sum(math.exp(-d[i, j]) / denom for j in range(n) if j != i and pos[i, j])
        if any(pos[i, j] for j in range(n) if j != i):
            total += -math.log(mass)
            count += 1
    return total / count


def test_hand_computed_three_points():
    # Points on a line at 0, 1, 3 (1-D fingerprints); 0 and 1 are a positive pair.
    f = torch.tensor([[0.0], [1.0], [3.0]])
    pos = torch.tensor([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=torch.bool)
    # anchor 0: d01 = 1, d02 = 9 -> -log(e^-1 / (e^-1 + e^-9))
    # anchor 1: d10 = 1, d12 = 4 -> -log(e^-1 / (e^-1 + e^-4)); anchor 2 has no positive.
    l0 = -math.log(math.exp(-1) / (math.exp(-1) + math.exp(-9)))
    l1 = -math.log(math.exp(-1) / (math.exp(-1) + math.exp(-4)))
    got = dbl_loss(f, pos, normalize="sum", temperature=1.0)
    assert math.isclose(got.item(), (l0 + l1) / 2, rel_tol=1e-5)


def test_matches_loop_reference_on_random_batches():
    rng = np.random.default_rng(0)
    for _ in range(5):
        f = rng.normal(size=(12, 6)).astype(np.float32) * 0.5
        groups = torch.tensor(rng.integers(0, 4, 12))
        images = torch.arange(12)
        pos = positive_pair_mask(groups, images)
        want = _reference_loss(f, pos.numpy())
        got = dbl_loss(torch.from_numpy(f), pos, normalize="sum", temperature=1.0).item()
        assert math.isclose(got, want, rel_tol=1e-4)


def test_mean_normalisation_divides_distances():
    f = torch.randn(5, 3, 4, 4)
    d_sum = pairwise_squared_distances(f, "sum")
    d_mean = pairwise_squared_distances(f, "mean")
    torch.testing.assert_close(d_sum / 48, d_mean)


def test_gradient_pulls_positives_together_and_pushes_negatives_apart():
    f = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, 0.2]], requires_grad=True)
    pos = torch.tensor([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=torch.bool)
    dbl_loss(f, pos, normalize="sum", temperature=1.0).backward()
    step = -f.grad  # gradient descent direction
    # Anchor 0 moves towards its positive (x grows), anchor 1 towards anchor 0 (x shrinks).
    assert step[0, 0] > 0 and step[1, 0] < 0
    # The negative (patch 2) is pushed away from the pair: its y grows.
    assert step[2, 1] > 0
    # A gradient step lowers the loss.
    with torch.no_grad():
        g = f - 0.05 * f.grad
    after = dbl_loss(g, pos, normalize="sum", temperature=1.0)
    assert after < dbl_loss(f.detach(), pos, normalize="sum", temperature=1.0)


def test_positive_mask_excludes_same_image_and_other_groups():
    groups = torch.tensor([0, 0, 0, 1, 1])
    images = torch.tensor([0, 1, 0, 2, 3])
    m = positive_pair_mask(groups, images)
    assert m[0, 1] and m[1, 0] and m[3, 4]
    assert not m[0, 2]  # same image
    assert not m[0, 3]  # other group
    assert not m.diagonal().any()


def test_perfect_clusters_give_near_zero_loss():
    f = torch.tensor([[0.0], [0.0], [100.0], [100.0]])
    groups = torch.tensor([0, 0, 1, 1])
    pos = positive_pair_mask(groups, torch.arange(4))
    assert dbl_loss(f, pos, normalize="sum", temperature=1.0).item() < 1e-6


def test_batch_normalisation_makes_the_loss_scale_invariant():
    f = torch.randn(10, 2, 3, 3)
    groups = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    pos = positive_pair_mask(groups, torch.arange(10))
    a = dbl_loss(f, pos)
    b = dbl_loss(f * 1e-3, pos)
    assert math.isclose(a.item(), b.item(), rel_tol=1e-4)
    # and it is the "mean"/"sum" loss at the matching temperature
    d = pairwise_squared_distances(f, "sum")
    t = 0.1 * (d.sum() / 90).item()
    assert math.isclose(a.item(), dbl_loss(f, pos, normalize="sum", temperature=t).item(),
                        rel_tol=1e-4)


def test_standardized_patches_have_zero_mean_unit_rms_and_ignore_gain():
    torch.manual_seed(0)
    x = torch.randn(6, 1, 8, 8) * 3 + 1
    z = standardize_patches(x)
    flat = z.reshape(6, -1)
    assert torch.allclose(flat.mean(1), torch.zeros(6), atol=1e-5)
    assert torch.allclose(flat.pow(2).mean(1), torch.ones(6), atol=1e-4)
    # a per-patch gain and offset (the content's contrast) changes nothing
    gain = torch.tensor([0.01, 1, 5, 0.3, 2, 100.0]).reshape(6, 1, 1, 1)
    assert torch.allclose(standardize_patches(x * gain + 7), z, atol=1e-4)


def test_standardizing_removes_the_energy_shortcut():
    # two cameras' patterns; patches of camera A are dim, of camera B bright. Raw distances
    # group by energy only if the patterns are ignored; standardized, the pattern decides.
    torch.manual_seed(1)
    pat_a, pat_b = torch.randn(16), torch.randn(16)
    gains = torch.tensor([0.05, 3.0, 0.05, 3.0])
    feats = torch.stack([pat_a * gains[0], pat_b * gains[1], pat_a * gains[3],
                         pat_b * gains[2]]) + 0.01 * torch.randn(4, 16)
    groups, images = torch.tensor([0, 1, 0, 1]), torch.arange(4)
    pos = positive_pair_mask(groups, images)
    raw = dbl_loss(feats, pos)
    std = dbl_loss(standardize_patches(feats), pos)
    assert std < 0.05 < raw


def test_distances_survive_a_large_common_offset():
    """Fingerprints that share a large component (as a DnCNN's output does when it drifts
    toward a constant) must keep their small differences: in float32 the expanded
    |a|^2 + |b|^2 - 2ab form would cancel them to rounding noise."""
    gen = torch.Generator().manual_seed(0)
    small = 1e-3 * torch.randn(6, 1, 8, 8, generator=gen, dtype=torch.float64)
    exact = torch.cdist(small.flatten(1), small.flatten(1)).pow(2) / 64
    shifted = (small + 30.0).float()  # offset 3e4 times the differences
    d = pairwise_squared_distances(shifted).double()
    off = ~torch.eye(6, dtype=torch.bool)
    assert torch.allclose(d[off], exact[off], rtol=1e-3)


def test_training_positives_by_position_or_by_model():
    # two models x two images x two positions, as PatchPairSampler lays a batch out
    cameras = ["a"] * 4 + ["b"] * 4
    groups = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    image_ids = torch.tensor([0, 1, 0, 1, 2, 3, 2, 3])
    by_position = training_positives(groups, image_ids, cameras, "position")
    assert torch.equal(by_position, positive_pair_mask(groups, image_ids))
    by_model = training_positives(groups, image_ids, cameras, "model")
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[:4, :4] = True
    expected[4:, 4:] = True
    expected.fill_diagonal_(False)
    assert torch.equal(by_model, expected)
    assert by_model[0, 2]  # same image, another grid position: a positive too
    with pytest.raises(ValueError, match="positives"):
        training_positives(groups, image_ids, cameras, "scene")


def test_scale_penalty_is_zero_at_unit_rms_and_pulls_the_scale_back():
    from noisead.train.loss import scale_penalty

    f = torch.randn(8, 1, 16, 16)
    unit = f / f.pow(2).mean().sqrt()
    assert float(scale_penalty(unit)) < 1e-10
    big = (unit * 30.0).requires_grad_()
    assert float(scale_penalty(big.detach())) > float(scale_penalty(unit * 3.0)) > 1.0
    scale_penalty(big).backward()
    # the gradient points along the fingerprint itself: descending shrinks it
    assert float((big.grad * big.detach()).sum()) > 0
