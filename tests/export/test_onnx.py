"""The ONNX export: ONNX Runtime gives what PyTorch gives, on any image size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from noisead.anomaly.embed import forward_with_taps
from noisead.export import OnnxExtractor, export_onnx
from noisead.infer import list_models, load_detector
from noisead.models.registry import create_model

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("model", list_models())
def test_shipped_extractors_match_pytorch(model: str, tmp_path: Path) -> None:
    detector = load_detector(model)
    path = export_onnx(detector.extractor, detector.taps, tmp_path / f"{model}.onnx")
    runtime = OnnxExtractor(path, threads=1)
    torch.manual_seed(0)
    for size in ((1, 3, 96, 128), (2, 3, 80, 72)):  # sizes other than the export sample
        x = torch.rand(*size)
        expected_fp, expected = forward_with_taps(detector.extractor, x, detector.taps)
        fp, maps = runtime(x)
        assert fp.shape == expected_fp.shape
        torch.testing.assert_close(fp, expected_fp, rtol=1e-4, atol=1e-4)
        assert set(maps) == set(detector.taps)
        for tap in detector.taps:
            torch.testing.assert_close(maps[tap], expected[tap].float(), rtol=1e-4, atol=1e-4)
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["taps"] == list(detector.taps)


def test_restormer_exports(tmp_path: Path) -> None:
    model = create_model("restormer-tiny").eval()
    path = export_onnx(model, model.default_taps, tmp_path / "r.onnx")
    runtime = OnnxExtractor(path, threads=1)
    for size in ((1, 3, 64, 96), (1, 3, 70, 90)):  # the second needs Restormer's padding
        x = torch.rand(*size)
        expected_fp, _ = forward_with_taps(model, x, model.default_taps)
        fp, _ = runtime(x)
        torch.testing.assert_close(fp, expected_fp, rtol=1e-3, atol=1e-4)


def test_export_does_not_change_the_model(tmp_path: Path) -> None:
    detector = load_detector()
    before = {k: v.clone() for k, v in detector.extractor.state_dict().items()}
    export_onnx(detector.extractor, detector.taps, tmp_path / "d.onnx")
    x = torch.rand(1, 3, 64, 64)
    out, maps = forward_with_taps(detector.extractor, x, detector.taps)
    assert set(maps) == set(detector.taps)  # no hook left behind on the original
    for k, v in detector.extractor.state_dict().items():
        assert torch.equal(v, before[k])


def test_channels_last_graph_gives_the_same_maps_from_bytes(tmp_path: Path) -> None:
    """The graph analyses use: taps as N x H x W x C, read back as N x C x H x W views, from
    bytes (no file); with and without ONNX Runtime's arena, before and after it is given
    back."""
    from noisead.export import onnx_bytes

    detector = load_detector()
    graph = onnx_bytes(detector.extractor, detector.taps, channels_last=True)
    torch.manual_seed(0)
    x = torch.rand(1, 3, 72, 56)
    expected_fp, expected = forward_with_taps(detector.extractor, x, detector.taps)
    for arena in (True, False):
        runtime = OnnxExtractor(graph, threads=1, channels_last=True, arena=arena)
        for _ in range(2):
            fp, maps = runtime(x)
            torch.testing.assert_close(fp, expected_fp, rtol=1e-4, atol=1e-4)
            for tap in detector.taps:
                assert maps[tap].shape == expected[tap].shape
                assert maps[tap].is_contiguous(memory_format=torch.channels_last)
                torch.testing.assert_close(maps[tap], expected[tap], rtol=1e-4, atol=1e-4)
            runtime.release_memory()


def test_a_failed_export_keeps_the_standard_output_clean(capfd) -> None:
    """The exporter prints its graph when it fails; that goes to the standard error, not
    into the standard output that ``noisead analyze --json`` keeps for results."""
    from torch import nn

    from noisead.export import onnx_bytes

    class Spectral(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.fft.fft2(self.conv(x)).abs()[:, :1]

    with pytest.raises(Exception, match="fft"):
        onnx_bytes(Spectral(), ("conv",))
    out, _ = capfd.readouterr()
    assert out == ""
