"""Whole folders: every scene through many simulated cameras, written as a camera-labelled
folder in the layout of ``../shared/cameras`` (:func:`simulate_cameras`)."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from noisead.data.simulate.draw import draw_models
from noisead.data.simulate.photograph import render
from noisead.data.simulate.spec import CameraModelSpec
from noisead.data.simulate.stages import downscale_scene
from noisead.io import IMAGE_EXTENSIONS, PNG_SMALL, atomic_write_bytes, encode_png, to_uint8

__all__ = ["simulate_cameras"]


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode()


def _list_scenes(scene_dir: Path) -> list[Path]:
    return sorted(
        p
        for p in Path(scene_dir).iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )


def _load_scene(path: Path, downscale: int) -> np.ndarray:
    # Trusted, project-provided scenes, decoded as stored: PIL directly.
    # No EXIF transpose: the scenes are plain PNGs and orientation is irrelevant to content.
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    return downscale_scene(arr, downscale)


def _render_model(
    i_model: int,
    spec: CameraModelSpec,
    scene_paths: list[Path],
    scene_indices: list[int],
    out_dir: Path,
    seed: int,
    downscale: int,
) -> list[str]:
    """Render one model's images and write them; returns the file names written."""
    model_dir = out_dir / spec.name
    written = []
    for j in scene_indices:
        scene = _load_scene(scene_paths[j], downscale)
        rng = np.random.default_rng(np.random.SeedSequence([seed, i_model, j, 1]))
        img, data = render(scene, spec, rng)
        stem = scene_paths[j].stem
        if data is None:
            fname = f"{stem}.png"
            data = encode_png(to_uint8(img), compress_level=PNG_SMALL)
        else:
            fname = f"{stem}.jpg"  # the camera's own bytes, never re-encoded
        atomic_write_bytes(model_dir / fname, data)
        written.append(fname)
    return written


def simulate_cameras(
    scene_dir: Path,
    out_dir: Path,
    n_models: int = 20,
    seed: int = 0,
    downscale: int = 2,
    images_per_model: int | None = None,
    progress: bool = True,
    *,
    workers: int = 1,
) -> list[CameraModelSpec]:
    """Render every scene (or a seeded subset) through ``n_models`` simulated cameras.

    Writes ``out_dir/<model-name>/<scene-stem>.jpg`` (the camera's own JPEG bytes) or
    ``.png`` (PNG-output models), ``out_dir/<model-name>/model_card.json`` (the spec and a
    sentence in words) and ``out_dir/models.json`` (all cards). The output is a
    camera-labelled folder in the same layout as ``../shared/cameras``.

    Models are :func:`random_camera_model` draws named ``simcam00``, ``simcam01``, ...
    whose CFA x demosaicing pair is then assigned from a seeded permutation of the 12
    pairs (every pair appears once before any repeats), redrawn if their coarse traces
    (CFA, demosaicing, output, quantization tables, subsampling) would duplicate a model's.

    ``downscale`` shrinks each scene first (antialiased) to wash out its own traces; pass 1
    for scenes that are already downscaled (``../shared/scenes/cvip`` is, 2x). Every
    random stream derives from ``seed`` (models from ``(seed, model)``, each image's noise
    from ``(seed, model, scene)``), so the same seed gives byte-identical files, and
    ``workers > 1`` (processes, one model per task) changes the speed, never the bytes.
    """
    scene_dir, out_dir = Path(scene_dir), Path(out_dir)
    scene_paths = _list_scenes(scene_dir)
    if not scene_paths:
        raise FileNotFoundError(f"no scene images in {scene_dir}")
    if n_models < 1:
        raise ValueError("n_models must be >= 1")
    models = draw_models(n_models, seed)
    subsets: list[list[int]] = []
    for i in range(n_models):
        if images_per_model is None or images_per_model >= len(scene_paths):
            subsets.append(list(range(len(scene_paths))))
        else:
            g = np.random.default_rng(np.random.SeedSequence([seed, i, 0x5B]))
            subsets.append(
                sorted(int(k) for k in g.choice(len(scene_paths), images_per_model, replace=False))
            )
    out_dir.mkdir(parents=True, exist_ok=True)

    results: dict[int, list[str]] = {}
    args = [
        (i, models[i], scene_paths, subsets[i], out_dir, seed, downscale) for i in range(n_models)
    ]
    bar = tqdm(total=n_models, desc="simulate cameras", unit="model", disable=not progress)
    if workers <= 1:
        for a in args:
            results[a[0]] = _render_model(*a)
            bar.update(1)
    else:
        with ProcessPoolExecutor(max_workers=workers) as ex:
            futs = {ex.submit(_render_model, *a): a[0] for a in args}
            for fut, i in futs.items():
                results[i] = fut.result()
                bar.update(1)
    bar.close()

    cards = []
    for i, spec in enumerate(models):
        card = {
            "name": spec.name,
            "description": spec.describe(),
            "spec": spec.to_dict(),
            "model_seed_index": i,
            "n_images": len(results[i]),
            "files": results[i],
        }
        atomic_write_bytes(out_dir / spec.name / "model_card.json", _json_bytes(card))
        cards.append(card)
    index = {
        "generator": "noisead.data.simulate.simulate_cameras",
        "seed": seed,
        "n_models": n_models,
        "downscale": downscale,
        "images_per_model": images_per_model,
        "scenes": [p.name for p in scene_paths],
        "models": cards,
    }
    atomic_write_bytes(out_dir / "models.json", _json_bytes(index))
    return models
