"""Where a detector's extractor runs when it scores an image: PyTorch or ONNX Runtime.

The extractor's forward passes are most of an analysis' arithmetic. On a CPU, ONNX
Runtime runs these plain convolution stacks markedly faster than PyTorch (it fuses each
convolution with its ReLU and picks kernels for the CPU at hand; the measured figures are
in docs/BENCHMARKS.md, "Speed and memory"), so an analysis takes it when it can:

* ``"auto"``: ONNX Runtime on the CPU when ``onnxruntime`` is importable (the ``[onnx]``
  extra), the extractor exports, and the exported graph gives what PyTorch gives on a test
  input; PyTorch otherwise (on a GPU, or in bfloat16, always PyTorch);
* ``"torch"``: PyTorch, on the CPU or a CUDA device: the reference that fitting and
  calibration use, so that they reproduce bit for bit;
* ``"onnx"``: ONNX Runtime, or an error that says why not.

The graph is exported once per process and kept in memory, keyed by a hash of the
extractor's weights and taps (an extractor changed in place gets a new graph), and kept on
disk too (``NOISEAD_CACHE_DIR``, else ``$XDG_CACHE_HOME/noisead``, else
``~/.cache/noisead``; set ``NOISEAD_CACHE_DIR`` empty to keep it in memory only), so that
worker processes and later runs load it instead of exporting it again. A cached file that
does not load is exported again and replaced.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import logging
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor, nn

from noisead.anomaly.embed import forward_with_taps

__all__ = ["AUC_TOLERANCE", "BACKENDS", "HEATMAP_TOLERANCE", "SCORE_TOLERANCE",
           "ExtractorRunner", "OnnxRunner", "TorchRunner", "analysis_backend", "forget_runners",
           "onnx_cache_dir", "select_runner", "weights_digest"]

log = logging.getLogger(__name__)

#: The extractor backends an analysis can ask for (``NOISEAD_BACKEND`` sets the default).
BACKENDS = ("auto", "torch", "onnx")

#: The exported graph must give PyTorch's values to within this, relative to the largest
#: magnitude of each output, on the check input (float32 reorderings give about 1e-6).
AGREEMENT = 1e-4

#: How far an analysis with another backend may be from PyTorch's, the reference: the
#: largest |difference| of the calibrated heatmaps (in [0, 1]), and of the pixel AUCs and
#: image scores. Checked by ``make bench`` (benchmarks/speed.py) and the tests; ONNX
#: Runtime's reordered float32 sums stay well inside (docs/BENCHMARKS.md, "Speed and
#: memory").
HEATMAP_TOLERANCE = 5e-3
AUC_TOLERANCE = 1e-3
SCORE_TOLERANCE = 1e-3

#: Runners kept per process (a few detectors, devices or thread counts).
_KEEP = 4
_runners: OrderedDict[tuple, ExtractorRunner] = OrderedDict()
#: Held while the caches are looked up or filled (the web viewer analyses in threads): a
#: graph is exported once even when two analyses start together.
_lock = threading.RLock()
#: Digests of extractors that ONNX Runtime could not run (not tried again by "auto").
_onnx_failed: set[str] = set()


class ExtractorRunner(Protocol):
    """Runs an extractor: N x 3 x H x W images in [0, 1] → (fingerprint, tapped maps).

    The images may be on the CPU; the outputs are on :attr:`device`.
    """

    name: str
    device: torch.device

    def __call__(self, images: Tensor) -> tuple[Tensor, dict[str, Tensor]]: ...

    def release(self) -> None:
        """Give back memory kept for the next tile (called when an image is scored)."""


@dataclass
class TorchRunner:
    """The extractor in PyTorch, on ``device`` (the images are moved there)."""

    extractor: nn.Module
    taps: tuple[str, ...]
    precision: str = "fp32"
    device: torch.device = torch.device("cpu")
    name: str = "torch"

    def __call__(self, images: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        images = images.to(self.device, non_blocking=True)
        return forward_with_taps(self.extractor, images, self.taps, precision=self.precision)

    def release(self) -> None:
        """Nothing is kept on the CPU; on a GPU, PyTorch's cache of freed blocks is
        emptied (other processes may want the memory between images)."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


