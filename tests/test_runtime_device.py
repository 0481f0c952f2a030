"""Where an analysis runs (noisead.runtime.analysis_device, analyze(device=...),
``noisead analyze --device``): the CPU here; a missing CUDA device is one clear line.

This machine has no GPU: the CUDA side is checked as far as it can be without one (which
device "auto" resolves to when PyTorch reports a GPU, and the refusal when it does not).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from noisead.runtime import DeviceUnavailableError, analysis_device

EXAMPLE = Path(__file__).resolve().parents[1] / "src/noisead/examples/spliced.png"


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_the_cpu_unless_asked_otherwise(monkeypatch, no_gpu):
    monkeypatch.delenv("NOISEAD_DEVICE", raising=False)
    assert analysis_device() == torch.device("cpu")
    assert analysis_device("auto") == torch.device("cpu")  # no GPU: auto is the CPU
    monkeypatch.setenv("NOISEAD_DEVICE", "auto")
    assert analysis_device() == torch.device("cpu")
    assert analysis_device("cpu") == torch.device("cpu")


def test_auto_takes_the_gpu_when_pytorch_sees_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    flags = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.benchmark)
    try:
        assert analysis_device("auto") == torch.device("cuda")
        assert torch.backends.cudnn.allow_tf32 is False  # float32 stays float32 there
        with pytest.raises(DeviceUnavailableError, match="1 CUDA GPU"):
            analysis_device("cuda:1")
    finally:
        (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32,
         torch.backends.cudnn.benchmark) = flags


def test_a_missing_or_unknown_device_is_one_line(no_gpu):
    for name, words in (("cuda", "no CUDA GPU"), ("cuda:0", "no CUDA GPU"),
                        ("gpu", "unknown device"), ("meta", "an analysis runs on")):
        with pytest.raises(DeviceUnavailableError, match=words) as info:
            analysis_device(name)
        assert "\n" not in str(info.value)
        assert isinstance(info.value, ValueError) and isinstance(info.value, RuntimeError)


def test_analyze_refuses_a_missing_gpu_before_any_work(no_gpu):
    from noisead.infer import analyze

    with pytest.raises(DeviceUnavailableError):
        analyze(np.zeros((8, 8, 3), np.float32), "no-such-model", device="cuda")


def test_analyze_on_the_cpu_given_by_name_is_the_default_analysis(no_gpu):
    from noisead.infer import analyze, load_detector

    detector = load_detector()
    image = np.asarray(Image.open(EXAMPLE).convert("RGB"))[:128, :160]
    default = analyze(image, detector, backend="torch")
    on_cpu = analyze(image, detector, backend="torch", device="cpu")
    auto = analyze(image, detector, backend="torch", device="auto")
    assert np.array_equal(default.heatmap, on_cpu.heatmap)
    assert np.array_equal(default.heatmap, auto.heatmap)


def test_cli_device_cuda_without_a_gpu_exits_2_with_one_line(no_gpu, tmp_path, capsys,
                                                             monkeypatch):
    from noisead.cli import main

    monkeypatch.setenv("NOISEAD_DEVICE", "cpu")  # restored after the test
    out = tmp_path / "out"
    assert main(["analyze", str(EXAMPLE), "-o", str(out), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "noisead: error: device 'cuda' asked for, but PyTorch sees no CUDA GPU"
    assert not out.exists()  # refused before any work


def test_cli_device_auto_analyses_on_the_cpu(no_gpu, tmp_path, monkeypatch):
    from noisead.cli import main

    monkeypatch.setenv("NOISEAD_DEVICE", "cpu")  # restored after the test
    out = tmp_path / "out"
    assert main(["--quiet", "analyze", str(EXAMPLE), "-o", str(out), "--device", "auto"]) == 0
    assert (out / "spliced.json").is_file()
    assert os.environ["NOISEAD_DEVICE"] == "cpu"  # what worker processes read
