"""Decode the next images in a background thread while the current one is analysed.

In a batch run every image is first decoded (0.5-2 s for a 24 MP JPEG or PNG, on one
core) and then analysed (tens of seconds, mostly in PyTorch's threads). Decoding happens
inside PIL's C code, which releases the GIL, so a background thread can decode image
``i + 1`` while image ``i`` is analysed, and the batch never waits for a decode except
the first. ``depth`` bounds how many decoded images wait ahead (each is
``H x W x 3`` float32: 290 MB at 24 MP), so memory stays bounded.

Failures are *values*, not raised: a corrupt, truncated, missing or too large file
yields its exception in place of the image, in order, so that the batch can report it
and go on with the next file (as ``noisead.infer.analyze_paths`` does).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from noisead.io import DEFAULT_MAX_PIXELS, LoadedImage, load_image

P = TypeVar("P")


def _decode(path: P, max_pixels: int | None) -> LoadedImage | Exception:
    try:
        return load_image(path, max_pixels=max_pixels)  # type: ignore[arg-type]
    except Exception as e:  # handed to the caller, in order
        return e


def prefetch_images(paths: Iterable[P], max_pixels: int | None = DEFAULT_MAX_PIXELS,
                    depth: int = 1) -> Iterator[tuple[P, LoadedImage | Exception]]:
    """Yield ``(path, LoadedImage or the Exception its decoding raised)`` in input order.

    Up to ``depth`` images are decoded ahead, in one background thread, while the caller
    works on the current one; ``depth=0`` decodes in the caller's thread (no overlap).
    Each ``path`` is yielded exactly as given. Closing the generator early (``break``)
    stops the background work: pending decodes are cancelled and the thread is joined.
    """
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    if depth == 0:
        for path in paths:
            yield path, _decode(path, max_pixels)
        return
    source = iter(paths)
    pending: deque[tuple[P, Future[LoadedImage | Exception]]] = deque()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="noisead-decode")
    try:
        # The first image plus ``depth`` more.
        for path in source:
            pending.append((path, pool.submit(_decode, path, max_pixels)))
            if len(pending) > depth:
                break
        while pending:
            path, future = pending.popleft()
            result = future.result()
            del future
            # While the caller works on this image, the next ``depth`` are decoded.
            yield path, result
            del result
            # The caller is done with it: queue one more, keeping ``depth`` ahead.
            for nxt in source:
                pending.append((nxt, pool.submit(_decode, nxt, max_pixels)))
                break
    finally:
        for _, future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