class OnnxRunner:
    """The extractor exported to ONNX (its taps channels-last), run by ONNX Runtime on the
    CPU."""

    name = "onnx"
    device = torch.device("cpu")

    def __init__(self, graph: bytes, threads: int) -> None:
        from noisead.export import OnnxExtractor

        self.threads = threads
        # ONNX Runtime's arena reuses a tile's buffers for the next tile without mixing
        # them into the C heap (measured: a lower peak than without it); release() gives
        # them back when an image is scored.
        self.session = OnnxExtractor(graph, threads=threads, channels_last=True, arena=True)

    def __call__(self, images: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return self.session(images)

    def release(self) -> None:
        """ONNX Runtime's arena keeps a tile's buffers between runs (reused by every tile
        of an image); they go back when the image is scored."""
        self.session.release_memory()


def analysis_backend(backend: str | None = None) -> str:
    """``backend``, else ``NOISEAD_BACKEND``, else ``"auto"``; checked against BACKENDS."""
    name = backend or os.environ.get("NOISEAD_BACKEND") or "auto"
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    return name


def weights_digest(extractor: nn.Module, taps: Sequence[str]) -> str:
    """SHA-256 of the extractor's class, parameters and buffers, and the taps.

    What an exported graph depends on, so it names the graph in the caches; the opset and
    the PyTorch version (the exporter) are added to the name of the file on disk.
    """
    h = hashlib.sha256(type(extractor).__qualname__.encode())
    h.update(repr(tuple(taps)).encode())
    for name, tensor in extractor.state_dict().items():
        t = tensor.detach().to("cpu", torch.float32).contiguous()
        h.update(f"{name}{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def onnx_cache_dir() -> Path | None:
    """Where exported graphs are kept on disk; None when ``NOISEAD_CACHE_DIR`` is empty."""
    configured = os.environ.get("NOISEAD_CACHE_DIR")
    if configured is not None:
        return Path(configured).expanduser() / "onnx" if configured.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "noisead" / "onnx"


def select_runner(extractor: nn.Module, taps: Sequence[str], *, device: torch.device,
                  backend: str = "auto", precision: str = "fp32") -> ExtractorRunner:
    """The runner of ``backend`` for this extractor on ``device`` (see the module docstring).

    On a GPU the extractor runs in float32 (TF32 off: :func:`noisead.runtime.resolve_device`)
    from a copy on the device, kept per process. Raises ``ValueError`` where
    ``backend="onnx"`` cannot be honoured, and ``ModuleNotFoundError`` (naming the extra)
    where onnxruntime is missing for it.
    """
    backend = analysis_backend(backend)
    with _lock:
        return _select(extractor, tuple(taps), device, backend, precision)


def _select(extractor: nn.Module, taps: tuple[str, ...], device: torch.device, backend: str,
            precision: str) -> ExtractorRunner:
    if backend == "onnx":
        if device.type != "cpu":
            raise ValueError(f"the onnx backend runs on the CPU only, not on {device}: use "
                             "backend torch or auto there")
        if precision != "fp32":
            raise ValueError("the onnx backend runs in float32: it cannot take precision "
                             f"{precision!r}")
        if not onnx_available():  # named for noisead.extras, which names the extra
            raise ModuleNotFoundError("the onnx backend needs onnxruntime: pip install "
                                      "'noisead[onnx]'", name="onnxruntime")
        return _onnx_runner(extractor, taps, strict=True)
    if backend == "auto" and device.type == "cpu" and precision == "fp32" and onnx_available():
        runner = _onnx_runner(extractor, taps, strict=False)
        if runner is not None:
            return runner
    if device.type == "cpu":
        return TorchRunner(extractor, taps, precision, device)
    key = ("torch", weights_digest(extractor, taps), str(device))
    if key not in _runners:
        on_device = copy.deepcopy(extractor).to(device).eval()
        _remember(key, TorchRunner(on_device, taps, "fp32", device))
    _runners.move_to_end(key)
    return _runners[key]


@functools.cache
def onnx_available() -> bool:
    """Whether ONNX Runtime (the ``[onnx]`` extra) can be imported here."""
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def forget_runners() -> None:
    """Drop the runners (sessions, copies on a device) this process keeps in memory, and
    what it remembers of failed exports; the disk cache stays."""
    with _lock:
        _runners.clear()
        _onnx_failed.clear()


def _remember(key: tuple, runner: ExtractorRunner) -> None:
    _runners[key] = runner
    while len(_runners) > _KEEP:
        _runners.popitem(last=False)


def _onnx_runner(extractor: nn.Module, taps: tuple[str, ...], *, strict: bool
                 ) -> OnnxRunner | None:
    """The cached ONNX Runtime runner of this extractor, exported (or read from disk) and
    checked against PyTorch on first use. ``strict``: raise where it fails, else warn once
    and return None (the caller falls back to PyTorch)."""
    threads = torch.get_num_threads()
    digest = weights_digest(extractor, taps)
    key = ("onnx", digest, threads)
    if key in _runners:
        _runners.move_to_end(key)
        return _runners[key]  # type: ignore[return-value]  (an OnnxRunner under this key)
    if digest in _onnx_failed and not strict:
        return None
    try:
        runner = OnnxRunner(_graph(extractor, taps, digest), threads)
        _check_agreement(runner, extractor, taps)
    except Exception as exc:
        if strict:
            raise ValueError(f"the extractor cannot run in ONNX Runtime: {exc}") from exc
        warnings.warn(f"ONNX Runtime not used for this extractor ({exc}); PyTorch runs it",
                      RuntimeWarning, stacklevel=3)
        _onnx_failed.add(digest)
        return None
    _remember(key, runner)
    return runner


def _graph(extractor: nn.Module, taps: tuple[str, ...], digest: str) -> bytes:
    """The exported graph: from the disk cache when a loadable copy is there, else exported
    (and written to the cache, atomically, where the cache can be written)."""
    from noisead.export import onnx_bytes
    from noisead.export.onnx import OPSET

    folder = onnx_cache_dir()
    version = torch.__version__.split("+")[0]
    name = f"{digest[:32]}-nhwc-opset{OPSET}-torch{version}.onnx"
    path = None if folder is None else folder / name
    if path is not None and path.is_file():
        graph = path.read_bytes()
        if _loads(graph):
            return graph
        log.info("exported graph %s does not load: exporting it again", path)
    graph = onnx_bytes(extractor, taps, channels_last=True)
    if path is not None:
        from noisead.io import atomic_write_bytes

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, graph)
        except OSError as exc:  # a read-only home: the graph stays in memory only
            log.info("cannot keep the exported graph in %s: %s", folder, exc)
    return graph


def _loads(graph: bytes) -> bool:
    """Whether ONNX Runtime accepts ``graph`` (a cached file may be truncated or foreign)."""
    import onnxruntime as ort

    try:
        ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    except Exception:
        return False
    return True


def _check_agreement(runner: OnnxRunner, extractor: nn.Module, taps: tuple[str, ...]) -> None:
    """Raise ``ValueError`` unless the graph gives PyTorch's outputs (within AGREEMENT) on
    fixed random inputs of two sizes, one of them odd (an extractor that pads its input
    to a multiple of its own must have exported that padding, not one sample's shape)."""
    generator = torch.Generator().manual_seed(0)
    for size in ((48, 40), (37, 45)):
        x = torch.rand(1, 3, *size, generator=generator)
        want_fp, want = forward_with_taps(extractor, x, taps)
        got_fp, got = runner(x)
        pairs = [("fingerprint", want_fp, got_fp)]
        pairs += [(t, want[t].float(), got.get(t)) for t in taps]
        for name, a, b in pairs:
            if b is None or a.shape != b.shape:
                raise ValueError(f"output {name!r} is missing or has another shape")
            scale = max(float(a.abs().max()), 1.0)
            if float((a - b).abs().max()) > AGREEMENT * scale:
                raise ValueError(f"output {name!r} differs from PyTorch's by more than "
                                 f"{AGREEMENT:g} of its scale")
