"""Extractors for detector tests whose embeddings are known exactly."""

from __future__ import annotations

from torch import nn


class ImageAsEmbedding(nn.Module):
    """The image itself, times ``gain``, as the embedding: each pixel's three values are
    its D = 3 features (``gain`` 0: an extractor with nothing to say, so that a fused map
    is the evidence sources' alone)."""

    default_taps = ("fingerprint",)
    halo = 8

    def __init__(self, gain: float = 1.0) -> None:
        super().__init__()
        self.gain = gain
        self.fingerprint = nn.Identity()

    def forward(self, x):
        return self.fingerprint(x * self.gain)
