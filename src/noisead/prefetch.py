"""Read and decode the next images in a background thread while the current one is analysed.

In a batch run every image is first decoded (on one core) and then analysed (many times
longer, mostly in PyTorch's threads). Decoding happens
inside PIL's C code, which releases the GIL, so a background thread can decode image
``i + 1`` while image ``i`` is analysed, and the batch never waits for a decode except
the first. ``depth`` bounds how many decoded images wait ahead (each is
``H x W x 3`` float32: 290 MB at 24 MP), so memory stays bounded.

Failures are *values*, not raised: a corrupt, truncated, missing or too large file
yields its exception in place of the image, in order, so that the batch can report it
and go on with the next file (as ``noisead.batch.run.run_batch`` does). :func:`prefetch`
takes the work to do per item (the batch run reads, hashes and decodes each file in one
go); :func:`prefetch_images` is it with plain decoding.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from noisead.io import DEFAULT_MAX_PIXELS, LoadedImage, load_image

P = TypeVar("P")
R = TypeVar("R")


def _attempt(work: Callable[[P], R], item: P) -> R | Exception:
    try:
        return work(item)
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
    return prefetch(paths, lambda p: load_image(p, max_pixels=max_pixels),  # type: ignore
                    depth)


def prefetch(items: Iterable[P], work: Callable[[P], R], depth: int = 1
             ) -> Iterator[tuple[P, R | Exception]]:
    """Yield ``(item, work(item) or the Exception it raised)`` in input order, running
    ``work`` for up to ``depth`` items ahead in one background thread.

    ``items`` is consumed lazily, in the caller's thread, one item ahead of the work.
    """
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    return _prefetch(items, work, depth)


def _prefetch(items: Iterable[P], work: Callable[[P], R], depth: int
              ) -> Iterator[tuple[P, R | Exception]]:
    if depth == 0:
        for item in items:
            yield item, _attempt(work, item)
        return
    source = iter(items)
    pending: deque[tuple[P, Future[R | Exception]]] = deque()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="noisead-decode")
    try:
        # The first item plus ``depth`` more.
        for item in source:
            pending.append((item, pool.submit(_attempt, work, item)))
            if len(pending) > depth:
                break
        while pending:
            item, future = pending.popleft()
            result = future.result()
            del future
            # While the caller works on this item, the next ``depth`` are prepared.
            yield item, result
            del result
            # The caller is done with it: queue one more, keeping ``depth`` ahead.
            for nxt in source:
                pending.append((nxt, pool.submit(_attempt, work, nxt)))
                break
    finally:
        for _, future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
