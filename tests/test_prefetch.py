"""The background decoder (noisead.prefetch): order kept, failures handed over, one ahead."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from noisead.io import ImageLoadError, LoadedImage
from noisead.prefetch import prefetch_images


def _write_images(root: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        p = root / f"{i}.png"
        Image.fromarray(np.full((8 + i, 10, 3), 20 * i, np.uint8)).save(p)
        paths.append(p)
    return paths


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_prefetch_keeps_order_and_passes_failures_through(tmp_path, depth):
    paths = _write_images(tmp_path, 5)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    paths.insert(2, tmp_path / "bad.png")
    paths.insert(4, tmp_path / "missing.jpg")
    got = list(prefetch_images(paths, depth=depth))
    assert [p for p, _ in got] == paths
    for p, item in got:
        if p.name in ("bad.png", "missing.jpg"):
            assert isinstance(item, ImageLoadError)
        else:
            assert isinstance(item, LoadedImage)
            assert item.pixels.shape[0] == 8 + int(p.stem)


def test_prefetch_respects_max_pixels(tmp_path):
    paths = _write_images(tmp_path, 2)
    got = dict(prefetch_images(paths, max_pixels=85))
    assert isinstance(got[paths[0]], LoadedImage)        # 8 x 10 = 80 pixels
    assert isinstance(got[paths[1]], ImageLoadError)     # 9 x 10 = 90 > 85


def test_prefetch_decodes_the_next_image_while_the_caller_works(tmp_path, monkeypatch):
    import noisead.prefetch as prefetch

    paths = _write_images(tmp_path, 4)
    started: dict[str, threading.Event] = {p.name: threading.Event() for p in paths}
    real = prefetch.load_image

    def load(path, **kw):
        started[Path(path).name].set()
        return real(path, **kw)

    monkeypatch.setattr(prefetch, "load_image", load)
    gen = prefetch_images(paths, depth=1)
    first, _ = next(gen)
    assert first == paths[0]
    assert started["1.png"].wait(10)      # decoded while the caller holds image 0
    time.sleep(0.05)
    assert not started["2.png"].is_set()  # but only ``depth`` ahead
    assert [p for p, _ in gen] == paths[1:]


def test_prefetch_stops_cleanly_when_closed_early(tmp_path):
    paths = _write_images(tmp_path, 6)
    before = {t.name for t in threading.enumerate()}
    for i, (_, item) in enumerate(prefetch_images(paths, depth=2)):
        assert isinstance(item, LoadedImage)
        if i == 1:
            break
    # The generator is closed when the loop is left: its decoding thread is gone.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        extra = {t.name for t in threading.enumerate()} - before
        if not any(n.startswith("noisead-decode") for n in extra):
            break
        time.sleep(0.02)
    assert not any(t.name.startswith("noisead-decode") for t in threading.enumerate())
    with pytest.raises(ValueError, match="depth"):
        next(prefetch_images(paths, depth=-1))
