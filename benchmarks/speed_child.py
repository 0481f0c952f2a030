"""One measurement of the speed benchmark, run in a fresh subprocess (``speed.py --child``).

The subprocess decodes one JPEG file, analyses it with ``analyze()`` and writes the default
result files with ``noisead.batch.outputs.write_outputs``, timing every stage, so that its
peak resident memory (``VmHWM``) is that of one analysis as an analyst's batch run sees it.

Stages (seconds, whole image): *decode*; *extractor*, the network's forward passes alone,
whichever backend runs them (halos included); *noise_statistics*, the fused evidence
sources (noise level, spectrum, JPEG lattice), each also on its own; *score_image*, all of
``Detector.score_image``; *analyze*; *write*, split into *render* (colour maps, overlay,
fingerprint view, thumbnails) and *encode* (PNG encoding and atomic writes, JSON included).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

CHILD_TIMEOUT_S = 600


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def vm_hwm_mb() -> float:
    """Peak resident memory of this process so far, MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def matmul_peak(dtype_name: str = "fp32", device: str = "cpu", n: int = 2048,
                reps: int = 3) -> float:
    """Best FLOP/s of an n x n matrix product (the machine's practical peak)."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)

    def product():
        out = a @ b
        if device != "cpu":
            torch.cuda.synchronize()
        return out

    product()
    return 2 * n ** 3 / min(timed(product)[0] for _ in range(reps))


def conv_flops_per_pixel(extractor) -> float:
    """FLOPs of the extractor's convolutions per input pixel (``2 Cin/groups Cout kh kw``
    per output pixel of each), counted with hooks on one 64 x 64 pass."""
    import torch

    flops = [0.0]

    def count(m, _i, out):
        k = m.kernel_size[0] * m.kernel_size[1]
        flops[0] += 2.0 * m.in_channels // m.groups * m.out_channels * k * out[0, 0].numel()

    hooks = [m.register_forward_hook(count) for m in extractor.modules()
             if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        extractor(torch.zeros(1, 3, 64, 64, device=next(extractor.parameters()).device))
    for h in hooks:
        h.remove()
    return flops[0] / (64 * 64)


class TimedRunner:
    """Wraps an extractor runner: adds up its seconds and its convolutions' FLOPs."""

    def __init__(self, runner, per_pixel: float, totals: dict[str, float]) -> None:
        self.runner, self.per_pixel, self.totals = runner, per_pixel, totals
        self.name, self.device = runner.name, runner.device

    def __call__(self, images):
        import torch

        t = time.perf_counter()
        out = self.runner(images)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.totals["extractor"] += time.perf_counter() - t
        n, _, h, w = images.shape
        self.totals["flops"] += self.per_pixel * n * h * w
        return out

    def release(self) -> None:
        self.runner.release()


def _time_sources(totals: dict[str, float]) -> None:
    """Time each fused evidence source (wraps each instance's method, once)."""
    from noisead.anomaly.evidence import EVIDENCE_SOURCES

    for source in EVIDENCE_SOURCES:
        method = type(source).deviation.__get__(source)

        def deviation(*a, _m=method, _key=source.key, **k):
            dt, out = timed(lambda: _m(*a, **k))
            totals["noise_statistics"] += dt
            totals[f"source:{_key}"] = totals.get(f"source:{_key}", 0.0) + dt
            return out
        source.deviation = deviation


