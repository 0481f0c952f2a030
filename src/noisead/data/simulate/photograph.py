"""One photograph through one simulated camera: :func:`render`."""

from __future__ import annotations

import numpy as np

from noisead.data.simulate.spec import CameraModelSpec
from noisead.data.simulate.stages import (
    add_sensor_noise,
    apply_tone,
    as_float_image,
    demosaic,
    denoise,
    linearize,
    mosaic,
    prnu_pattern,
    unsharp_mask,
)
from noisead.io import to_uint8
from noisead.io.jpeg import decode_jpeg, encode_jpeg

__all__ = ["render"]


def render(
    scene: np.ndarray, spec: CameraModelSpec, rng: np.random.Generator
) -> tuple[np.ndarray, bytes | None]:
    """Photograph ``scene`` with camera model ``spec``.

    ``scene`` is an HxWx3 sRGB image (uint8, or float in [0, 1]) at the working resolution —
    :func:`downscale_scene` it first. ``rng`` draws this shot's sensor noise (the fixed
    PRNU pattern comes from the spec, not from ``rng``).

    Returns ``(image, file_bytes)``: the decoded float32 HxWx3 [0, 1] result — JPEG decoded
    back, so it is exactly what a reader of the file sees — and the JPEG file bytes, or
    ``None`` for a PNG-output model. H and W are cropped top-left to multiples of 16 so the
    CFA phase and the JPEG grid (and 4:2:0 MCUs) start at (0, 0).
    """
    img = as_float_image(scene)
    h, w = (img.shape[0] // 16) * 16, (img.shape[1] // 16) * 16
    if h == 0 or w == 0:
        raise ValueError(f"scene too small to render (needs >= 16x16), got {img.shape[:2]}")
    img = img[:h, :w]

    cm = np.asarray(spec.color_matrix, np.float64).reshape(3, 3)
    cm_inv = np.linalg.inv(cm).astype(np.float32)
    gains = np.asarray(spec.wb_gains, np.float32)
    cm = cm.astype(np.float32)

    lin = linearize(img)
    cam = lin @ cm_inv.T  # scene linear sRGB → white-balanced camera RGB
    cam = np.clip(cam, 0.0, 1.0) / gains  # undo white balance → raw camera RGB
    raw = mosaic(cam, spec.cfa)
    if spec.prnu_sigma > 0:
        raw = raw * (1.0 + prnu_pattern((h, w), spec.prnu_sigma, spec.prnu_seed))
    raw = add_sensor_noise(raw, spec.shot_gain, spec.read_sigma, rng)
    raw = np.clip(raw, 0.0, 1.0)

    rgb = demosaic(raw, spec.cfa, spec.demosaic)
    rgb = denoise(np.clip(rgb, 0.0, 1.0), spec.denoise_strength)
    rgb = rgb * gains
    rgb = np.clip(rgb, 0.0, 1.0) @ cm.T
    out = apply_tone(rgb, spec.tone, spec.gamma, spec.scurve_strength)
    out = unsharp_mask(out, spec.sharpen_radius, spec.sharpen_amount)
    u8 = to_uint8(out)

    if spec.output == "png":
        return u8.astype(np.float32) / 255.0, None
    data = encode_jpeg(
        u8, quality=spec.jpeg_quality, qtables=spec.jpeg_qtables, subsampling=spec.subsampling
    )
    return decode_jpeg(data).astype(np.float32) / 255.0, data
