"""Inputs of the speed benchmark: synthetic photo-like images and the detector measured.

``synthetic_image`` plants a region with other noise in a smooth image, so that heatmaps
can be compared by their AUC, not only pixel by pixel; ``build_detector`` saves the shipped
default model (or a stand-in of the default architecture where none is shipped).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_DENOISER = REPO.parent / "shared" / "weights" / "dncnn_gray_awgn25.safetensors"


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
