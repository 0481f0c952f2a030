"""Restormer: shapes for any size, taps, parameter counts, channel attention, precision."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from noisead.models.restormer import (
    MDTA,
    LayerNorm,
    Restormer,
    RestormerConfig,
)

# Original Restormer (RGB → RGB denoiser, github swz30/Restormer): 26.13M parameters.
ORIGINAL_PARAMS = 26.13e6


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These tensors are tiny: a second thread only adds synchronisation, which on a busy
    machine (tests running side by side) makes each small op wait for a descheduled peer."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _narrow(levels: int, **kw) -> RestormerConfig:
    """A very cheap config with the given number of levels (1 block each)."""
    return RestormerConfig(dim=8, num_blocks=(1,) * levels, heads=(1, 2, 2, 4)[:levels],
                           num_refinement_blocks=1, **kw)


def _model(config: RestormerConfig, seed: int = 0) -> Restormer:
    torch.manual_seed(seed)
    return Restormer(config).eval()


@pytest.mark.parametrize("levels", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [(37, 53), (32, 32), (3, 5)])
def test_output_has_input_size_for_any_size(levels: int, size: tuple[int, int]) -> None:
    model = _model(_narrow(levels))
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 1, *size)
    assert torch.isfinite(y).all()


def test_channels_are_configurable() -> None:
    model = _model(_narrow(2, in_channels=1, out_channels=4))
    with torch.no_grad():
        assert model(torch.rand(1, 1, 19, 21)).shape == (1, 4, 19, 21)


def test_fingerprint_hook_sees_exactly_the_returned_tensor() -> None:
    model = _model(RestormerConfig.tiny())
    seen = {}
    model.get_submodule("fingerprint").register_forward_hook(
        lambda _m, _i, out: seen.setdefault("fp", out))
    with torch.no_grad():
        y = model(torch.rand(1, 3, 37, 53))
    assert seen["fp"].shape == y.shape == (1, 1, 37, 53)
    assert torch.equal(seen["fp"], y)
    assert y.is_contiguous()
    assert model.default_taps == ("fingerprint",)


@pytest.mark.parametrize("config", [RestormerConfig.tiny(), _narrow(3), _narrow(1)])
def test_every_tap_is_a_submodule_and_fires(config: RestormerConfig) -> None:
    model = _model(config)
    names = model.tap_names()
    assert len(names) == len(set(names))
    assert names[-2:] == ["output", "fingerprint"]
    assert {"latent", "refinement"} <= set(names)
    modules = dict(model.named_modules())
    seen: dict[str, torch.Tensor] = {}
    for name in names:
        assert name in modules, name
        model.get_submodule(name).register_forward_hook(
            lambda _m, _i, out, name=name: seen.__setitem__(name, out))
    with torch.no_grad():
        model(torch.rand(1, 3, 37, 53))
    assert set(seen) == set(names)
    # Inner taps are at the padded size (a multiple of 2 ** (levels - 1)), divided per level.
    m = model.size_multiple
    padded = (-(-37 // m) * m, -(-53 // m) * m)
    assert seen["output"].shape[-2:] == padded
    assert seen["refinement"].shape[-2:] == padded
    assert seen["latent"].shape[-2:] == (padded[0] // m, padded[1] // m)
    assert seen["fingerprint"].shape[-2:] == (37, 53)
    width = config.dim * 2 if config.levels > 1 else config.dim
    assert seen["refinement"].shape[1] == width


def test_tap_names_cover_every_transformer_block() -> None:
    model = _model(RestormerConfig.small())
    blocks = [n for n, m in model.named_modules() if type(m).__name__ == "TransformerBlock"]
    taps = model.tap_names()
    assert set(blocks) <= set(taps)
    assert len(blocks) == 2 * sum((2, 3)) + 3 + 2  # encoder + decoder, latent, refinement


@pytest.fixture(scope="module")
def original() -> Restormer:
    """The paper's configuration: RGB → RGB denoiser with the input skip (26M parameters)."""
    return Restormer(RestormerConfig(out_channels=3, global_residual=True))


def test_default_config_matches_original_parameter_count(original: Restormer) -> None:
    n = _count(original)
    assert abs(n - ORIGINAL_PARAMS) / ORIGINAL_PARAMS < 0.02, n
    # The fingerprint variant differs only in the output convolution (3 → 1 channel).
    assert n - _count(Restormer()) == 2 * 9 * 96


def test_state_dict_keys_follow_the_reference_implementation(original: Restormer) -> None:
    keys = set(original.state_dict())
    for key in ["patch_embed.proj.weight", "encoder_level1.0.norm1.body.weight",
                "encoder_level1.0.norm1.body.bias", "encoder_level1.0.attn.temperature",
                "encoder_level2.5.attn.qkv_dwconv.weight", "down1_2.body.0.weight",
                "down3_4.body.0.weight", "latent.7.ffn.project_out.weight",
                "up4_3.body.0.weight", "reduce_chan_level3.weight", "reduce_chan_level2.weight",
                "decoder_level1.3.ffn.dwconv.weight", "up2_1.body.0.weight",
                "refinement.3.norm2.body.bias", "output.weight"]:
        assert key in keys, key
    assert not any(k.startswith("reduce_chan_level1") for k in keys)


