"""Numerical checks of the speed benchmark, and what PNG encoding of the results costs.

* :func:`backend_agreement`: the heatmaps of the extractor backend ``analyze()`` picks
  (``"auto"``: ONNX Runtime where it runs) against PyTorch's, the reference of fitting and
  calibration, on the bundled example and on a JPEG-compressed synthetic photo, in both
  modes. The check *fails* (``make bench`` exits non-zero) when a difference exceeds the
  tolerances of ``noisead.anomaly.backends`` (``HEATMAP_TOLERANCE``, ``AUC_TOLERANCE``,
  ``SCORE_TOLERANCE``): a faster path may reorder float32 arithmetic, not change results.
* :func:`bf16_check`: bfloat16 against float32 heatmaps (numerics only where emulated).
* :func:`png_encoders`: encode time and size of the default result images of one analysis
  under several PNG encoders and settings (what ``noisead.io.save_png`` could use).
"""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
from speed_inputs import REPO, synthetic_image

from noisead.anomaly.backends import AUC_TOLERANCE, HEATMAP_TOLERANCE, SCORE_TOLERANCE

EXAMPLE = REPO / "src" / "noisead" / "examples" / "spliced.png"


def jpeg_round_trip(image: np.ndarray, quality: int = 95) -> np.ndarray:
    """``image`` saved as a JPEG and decoded again (float32 in [0, 1])."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((image * 255 + 0.5).astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32) / np.float32(255)


def _cases() -> list[tuple[str, Any, np.ndarray]]:
    from PIL import Image

    image, mask = synthetic_image(1.0, seed=11)
    cases = [("1 MP synthetic, JPEG q95", jpeg_round_trip(image), mask)]
    if EXAMPLE.is_file():
        example_mask = np.asarray(Image.open(EXAMPLE.with_name("spliced.mask.png"))) > 127
        cases.insert(0, ("bundled example (spliced.png)", str(EXAMPLE), example_mask))
    return cases


def backend_agreement(detector: str) -> list[dict[str, Any]]:
    """The auto backend's heatmaps against PyTorch's; ``ok`` says whether within tolerance."""
    from noisead.evaluate.metrics import pixel_auc
    from noisead.infer import analyze, load_detector

    det = load_detector(detector)
    fast = det.runner("cpu", "auto").name
    rows = []
    for name, image, mask in _cases():
        for mode in ("reference", "blind"):
            ref = analyze(image, det, mode=mode, backend="torch")
            got = analyze(image, det, mode=mode, backend="auto")
            diff = np.abs(ref.heatmap - got.heatmap)
            row = {"image": name, "mode": mode, "backend": fast,
                   "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
                   "auc_torch": pixel_auc(ref.heatmap, mask),
                   "auc_fast": pixel_auc(got.heatmap, mask),
                   "score_diff": abs(ref.score - got.score)}
            row["ok"] = bool(row["max_abs_diff"] <= HEATMAP_TOLERANCE
                             and abs(row["auc_torch"] - row["auc_fast"]) <= AUC_TOLERANCE
                             and row["score_diff"] <= SCORE_TOLERANCE)
            rows.append(row)
    return rows


def bf16_check(detector: str, megapixels: float = 0.25) -> list[dict[str, Any]]:
    """Heatmaps in bf16 vs fp32 on one image (both PyTorch): max difference and AUCs."""
    from noisead.evaluate.metrics import pixel_auc
    from noisead.infer import analyze, load_detector

    image, mask = synthetic_image(megapixels, seed=7)
    rows = []
    for mode in ("reference", "blind"):
        maps = {}
        for precision in ("fp32", "bf16"):
            det = load_detector(detector)
            det.config.precision = precision
            maps[precision] = analyze(image, det, mode=mode, backend="torch").heatmap
        diff = np.abs(maps["fp32"] - maps["bf16"])
        rows.append({"mode": mode, "auc_fp32": pixel_auc(maps["fp32"], mask),
                     "auc_bf16": pixel_auc(maps["bf16"], mask),
                     "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean())})
    return rows


def _encoders() -> dict[str, Any]:
    """name -> function(uint8 H x W [x 3] array) -> PNG bytes."""
    import cv2
    from PIL import Image

    def pil(level: int, strategy: int = -1):
        def encode(a: np.ndarray) -> bytes:
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, format="PNG", compress_level=level,
                                    compress_type=strategy)
            return buf.getvalue()
        return encode

    def opencv(level: int, png_filter: int | None = None):
        params = [cv2.IMWRITE_PNG_COMPRESSION, level]
        if png_filter is not None:
            params += [cv2.IMWRITE_PNG_FILTER, png_filter]

        def encode(a: np.ndarray) -> bytes:
            bgr = cv2.cvtColor(a, cv2.COLOR_RGB2BGR) if a.ndim == 3 else a
            ok, data = cv2.imencode(".png", bgr, params)
            if not ok:
                raise RuntimeError("OpenCV could not encode the PNG")
            return data.tobytes()
        return encode

    return {
        "Pillow, zlib level 1": pil(1),
        "Pillow, zlib level 1, RLE strategy": pil(1, 3),
        "Pillow, level 0 (no compression)": pil(0),
        "OpenCV (libpng), level 1, libpng's filter choice": opencv(1),
        "OpenCV (libpng), level 1, Sub filter only": opencv(1, cv2.IMWRITE_PNG_FILTER_SUB),
        "OpenCV (libpng), level 1, Up filter only": opencv(1, cv2.IMWRITE_PNG_FILTER_UP),
        "OpenCV (libpng), level 1, no filter (save_png)": opencv(1, cv2.IMWRITE_PNG_FILTER_NONE),
    }


def png_encoders(images: dict[str, np.ndarray], repeats: int = 2) -> list[dict[str, Any]]:
    """Encode time (least of ``repeats``, interleaved) and size of ``images`` (uint8 arrays,
    the default result set of one analysis) under each encoder; bytes checked to decode
    back to the same pixels."""
    from PIL import Image

    encoders = _encoders()
    best = {name: float("inf") for name in encoders}
    sizes = dict.fromkeys(encoders, 0)
    for repeat in range(repeats):
        for name, encode in encoders.items():
            seconds, size = 0.0, 0
            for array in images.values():
                t = time.perf_counter()
                data = encode(array)
                seconds += time.perf_counter() - t
                size += len(data)
                if repeat == 0 and not np.array_equal(np.asarray(Image.open(io.BytesIO(data))),
                                                 array):
                    raise AssertionError(f"{name}: the PNG does not decode to its pixels")
            best[name] = min(best[name], seconds)
            sizes[name] = size
    return [{"encoder": n, "seconds": best[n], "mb": sizes[n] / 1e6} for n in encoders]


def result_images(result: Any, pixels: np.ndarray) -> dict[str, np.ndarray]:
    """The default result images of an analysis, as ``write_outputs`` renders them."""
    from noisead.infer import colorize, fingerprint_view, overlay
    from noisead.io import to_uint8

    return {"heatmap": colorize(result.heatmap),
            "mask": result.mask.astype(np.uint8) * np.uint8(255),
            "overlay": overlay(pixels, result.heatmap, result.mask),
            "fingerprint": to_uint8(fingerprint_view(result.fingerprint))}
