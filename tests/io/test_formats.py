"""The one set of image extensions a folder scan takes, and the decoders behind it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from noisead.io import IMAGE_EXTENSIONS, SUPPORTED_FORMATS, load_image, to_uint8


@pytest.mark.parametrize("extension", sorted(IMAGE_EXTENSIONS))
def test_every_scanned_extension_is_decoded(tmp_path: Path, extension: str) -> None:
    assert extension == extension.lower() and extension.startswith(".")
    assert Image.registered_extensions()[extension] in SUPPORTED_FORMATS
    img = np.zeros((8, 8, 3), np.uint8)
    img[2:5, 3:7] = (200, 40, 90)
    path = tmp_path / f"photo{extension}"
    options = {".webp": {"lossless": True}, ".jpg": {"quality": 100, "subsampling": 0},
               ".jpeg": {"quality": 100, "subsampling": 0}}.get(extension, {})
    Image.fromarray(img).save(path, **options)
    pixels = to_uint8(load_image(path).pixels)
    assert np.abs(pixels.astype(int) - img).max() <= 2  # JPEG at quality 100: near, not exact


def test_folder_scans_share_the_one_set() -> None:
    from noisead.data import cameras, datasets

    assert cameras.IMAGE_SUFFIXES is IMAGE_EXTENSIONS
    assert datasets.IMAGE_EXTENSIONS is IMAGE_EXTENSIONS
