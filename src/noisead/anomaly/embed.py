"""Embeddings from hooked activation maps (PaDiM's feature extraction, for noise).

Named layers of the extractor are tapped with forward hooks; every map is upsampled to the
size of the largest one and the maps are concatenated along channels: one embedding vector
per pixel position. For DnCNN (the thesis' choice: its last three layers) all maps are
already full size; for Restormer the default tap is the fingerprint itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noisead.anomaly.gaussian import share_out, to_blocks
from noisead.runtime import autocast


@contextlib.contextmanager
def tapped(model: nn.Module, taps: Sequence[str]) -> Iterator[dict[str, Tensor]]:
    """Record the outputs of the named submodules while the context is open."""
    store: dict[str, Tensor] = {}
    handles = []
    try:
        for name in taps:
            try:
                module = model.get_submodule(name)
            except AttributeError as e:
                raise ValueError(f"the model has no layer named {name!r}") from e

            def hook(_m: nn.Module, _i: object, out: Tensor, name: str = name) -> None:
                store[name] = out
            handles.append(module.register_forward_hook(hook))
        yield store
    finally:
        for h in handles:
            h.remove()


def forward_with_taps(model: nn.Module, images: Tensor, taps: Sequence[str], *,
                      precision: str = "fp32") -> tuple[Tensor, dict[str, Tensor]]:
    """One forward pass: the model's output (the fingerprint) and the tapped maps."""
    # channels-last is several times faster for these convolutions on x86 CPUs (oneDNN).
    images = images.contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), tapped(model, taps) as store, autocast(precision):
        output = model(images)
    return output.float(), store


def concat_maps(maps: dict[str, Tensor], taps: Sequence[str], *,
                channel_index: Tensor | None = None) -> Tensor:
    """Concatenate tapped maps (upsampled to the largest) into B x D x H x W float32.

    ``channel_index`` keeps a subset of the concatenated channels (PaDiM's random
    dimensionality reduction), selected before anything is upsampled or copied.
    """
    ordered = [maps[t] for t in taps]
    h = max(m.shape[-2] for m in ordered)
    w = max(m.shape[-1] for m in ordered)
    parts = []
    offset = 0
    for m in ordered:
        c = m.shape[1]
        if channel_index is not None:
            sel = channel_index[(channel_index >= offset) & (channel_index < offset + c)] - offset
            offset += c
            if sel.numel() == 0:
                continue
            m = m.index_select(1, sel.to(m.device))
        m = m.float()
        if m.shape[-2:] != (h, w):
            m = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
        parts.append(m)
    return torch.cat(parts, dim=1)


def blocks_from_maps(maps: dict[str, Tensor], taps: Sequence[str],
                     window: tuple[int, int, int, int], period: int, *,
                     channel_index: Tensor | None = None,
                     dtype: torch.dtype = torch.float32,
                     center: Tensor | None = None) -> Tensor:
    """The embedding of ``window`` (y, x, h, w of batch item 0) as phase blocks.

    Returns ``period² x (h·w/period²) x D`` in ``dtype``, the layout of
    :func:`noisead.anomaly.gaussian.to_blocks`, on the maps' device. When every tap has the
    same size (DnCNN) the taps are written straight into the blocks — one copy, no
    full-size D-channel concatenation; otherwise the maps are concatenated (and upsampled)
    first. ``center`` (``period² x D``, one row per block) is subtracted in float32 as the
    blocks are laid out, in the same pass; the result is then rounded to ``dtype``.
    """
    y, x, h, w = window
    ordered = [maps[t] for t in taps]
    if len({tuple(m.shape[-2:]) for m in ordered}) > 1:
        full = concat_maps(maps, taps, channel_index=channel_index)
        blocks = to_blocks(full[0, :, y:y + h, x:x + w], period)
        if center is not None:
            blocks -= center[:, None, :]
        return blocks.to(dtype)
    parts = []
    offset = 0
    for m in ordered:
        c = m.shape[1]
        m = m[0]
        if channel_index is not None:
            sel = channel_index[(channel_index >= offset) & (channel_index < offset + c)] - offset
            offset += c
            if sel.numel() == 0:
                continue
            m = m.index_select(0, sel.to(m.device))
        parts.append(m[:, y:y + h, x:x + w])
    return _lay_out(parts, h, w, period, dtype, center)


def _lay_out(parts: list[Tensor], h: int, w: int, period: int, dtype: torch.dtype,
             center: Tensor | None) -> Tensor:
    """Maps of one size (``C_i x h x w`` each) written straight into phase blocks.

    A strided copy, faster on one thread than on several (see
    :func:`~noisead.anomaly.gaussian.single_thread`): on the CPU the rows of blocks are
    shared out between PyTorch's threads, each copying its share on one.
    """
    p = period
    d = sum(m.shape[0] for m in parts)
    out = torch.empty(p, p, h // p, w // p, d, dtype=dtype, device=parts[0].device)
    means = None if center is None else center.float().view(p, p, 1, 1, d)
    laid_out = [m.reshape(m.shape[0], h // p, p, w // p, p).permute(2, 4, 1, 3, 0)
                for m in parts]

    def fill(start: int, stop: int) -> None:  # the block rows start:stop
        offset = 0
        for block in laid_out:
            c = block.shape[-1]
            target = out[start:stop, ..., offset:offset + c]
            if means is None:
                target.copy_(block[start:stop])
            else:  # computed in float32, rounded once to ``dtype`` as it is stored
                torch.sub(block[start:stop], means[start:stop, ..., offset:offset + c],
                          out=target)
            offset += c

    share_out(p, fill, out.device)
    return out.view(p * p, -1, d)