def test_size_presets() -> None:
    tiny = _count(Restormer(RestormerConfig.tiny()))
    small = _count(Restormer(RestormerConfig.small()))
    assert tiny < 100_000
    assert tiny < small < _count(Restormer()) / 10


def test_gradients_reach_every_parameter() -> None:
    for config in (RestormerConfig.tiny(),
                   _narrow(3, bias=True, layer_norm_type="BiasFree")):
        model = _model(config).train()
        model(torch.rand(2, 3, 21, 18)).square().mean().backward()
        for name, p in model.named_parameters():
            assert p.grad is not None, name
            assert torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name


def _reference_mdta(attn: MDTA, x: torch.Tensor) -> torch.Tensor:
    """The original formulation: per-head split, F.normalize q and k, q @ k^T * t."""
    b, c, h, w = x.shape
    heads = attn.num_heads
    q, k, v = attn.qkv_dwconv(attn.qkv(x)).chunk(3, dim=1)
    q, k, v = (t.reshape(b, heads, c // heads, h * w) for t in (q, k, v))
    q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    a = ((q @ k.transpose(-2, -1)) * attn.temperature).softmax(dim=-1)
    return attn.project_out((a @ v).reshape(b, c, h, w))


def test_mdta_matches_the_original_formulation() -> None:
    torch.manual_seed(0)
    attn = MDTA(16, 4, bias=True)
    with torch.no_grad():
        attn.temperature.uniform_(0.5, 2.0)
        x = torch.randn(2, 16, 9, 11)
        torch.testing.assert_close(attn(x), _reference_mdta(attn, x))
        xc = x.contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(attn(xc), _reference_mdta(attn, x))


def test_attention_is_over_channels_not_pixels() -> None:
    """The attention matrix is C/heads x C/heads per head, whatever the image size."""
    model = _model(RestormerConfig.tiny())
    shapes = []
    model.get_submodule("latent.0.attn.softmax").register_forward_hook(
        lambda _m, _i, out: shapes.append(tuple(out.shape)))
    with torch.no_grad():
        model(torch.rand(1, 3, 16, 16))
        model(torch.rand(1, 3, 64, 48))
    # latent: 2 * dim = 32 channels, 2 heads → 2 x 16 x 16, independent of H x W.
    assert shapes == [(1, 2, 16, 16), (1, 2, 16, 16)]


def test_layer_norm_matches_the_original() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 6, 5, 7)
    mu = x.mean(1, keepdim=True)
    var = x.var(1, keepdim=True, unbiased=False)
    for kind, expected in [("WithBias", (x - mu) / torch.sqrt(var + 1e-5)),
                           ("BiasFree", x / torch.sqrt(var + 1e-5))]:
        norm = LayerNorm(6, kind)
        torch.testing.assert_close(norm(x), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError):
        LayerNorm(6, "Nope")


def test_images_in_a_batch_do_not_interact() -> None:
    model = _model(RestormerConfig.tiny())
    x = torch.rand(3, 3, 24, 20)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[1:2], model(x[1:2]), rtol=1e-4, atol=1e-5)


def test_global_residual_adds_the_input() -> None:
    cfg = dict(dim=8, num_blocks=(1, 1), heads=(1, 1), num_refinement_blocks=0,
               out_channels=3)
    denoiser = _model(RestormerConfig(**cfg, global_residual=True))
    residual = _model(RestormerConfig(**cfg))
    residual.load_state_dict(denoiser.state_dict())
    x = torch.rand(1, 3, 13, 15)
    with torch.no_grad():
        torch.testing.assert_close(denoiser(x), residual(x) + x)


@pytest.mark.parametrize("bad", [
    dict(num_blocks=()),
    dict(num_blocks=(1, 1, 1, 1, 1), heads=(1,) * 5),
    dict(num_blocks=(1, 1), heads=(1,)),
    dict(dim=12, num_blocks=(1, 1), heads=(1, 5)),
    dict(layer_norm_type="Other"),
    dict(global_residual=True),  # 3 in, 1 out
    dict(num_blocks=(1, 0)),
])
def test_invalid_configs_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        Restormer(RestormerConfig(**bad))


def test_bf16_autocast_is_close_to_fp32() -> None:
    model = _model(RestormerConfig.tiny())
    torch.manual_seed(1)
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    assert low.shape == ref.shape
    assert torch.isfinite(low).all()
    rel = (low.float() - ref).norm() / ref.norm()
    assert rel < 0.05, float(rel)


def test_deterministic_under_a_fixed_seed() -> None:
    a, b = _model(RestormerConfig.tiny(), seed=7), _model(RestormerConfig.tiny(), seed=7)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    x = torch.rand(2, 3, 30, 26)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
        assert torch.equal(a(x), a(x))
    c = _model(RestormerConfig.tiny(), seed=8)
    with torch.no_grad():
        assert not torch.equal(a(x), c(x))
