"""Turn an :class:`~noisead.infer.Analysis` into what the viewer serves: PNGs, JSON, a zip.

The calibrated heatmap is also served losslessly at 16 bits (``heatmap-data.png``, high
byte in red, low byte in green) so the page's threshold slider recomputes the mask exactly
as the server would, even near the usual thresholds (0.99 and above), where an 8-bit map
has only a handful of levels.

The decision shown to the analyst is the shared one (:mod:`noisead.verdict`): the summary
carries ``Analysis.verdict`` as its ``decision`` dict (decision, sentence, operating point),
exactly as the command line's per-image JSON does; this module adds no wording of its own.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from typing import Any

import numpy as np
from PIL import Image

from noisead.anomaly.detector import EVIDENCE
from noisead.infer import Analysis, colorize, evidence_shares, fingerprint_view, overlay
from noisead.io import to_uint8
from noisead.serve.results import AnalysisResult

__all__ = ["CAVEAT", "ZIP_KINDS", "finite", "mask_from_heat16", "pack_heat16", "png_bytes",
           "render", "zip_result"]

CAVEAT = ("A score is evidence, not proof. It says how unusual this photo's noise is "
          "compared with untouched photos (0.95 = more unusual than 95% of them). Heavy "
          "compression, resizing, filters or a camera unlike those the model knows can raise "
          "it, and a careful forgery can lower it.")

ZIP_KINDS = ("image", "heatmap", "heatmap-gray", "mask", "overlay", "fingerprint")


def png_bytes(array: np.ndarray) -> bytes:
    """uint8 gray/RGB or uint16 gray array -> PNG bytes (in memory; nothing is written)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def quantize_heatmap(heatmap: np.ndarray) -> np.ndarray:
    """Calibrated heatmap in [0, 1] -> uint16 levels (NaN counts as 0)."""
    h = np.nan_to_num(np.asarray(heatmap, dtype=np.float64), nan=0.0)
    return np.rint(np.clip(h, 0.0, 1.0) * 65535.0).astype(np.uint16)


def pack_heat16(heat16: np.ndarray) -> np.ndarray:
    """uint16 levels -> RGB uint8, high byte in red, low byte in green: what a browser
    canvas reads back exactly (it reads 8 bits a channel)."""
    packed = np.zeros((*heat16.shape, 3), np.uint8)
    packed[..., 0] = heat16 >> 8
    packed[..., 1] = heat16 & 0xFF
    return packed


def mask_from_heat16(heat16: np.ndarray, threshold: float) -> np.ndarray:
    """``value / 65535 >= threshold`` in float64, exactly as the page's JavaScript does it."""
    levels = np.arange(65536, dtype=np.float64) / 65535.0 >= threshold
    return levels[heat16]


def finite(obj: Any) -> Any:
    """NaN and infinities -> None, so every JSON we send is strict (browsers reject NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def render(analysis: Analysis, pixels: np.ndarray) -> AnalysisResult:
    """The PNGs and the JSON summary of one analysis of ``pixels`` (float32 H x W x 3).

    Raises ValueError for an analysis without a verdict: the viewer never shows a score
    without the shared decision that explains it.
    """
    if analysis.verdict is None:
        raise ValueError("the analysis carries no verdict")
    image_u8 = to_uint8(pixels)
    heat16 = quantize_heatmap(analysis.heatmap)
    pngs = {
        "image": png_bytes(image_u8),
        "heatmap": png_bytes(colorize(analysis.heatmap)),
        "heatmap-gray": png_bytes(heat16),
        "heatmap-data": png_bytes(pack_heat16(heat16)),
        "mask": png_bytes(to_uint8(analysis.mask)),
        "overlay": png_bytes(overlay(pixels, analysis.heatmap, analysis.mask)),
        "fingerprint": png_bytes(to_uint8(fingerprint_view(analysis.fingerprint))),
    }
    summary = finite(analysis.summary())
    summary["caveat"] = CAVEAT
    if analysis.evidence is not None:
        pngs["evidence-data"] = png_bytes(np.asarray(analysis.evidence, np.uint8))
        summary["evidence_names"] = list(EVIDENCE)
    return AnalysisResult(summary=summary, image_u8=image_u8, heat16=heat16, pngs=pngs,
                          evidence=analysis.evidence)


def zip_result(result: AnalysisResult, rid: str, threshold: float | None) -> bytes:
    """All results in one archive; with ``threshold``, mask and overlay are redone at it.

    The decision does not change with the threshold: it reads the image score only, and
    the pixel threshold draws the mask and nothing else.
    """
    pngs = dict(result.pngs)
    summary = dict(result.summary)
    if threshold is not None and threshold != summary["threshold"]:
        mask = mask_from_heat16(result.heat16, threshold)
        heat = result.heat16.astype(np.float32) / np.float32(65535.0)
        pngs["mask"] = png_bytes(to_uint8(mask))
        pngs["overlay"] = png_bytes(overlay(
            result.image_u8.astype(np.float32) / np.float32(255.0), heat, mask))
        summary["model_threshold"] = summary["threshold"]
        summary["threshold"] = threshold
        summary["tampered_fraction"] = round(float(mask.mean()), 6)
        summary["evidence_in_mask"] = evidence_shares(result.evidence, mask)
    summary["id"] = rid
    summary["files"] = {k: f"{k}.png" for k in ZIP_KINDS}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for kind in ZIP_KINDS:  # PNGs are compressed already: store them
            zf.writestr(f"{kind}.png", pngs[kind], compress_type=zipfile.ZIP_STORED)
        zf.writestr("summary.json", json.dumps(summary, indent=2, allow_nan=False) + "\n",
                    compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()
