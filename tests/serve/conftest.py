"""Fixtures of the viewer tests: a tiny fitted detector and a photo with a spliced square."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

TEST_MODEL_NAME = "test-tiny"


@pytest.fixture(scope="session")
def tiny_detector():
    """A detector fitted in seconds on random images: scores are meaningless, shapes real."""
    from noisead.anomaly.detector import DetectorConfig
    from noisead.anomaly.fit import fit_detector
    from noisead.models.registry import create_model

    pristine = [np.random.default_rng(i).random((96, 96, 3), dtype=np.float32)
                for i in range(4)]
    det = fit_detector(create_model("dncnn-tiny"), pristine,
                       DetectorConfig(patch_size=32, crop_size=64, tile=128,
                                      noise_statistics=True, jpeg_traces=True),
                       progress=False)
    det.info["name"] = TEST_MODEL_NAME
    return det


def spliced_image(size: int = 128, seed: int = 0) -> np.ndarray:
    """uint8 RGB: smooth gradient with weak noise, its central square with strong noise.

    The square covers a ninth of the image, less than the share the blind mode trims
    before refitting, so even the untrained test detector finds it.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = np.stack([0.3 + 0.4 * x, 0.3 + 0.3 * y, 0.5 - 0.2 * x], axis=2)
    img = base + rng.normal(0, 0.03, base.shape).astype(np.float32)
    q = size // 3
    img[q:-q, q:-q] += rng.normal(0, 0.15, (size - 2 * q, size - 2 * q, 3)).astype(np.float32)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def spliced_png() -> bytes:
    return png_bytes(spliced_image())


@pytest.fixture(scope="session")
def to_png():
    """The PNG encoder above, for tests that build their own images."""
    return png_bytes


@pytest.fixture(scope="session")
def spliced_array() -> np.ndarray:
    return spliced_image()
