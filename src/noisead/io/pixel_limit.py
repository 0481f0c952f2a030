"""Make PIL's process-wide decompression-bomb limit agree with each load's own cap.

PIL's check reads a process-wide global (default ~89 MP warning, ~179 MP error), which
would refuse legitimate 100-200 MP photos below our cap. While any
:func:`noisead.io.load_image` runs, the global is set to the most permissive active cap
(so concurrent loads with different caps never refuse each other's images) and restored
afterwards. Our own check on the declared size is the mechanism (with dimensions in its
message); PIL's stays as a backstop at twice the cap, for internal buffers (GIF disposal
areas, TIFF tiles) and for declared sizes that far over, where it fires first, inside
``Image.open``. The global is shared with other threads that use PIL directly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image

__all__ = ["pil_pixel_limit"]

_lock = threading.Lock()
_active_caps: list[int | None] = []
_saved_limit: int | None = None


@contextmanager
def pil_pixel_limit(cap: int | None) -> Iterator[None]:
    """Hold PIL's global limit at the most permissive of the active caps (None: no cap)."""
    global _saved_limit
    with _lock:
        if not _active_caps:
            _saved_limit = Image.MAX_IMAGE_PIXELS
        _active_caps.append(cap)
        _apply()
    try:
        yield
    finally:
        with _lock:
            _active_caps.remove(cap)
            if _active_caps:
                _apply()
            else:
                Image.MAX_IMAGE_PIXELS = _saved_limit


def _apply() -> None:
    if any(c is None for c in _active_caps):
        Image.MAX_IMAGE_PIXELS = None
    else:
        Image.MAX_IMAGE_PIXELS = max(c for c in _active_caps if c is not None)
