"""Restormer (Zamir et al., CVPR 2022) as a camera-noise fingerprint extractor.

Restormer is a U-shaped transformer denoiser. Its attention (MDTA) is *transposed*: it
attends across channels, not across pixels, so each head's attention matrix is
``C/heads x C/heads`` and the cost grows linearly with the number of pixels. That keeps
full-resolution attention affordable on the CPU, where pixel attention would not be, and
gives every output pixel a global view of the image: a camera-model trace that is faint
locally can be pooled from the whole frame.

The config dataclass and the model are here, the building blocks in
:mod:`noisead.models.restormer_blocks`. Module names follow the reference implementation
(github swz30/Restormer, ``basicsr/models/archs/restormer_arch.py``) so that, for four
levels, the state-dict keys are the same as the original's: ``patch_embed``,
``encoder_level{i}``, ``down{i}_{i+1}``, ``latent``, ``up{i+1}_{i}``,
``reduce_chan_level{i}``, ``decoder_level{i}``, ``refinement`` and ``output``. Two things
differ from the original, both for Noiseprint:

* the output is the fingerprint (the noise residual) itself, with no skip from the input;
  ``global_residual=True`` restores the denoiser's ``output + input``;
* the final tensor passes through an identity named ``fingerprint``, so it can be tapped
  with a forward hook like any other layer.

Any ``H x W`` is accepted: the input is reflect-padded on the bottom and right to a
multiple of ``2 ** (levels - 1)`` and the output cropped back *before* ``fingerprint``.
Hooks on every other tap (``tap_names``) therefore see the **padded** size, rounded up
to that multiple (and divided by ``2 ** (level - 1)`` inside deeper levels).

Because attention pools over the whole image, the output is not local: unlike DnCNN there
is no finite halo, and an image cut into tiles does not give the same output as the whole.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noisead.models.restormer_blocks import (
    GDFN,
    LAYER_NORM_TYPES,
    MDTA,
    Downsample,
    LayerNorm,
    OverlapPatchEmbed,
    TransformerBlock,
    Upsample,
)

__all__ = [
    "MDTA",
    "GDFN",
    "Downsample",
    "LayerNorm",
    "OverlapPatchEmbed",
    "Restormer",
    "RestormerConfig",
    "TransformerBlock",
    "Upsample",
]



@dataclass
class RestormerConfig:
    """Shape of a Restormer. The defaults are the paper's (26.1M parameters for RGB → RGB).

    ``num_blocks`` gives the transformer blocks per level; its length is the number of
    levels (1 to 4, the last being the ``latent``). ``heads`` gives the heads per level
    (only its first ``len(num_blocks)`` entries are used). Level ``i`` (from 1) works at
    ``dim * 2 ** (i - 1)`` channels and ``1 / 2 ** (i - 1)`` of the resolution, except the
    level-1 decoder and the refinement blocks, which keep ``2 * dim`` as in the original.
    """

    in_channels: int = 3
    out_channels: int = 1
    dim: int = 48
    num_blocks: tuple[int, ...] = (4, 6, 6, 8)
    num_refinement_blocks: int = 4
    heads: tuple[int, ...] = (1, 2, 4, 8)
    ffn_expansion_factor: float = 2.66
    bias: bool = False
    layer_norm_type: str = "WithBias"
    global_residual: bool = False

    @classmethod
    def small(cls) -> RestormerConfig:
        """A middle size (3 levels, width 24, ~0.91M parameters) for CPU-bound training."""
        return cls(dim=24, num_blocks=(2, 3, 3), heads=(1, 2, 4), num_refinement_blocks=2)

    @classmethod
    def tiny(cls) -> RestormerConfig:
        """A very small variant (2 levels, width 16, ~84k parameters) that trains in
        minutes on two CPU cores, for tests and smoke runs."""
        return cls(dim=16, num_blocks=(1, 2), heads=(1, 2), num_refinement_blocks=1)

    @property
    def levels(self) -> int:
        return len(self.num_blocks)

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> None:
        """Raise ``ValueError`` for a shape the model cannot be built with."""
        n = self.levels
        if not 1 <= n <= 4:
            raise ValueError(f"Restormer needs 1 to 4 levels, got num_blocks={self.num_blocks}")
        if len(self.heads) < n:
            raise ValueError(f"heads {self.heads} gives fewer entries than the {n} levels")
        if any(b < 1 for b in self.num_blocks) or self.num_refinement_blocks < 0:
            raise ValueError("every level needs at least one block (refinement may have 0)")
        if self.layer_norm_type not in LAYER_NORM_TYPES:
            raise ValueError(f"layer_norm_type must be one of {LAYER_NORM_TYPES}, "
                             f"got {self.layer_norm_type!r}")
        if self.dim < 1 or self.ffn_expansion_factor <= 0:
            raise ValueError("dim and ffn_expansion_factor must be positive")
        if n > 1 and self.dim % 2:
            raise ValueError("dim must be even with more than one level (Downsample halves it)")
        for i in range(n):
            width = self.dim * 2**i
            if width % self.heads[i]:
                raise ValueError(f"level {i + 1}: {width} channels do not split into "
                                 f"{self.heads[i]} heads")
        top = 2 * self.dim if n > 1 else self.dim
        if top % self.heads[0]:
            raise ValueError(f"decoder level 1: {top} channels do not split into "
                             f"{self.heads[0]} heads")
        if self.global_residual and self.in_channels != self.out_channels:
            raise ValueError("global_residual (output + input) needs in_channels == "
                             "out_channels")


def _pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Pad the bottom and right of ``x`` up to a multiple of ``multiple``.

    Reflection keeps the noise statistics of the border (zeros would be a flat patch the
    fingerprint would have to explain); an image too small to reflect is replicated.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


class Restormer(nn.Module):
    """U-shaped transposed-attention transformer whose output is the noise fingerprint.

    ``forward``: ``B x in x H x W`` → ``B x out x H x W`` for any ``H, W`` (see the module
    docstring for the padding). Taps (:meth:`tap_names`) are real submodule names:
    every transformer block (``encoder_level1.0`` …), ``latent``, ``refinement``, the
    ``output`` convolution and ``fingerprint`` (the returned tensor, at the input size).
    All but ``fingerprint`` are seen at the padded size.
    """

    default_taps: tuple[str, ...] = ("fingerprint",)

    def __init__(self, config: RestormerConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or RestormerConfig()
        config.validate()
        n, dim = config.levels, config.dim

        def blocks(channels: int, heads: int, count: int) -> nn.Sequential:
            return nn.Sequential(*[
                TransformerBlock(channels, heads, config.ffn_expansion_factor, config.bias,
                                 config.layer_norm_type) for _ in range(count)])

        # As in the original, the patch embedding and resizing convolutions have no bias.
        self.patch_embed = OverlapPatchEmbed(config.in_channels, dim)
        for i in range(1, n):
            width = dim * 2 ** (i - 1)
            self.add_module(f"encoder_level{i}",
                            blocks(width, config.heads[i - 1], config.num_blocks[i - 1]))
            self.add_module(f"down{i}_{i + 1}", Downsample(width))
        self.latent = blocks(dim * 2 ** (n - 1), config.heads[n - 1], config.num_blocks[n - 1])
        for i in range(n - 1, 0, -1):
            width = dim * 2 ** (i - 1)
            self.add_module(f"up{i + 1}_{i}", Upsample(width * 2))
            if i > 1:
                # Concatenated skip (2 * width) back to width. Level 1 keeps 2 * dim.
                self.add_module(f"reduce_chan_level{i}",
                                nn.Conv2d(width * 2, width, kernel_size=1, bias=config.bias))
            top = width * 2 if i == 1 else width
            self.add_module(f"decoder_level{i}",
                            blocks(top, config.heads[i - 1], config.num_blocks[i - 1]))
        top = 2 * dim if n > 1 else dim
        self.refinement = blocks(top, config.heads[0], config.num_refinement_blocks)
        self.output = nn.Conv2d(top, config.out_channels, kernel_size=3, padding=1,
                                bias=config.bias)
        self.fingerprint = nn.Identity()

    @property
    def size_multiple(self) -> int:
        """Inputs are padded internally up to a multiple of this (``2 ** (levels - 1)``)."""
        return 2 ** (self.config.levels - 1)

    def tap_names(self) -> list[str]:
        """Every layer a forward hook may tap, in the order the forward pass reaches them.

        Each transformer block output, ``latent`` and ``refinement`` (the outputs of
        those stages), the ``output`` convolution and ``fingerprint``. Only
        ``fingerprint`` has the input size; the others are at the padded size.
        """
        n = self.config.levels
        stages = [f"encoder_level{i}" for i in range(1, n)] + ["latent"]
        stages += [f"decoder_level{i}" for i in range(n - 1, 0, -1)] + ["refinement"]
        names: list[str] = []
        for stage in stages:
            names += [f"{stage}.{j}" for j in range(len(self.get_submodule(stage)))]
            if stage in ("latent", "refinement"):
                names.append(stage)
        return names + ["output", "fingerprint"]

    def forward(self, x: Tensor) -> Tensor:
        n = self.config.levels
        h, w = x.shape[-2:]
        # Channels-last activations: the depthwise convolutions and the layer norms over
        # channels are about twice as fast on the CPU in that layout.
        x_in = _pad_to_multiple(x, self.size_multiple).contiguous(
            memory_format=torch.channels_last)
        feats = self.patch_embed(x_in)
        skips: list[Tensor] = []
        for i in range(1, n):
            feats = getattr(self, f"encoder_level{i}")(feats)
            skips.append(feats)
            feats = getattr(self, f"down{i}_{i + 1}")(feats)
        feats = self.latent(feats)
        for i in range(n - 1, 0, -1):
            feats = torch.cat([getattr(self, f"up{i + 1}_{i}")(feats), skips.pop()], dim=1)
            if i > 1:
                feats = getattr(self, f"reduce_chan_level{i}")(feats)
            feats = getattr(self, f"decoder_level{i}")(feats)
        # Back to a plain NCHW tensor of the input size (a small copy): callers get the
        # same layout as from any other extractor.
        out = self.output(self.refinement(feats))[..., :h, :w].contiguous()
        if self.config.global_residual:
            out = out + x
        return self.fingerprint(out)
