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
