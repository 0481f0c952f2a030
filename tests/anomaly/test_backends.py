"""Extractor backends (noisead.anomaly.backends): which one runs, the exported graph's
caches, and an analysis through ONNX Runtime against PyTorch's on a real image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from noisead.anomaly import backends
from noisead.anomaly.backends import (
    AUC_TOLERANCE,
    HEATMAP_TOLERANCE,
    SCORE_TOLERANCE,
    forget_runners,
    onnx_available,
    onnx_cache_dir,
    select_runner,
)
from noisead.anomaly.embed import forward_with_taps
from noisead.evaluate.metrics import pixel_auc
from noisead.infer import analyze, load_detector
from noisead.models.registry import create_model

EXAMPLE = Path(__file__).resolve().parents[2] / "src/noisead/examples/spliced.png"
CPU = torch.device("cpu")
needs_onnxruntime = pytest.mark.skipif(not onnx_available(),
                                       reason="onnxruntime (the [onnx] extra) is not installed")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Each test starts with no runner in memory and its own disk cache."""
    monkeypatch.setenv("NOISEAD_CACHE_DIR", str(tmp_path / "cache"))
    forget_runners()
    yield
    forget_runners()


@pytest.fixture
def tiny() -> nn.Module:
    torch.manual_seed(0)
    return create_model("dncnn-tiny").eval()


def _outputs_match(runner, model: nn.Module, size=(1, 3, 30, 26)) -> None:
    x = torch.rand(*size, generator=torch.Generator().manual_seed(1))
    want_fp, want = forward_with_taps(model, x, model.default_taps)
    got_fp, got = runner(x)
    torch.testing.assert_close(got_fp, want_fp, rtol=1e-4, atol=1e-5)
    for tap in model.default_taps:
        torch.testing.assert_close(got[tap], want[tap], rtol=1e-4, atol=1e-5)


# -- which backend runs ---------------------------------------------------------------------


@needs_onnxruntime
def test_auto_takes_onnx_runtime_on_the_cpu_in_float32_only(tiny):
    taps = tiny.default_taps
    assert select_runner(tiny, taps, device=CPU, backend="auto").name == "onnx"
    assert select_runner(tiny, taps, device=CPU, backend="auto", precision="bf16").name == "torch"
    torch_runner = select_runner(tiny, taps, device=CPU, backend="torch")
    assert torch_runner.name == "torch" and torch_runner.extractor is tiny
    with pytest.raises(ValueError, match="CPU only"):
        select_runner(tiny, taps, device=torch.device("cuda"), backend="onnx")
    with pytest.raises(ValueError, match="float32"):
        select_runner(tiny, taps, device=CPU, backend="onnx", precision="bf16")
    with pytest.raises(ValueError, match="backend must be one of"):
        select_runner(tiny, taps, device=CPU, backend="tensorrt")


def test_without_onnxruntime_auto_is_pytorch_and_onnx_says_what_to_install(tiny, monkeypatch):
    monkeypatch.setattr(backends, "onnx_available", lambda: False)
    assert select_runner(tiny, tiny.default_taps, device=CPU, backend="auto").name == "torch"
    with pytest.raises(ModuleNotFoundError, match=r"noisead\[onnx\]") as info:
        select_runner(tiny, tiny.default_taps, device=CPU, backend="onnx")
    from noisead.extras import missing_extra_message  # the command line's one line

    assert "pip install 'noisead[onnx]'" in missing_extra_message(info.value)


def test_backend_default_from_the_environment(monkeypatch):
    monkeypatch.delenv("NOISEAD_BACKEND", raising=False)
    assert backends.analysis_backend() == "auto"
    monkeypatch.setenv("NOISEAD_BACKEND", "torch")
    assert backends.analysis_backend() == "torch"
    assert backends.analysis_backend("onnx") == "onnx"


class _Spectral(nn.Module):
    """An extractor ONNX cannot take (a 2-D FFT: no such operator in opset 17)."""

    default_taps = ("conv",)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.fft2(self.conv(x)).abs()[:, :1]


