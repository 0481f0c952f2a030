"""DnCNN (Zhang et al., 2017) as a camera-noise fingerprint extractor.

Noiseprint (Cozzolino & Verdoliva, 2020) starts from a residual denoiser: a plain stack of
3x3 convolutions whose output is the *noise*, not the clean image. Trained with the
distance-based logistic loss, that output becomes a fingerprint of the camera model.

One model, one file: a config dataclass, the module, and the names of the layers that
the anomaly model may tap. Layers are ``layers.0`` … ``layers.{depth-1}``; the final
output passes through an identity named ``fingerprint`` so that it can be hooked like any
other layer. The model knows nothing of training or scoring.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn


@dataclass
class DnCNNConfig:
    """Shape of a DnCNN. The defaults are the classic 17 layers x 64 channels, RGB in."""

    in_channels: int = 3
    out_channels: int = 1
    depth: int = 17
    width: int = 64
    batch_norm: bool = False
    bias: bool = True

    @classmethod
    def small(cls) -> DnCNNConfig:
        """A faster variant (10 layers x 32) for CPU-bound work and tests."""
        return cls(depth=10, width=32)

    @classmethod
    def tiny(cls) -> DnCNNConfig:
        """A very small variant (5 layers x 16) that trains in seconds, for tests."""
        return cls(depth=5, width=16)

    def to_dict(self) -> dict:
        return asdict(self)


class _ConvBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int, *, bias: bool, batch_norm: bool, relu: bool):
        super().__init__()
        self.add_module("conv", nn.Conv2d(cin, cout, 3, padding=1, bias=bias))
        if batch_norm:
            self.add_module("bn", nn.BatchNorm2d(cout, momentum=0.05))
        if relu:
            self.add_module("relu", nn.ReLU(inplace=False))


class DnCNN(nn.Module):
    """Residual denoiser whose output is the noise residual (the fingerprint).

    Receptive field: ``2 * depth + 1`` pixels, so a context of ``depth`` pixels on each
    side of a patch makes its output independent of what lies beyond (see ``halo``).
    """

    default_taps: tuple[str, ...]

    def __init__(self, config: DnCNNConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or DnCNNConfig()
        if config.depth < 2:
            raise ValueError("DnCNN needs at least 2 layers")
        blocks = [_ConvBlock(config.in_channels, config.width, bias=True, batch_norm=False,
                             relu=True)]
        for _ in range(config.depth - 2):
            blocks.append(_ConvBlock(config.width, config.width, bias=config.bias,
                                     batch_norm=config.batch_norm, relu=True))
        blocks.append(_ConvBlock(config.width, config.out_channels, bias=config.bias,
                                 batch_norm=False, relu=False))
        self.layers = nn.Sequential(*blocks)
        self.fingerprint = nn.Identity()
        d = config.depth
        # The thesis hooks "the last three layers": the two last hidden layers and the output.
        self.default_taps = (f"layers.{d - 3}", f"layers.{d - 2}", "fingerprint")

    @property
    def halo(self) -> int:
        """Pixels of context needed on each side for an exact output (receptive radius)."""
        return self.config.depth

    def tap_names(self) -> list[str]:
        """Every layer a forward hook may tap."""
        return [f"layers.{i}" for i in range(self.config.depth)] + ["fingerprint"]

    def forward(self, x: Tensor) -> Tensor:
        return self.fingerprint(self.layers(x))


def load_pretrained_denoiser(model: DnCNN, path: str | Path) -> list[str]:
    """Initialise ``model`` from a KAIR-style DnCNN denoiser (``model.{2i}.weight`` keys).

    Why: Noiseprint starts from a denoiser, which already separates noise from content.
    A gray first layer is spread over RGB by averaging (each channel gets 1/3 of the
    weight), so that on a gray image the RGB model computes what the gray one did.
    Layers that do not match (other depth or width) are left as initialised; the
    returned list names the layers that were loaded.
    """
    from safetensors.torch import load_file

    state = load_file(str(path))
    convs = sorted({int(k.split(".")[1]) for k in state if k.startswith("model.")})
    loaded: list[str] = []
    src_layers = [i for i in convs if f"model.{i}.weight" in state]
    n = len(model.layers)
    # Map source conv j to our layer j, but always map the last to the last.
    pairs = list(zip(range(n - 1), src_layers[:-1], strict=False))
    pairs.append((n - 1, src_layers[-1]))
    with torch.no_grad():
        for ours, src in pairs:
            conv: nn.Conv2d = model.layers[ours].conv
            w = state[f"model.{src}.weight"]
            b = state.get(f"model.{src}.bias")
            if w.shape[1] != conv.in_channels and w.shape[1] == 1:
                w = w.repeat(1, conv.in_channels, 1, 1) / conv.in_channels
            if w.shape[0] != conv.out_channels and w.shape[0] == 1:
                w = w.repeat(conv.out_channels, 1, 1, 1)
                b = None if b is None else b.repeat(conv.out_channels)
            if tuple(w.shape) != tuple(conv.weight.shape):
                continue
            conv.weight.copy_(w)
            if b is not None and conv.bias is not None:
                conv.bias.copy_(b)
            loaded.append(f"layers.{ours}")
    return loaded
