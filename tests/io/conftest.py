"""Fixtures shared by the tests of noisead.io."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rgb8(rng: np.random.Generator) -> np.ndarray:
    """A small random 8-bit RGB image (odd sizes, so no axis is mistaken for another)."""
    return rng.integers(0, 256, size=(9, 13, 3), dtype=np.uint8)
