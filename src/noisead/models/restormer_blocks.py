"""Restormer's building blocks: layer norms over channels, transposed attention (MDTA),
the gated feed-forward network (GDFN), the transformer block, and the patch embedding and
resizing convolutions.

Written for speed on the CPU: no Python loop over heads, layer norms over channels through
``F.layer_norm`` on an NHWC view (free for channels-last tensors), and everything works
under ``torch.autocast("cpu", dtype=torch.bfloat16)``. Module names follow the reference
implementation (github swz30/Restormer) so that state-dict keys match the original's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "GDFN",
    "LAYER_NORM_TYPES",
    "MDTA",
    "Downsample",
    "LayerNorm",
    "OverlapPatchEmbed",
    "TransformerBlock",
    "Upsample",
]

LAYER_NORM_TYPES = ("WithBias", "BiasFree")




class _WithBiasLayerNorm(nn.Module):
    """Layer norm over the last dimension: ``(x - mean) / std * weight + bias``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class _BiasFreeLayerNorm(nn.Module):
    """Restormer's bias-free norm: ``x / std * weight`` (divided, but not centred)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x: Tensor) -> Tensor:
        # Statistics in float32: under bfloat16 autocast a 16-bit variance is too coarse.
        var = x.float().var(-1, keepdim=True, unbiased=False)
        return x * torch.rsqrt(var + 1e-5).to(x.dtype) * self.weight.to(x.dtype)


class LayerNorm(nn.Module):
    """Layer norm over the channels of a ``B x C x H x W`` tensor.

    Why through an NHWC view: ``F.layer_norm`` normalises the last dimension with a fused
    kernel, and for a channels-last tensor the permuted view is already contiguous (no
    copy). For an NCHW tensor one copy is made, and the output is channels-last, which
    the following 1x1 convolution takes as it is.
    """

    def __init__(self, channels: int, layer_norm_type: str = "WithBias") -> None:
        super().__init__()
        if layer_norm_type == "BiasFree":
            self.body: nn.Module = _BiasFreeLayerNorm(channels)
        elif layer_norm_type == "WithBias":
            self.body = _WithBiasLayerNorm(channels)
        else:
            raise ValueError(f"unknown layer norm type {layer_norm_type!r}")

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


# --------------------------------------------------------------------------- blocks


class MDTA(nn.Module):
    """Multi-Dconv-head transposed attention: attention across channels, per head.

    ``1x1 conv → 3x3 depthwise conv`` gives q, k, v (local context before the global
    step). q and k are L2-normalised over the pixels, so ``q @ k^T`` is a matrix of
    cosine similarities between channels (``C/heads x C/heads`` per head), sharpened by a
    learnt temperature per head. Cost: linear in the number of pixels.

    The softmax is a submodule (``softmax``) so that a forward hook can read the
    attention matrix (``B x heads x C/heads x C/heads``).
    """

    def __init__(self, channels: int, num_heads: int, bias: bool) -> None:
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"{channels} channels do not split into {num_heads} heads")
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(channels, channels * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(channels * 3, channels * 3, kernel_size=3, padding=1,
                                    groups=channels * 3, bias=bias)
        self.softmax = nn.Softmax(dim=-1)
        self.project_out = nn.Conv2d(channels, channels, kernel_size=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv_dwconv(self.qkv(x))
        # One reshape for all heads: B x 3 x heads x C/heads x HW (copies if channels-last).
        qkv = qkv.reshape(b, 3, self.num_heads, c // self.num_heads, h * w)
        q, k, v = qkv.unbind(1)
        # Cosine similarity of q and k over the pixels (what F.normalize on both would
        # give), with the norms divided out of the small C/heads x C/heads product rather
        # than out of q and k: two passes over the full-size tensors fewer. Float32 from
        # here to the softmax: the matrix is small, and bfloat16 logits would be coarse.
        f32 = torch.float32
        norms = torch.linalg.vector_norm(q, dim=-1, keepdim=True, dtype=f32).clamp_min(1e-12)
        norms_k = torch.linalg.vector_norm(k, dim=-1, keepdim=True, dtype=f32).clamp_min(1e-12)
        cosine = (q @ k.transpose(-2, -1)).float() / (norms * norms_k.transpose(-2, -1))
        attn = self.softmax(cosine * self.temperature)
        out = (attn.to(v.dtype) @ v).reshape(b, c, h, w)
        return self.project_out(out)


class GDFN(nn.Module):
    """Gated-Dconv feed-forward network: ``1x1 → 3x3 depthwise → GELU(x1) * x2 → 1x1``.

    The gate lets each position choose which features pass on, and the depthwise conv
    adds local context that a plain per-pixel MLP lacks.
    """

    def __init__(self, channels: int, ffn_expansion_factor: float, bias: bool) -> None:
        super().__init__()
        hidden = int(channels * ffn_expansion_factor)
        self.project_in = nn.Conv2d(channels, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, kernel_size=3, padding=1,
                                groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, channels, kernel_size=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + MDTA(LN(x))`` then ``x + GDFN(LN(x))``."""

    def __init__(self, channels: int, num_heads: int, ffn_expansion_factor: float,
                 bias: bool, layer_norm_type: str) -> None:
        super().__init__()
        self.norm1 = LayerNorm(channels, layer_norm_type)
        self.attn = MDTA(channels, num_heads, bias)
        self.norm2 = LayerNorm(channels, layer_norm_type)
        self.ffn = GDFN(channels, ffn_expansion_factor, bias)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class OverlapPatchEmbed(nn.Module):
    """Overlapped patch embedding: a 3x3 convolution to ``dim`` channels (no striding)."""

    def __init__(self, in_channels: int, dim: int, bias: bool = False) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=3, padding=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class Downsample(nn.Module):
    """Halve the resolution, double the channels: 3x3 conv to ``C/2``, PixelUnshuffle(2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels // 2, kernel_size=3, padding=1, bias=False),
            nn.PixelUnshuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """Double the resolution, halve the channels: 3x3 conv to ``2C``, PixelShuffle(2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels * 2, kernel_size=3, padding=1, bias=False),
            nn.PixelShuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)
