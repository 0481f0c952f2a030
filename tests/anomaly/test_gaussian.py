import numpy as np
import pytest
import torch
from plain_algorithms import score_map, squared_mahalanobis
from scipy.spatial.distance import mahalanobis

from noisead.anomaly.gaussian import (
    GaussianModel,
    StreamingGaussian,
    from_blocks,
    mask_to_blocks,
    oas_shrinkage,
    phase_classes,
    position_classes,
    to_blocks,
)


def test_streaming_fit_matches_numpy_in_any_order(rng):
    x = rng.normal(size=(600, 5)) @ rng.normal(size=(5, 5))
    classes = rng.integers(0, 3, 600)
    one = StreamingGaussian(3, 5)
    one.update(torch.from_numpy(x), torch.from_numpy(classes))
    chunks = StreamingGaussian(3, 5)
    for idx in np.array_split(rng.permutation(600), 7):
        chunks.update(torch.from_numpy(x[idx]), torch.from_numpy(classes[idx]))
    for k in range(3):
        ref_mean = x[classes == k].mean(0)
        ref_cov = np.cov(x[classes == k], rowvar=False)
        for s in (one, chunks):
            mean, cov = GaussianModel.covariance_from_sums(s.count, s.sum, s.outer)
            np.testing.assert_allclose(mean[k].numpy(), ref_mean, rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(cov[k].numpy(), ref_cov, rtol=1e-8, atol=1e-9)


def test_mahalanobis_matches_scipy_without_shrinkage(rng):
    x = rng.normal(size=(400, 4)) @ rng.normal(size=(4, 4))
    s = StreamingGaussian(1, 4)
    s.update(torch.from_numpy(x), torch.zeros(400, dtype=torch.long))
    g = s.finalize(shrinkage=0.0, eps=0.0)
    cov = np.cov(x, rowvar=False)
    inv = np.linalg.inv(cov)
    queries = rng.normal(size=(100, 4))
    zeros = torch.zeros(100, dtype=torch.long)
    got = squared_mahalanobis(g, torch.from_numpy(queries).float(), zeros)
    want = np.array([mahalanobis(q, x.mean(0), inv) ** 2 for q in queries])
    np.testing.assert_allclose(got.numpy(), want, rtol=2e-3)
    # the batched scoring of phase blocks agrees
    blocks = torch.from_numpy(queries).float()[None]
    np.testing.assert_allclose(g.score_blocks(blocks, torch.zeros(1, dtype=torch.long))[0],
                               got.numpy(), rtol=1e-5)


def test_fixed_shrinkage_blends_towards_scaled_identity(rng):
    x = rng.normal(size=(300, 3)) * np.array([1.0, 2.0, 3.0])
    s = StreamingGaussian(1, 3)
    s.update(torch.from_numpy(x), torch.zeros(300, dtype=torch.long))
    g = s.finalize(shrinkage=0.5, eps=0.0)
    cov = np.cov(x, rowvar=False)
    want = 0.5 * cov + 0.5 * np.trace(cov) / 3 * np.eye(3)
    np.testing.assert_allclose(g.covariance()[0].numpy(), want, rtol=1e-4)


def test_oas_matches_scikit_learn(rng):
    from sklearn.covariance import OAS

    x = rng.normal(size=(40, 10))
    est = OAS(assume_centered=False).fit(x)
    cov = torch.from_numpy(np.cov(x, rowvar=False, bias=True))[None]
    rho = oas_shrinkage(cov, torch.tensor([40.0], dtype=torch.float64))
    assert abs(rho.item() - est.shrinkage_) < 1e-6


def test_score_map_uses_the_gaussian_of_each_phase(rng):
    d, period = 3, 2
    means = torch.tensor([[0.0] * d, [5.0] * d, [-5.0] * d, [10.0] * d])
    g = GaussianModel(means, torch.eye(d).repeat(4, 1, 1), torch.ones(4), torch.zeros(4))
    h, w = 6, 8
    cls = position_classes(h, w, period)
    emb = means[cls].permute(2, 0, 1).contiguous()  # every pixel sits on its class mean
    assert score_map(g, emb, period).abs().max() < 1e-6
    shifted = score_map(g, emb, period, origin=(1, 0))  # wrong phase: large distances
    assert shifted.min() > 1.0


def test_too_few_samples_is_a_clear_error():
    s = StreamingGaussian(2, 3)
    s.update(torch.randn(5, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="fewer than 2 samples"):
        s.finalize()


def test_update_map_equals_update_with_classes(rng):
    emb = torch.from_numpy(rng.normal(size=(3, 13, 11)))
    exclude = torch.from_numpy(rng.random((13, 11)) < 0.2)
    a = StreamingGaussian(16, 3)
    a.update_map(emb, 4, origin=(3, 6), exclude=exclude)
    b = StreamingGaussian(16, 3)
    keep = ~exclude.reshape(-1)
    cls = position_classes(13, 11, 4, (3, 6)).reshape(-1)
    b.update(emb.reshape(3, -1).T[keep], cls[keep])
    torch.testing.assert_close(a.count, b.count)
    torch.testing.assert_close(a.sum, b.sum)
    torch.testing.assert_close(a.outer, b.outer)


# -- phase blocks: the fast paths compute what the plain per-phase code does -------------


def test_blocks_round_trip_and_class_order(rng):
    emb = torch.from_numpy(rng.normal(size=(5, 16, 24)).astype(np.float32))
    blocks = to_blocks(emb, 8)
    assert blocks.shape == (64, 6, 5)
    values = blocks[..., 0]
    torch.testing.assert_close(from_blocks(values, 8, 16, 24), emb[0])
    classes = position_classes(16, 24, 8, (3, 5))
    torch.testing.assert_close(from_blocks(mask_to_blocks(classes, 8), 8, 16, 24), classes)
    assert (mask_to_blocks(classes, 8)[:, 0] == phase_classes(8, (3, 5))).all()


@pytest.mark.parametrize("weighted", [None, "dense", "sparse"])
def test_update_blocks_equals_update_map(rng, weighted):
    emb = torch.from_numpy(rng.normal(2.0, 0.5, size=(6, 32, 16)).astype(np.float32))
    exclude = None
    if weighted == "dense":
        exclude = torch.from_numpy(rng.random((32, 16)) < 0.2)
    elif weighted == "sparse":
        exclude = torch.from_numpy(rng.random((32, 16)) < 0.8)
    a = StreamingGaussian(64, 6)
    a.update_map(emb, 8, origin=(8, 16), exclude=exclude)
    b = StreamingGaussian(64, 6)
    keep = None if exclude is None else mask_to_blocks(~exclude, 8)
    b.update_blocks(to_blocks(emb, 8),
                    phase_classes(8, (8, 16)), keep)
    torch.testing.assert_close(b.count, a.count)
    torch.testing.assert_close(b.sum, a.sum, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(b.outer, a.outer, rtol=1e-6, atol=1e-5)


def test_subtract_leaves_out_samples(rng):
    x = torch.from_numpy(rng.normal(size=(64, 10, 3)).astype(np.float32))
    drop = torch.from_numpy(rng.random((64, 10)) < 0.3)
    cls = phase_classes(8)
    full, part, kept = (StreamingGaussian(64, 3) for _ in range(3))
    full.update_blocks(x, cls)
    part.update_blocks(x, cls, drop)
    kept.update_blocks(x, cls, ~drop)
    diff = full.subtract(part)
    torch.testing.assert_close(diff.count, kept.count)
    torch.testing.assert_close(diff.outer, kept.outer, rtol=1e-6, atol=1e-6)


def test_score_blocks_equals_score_map(rng):
    d, p = 4, 8
    a = torch.from_numpy(rng.normal(size=(p * p, d, d))).float()
    cov = a @ a.transpose(1, 2) + torch.eye(d)
    g = GaussianModel.from_covariance(torch.randn(p * p, d).double(), cov.double(),
                                      torch.full((p * p,), 100.0), shrinkage=0.0)
    emb = torch.randn(d, 24, 16)
    want = score_map(g, emb, p, origin=(5, 2))
    got = from_blocks(g.score_blocks(to_blocks(emb, p), phase_classes(p, (5, 2))), p, 24, 16)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_score_blocks_and_layout_do_not_depend_on_the_thread_count(rng, threads):
    """Classes and block rows are shared out between threads; every value is the one a
    single thread computes, bit for bit (the shares change, the products do not)."""
    from noisead.anomaly.embed import blocks_from_maps

    d, p = 5, 8
    a = torch.from_numpy(rng.normal(size=(p * p, d, d))).float()
    g = GaussianModel.from_covariance(torch.randn(p * p, d).double(),
                                      (a @ a.transpose(1, 2) + torch.eye(d)).double(),
                                      torch.full((p * p,), 100.0), shrinkage=0.0)
    maps = {"a": torch.randn(1, 3, 40, 48), "b": torch.randn(1, 2, 40, 48)}
    classes = phase_classes(p, (0, 0))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        blocks1 = blocks_from_maps(maps, ["a", "b"], (4, 8, 32, 40), p, center=g.mean.float())
        want = g.score_blocks(blocks1, classes, centered=True)
        torch.set_num_threads(threads)
        blocks = blocks_from_maps(maps, ["a", "b"], (4, 8, 32, 40), p, center=g.mean.float())
        got = g.score_blocks(blocks, classes, centered=True)
        got_raw = g.score_blocks(blocks_from_maps(maps, ["a", "b"], (4, 8, 32, 40), p), classes)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(blocks, blocks1)
    assert torch.equal(got, want)
    torch.testing.assert_close(got_raw, want, rtol=1e-5, atol=1e-5)
