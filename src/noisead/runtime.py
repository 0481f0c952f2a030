"""Runtime choices: bfloat16 where the processor does it natively, threads, allocator, device.

bfloat16 autocast cuts the work of the convolutions on CPUs with AMX or AVX-512 BF16;
elsewhere it is emulated and far slower than float32, so ``"auto"`` picks it only where
the CPU flags say it is native (``amx_bf16`` or ``avx512_bf16``);
``NOISEAD_PRECISION=bf16|fp32`` overrides. Training takes it there; *scoring* takes it
only for detectors validated in bfloat16 (``resolve_precision(..., bf16_ok=False)``),
because bfloat16 keeps 8 bits of mantissa and the camera traces a detector looks for are
fainter than that (docs/BENCHMARKS.md, "Measurements behind implementation choices").

:func:`prepare_cpu` is called once before the first image is scored (threads:
PyTorch already uses one thread per physical core, which is right for the convolutions;
``NOISEAD_THREADS=n`` sets another count, e.g. to leave a core free), and
:func:`reuse_large_blocks` is held while the tiles of an image are processed:

every tile allocates dozens of activation maps of tens to hundreds of MB. glibc serves
blocks that large with a fresh ``mmap`` and unmaps them on free, so every convolution
output is page-faulted and zeroed by the kernel again, and the extractor spends much of
its time in the kernel. Raising glibc's mmap and trim thresholds (Linux/glibc only) keeps
such blocks in the heap, where the next tile reuses them; on leaving, the thresholds go
back to the values glibc itself settles on (32 MB / 64 MB) and ``malloc_trim`` returns
the freed memory, so the peak is not held on to after scoring.
``NOISEAD_MALLOC_TUNE=0`` turns this off; ``NOISEAD_MALLOC_KEEP_MB`` (default 512) sets
the threshold. The same set-up asks glibc for one malloc arena for the whole process: an
image's scoring and result files are shared out between threads
(:func:`run_concurrently`), and a thread given an arena of its own would keep the blocks
it frees there, out of the other threads' reach, raising the peak by what every thread
last held.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

T = TypeVar("T")

BLIND_CACHE_MB = 512.0
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


@functools.cache
def cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def bf16_native() -> bool:
    """True where the CPU computes bfloat16 natively (AMX tiles or AVX-512 BF16)."""
    flags = cpu_flags()
    return bool({"amx_bf16", "avx512_bf16"} & flags)


def resolve_precision(precision: str = "auto", *, bf16_ok: bool = True) -> str:
    """``"auto"`` → ``"bf16"`` where native (and ``bf16_ok``), else ``"fp32"``; explicit
    values and ``NOISEAD_PRECISION`` pass through.

    ``bf16_ok=False`` is for computations known to lose accuracy in bfloat16: a detector's
    extractor, unless the detector was validated in bfloat16 (see
    :mod:`noisead.anomaly.detector`: bfloat16 activations erase the faint noise traces
    the heatmap is made of).
    """
    if precision not in {"auto", "bf16", "fp32"}:
        raise ValueError(f"precision must be auto, bf16 or fp32, got {precision!r}")
    if precision == "auto":
        override = os.environ.get("NOISEAD_PRECISION")
        if override in {"bf16", "fp32"}:
            return override
        return "bf16" if bf16_native() and bf16_ok else "fp32"
    return precision


@contextlib.contextmanager
def autocast(precision: str) -> Iterator[None]:
    """bfloat16 autocast on the CPU for ``"bf16"``, nothing for ``"fp32"``."""
    if resolve_precision(precision) == "bf16":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield
    else:
        yield


class DeviceUnavailableError(RuntimeError, ValueError):
    """A device was asked for that this machine does not have, or a name that is no device.

    A ``ValueError`` too, so that the command line reports it in one line (exit code 2).
    """


def resolve_device(device: str = "cpu", *, tf32: bool = False) -> torch.device:
    """``"auto"`` → the first CUDA GPU when there is one, else the CPU; other names pass
    through to :class:`torch.device` (``"cpu"``, ``"cuda"``, ``"cuda:1"``...).

    ``tf32`` lets a GPU's TF32 units do float32 convolutions and matrix products. Off by
    default: TF32 keeps 10 bits of mantissa, which resolves an input in [0, 1] well enough
    (1/2000, under the camera noise), but not the small differences between fingerprints
    riding on a large common activation. Our first GPU run, with TF32 on, ended with DnCNNs
    whose output no longer depended on the input at all; in float32 on the CPU the same
    weights still gave differences 13x smaller than a healthy model's.

    Raises :class:`DeviceUnavailableError` for a CUDA device this machine does not have.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise DeviceUnavailableError(f"unknown device {device!r}: use cpu, cuda, cuda:N "
                                     "or auto") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"device {device!r} asked for, but PyTorch sees no CUDA GPU")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"device {device!r} asked for, but PyTorch sees "
                f"{torch.cuda.device_count()} CUDA GPU(s)")
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = True  # fixed patch sizes: pick the fastest kernels
    return dev


