"""Drawing camera models: each a pure function of its seed, a set of them without twins."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from noisead.data.simulate.spec import (
    CFA_PATTERNS,
    DEMOSAIC_METHODS,
    SUBSAMPLINGS,
    TONE_CURVES,
    CameraModelSpec,
)
from noisead.io.jpeg import ijg_quant_tables

__all__ = ["draw_models", "random_camera_model"]


def _custom_qtables(rng: np.random.Generator, base_quality: int) -> tuple[tuple[int, ...], ...]:
    """IJG tables at ``base_quality`` reshaped by a random frequency tilt and jitter.

    Why: real cameras use tables that are not the IJG ones scaled (Nikon, Canon, phones
    each have their own); a tilt makes high frequencies coarser or finer than IJG.
    """
    u, v = np.meshgrid(np.arange(8), np.arange(8))
    freq = ((u + v) / 14.0).ravel()
    tables = []
    for base in ijg_quant_tables(base_quality):
        tilt = rng.uniform(-0.6, 0.6)
        jitter = rng.normal(0.0, 0.12, 64)
        t = np.asarray(base, np.float64) * np.exp(tilt * (freq - 0.5) + jitter)
        tables.append(tuple(int(x) for x in np.clip(np.rint(t), 1, 255)))
    return tuple(tables)


def random_camera_model(seed: int, name: str | None = None) -> CameraModelSpec:
    """Draw a diverse, plausible camera model — a pure function of ``seed``.

    Diversity comes from discrete choices (4 CFA x 3 demosaicing x 3 tone curves x
    3 subsamplings x IJG-or-custom tables x JPEG-or-PNG, sharpening and denoising on/off)
    and continuous ones (noise ``a``/``b``, PRNU, white balance, colour matrix, quality).
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5C4E])
    cfa = str(rng.choice(CFA_PATTERNS))
    dem = str(rng.choice(DEMOSAIC_METHODS))
    shot_gain = float(np.exp(rng.uniform(np.log(2e-4), np.log(4e-3))))
    read_sigma = float(np.exp(rng.uniform(np.log(5e-4), np.log(6e-3))))
    has_prnu = rng.random() < 0.6
    prnu_sigma = float(rng.uniform(0.003, 0.015)) if has_prnu else 0.0
    prnu_seed = int(rng.integers(0, 2**31 - 1))
    wb = (float(rng.uniform(1.4, 2.6)), 1.0, float(rng.uniform(1.2, 2.2)))
    off = -rng.uniform(0.0, 0.35, size=(3, 3))
    np.fill_diagonal(off, 0.0)
    cm = off + np.diag(1.0 - off.sum(axis=1))  # rows sum to 1: white stays white
    tone = str(rng.choice(TONE_CURVES))
    gamma = float(rng.uniform(1.8, 2.6))
    scurve = float(rng.uniform(0.1, 0.5)) if tone == "scurve" else 0.0
    if rng.random() < 0.6:
        sharpen_radius = float(rng.uniform(0.6, 2.0))
        sharpen_amount = float(rng.uniform(0.2, 1.0))
    else:
        sharpen_radius = sharpen_amount = 0.0
    denoise_strength = float(rng.uniform(0.1, 0.8)) if rng.random() < 0.5 else 0.0
    output = "png" if rng.random() < 0.15 else "jpeg"
    quality = int(rng.integers(70, 99))  # 70..98
    qtables = _custom_qtables(rng, quality) if rng.random() < 0.5 else None
    subsampling = str(rng.choice(SUBSAMPLINGS, p=[0.2, 0.3, 0.5]))
    if output == "png":
        quality_out: int | None = None
        qtables = None
    else:
        quality_out = None if qtables is not None else quality
    return CameraModelSpec(
        name=name if name is not None else f"simcam-{seed}",
        cfa=cfa,
        demosaic=dem,
        shot_gain=round(shot_gain, 8),
        read_sigma=round(read_sigma, 8),
        prnu_sigma=round(prnu_sigma, 6),
        prnu_seed=prnu_seed,
        wb_gains=tuple(round(g, 4) for g in wb),  # type: ignore[arg-type]
        color_matrix=tuple(round(float(x), 6) for x in cm.ravel()),
        tone=tone,
        gamma=round(gamma, 4),
        scurve_strength=round(scurve, 4),
        sharpen_radius=round(sharpen_radius, 4),
        sharpen_amount=round(sharpen_amount, 4),
        denoise_strength=round(denoise_strength, 4),
        output=output,
        jpeg_quality=quality_out,
        jpeg_qtables=qtables,
        subsampling=subsampling,
    )


def _model_key(spec: CameraModelSpec) -> tuple:
    """What makes two models tell-apart for the extractor (coarse traces only)."""
    return (spec.cfa, spec.demosaic, spec.output, spec.quant_tables(), spec.subsampling)


def draw_models(n_models: int, seed: int) -> list[CameraModelSpec]:
    """``n_models`` models with balanced CFA x demosaic coverage and no duplicate keys."""
    combos = [(c, d) for c in CFA_PATTERNS for d in DEMOSAIC_METHODS]
    order = np.random.default_rng([seed, 0xC0DE]).permutation(len(combos))
    models: list[CameraModelSpec] = []
    keys: set[tuple] = set()
    for i in range(n_models):
        cfa, dem = combos[int(order[i % len(combos)])]
        for attempt in range(1000):
            ms = int(np.random.SeedSequence([seed, i, attempt]).generate_state(1)[0])
            spec = replace(random_camera_model(ms, name=f"simcam{i:02d}"), cfa=cfa, demosaic=dem)
            if _model_key(spec) not in keys:
                break
        keys.add(_model_key(spec))
        models.append(spec)
    return models
