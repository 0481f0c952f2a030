"""The extractor as an ONNX graph whose outputs are the fingerprint and the tapped layers.

Why ONNX: it is what other forensic and anomaly tools load (anomalib exports to ONNX and
OpenVINO), and ONNX Runtime is a runtime made for CPU inference. The graph takes an
N x 3 x H x W float32 image in [0, 1] of any size (both spatial axes are dynamic) and
returns ``fingerprint`` followed by one output per tap, named after the tapped layer.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from noisead.io import atomic_write_bytes

#: ONNX operator set the graphs are written with.
OPSET = 17


class TappedExtractor(nn.Module):
    """Wraps an extractor so that its forward returns ``(fingerprint, *tapped maps)``;
    ``channels_last``: the tapped maps as N x H x W x C."""

    def __init__(self, extractor: nn.Module, taps: Sequence[str],
                 channels_last: bool = False) -> None:
        super().__init__()
        self.extractor = extractor
        self.taps = tuple(taps)
        self.channels_last = channels_last
        self._store: dict[str, Tensor] = {}
        for name in self.taps:
            module = extractor.get_submodule(name)
            module.register_forward_hook(self._recorder(name))

    def _recorder(self, name: str):
        def hook(_m: nn.Module, _i: object, out: Tensor) -> None:
            self._store[name] = out
        return hook

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        self._store.clear()
        output = self.extractor(images)
        maps = [self._store[t] for t in self.taps]
        if self.channels_last:
            maps = [m.permute(0, 2, 3, 1) for m in maps]
        return (output, *maps)


def output_names(taps: Sequence[str]) -> list[str]:
    """The graph's output names: ``fingerprint`` and ``tap:<layer>`` per tap."""
    return ["fingerprint", *[f"tap:{t}" for t in taps]]


def onnx_bytes(extractor: nn.Module, taps: Sequence[str], sample_size: int = 64, *,
               channels_last: bool = False) -> bytes:
    """``extractor`` with its ``taps`` as a serialized ONNX graph (nothing is written).

    The graph runs in float32 whatever the extractor's parameters are, and the extractor
    itself is left as it was (a copy is exported: no hook stays behind on it).
    ``channels_last``: the tapped maps come out as N x H x W x C, the layout noisead's
    scoring reads fastest (ONNX Runtime writes it straight from its blocked layout); the
    fingerprint stays N x 1 x H x W.
    """
    import copy
    import io
    import warnings

    model = TappedExtractor(copy.deepcopy(extractor).float().cpu().eval(), taps,
                            channels_last).eval()
    sample = torch.rand(1, 3, sample_size, sample_size)
    names = output_names(taps)
    spatial = {0: "batch", 1: "height", 2: "width"} if channels_last else {
        0: "batch", 2: "height", 3: "width"}
    dynamic = {"image": {0: "batch", 2: "height", 3: "width"},
               names[0]: {0: "batch", 2: "height", 3: "width"},
               **{n: spatial for n in names[1:]}}
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings(), _stdout_to_stderr():
        # the TorchScript exporter is the one that takes these plain CNNs with dynamic
        # spatial axes as they are; its deprecation notice says nothing about the graph
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (sample,), buf, input_names=["image"], output_names=names,
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
    return buf.getvalue()


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send what is written to the standard output (file descriptor 1, C++ included) to the
    standard error while the context is open: the exporter prints its graph there when an
    export fails, and ``noisead analyze --json`` keeps its standard output for results."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def export_onnx(extractor: nn.Module, taps: Sequence[str], path: str | Path,
                sample_size: int = 64) -> Path:
    """Write ``extractor`` with its ``taps`` as an ONNX graph at ``path`` (atomically).

    A JSON sidecar beside it records the taps and the output names, so a reader knows which
    output is which layer without parsing the graph.
    """
    path = Path(path)
    atomic_write_bytes(path, onnx_bytes(extractor, taps, sample_size))
    atomic_write_bytes(path.with_suffix(".json"), json.dumps(
        {"kind": "onnx-extractor", "taps": list(taps), "outputs": output_names(taps),
         "opset": OPSET, "input": "image: N x 3 x H x W float32 RGB in [0, 1]"},
        indent=2).encode())
    return path


class OnnxExtractor:
    """Runs an exported extractor with ONNX Runtime on the CPU.

    ``__call__`` mirrors :func:`noisead.anomaly.embed.forward_with_taps`: it returns the
    fingerprint and a dict of the tapped maps, as torch tensors.
    """

    def __init__(self, model: str | Path | bytes, threads: int | None = None, *,
                 channels_last: bool = False, arena: bool = True) -> None:
        """``model``: an exported graph's file, or its bytes (:func:`onnx_bytes`);
        ``threads``: ONNX Runtime's intra-op threads (None: its own choice);
        ``channels_last``: the graph was exported so (its maps are returned as N x C x H x W
        views of channels-last memory, as PyTorch's channels-last tensors are);
        ``arena``: ONNX Runtime's own memory arena, which keeps a run's buffers for the
        next run (until :meth:`release_memory`; off: each run allocates them again)."""
        import onnxruntime as ort

        self.channels_last, self.arena = channels_last, arena
        options = ort.SessionOptions()
        options.enable_cpu_mem_arena = arena
        if threads:
            options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        source = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(source, options,
                                            providers=["CPUExecutionProvider"])
        self.outputs = [o.name for o in self.session.get_outputs()]

    def release_memory(self) -> None:
        """Hand the arena's unused buffers back (after the last tile of an image: the
        session would otherwise hold a whole tile's activations between images)."""
        import onnxruntime as ort

        if not self.arena:
            return
        options = ort.RunOptions()
        options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        tiny = np.zeros((1, 3, 8, 8), np.float32)
        self.session.run(None, {"image": tiny}, options)

    def __call__(self, images: Tensor | np.ndarray) -> tuple[Tensor, dict[str, Tensor]]:
        x = images.detach().cpu().numpy() if isinstance(images, Tensor) else images
        results = self.session.run(None, {"image": np.ascontiguousarray(x, np.float32)})
        maps = {n.removeprefix("tap:"): torch.from_numpy(r)
                for n, r in zip(self.outputs, results, strict=True) if n.startswith("tap:")}
        if self.channels_last:
            maps = {n: m.permute(0, 3, 1, 2) for n, m in maps.items()}
        return torch.from_numpy(results[0]), maps
