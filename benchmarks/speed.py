"""Speed and memory of ``analyze()`` on synthetic 1-24 MP photos (``make bench``).

For each size, mode and precision the analysis runs in a fresh subprocess, so that the
peak resident memory (``VmHWM``) is that of one analysis, as an analyst's batch run sees
it: decode of a JPEG file, extractor, embeddings, Gaussians, stitching, smoothing,
calibration, and the outputs written by ``noisead.batch.outputs.write_outputs``.

The extractor's arithmetic is counted exactly (``2 * Cin/groups * Cout * kh * kw`` per
output pixel of every convolution, halos included) and divided by its measured time; the
same subprocess measures a large ``torch.matmul`` first, as the machine's practical peak
(float32, and bfloat16 where the CPU does it natively). bfloat16 timings are only
produced where they mean something (native AMX/AVX-512 BF16); the *numerics* of bfloat16
are checked everywhere (emulated bfloat16 computes the same values, slowly).

    .venv/bin/python benchmarks/speed.py --sizes 1,4,12,24 --out docs/BENCHMARKS.md

The markdown section replaces the text between ``<!-- speed:begin -->`` and
``<!-- speed:end -->`` in ``--out`` (appended with the markers if absent); the rest of
the file is not touched.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from noisead.evaluate.report import replace_doc_section

REPO = Path(__file__).resolve().parents[1]
SHARED_DENOISER = REPO.parent / "shared" / "weights" / "dncnn_gray_awgn25.safetensors"
CHILD_TIMEOUT_S = 600


# -- inputs -------------------------------------------------------------------------------

def synthetic_image(megapixels: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 4:3 photo-like image (smooth content + sensor-like noise) and a planted region.

    The planted rectangle carries other noise (white, stronger) than the rest (correlated
    along rows), so that heatmaps can be compared by their AUC, not only pixel by pixel.
    """
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(seed)
    w = int(round((megapixels * 1e6 * 4 / 3) ** 0.5 / 8)) * 8
    h = int(round(megapixels * 1e6 / w / 8)) * 8
    low = torch.from_numpy(rng.random((1, 3, h // 32 + 2, w // 32 + 2), dtype=np.float32))
    low = F.avg_pool2d(low, 3, 1, 1, count_include_pad=False)
    content = F.interpolate(low, size=(h, w), mode="bicubic", align_corners=False)[0]
    content = content.permute(1, 2, 0).numpy()
    content = 0.15 + 0.7 * (content - content.min()) / (np.ptp(content) + 1e-9)
    noise = rng.standard_normal((h, w, 3), dtype=np.float32) * 0.02
    noise[:, 1:] = 0.6 * noise[:, 1:] + 0.4 * noise[:, :-1]      # row-correlated "camera A"
    mask = np.zeros((h, w), bool)
    mask[int(0.3 * h):int(0.55 * h), int(0.4 * w):int(0.7 * w)] = True
    noise[mask] = rng.standard_normal((int(mask.sum()), 3), dtype=np.float32) * 0.035
    image = np.clip(content + noise, 0.0, 1.0, out=content).astype(np.float32, copy=False)
    return image, mask


def build_detector(path: Path, seed: int = 0) -> str:
    """Save a benchmark detector at ``path``; returns a description of what it is.

    The shipped default model when it exists. Otherwise a DnCNN 17 x 64 (the default
    architecture) fitted on a few synthetic images: initialised from the KAIR denoiser in
    ../shared when present (realistic activations), else with random (He) weights. Speed
    and memory depend on the architecture only, not on the weights' values.
    """
    import torch

    from noisead.anomaly.detector import Detector
    from noisead.anomaly.fit import fit_detector
    from noisead.infer import WEIGHTS_DIR, load_detector
    from noisead.models.dncnn import load_pretrained_denoiser
    from noisead.models.registry import create_model

    if (WEIGHTS_DIR / "default.safetensors").is_file():
        det: Detector = load_detector()
        det.save(path)
        return "shipped default model (`noisead.infer.load_detector()`)"
    torch.manual_seed(seed)
    model = create_model("dncnn")
    if SHARED_DENOISER.is_file():
        load_pretrained_denoiser(model, SHARED_DENOISER)
        what = "DnCNN 17x64 initialised from ../shared's KAIR denoiser (no default model shipped)"
    else:
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                torch.nn.init.zeros_(m.bias)
        what = "DnCNN 17x64 with random (He) weights (no default model shipped)"
    images = [synthetic_image(0.1, seed=100 + i)[0] for i in range(6)]
    det = fit_detector(model, images, progress=False)
    det.save(path, name="bench-dncnn17x64")
    h, w = images[0].shape[:2]
    return what + f", fitted on 6 synthetic {w}x{h} images with `fit_detector`"


# -- one measurement (child process) ------------------------------------------------------

def matmul_peak(dtype_name: str = "fp32", n: int = 2048, reps: int = 3) -> float:
    """Best FLOP/s of an n x n matrix product (the machine's practical peak)."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    best = min(_timed(lambda: a @ b)[0] for _ in range(reps))
    return 2 * n ** 3 / best


def _timed(fn) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _vm_hwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Decode, analyse and write one image; time every stage; report peak memory."""
    import torch

    from noisead.batch.outputs import write_outputs
    from noisead.infer import analyze, load_detector
    from noisead.io import load_image
    from noisead.runtime import prepare_cpu

    det = load_detector(spec["detector"])
    det.config.precision = spec["precision"]
    cpu = prepare_cpu()
    peak = matmul_peak(spec["precision"])  # again at the end: the better of the two
    det.score_image(np.full((96, 96, 3), 0.5, np.float32), spec["mode"])  # warm-up (oneDNN)

    ext = {"seconds": 0.0, "flops": 0.0, "t": 0.0}

    def pre(_m, _i):
        ext["t"] = time.perf_counter()

    def post(_m, _i, _o):
        ext["seconds"] += time.perf_counter() - ext["t"]

    def count(m, _i, out):
        k = m.kernel_size[0] * m.kernel_size[1]
        ext["flops"] += 2.0 * m.in_channels // m.groups * m.out_channels * k * out[0, 0].numel()

    hooks = [det.extractor.register_forward_pre_hook(pre),
             det.extractor.register_forward_hook(post)]
    hooks += [m.register_forward_hook(count) for m in det.extractor.modules()
              if isinstance(m, torch.nn.Conv2d)]
    score_image = det.score_image
    stage = {"score_image": 0.0}

    def timed_score_image(*a, **k):
        dt, out = _timed(lambda: score_image(*a, **k))
        stage["score_image"] += dt
        return out

    det.score_image = timed_score_image
    # the fused evidence sources (each instance's map, so its calls are timed)
    from noisead.anomaly.evidence import EVIDENCE_SOURCES

    stage["noise_statistics"] = 0.0

    def timing(fn):
        def timed_statistic(*a, **k):
            dt, out = _timed(lambda: fn(*a, **k))
            stage["noise_statistics"] += dt
            return out
        return timed_statistic

    for source in EVIDENCE_SOURCES:  # wraps the class's method: never a wrapper twice
        source.deviation = timing(type(source).deviation.__get__(source))
    rss_ready = _vm_hwm_mb()
    t_decode, loaded = _timed(lambda: load_image(spec["image"]))
    t_analyze, result = _timed(lambda: analyze(loaded, det, mode=spec["mode"]))
    rss_analyzed = _vm_hwm_mb()
    with tempfile.TemporaryDirectory() as out:
        t_write, _ = _timed(lambda: write_outputs(result, loaded.pixels, out, "bench"))
    for hk in hooks:
        hk.remove()
    peak = max(peak, matmul_peak(spec["precision"]))
    h, w = result.heatmap.shape
    per_pixel = sum(2.0 * m.in_channels // m.groups * m.out_channels
                    * m.kernel_size[0] * m.kernel_size[1]
                    for m in det.extractor.modules() if isinstance(m, torch.nn.Conv2d))
    mask = np.load(spec["mask"]) if spec.get("mask") else None
    auc = None
    if mask is not None:
        from noisead.evaluate.metrics import pixel_auc

        auc = pixel_auc(result.heatmap, mask)
    return {
        "width": w, "height": h, "mp": w * h / 1e6, "mode": spec["mode"],
        "precision": spec["precision"], "decode": t_decode, "analyze": t_analyze,
        "extractor": ext["seconds"], "score_image": stage["score_image"], "write": t_write,
        "noise_statistics": stage["noise_statistics"],
        "flops": ext["flops"], "useful_flops": per_pixel * w * h,
        "peak_flops": peak, "rss_ready_mb": rss_ready, "peak_rss_analyze_mb": rss_analyzed,
        "peak_rss_mb": _vm_hwm_mb(),
        "threads": torch.get_num_threads(), "allocator_reuse": cpu["allocator_reuse"],
        "auc": auc, "score": result.score,
    }


def run_child(spec: dict[str, Any], timeout: int, threads: int | None = None
              ) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
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


# -- bfloat16 numerics ----------------------------------------------------------------------

def bf16_check(detector: str, megapixels: float = 0.25) -> list[dict[str, Any]]:
    """Heatmaps in bf16 vs fp32 on one image: max difference and AUC of each (both modes)."""
    from noisead.evaluate.metrics import pixel_auc
    from noisead.infer import analyze, load_detector

    image, mask = synthetic_image(megapixels, seed=7)
    rows = []
    for mode in ("reference", "blind"):
        maps = {}
        for precision in ("fp32", "bf16"):
            det = load_detector(detector)
            det.config.precision = precision
            maps[precision] = analyze(image, det, mode=mode).heatmap
        rows.append({"mode": mode, "auc_fp32": pixel_auc(maps["fp32"], mask),
                     "auc_bf16": pixel_auc(maps["bf16"], mask),
                     "max_abs_diff": float(np.abs(maps["fp32"] - maps["bf16"]).max()),
                     "mean_abs_diff": float(np.abs(maps["fp32"] - maps["bf16"]).mean())})
    return rows


# -- report --------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    import torch

    from noisead.runtime import bf16_native, cpu_flags

    name = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    flags = cpu_flags()
    return {"cpu": name, "cores": os.cpu_count(),
            "flags": {f: f in flags for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")},
            "bf16_native": bf16_native(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "python": platform.python_version()}


def _fmt(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def markdown(info: dict[str, Any], rows: list[dict[str, Any]], bf16: list[dict[str, Any]],
             command: str) -> str:
    m = info["machine"]
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in m["flags"].items())
    out = [
        "## Speed and memory (`benchmarks/speed.py`)", "",
        f"Command: `{command}`  ",
        f"CPU: {m['cpu']} ({m['cores']} logical CPUs; {flags}); "
        f"torch {m['torch']}, {info['threads']} threads; Python {m['python']}.  ",
        f"Detector: {info['detector']}.  ",
        f"Load average (1 min) before / after: {info['load_before']:.2f} / "
        f"{info['load_after']:.2f}. {info['note']}", "",
        "Seconds per megapixel (every stage column too), end to end = decode (JPEG q95) + "
        "`analyze()` + `write_outputs()`. *extractor* is the network's forward passes alone (halos "
        "included); *gaussians* is the rest of `score_image` (embedding blocks, "
        "Mahalanobis, blind fits, stitching, smoothing); *noise stats* is the fused noise "
        "level, spectrum and JPEG lattice statistics (0 for a detector without them; the "
        "lattice's smoothing is in *gaussians*); *calibrate* is "
        "the rest of "
        "`analyze()`. GFLOP/s counts the extractor's convolutions exactly; *% peak* "
        "compares it with a 2048² `torch.matmul` measured in the same process before and "
        "after (the better of the two; on a shared machine the load can change between "
        "them, hence values above 100%); *halo* is "
        "the extractor work done per unit of work on the image's own pixels. "
        "Peak RSS is the subprocess's `VmHWM` (Python, torch and the model included), "
        "after decode + `analyze()` and after `write_outputs()`.", "",
        "| image | mode | prec. | s/MP end to end | decode | extractor | gaussians | "
        "noise stats | calibrate | write | peak RSS MB analyze / write | extractor GFLOP/s | "
        "% peak | halo | heatmap AUC |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        label = f"{r['size']} MP"
        if "error" in r:
            out.append(f"| {label} | {r['mode']} | {r['precision']} | {r['error']} "
                       "| | | | | | | | | | | |")
            continue
        mp = r["mp"]
        total = r["decode"] + r["analyze"] + r["write"]
        gflops = r["flops"] / max(r["extractor"], 1e-9) / 1e9
        out.append(
            f"| {label} ({r['width']}x{r['height']}) | {r['mode']} | {r['precision']} | "
            f"**{total / mp:.2f}** | {r['decode'] / mp:.2f} | {r['extractor'] / mp:.2f} | "
            f"{(r['score_image'] - r['extractor'] - r.get('noise_statistics', 0)) / mp:.2f} | "
            f"{r.get('noise_statistics', 0) / mp:.2f} | "
            f"{(r['analyze'] - r['score_image']) / mp:.2f} | {r['write'] / mp:.2f} | "
            f"{r['peak_rss_analyze_mb']:.0f} / {r['peak_rss_mb']:.0f} | {gflops:.0f} | "
            f"{100 * gflops * 1e9 / r['peak_flops']:.0f}% of {r['peak_flops'] / 1e9:.0f} | "
            f"{r['flops'] / r['useful_flops']:.2f}x | {_fmt(r.get('auc'), 3)} |")
    if bf16:
        native = "native" if m["bf16_native"] else "emulated on this CPU: numerics only"
        out += ["", f"bfloat16 vs float32 heatmaps ({native}; 0.25 MP synthetic image):", "",
                "| mode | AUC fp32 | AUC bf16 | \\|ΔAUC\\| | max \\|Δheatmap\\| | "
                "mean \\|Δheatmap\\| |", "|---|---|---|---|---|---|"]
        for b in bf16:
            out.append(f"| {b['mode']} | {b['auc_fp32']:.4f} | {b['auc_bf16']:.4f} | "
                       f"{abs(b['auc_fp32'] - b['auc_bf16']):.4f} | {b['max_abs_diff']:.4f} | "
                       f"{b['mean_abs_diff']:.5f} |")
    out += ["", "`precision=\"auto\"` runs a detector's extractor in bfloat16 only where "
            "the CPU does it natively (AMX / AVX-512 BF16) *and* the detector is marked "
            "`bf16_validated`: the check above is what such a validation looks at."]
    if not m["bf16_native"]:
        out += ["No bfloat16 timings: this CPU has no AMX / AVX-512 BF16; there bfloat16 "
                "is emulated, 10-20x slower than float32 (where it is native, the script "
                "times it too)."]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,4,12,24", help="megapixels, comma-separated")
    ap.add_argument("--modes", default="reference,blind")
    ap.add_argument("--precisions", default=None,
                    help="default: fp32, plus bf16 where the CPU does it natively")
    ap.add_argument("--quick", action="store_true",
                    help="1 MP only, blind only, no bf16 check (a smoke test)")
    ap.add_argument("--no-bf16-check", action="store_true",
                    help="skip the bf16-vs-fp32 heatmap check (slow where emulated)")
    ap.add_argument("--detector", default=None, help="a detector file (default: see build)")
    ap.add_argument("--timeout", type=int, default=CHILD_TIMEOUT_S,
                    help="seconds per measurement before it is cut")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads in the measurements (default: torch's choice)")
    ap.add_argument("--note", default="", help="free text for the report (e.g. other load)")
    ap.add_argument("--out", type=Path, default=None, help="markdown file to update")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0

    from noisead.runtime import bf16_native

    sizes = [float(s) for s in ("1" if args.quick else args.sizes).split(",") if s]
    modes = ["blind"] if args.quick else [m for m in args.modes.split(",") if m]
    precisions = (args.precisions.split(",") if args.precisions
                  else ["fp32"] + (["bf16"] if bf16_native() else []))
    command = shlex.join(["python", "benchmarks/speed.py",
                          *(argv if argv is not None else sys.argv[1:])])
    info: dict[str, Any] = {"machine": machine(),
                            "threads": args.threads or machine()["threads"],
                            "load_before": os.getloadavg()[0], "note": args.note}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="noisead-bench-") as tmp:
        tmpdir = Path(tmp)
        if args.detector:
            det_path, info["detector"] = args.detector, f"`{args.detector}`"
        else:
            det_path = str(tmpdir / "detector.safetensors")
            info["detector"] = build_detector(Path(det_path))
        print(f"detector: {info['detector']}", file=sys.stderr)
        for size in sizes:
            from PIL import Image

            image, mask = synthetic_image(size, seed=int(size * 10))
            img_path, mask_path = tmpdir / f"{size}mp.jpg", tmpdir / f"{size}mp.mask.npy"
            Image.fromarray((image * 255 + 0.5).astype(np.uint8)).save(img_path, quality=95)
            np.save(mask_path, mask)
            del image, mask
            for mode in modes:
                for precision in precisions:
                    spec = {"detector": det_path, "image": str(img_path),
                            "mask": str(mask_path), "mode": mode, "precision": precision}
                    r = {"size": f"{size:g}", "mode": mode, "precision": precision,
                         **run_child(spec, args.timeout, args.threads)}
                    rows.append(r)
                    print(json.dumps(r), file=sys.stderr, flush=True)
        bf16 = [] if (args.quick or args.no_bf16_check) else bf16_check(det_path)
    info["load_after"] = os.getloadavg()[0]
    section = markdown(info, rows, bf16, command)
    print(section)
    if args.out:
        replace_doc_section(args.out, "speed", section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
