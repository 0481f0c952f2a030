"""The speed benchmark's markdown section of docs/BENCHMARKS.md ("Speed and memory")."""

from __future__ import annotations

import os
import platform
from typing import Any

from noisead.anomaly.backends import AUC_TOLERANCE, HEATMAP_TOLERANCE, SCORE_TOLERANCE


def machine() -> dict[str, Any]:
    """CPU (and GPU, where PyTorch sees one), flags, library versions and threads."""
    import torch

    from noisead.runtime import bf16_native, cpu_flags

    name = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = None
    flags = cpu_flags()
    return {"cpu": name, "cores": os.cpu_count(),
            "flags": {f: f in flags for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")},
            "bf16_native": bf16_native(), "torch": torch.__version__,
            "onnxruntime": ort_version,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "threads": torch.get_num_threads(), "python": platform.python_version()}


def _fmt(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _header(info: dict[str, Any], command: str) -> list[str]:
    m = info["machine"]
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in m["flags"].items())
    gpu = (f"GPU: {m['gpu']}." if m["gpu"] else
           "GPU: none on this machine. The `--device cuda` path (extractor, phase blocks and "
           "Gaussian scoring on the GPU) has **not been run on a GPU**: no figures for it.")
    return [
        "## Speed and memory (`benchmarks/speed.py`)", "",
        f"Command: `{command}`  ",
        f"CPU: {m['cpu']} ({m['cores']} logical CPUs; {flags}); torch {m['torch']}, "
        f"ONNX Runtime {m['onnxruntime'] or 'not installed'}, {info['threads']} threads; "
        f"Python {m['python']}. {gpu}  ",
        f"Detector: {info['detector']}.  ",
        f"Load average (1 min) before / after: {info['load_before']:.2f} / "
        f"{info['load_after']:.2f} (each row gives the load when it ended: on a shared "
        f"machine, figures taken under load are slower than the machine is). {info['note']}",
        "",
        "Seconds per megapixel (every stage column too), end to end = decode (JPEG q95) + "
        "`analyze()` + `write_outputs()` (the default files: JSON and four PNGs, with "
        "thumbnails); *CPU s/MP* is the CPU time the process spent on them (all threads), "
        "less sensitive than wall time to other work on the machine. *backend* is what ran "
        "the extractor (`analyze()`'s default, `auto`, "
        "takes ONNX Runtime where it runs the extractor as PyTorch does: "
        "`noisead.anomaly.backends`). *extractor* is the network's forward passes alone "
        "(halos included); *gaussians* is the rest of `score_image` (phase blocks, "
        "Mahalanobis, blind fits, stitching, smoothing); *noise stats* is the fused noise "
        "level, spectrum and JPEG lattice statistics (by source below); *calibrate* is the "
        "rest of `analyze()`; *write* is rendering (colour maps, overlay, fingerprint view, "
        "thumbnails) + encoding and writing the files. GFLOP/s counts the extractor's "
        "convolutions exactly; *% peak* compares it with a 2048² float32 matrix product "
        "measured in the same process before and after (the better of the two); *halo* is "
        "the extractor work done per unit of work on the image's own pixels. Peak RSS is "
        "the subprocess's `VmHWM` (Python, torch, ONNX Runtime and the model included), "
        "after decode + `analyze()` and after `write_outputs()`.", "",
    ]


def _rows(rows: list[dict[str, Any]]) -> list[str]:
    out = ["| image | mode | prec. | backend | s/MP end to end | CPU s/MP | decode | extractor | "
           "gaussians | noise stats | calibrate | write (render + encode) | peak RSS MB "
           "analyze / write | extractor GFLOP/s | % peak | halo | heatmap AUC | load |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        label = f"{r['size']} MP"
        if "error" in r:
            out.append(f"| {label} | {r['mode']} | {r['precision']} | {r.get('backend', '')} | "
                       f"{r['error']} | | | | | | | | | | | | | |")
            continue
        mp = r["mp"]
        total = r["decode"] + r["analyze"] + r["write"]
        gflops = r["flops"] / max(r["extractor"], 1e-9) / 1e9
        gaussians = r["score_image"] - r["extractor"] - r["noise_statistics"]
        out.append(
            f"| {label} ({r['width']}x{r['height']}) | {r['mode']} | {r['precision']} | "
            f"{r['backend']} | **{total / mp:.2f}** | {r['cpu'] / mp:.2f} | "
            f"{r['decode'] / mp:.2f} | {r['extractor'] / mp:.2f} | "
            f"{gaussians / mp:.2f} | {r['noise_statistics'] / mp:.2f} | "
            f"{(r['analyze'] - r['score_image']) / mp:.2f} | {r['write'] / mp:.2f} "
            f"({r['render'] / mp:.2f} + {r['encode'] / mp:.2f}) | "
            f"{r['peak_rss_analyze_mb']:.0f} / {r['peak_rss_mb']:.0f} | {gflops:.0f} | "
            f"{100 * gflops * 1e9 / r['peak_flops']:.0f}% of {r['peak_flops'] / 1e9:.0f} | "
            f"{r['flops'] / r['useful_flops']:.2f}x | {_fmt(r.get('auc'), 3)} | "
            f"{r['load']:.1f} |")
    sources = [r for r in rows if "error" not in r]
    if sources:
        keys = sorted({k for r in sources for k in r if k.startswith("source:")})
        out += ["", "Noise statistics by source, s/MP:", "",
                "| image | mode | prec. | " + " | ".join(k.removeprefix("source:") for k in keys)
                + " |", "|---|---|---|" + "---|" * len(keys)]
        for r in sources:
            out.append(f"| {r['size']} MP | {r['mode']} | {r['precision']} | "
                       + " | ".join(f"{r.get(k, 0.0) / r['mp']:.3f}" for k in keys) + " |")
    setup = [r["runner_setup"] for r in sources if r["backend"] == "onnx"]
    if setup:
        out += ["", f"Once per process, the ONNX graph's export (or its load from the disk "
                f"cache) and session: {min(setup):.2f}-{max(setup):.2f} s, not in the "
                "figures above."]
    return out


#: The targets of issue 20 for one image on two cores, float32: seconds per megapixel end
#: to end at 12 MP, and peak resident memory at 24 MP.
TARGET_S_PER_MP, TARGET_SIZE = 1.5, "12"
TARGET_RSS_MB, TARGET_RSS_SIZE = 1500, "24"


def _targets(rows: list[dict[str, Any]]) -> list[str]:
    """Each measured fp32 row at the targets' sizes against the targets, and the floor the
    extractor's arithmetic sets at the machine's measured matrix-product peak."""
    ok = [r for r in rows if "error" not in r and r["precision"] == "fp32"]
    out = []
    for r in ok:
        total = (r["decode"] + r["analyze"] + r["write"]) / r["mp"]
        if r["size"] == TARGET_SIZE:
            floor = r["flops"] / r["peak_flops"] / r["mp"]
            out.append(f"- {r['size']} MP, {r['mode']}, {r['backend']}: **{total:.2f} s/MP** "
                       "end to end "
                       f"(target {TARGET_S_PER_MP} s/MP: "
                       f"{'met' if total <= TARGET_S_PER_MP else 'not met'}; load "
                       f"{r['load']:.1f}); of which writing the files {r['write'] / r['mp']:.2f}"
                       f". The extractor's convolutions alone, at 100% of the matrix-product "
                       f"peak measured in the same process, would take {floor:.2f} s/MP.")
        if r["size"] == TARGET_RSS_SIZE:
            peak = max(r["peak_rss_analyze_mb"], r["peak_rss_mb"])
            out.append(f"- {r['size']} MP, {r['mode']}, {r['backend']}: peak RSS "
                       f"**{peak:.0f} MB** (target "
                       f"{TARGET_RSS_MB} MB: {'met' if peak <= TARGET_RSS_MB else 'not met'}).")
    return ["", "Against the targets (one image, two cores, float32):", "", *out] if out else []


def _agreement(rows: list[dict[str, Any]]) -> list[str]:
    ok = all(r["ok"] for r in rows)
    out = ["", f"Heatmaps of the `auto` backend against PyTorch's (the reference of fitting "
           f"and calibration); the check fails above max |Δheatmap| {HEATMAP_TOLERANCE:g}, "
           f"|ΔAUC| {AUC_TOLERANCE:g} or |Δscore| {SCORE_TOLERANCE:g}: "
           f"**{'passed' if ok else 'FAILED'}**.", "",
           "| image | mode | backend | AUC torch | AUC auto | max \\|Δheatmap\\| | "
           "mean \\|Δheatmap\\| | \\|Δscore\\| |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['image']} | {r['mode']} | {r['backend']} | {r['auc_torch']:.5f} | "
                   f"{r['auc_fast']:.5f} | {r['max_abs_diff']:.2e} | {r['mean_abs_diff']:.2e} "
                   f"| {r['score_diff']:.1e} |")
    return out


def _png(rows: list[dict[str, Any]]) -> list[str]:
    measured = [r for r in rows if r.get("png")]
    if not measured:
        return []
    r = measured[-1]
    out = ["", f"PNG encoding of the default result images of the {r['size']} MP analysis "
           "(colour heatmap, mask, overlay, fingerprint view; encode time only, least of two "
           "interleaved runs; every encoding checked to decode to the same pixels):", "",
           "| encoder | seconds | s/MP | MB |", "|---|---|---|---|"]
    for e in r["png"]:
        out.append(f"| {e['encoder']} | {e['seconds']:.2f} | {e['seconds'] / r['mp']:.3f} | "
                   f"{e['mb']:.1f} |")
    today = next(e for e in r["png"] if "(save_png)" in e["encoder"])
    compressed = [e for e in r["png"] if "no compression" not in e["encoder"]]
    best = min(compressed, key=lambda e: e["seconds"])
    out += ["", f"`noisead.io.save_png` uses \"{today['encoder']}\" ({today['seconds']:.2f} s, "
            f"{today['mb']:.1f} MB); the fastest compressed one here is \"{best['encoder']}\" "
            f"({best['seconds']:.2f} s, {best['mb']:.1f} MB)."]
    return out


def _bf16(info: dict[str, Any], bf16: list[dict[str, Any]]) -> list[str]:
    m = info["machine"]
    out = []
    if bf16:
        native = "native" if m["bf16_native"] else "emulated on this CPU: numerics only"
        out += ["", f"bfloat16 vs float32 heatmaps (PyTorch, {native}; 0.25 MP synthetic "
                "image):", "",
                "| mode | AUC fp32 | AUC bf16 | \\|ΔAUC\\| | max \\|Δheatmap\\| | "
                "mean \\|Δheatmap\\| |", "|---|---|---|---|---|---|"]
        for b in bf16:
            out.append(f"| {b['mode']} | {b['auc_fp32']:.4f} | {b['auc_bf16']:.4f} | "
                       f"{abs(b['auc_fp32'] - b['auc_bf16']):.4f} | {b['max_abs_diff']:.4f} | "
                       f"{b['mean_abs_diff']:.5f} |")
    out += ["", "`precision=\"auto\"` runs a detector's extractor in bfloat16 only where "
            "the CPU does it natively (AMX / AVX-512 BF16) *and* the detector is marked "
            "`bf16_validated`: the check above is what such a validation looks at. The "
            "shipped model is not, so it runs in float32 everywhere."]
    return out


#: How the measured pipeline spends its time and memory, in words (no figures: those are
#: in the tables this text follows).
DESIGN = (
    "Where the time goes, and what was done about it: the extractor runs in ONNX Runtime "
    "(`auto`; the graph exported once per process, kept on disk by the weights' hash), its "
    "taps written channels-last, its memory arena reused across an image's tiles and given "
    "back when the image is scored; the tapped maps are laid out as phase blocks and centred "
    "on the Gaussians' means in one pass, and scored class by class; layout and scoring "
    "are shared out between the threads, each working on one (these small products take "
    "several times less CPU on one thread than split across two); the noise "
    "statistics' box means, small correlations and the Gaussian smoothings run through "
    "OpenCV's separable filters in float32 (SciPy's windows, kernels and borders, to float32 "
    "rounding: `tests/anomaly/test_filters.py`), one residual at a time; the JPEG lattice's "
    "block statistics go by bands of block rows. What is left is mostly the extractor's "
    "arithmetic (the floor above), then the phase-block layout and scoring (*gaussians*), "
    "the noise statistics, and writing the files (`noisead.batch.outputs`: each file "
    "rendered and encoded on its own thread, by libpng without row filters, "
    "`noisead.io.save_png`; the PNG table below compares the encoders); glibc is asked "
    "for one malloc arena, so that the threads reuse each other's freed blocks. Blind "
    "mode also keeps up to `NOISEAD_BLIND_CACHE_MB` (512 MB by default) of embeddings "
    "between its passes: a smaller budget lowers its peak, fitting a large image on fewer "
    "of its tiles.")


def markdown(info: dict[str, Any], rows: list[dict[str, Any]],
             agreement: list[dict[str, Any]], bf16: list[dict[str, Any]], command: str
             ) -> str:
    out = _header(info, command) + _rows(rows) + _targets(rows) + ["", DESIGN]
    if agreement:
        out += _agreement(agreement)
    out += _png(rows) + _bf16(info, bf16)
    return "\n".join(out) + "\n"
