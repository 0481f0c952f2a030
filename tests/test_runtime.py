"""Runtime choices (noisead.runtime): precision, threads, allocator, the blind cache budget.

No timings are asserted here: speed is measured by ``benchmarks/speed.py``. These tests
pin down *behaviour*: ``"auto"`` precision follows the CPU flags, and bfloat16 runs and
stays close to float32.
"""

from __future__ import annotations

import pytest
import torch

from noisead import runtime
from noisead.anomaly.detector import Detector, DetectorConfig
from noisead.anomaly.embed import forward_with_taps
from noisead.models.registry import create_model


@pytest.fixture(autouse=True)
def one_thread():
    """These tests run many tiny tensor operations; on a busy 2-core machine each
    multi-threaded one waits for a descheduled thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- precision ------------------------------------------------------------------------------


@pytest.mark.parametrize(("flags", "expected"), [
    (frozenset({"avx2", "fma"}), "fp32"),
    (frozenset({"avx2", "avx512f"}), "fp32"),
    (frozenset({"avx512f", "avx512_bf16"}), "bf16"),
    (frozenset({"avx512f", "amx_tile", "amx_bf16"}), "bf16"),
    (frozenset(), "fp32"),
])
def test_auto_precision_follows_the_cpu_flags(monkeypatch, flags, expected):
    monkeypatch.delenv("NOISEAD_PRECISION", raising=False)
    monkeypatch.setattr(runtime, "cpu_flags", lambda: flags)
    assert runtime.resolve_precision("auto") == expected
    assert runtime.bf16_native() == (expected == "bf16")


def test_explicit_precision_and_override(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2"}))
    assert runtime.resolve_precision("bf16") == "bf16"
    assert runtime.resolve_precision("fp32") == "fp32"
    monkeypatch.setenv("NOISEAD_PRECISION", "bf16")
    assert runtime.resolve_precision("auto") == "bf16"
    monkeypatch.setenv("NOISEAD_PRECISION", "nonsense")  # ignored: back to the flags
    assert runtime.resolve_precision("auto") == "fp32"
    with pytest.raises(ValueError, match="precision"):
        runtime.resolve_precision("fp16")


def test_detectors_use_bf16_only_when_validated(monkeypatch):
    """bfloat16 can lose the faint traces a detector scores (docs/BENCHMARKS.md): "auto"
    keeps float32 for a detector not validated in it."""
    monkeypatch.delenv("NOISEAD_PRECISION", raising=False)
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"amx_bf16"}))
    det = Detector(create_model("dncnn-tiny"), DetectorConfig(patch_size=32, crop_size=64))
    assert runtime.resolve_precision("auto") == "bf16"  # training still takes it
    assert det.precision == "fp32"
    det.info["bf16_validated"] = True
    assert det.precision == "bf16"
    det.info["bf16_validated"] = False
    monkeypatch.setenv("NOISEAD_PRECISION", "bf16")
    assert det.precision == "bf16"
    det.config.precision = "fp32"
    assert det.precision == "fp32"
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2"}))
    monkeypatch.delenv("NOISEAD_PRECISION")
    det.info["bf16_validated"] = True
    det.config.precision = "auto"
    assert det.precision == "fp32"  # not native: never


def test_bf16_autocast_runs_and_stays_close_to_fp32():
    torch.manual_seed(0)
    model = create_model("dncnn-tiny").eval()
    x = torch.rand(1, 3, 40, 48)
    taps = model.default_taps
    out32, maps32 = forward_with_taps(model, x, taps, precision="fp32")
    out16, maps16 = forward_with_taps(model, x, taps, precision="bf16")
    assert maps16[taps[0]].dtype == torch.bfloat16  # the autocast path really ran
    assert out16.dtype == torch.float32
    for a, b in [(out32, out16)] + [(maps32[t], maps16[t].float()) for t in taps]:
        assert torch.linalg.vector_norm(a - b) <= 0.05 * torch.linalg.vector_norm(a) + 1e-6


# -- threads and allocator ------------------------------------------------------------------


def test_configure_threads_sets_and_reports(monkeypatch):
    assert runtime.configure_threads(2) == 2
    monkeypatch.setenv("NOISEAD_THREADS", "1")
    assert runtime.configure_threads() == 1
    monkeypatch.delenv("NOISEAD_THREADS")
    assert runtime.configure_threads() == 1  # unset: left as it is


def test_reuse_large_blocks_nests_and_can_be_turned_off(monkeypatch):
    with runtime.reuse_large_blocks() as outer, runtime.reuse_large_blocks() as inner:
        assert outer == inner
        x = torch.empty(40 << 20, dtype=torch.uint8)  # a block above glibc's default
        del x
    monkeypatch.setenv("NOISEAD_MALLOC_TUNE", "0")
    with runtime.reuse_large_blocks() as applied:
        assert applied is False


def test_blind_cache_budget_from_environment(monkeypatch):
    monkeypatch.delenv("NOISEAD_BLIND_CACHE_MB", raising=False)
    assert runtime.blind_cache_bytes() == 512 * 2**20
    monkeypatch.setenv("NOISEAD_BLIND_CACHE_MB", "64")
    assert runtime.blind_cache_bytes() == 64 * 2**20


def test_opencv_takes_pytorchs_thread_count():
    import cv2

    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(8)
        assert runtime.match_opencv_threads() == torch.get_num_threads() == 1  # fixture
        assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(before)


def test_run_concurrently_keeps_order_and_waits_for_every_task(monkeypatch):
    import threading
    import time

    finished = []

    def task(i):
        def run():
            if i == 1:
                raise ValueError("task 1 failed")
            time.sleep(0.05)
            finished.append((i, threading.current_thread().name))
            return i * i
        return run

    assert runtime.run_concurrently([task(0), task(2), task(3)], workers=2) == [0, 4, 9]
    finished.clear()
    with pytest.raises(ValueError, match="task 1 failed"):
        runtime.run_concurrently([task(0), task(1), task(2)], workers=2)
    # the error came only after the other tasks had ended
    assert sorted(i for i, _ in finished) == [0, 2]
    # one worker: run in order in the caller's thread
    finished.clear()
    assert runtime.run_concurrently([task(3), task(0)], workers=1) == [9, 0]
    assert [name for _, name in finished] == [threading.current_thread().name] * 2
