"""The texture check: flat, clipped and tiny images cannot be judged; real photos can."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from noisead.io import load_image
from noisead.verdict import check_texture
from noisead.verdict.texture import MIN_SIDE

SHARED = Path(__file__).resolve().parents[3] / "shared"


@pytest.mark.parametrize("value", [0.0, 1.0, 0.5])
def test_constant_images_are_not_judgeable(value: float) -> None:
    check = check_texture(np.full((512, 512, 3), value, np.float32))
    assert not check.judgeable
    assert check.reason


def test_black_image_names_clipping() -> None:
    assert "black or white" in check_texture(np.zeros((256, 256, 3), np.float32)).reason


def test_smooth_gradient_with_only_rounding_is_flat() -> None:
    ramp = np.linspace(0, 1, 640, dtype=np.float32)
    image = np.round(np.add.outer(ramp, ramp)[..., None].repeat(3, 2) / 2 * 255) / 255
    check = check_texture(image.astype(np.float32))
    assert not check.judgeable and "flat" in check.reason


def test_tiny_image_is_not_judgeable_whatever_its_noise() -> None:
    rng = np.random.default_rng(0)
    tiny = rng.uniform(0, 1, (MIN_SIDE - 1, 400, 3)).astype(np.float32)
    check = check_texture(tiny)
    assert not check.judgeable and "too small" in check.reason


def test_a_small_noisy_patch_in_a_flat_image_is_not_enough() -> None:
    rng = np.random.default_rng(1)
    image = np.full((1024, 1024, 3), 0.5, np.float32)
    image[:64, :64] += 0.02 * rng.standard_normal((64, 64, 3)).astype(np.float32)
    assert not check_texture(image).judgeable


def test_noise_at_camera_levels_is_judgeable() -> None:
    rng = np.random.default_rng(2)
    image = np.clip(0.4 + 2 / 255 * rng.standard_normal((300, 300, 3)), 0, 1)
    assert check_texture(image.astype(np.float32)).judgeable


@pytest.mark.skipif(not (SHARED / "cameras").is_dir(), reason="needs ../shared/cameras")
def test_every_real_camera_photo_of_a_few_models_is_judgeable() -> None:
    """Flat-field shots (white walls, grey cards) carry sensor noise: they must be judged."""
    for model in ("NIKON-D70", "Apple-iPhone-4", "Canon-PowerShot-G2", "LG-D605"):
        for path in sorted((SHARED / "cameras" / model).glob("*.jp*g"))[:4]:
            check = check_texture(load_image(path).pixels)
            assert check.judgeable, (path, check)