def _time_writing(totals: dict[str, float]) -> None:
    """Split ``write_outputs`` into rendering and encoding + writing (wraps its helpers)."""
    import noisead.batch.outputs as outputs

    def wrap(name: str, stage: str) -> None:
        fn = getattr(outputs, name)

        def timed_call(*a, **k):
            dt, out = timed(lambda: fn(*a, **k))
            totals[stage] += dt
            return out
        setattr(outputs, name, timed_call)

    for name in ("colorize", "overlay", "fingerprint_view", "thumbnail"):
        wrap(name, "render")
    for name in ("save_png", "save_json", "atomic_write_bytes"):
        wrap(name, "encode")


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Decode, analyse and write one image; time every stage; report peak memory."""
    import torch

    from noisead.batch.outputs import write_outputs
    from noisead.infer import analyze, load_detector
    from noisead.io import load_image
    from noisead.runtime import analysis_device, prepare_cpu

    det = load_detector(spec["detector"])
    det.config.precision = spec["precision"]
    cpu = prepare_cpu()
    device = analysis_device(spec.get("device", "cpu"))
    backend = spec.get("backend", "auto")
    peak = matmul_peak(spec["precision"], str(device))  # again at the end: the better one
    per_pixel = conv_flops_per_pixel(det.extractor)
    t_setup, runner = timed(lambda: det.runner(device, backend))  # export, session
    totals = {"extractor": 0.0, "flops": 0.0, "noise_statistics": 0.0, "score_image": 0.0,
              "render": 0.0, "encode": 0.0}
    select = det.runner
    det.runner = lambda *a, **k: TimedRunner(select(*a, **k), per_pixel, totals)
    # warm-up (oneDNN / ONNX Runtime kernels, CUDA context), then the counters from zero
    analyze(np.full((96, 96, 3), 0.5, np.float32), det, mode=spec["mode"], device=str(device),
            backend=backend)
    totals.update({k: 0.0 for k in totals})
    score_image = det.score_image

    def timed_score_image(*a, **k):
        dt, out = timed(lambda: score_image(*a, **k))
        totals["score_image"] += dt
        return out

    det.score_image = timed_score_image
    _time_sources(totals)
    _time_writing(totals)
    rss_ready = vm_hwm_mb()
    cpu_start = time.process_time()
    t_decode, loaded = timed(lambda: load_image(spec["image"]))
    t_analyze, result = timed(lambda: analyze(loaded, det, mode=spec["mode"],
                                              device=str(device), backend=backend))
    rss_analyzed = vm_hwm_mb()
    with tempfile.TemporaryDirectory() as out:
        t_write, _ = timed(lambda: write_outputs(result, loaded.pixels, out, "bench"))
    cpu_seconds = time.process_time() - cpu_start
    rss_written = vm_hwm_mb()  # before the checks below, which are not part of a run
    png = None
    if spec.get("png"):  # after the peak memory is read: not part of an analysis
        from speed_checks import png_encoders, result_images

        png = png_encoders(result_images(result, loaded.pixels))
    peak = max(peak, matmul_peak(spec["precision"], str(device)))
    h, w = result.heatmap.shape
    auc = None
    if spec.get("mask"):
        from noisead.evaluate.metrics import pixel_auc

        auc = pixel_auc(result.heatmap, np.load(spec["mask"]))
    return {
        "width": w, "height": h, "mp": w * h / 1e6, "mode": spec["mode"],
        "precision": spec["precision"], "backend": runner.name, "device": str(device),
        "runner_setup": t_setup, "cpu": cpu_seconds, "decode": t_decode,
        "analyze": t_analyze, "write": t_write,
        **totals, "useful_flops": per_pixel * w * h, "peak_flops": peak,
        "rss_ready_mb": rss_ready, "peak_rss_analyze_mb": rss_analyzed,
        "peak_rss_mb": rss_written, "threads": torch.get_num_threads(),
        "allocator_reuse": cpu["allocator_reuse"], "load": os.getloadavg()[0],
        "auc": auc, "score": result.score, "png": png,
    }


def run_child(script: str, spec: dict[str, Any], timeout: int,
              threads: int | None = None) -> dict[str, Any]:
    """``child(spec)`` in a fresh ``python script --child`` process; its result or an error."""
    cmd = [sys.executable, script, "--child", json.dumps(spec)]
    env = dict(os.environ)
    if threads:
        env["NOISEAD_THREADS"] = str(threads)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"cut: longer than {timeout} s"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    return json.loads(done.stdout.strip().splitlines()[-1])
