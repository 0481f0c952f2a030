"""Training batches with simulated camera models drawn fresh for every batch.

Why: a fingerprint extractor that must work on camera models it never saw gains from
seeing as many models as possible, and a fixed set of simulated cameras (24 folders) is
soon learnt by heart. Rendering a small crop through a new simulated pipeline
(:func:`noisead.data.simulate.render`) costs a small fraction of a training step on a
CPU, so every batch can bring camera models that no batch had before: an unlimited supply
of labelled "cameras" at almost no cost.

:class:`FreshCameraSampler` draws a batch as :class:`~noisead.data.patches.PatchPairSampler`
does (models x images x positions, Noiseprint's pairing), with a share of the batch's
models taken from the camera folders (real photographs, pre-rendered simulated cameras)
and the rest new pipelines (:func:`~noisead.data.simulate.random_camera_model` from a seed
drawn by the sampler), each rendering ``images_per_model`` crops of different scenes. All
of it comes from the sampler's one random stream (``rng``), so a run that restores that
stream resumes the very same batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from noisead.data.augment import AugmentConfig
from noisead.data.patches import BatchSpec, PatchBatch, PatchPairSampler
from noisead.data.simulate import random_camera_model, render
from noisead.io import IMAGE_EXTENSIONS, to_uint8


@dataclass
class FreshCameraSpec:
    """How many of a batch's camera models are fresh simulated pipelines, and from what.

    ``share`` 0 turns the feature off (batches come from the camera folders alone); 1 makes
    every model of every batch a new pipeline. ``crop`` is the side of the rendered crops
    (a multiple of 16, so that the colour-filter and JPEG grids start at its corner); it
    must leave room for the patch, the augmentation's context and a few grid positions.
    ``scenes`` holds display-referred scenes at working resolution (see
    :func:`noisead.data.simulate.downscale_scene`; ``../shared/scenes/cvip`` already is).
    """

    share: float = 0.0
    scenes: str = "../shared/scenes/cvip"
    crop: int = 128

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"fresh share must be in [0, 1], got {self.share}")
        if self.crop < 16 or self.crop % 16:
            raise ValueError(f"fresh crop must be a positive multiple of 16, got {self.crop}")

    def to_dict(self) -> dict:
        return asdict(self)


def load_scenes(folder: str | Path, min_side: int) -> list[np.ndarray]:
    """Every scene of ``folder`` as uint8 RGB, those smaller than ``min_side`` left out."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such scene folder")
    scenes = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith("."):
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
            if min(arr.shape[:2]) >= min_side:
                scenes.append(arr)
    if len(scenes) < 2:
        raise ValueError(f"{folder}: need at least two scenes of {min_side} x {min_side} or more")
    return scenes


class FreshCameraSampler:
    """Draws :class:`PatchBatch` es mixing folder cameras with freshly simulated ones."""

    def __init__(self, images: dict[str, Sequence[np.ndarray]], spec: BatchSpec,
                 augment: AugmentConfig | None, fresh: FreshCameraSpec,
                 scenes: list[np.ndarray], seed: int = 0) -> None:
        if fresh.crop < spec.patch_size + 2 * 24 + 2 * spec.grid:
            raise ValueError(f"fresh crop {fresh.crop} leaves too few positions for "
                             f"{spec.patch_size}-pixel patches with augmentation context")
        self.spec, self.augment, self.fresh, self.scenes = spec, augment, fresh, scenes
        self.rng = np.random.default_rng(seed)
        self.cameras = sorted(c for c, ims in images.items()
                              if len(ims) >= 2 and all(min(im.shape[:2]) >= spec.patch_size
                                                       for im in ims))
        self.images = {c: list(images[c]) for c in self.cameras}
        self.n_fresh = int(round(spec.models_per_batch * fresh.share))
        if spec.models_per_batch - self.n_fresh > len(self.cameras):
            raise ValueError(f"{spec.models_per_batch - self.n_fresh} folder cameras per "
                             f"batch asked, {len(self.cameras)} usable")

    def _render_model(self) -> list[np.ndarray]:
        """``images_per_model`` crops of different scenes through one new pipeline."""
        model = random_camera_model(int(self.rng.integers(2**32)))
        c = self.fresh.crop
        picks = self.rng.choice(len(self.scenes), size=self.spec.images_per_model,
                                replace=False)
        out = []
        for i in picks:
            scene = self.scenes[int(i)]
            y = int(self.rng.integers(0, scene.shape[0] - c + 1))
            x = int(self.rng.integers(0, scene.shape[1] - c + 1))
            img, _ = render(scene[y:y + c, x:x + c], model, self.rng)
            out.append(to_uint8(img))  # the decoded file is 8-bit: an exact round trip
        return out

    def sample(self) -> PatchBatch:
        n_folder = self.spec.models_per_batch - self.n_fresh
        pool: dict[str, list[np.ndarray]] = {}
        for ci in self.rng.choice(len(self.cameras), size=n_folder, replace=False):
            cam = self.cameras[int(ci)]
            k = min(self.spec.images_per_model, len(self.images[cam]))
            picks = self.rng.choice(len(self.images[cam]), size=k, replace=False)
            pool[cam] = [self.images[cam][int(i)] for i in picks]
        for k in range(self.n_fresh):
            pool[f"fresh{k}"] = self._render_model()
        inner = PatchPairSampler(pool, replace(self.spec, models_per_batch=len(pool)),
                                 self.augment, seed=int(self.rng.integers(2**63)))
        return inner.sample()