#: What an analysis may run on (``noisead analyze --device``).
ANALYSIS_DEVICES = ("cpu", "cuda", "cuda:N", "auto")


def analysis_device(device: str | None = None) -> torch.device:
    """The device an analysis runs on: ``device``, else ``NOISEAD_DEVICE``, else the CPU.

    ``"auto"`` takes the first CUDA GPU when there is one. TF32 stays off (see
    :func:`resolve_device`): the traces scored are fainter than its rounding. Only the CPU
    and CUDA are offered; anything else raises :class:`DeviceUnavailableError`.
    """
    name = device or os.environ.get("NOISEAD_DEVICE") or "cpu"
    dev = resolve_device(name)
    if dev.type not in ("cpu", "cuda"):
        raise DeviceUnavailableError(f"an analysis runs on {', '.join(ANALYSIS_DEVICES)}; "
                                     f"not on {name!r}")
    return dev


def blind_cache_bytes() -> int:
    """Memory budget for the embeddings blind mode keeps between its passes.

    ``NOISEAD_BLIND_CACHE_MB`` (default 512). A resource limit of the machine, not a
    property of a model, so it is not saved with detectors; images whose embeddings fit
    are scored exactly as without a budget (see :mod:`noisead.anomaly.detector`).
    """
    try:
        mb = float(os.environ.get("NOISEAD_BLIND_CACHE_MB", BLIND_CACHE_MB))
    except ValueError:
        mb = BLIND_CACHE_MB
    return int(max(mb, 1.0) * 2**20)


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None  # not glibc (musl, ...): nothing to tune
    return libc


_reuse_lock = threading.Lock()
_reuse_depth = 0


@contextlib.contextmanager
def reuse_large_blocks(keep_mb: int | None = None) -> Iterator[bool]:
    """Keep large freed blocks in glibc's heap for reuse while the context is open
    (see the module docstring); yields whether it applies here."""
    global _reuse_depth
    libc = _libc()
    if libc is None or os.environ.get("NOISEAD_MALLOC_TUNE", "1") == "0":
        yield False
        return
    keep = keep_mb if keep_mb is not None else _env_int("NOISEAD_MALLOC_KEEP_MB", 512)
    keep_bytes = min(max(keep, 64), 1024) << 20
    with _reuse_lock:
        if _reuse_depth == 0:
            libc.mallopt(_M_MMAP_THRESHOLD, keep_bytes)
            libc.mallopt(_M_TRIM_THRESHOLD, keep_bytes)
        _reuse_depth += 1
    try:
        yield True
    finally:
        with _reuse_lock:
            _reuse_depth -= 1
            if _reuse_depth == 0:
                libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
                libc.mallopt(_M_TRIM_THRESHOLD, 64 << 20)
                libc.malloc_trim(0)


def configure_threads(threads: int | None = None) -> int:
    """Set PyTorch's thread count from ``threads`` or ``NOISEAD_THREADS``; return the count."""
    n = threads if threads is not None else _env_int("NOISEAD_THREADS", 0)
    if n > 0 and n != torch.get_num_threads():
        torch.set_num_threads(n)
    return torch.get_num_threads()


def run_concurrently(tasks: Sequence[Callable[[], T]], workers: int | None = None) -> list[T]:
    """Run independent ``tasks`` on up to ``workers`` threads (default: PyTorch's thread
    count); their results in order. The first exception is raised once every task has
    ended (none is left running behind the caller's back).

    For work that releases the GIL (libpng, NumPy's large array operations, OpenCV):
    rendering and encoding an image's result files, which would otherwise use one core.
    One thread (a worker process given one core) runs them in order, in the caller's.
    Each task's own PyTorch operations use the process' thread count when they start
    (under :func:`noisead.anomaly.gaussian.single_thread`: one each).
    """
    workers = min(len(tasks), workers or torch.get_num_threads())
    if workers <= 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="noisead") as pool:
        futures = [pool.submit(task) for task in tasks]
    return [f.result() for f in futures]  # leaving the pool waited for every task


def match_opencv_threads() -> int:
    """Give OpenCV (the noise statistics' filters) PyTorch's thread count: its own default
    is every core, which a worker process sharing the machine with others must not take."""
    import cv2

    n = torch.get_num_threads()
    if cv2.getNumThreads() != n:
        cv2.setNumThreads(n)
    return n


@functools.cache
def prepare_cpu() -> dict[str, object]:
    """One-time process set-up before scoring images; idempotent."""
    configure_threads()
    libc = _libc()
    tune = libc is not None and os.environ.get("NOISEAD_MALLOC_TUNE", "1") != "0"
    if tune and libc is not None:
        libc.mallopt(_M_ARENA_MAX, 1)  # threads allocate from the main arena
    return {"threads": match_opencv_threads(), "allocator_reuse": tune}