@needs_onnxruntime
def test_an_extractor_that_does_not_export_runs_in_pytorch():
    model = _Spectral().eval()
    with pytest.warns(RuntimeWarning, match="PyTorch runs it"):
        runner = select_runner(model, model.default_taps, device=CPU, backend="auto")
    assert runner.name == "torch"
    # remembered: no second attempt, no second warning
    assert select_runner(model, model.default_taps, device=CPU, backend="auto").name == "torch"
    with pytest.raises(ValueError, match="cannot run in ONNX Runtime"):
        select_runner(model, model.default_taps, device=CPU, backend="onnx")


# -- the exported graph's caches --------------------------------------------------------------


@needs_onnxruntime
def test_the_graph_is_exported_once_and_kept_on_disk(tiny, monkeypatch):
    first = select_runner(tiny, tiny.default_taps, device=CPU, backend="onnx")
    _outputs_match(first, tiny)
    files = list(onnx_cache_dir().glob("*.onnx"))
    assert len(files) == 1
    assert select_runner(tiny, tiny.default_taps, device=CPU, backend="onnx") is first

    forget_runners()  # a new process: the graph comes from the disk, not the exporter
    import noisead.export

    def no_export(*_a, **_k):
        raise AssertionError("exported again")
    monkeypatch.setattr(noisead.export, "onnx_bytes", no_export)
    again = select_runner(tiny, tiny.default_taps, device=CPU, backend="onnx")
    assert again is not first
    _outputs_match(again, tiny)


@needs_onnxruntime
def test_weights_changed_in_place_get_their_own_graph(tiny):
    before = select_runner(tiny, tiny.default_taps, device=CPU, backend="onnx")
    with torch.no_grad():
        tiny.layers[0].conv.weight.mul_(1.5)
    after = select_runner(tiny, tiny.default_taps, device=CPU, backend="onnx")
    assert after is not before
    _outputs_match(after, tiny)
    assert len(list(onnx_cache_dir().glob("*.onnx"))) == 2


@needs_onnxruntime
def test_a_damaged_cached_graph_is_exported_again(tiny):
    select_runner(tiny, tiny.default_taps, device=CPU, backend="onnx")
    (cached,) = onnx_cache_dir().glob("*.onnx")
    cached.write_bytes(cached.read_bytes()[:100])  # truncated, as by a full disk
    forget_runners()
    runner = select_runner(tiny, tiny.default_taps, device=CPU, backend="onnx")
    _outputs_match(runner, tiny)
    assert cached.stat().st_size > 100  # replaced by a whole graph


@needs_onnxruntime
def test_an_empty_cache_dir_keeps_the_graph_in_memory_only(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("NOISEAD_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert onnx_cache_dir() is None
    _outputs_match(select_runner(tiny, tiny.default_taps, device=CPU, backend="onnx"), tiny)
    assert not any(tmp_path.rglob("*.onnx"))


@needs_onnxruntime
def test_a_cache_dir_that_cannot_be_written_is_no_error(tiny, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("NOISEAD_CACHE_DIR", str(blocker))
    _outputs_match(select_runner(tiny, tiny.default_taps, device=CPU, backend="onnx"), tiny)


# -- an analysis on a real image ------------------------------------------------------------


@needs_onnxruntime
def test_onnx_runtime_heatmaps_match_pytorchs_on_the_example():
    """The bundled photo with its real splice, the shipped model, both modes: the backend
    ``analyze()`` takes by default stays within the tolerances ``make bench`` checks."""
    detector = load_detector()
    assert detector.runner("cpu", "auto").name == "onnx"
    mask = np.asarray(Image.open(EXAMPLE.with_name("spliced.mask.png"))) > 127
    for mode in ("reference", "blind"):
        ref = analyze(EXAMPLE, detector, mode=mode, backend="torch")
        fast = analyze(EXAMPLE, detector, mode=mode)  # default: auto
        again = analyze(EXAMPLE, detector, mode=mode)  # after the arena was given back
        assert np.array_equal(fast.heatmap, again.heatmap)
        assert not np.array_equal(fast.raw, ref.raw)  # really another backend
        assert np.abs(fast.heatmap - ref.heatmap).max() <= HEATMAP_TOLERANCE
        assert abs(pixel_auc(fast.heatmap, mask) - pixel_auc(ref.heatmap, mask)) <= AUC_TOLERANCE
        assert abs(fast.score - ref.score) <= SCORE_TOLERANCE
        assert fast.verdict.decision == ref.verdict.decision
