"""Patch batches for Siamese training, with Noiseprint's pairing.

A batch holds ``models x images x positions`` patches: a few camera models, a few images of
each, and a few pixel positions shared by those images. Positions lie on the 8x8 JPEG grid
(which also aligns the 2x2 colour-filter period), so two patches at the same position of
two images of one model carry the same demosaicing phase and the same JPEG block phase.
Positive pairs: same model, same position, different image. Everything else is negative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from noisead.data.augment import AugmentConfig, Operation, apply_to_patch, draw_operation


@dataclass
class BatchSpec:
    """How a training batch is drawn. ``models * images * positions`` patches in all."""

    patch_size: int = 48
    models_per_batch: int = 4
    images_per_model: int = 4
    positions_per_model: int = 4
    grid: int = 8

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def batch_size(self) -> int:
        return self.models_per_batch * self.images_per_model * self.positions_per_model


@dataclass
class PatchBatch:
    patches: torch.Tensor   # N x 3 x P x P float32 in [0, 1]
    groups: torch.Tensor    # N: (model, position) label
    image_ids: torch.Tensor  # N: global image index
    cameras: list[str]      # N camera names (for logs)
    operation: Operation


def load_camera_arrays(cameras: dict[str, list[Path]], *, progress: bool = True
                       ) -> dict[str, list[np.ndarray]]:
    """Decode every image once to uint8 (4x less memory than float) for fast sampling."""
    from noisead.io import load_image, to_uint8

    out: dict[str, list[np.ndarray]] = {}
    items = [(c, p) for c, ps in sorted(cameras.items()) for p in ps]
    for cam, path in tqdm(items, desc="decoding camera images", disable=not progress):
        out.setdefault(cam, []).append(to_uint8(load_image(path).pixels))
    return out


class PatchPairSampler:
    """Draws :class:`PatchBatch` es from decoded images of several camera models."""

    def __init__(self, images: dict[str, Sequence[np.ndarray]], spec: BatchSpec | None = None,
                 augment: AugmentConfig | None = None, seed: int = 0) -> None:
        self.spec = spec = spec or BatchSpec()
        self.augment = augment or AugmentConfig()
        self.rng = np.random.default_rng(seed)
        self.cameras = sorted(c for c, ims in images.items()
                              if len(ims) >= 2 and all(min(im.shape[:2]) >= spec.patch_size
                                                       for im in ims))
        if len(self.cameras) < 2:
            raise ValueError("need at least two camera models with two images of at least "
                             f"{spec.patch_size}x{spec.patch_size} pixels")
        self.images = {c: list(images[c]) for c in self.cameras}
        offsets = np.cumsum([0] + [len(self.images[c]) for c in self.cameras])
        self._image_offset = dict(zip(self.cameras, offsets[:-1].tolist(), strict=True))

    def _positions(self, ims: list[np.ndarray], k: int, context: int) -> list[tuple[int, int]]:
        p, g = self.spec.patch_size, self.spec.grid
        h = min(im.shape[0] for im in ims)
        w = min(im.shape[1] for im in ims)
        lo = int(np.ceil(context / g)) * g if context else 0
        ys = np.arange(lo, h - p - context + 1, g)
        xs = np.arange(lo, w - p - context + 1, g)
        if len(ys) == 0 or len(xs) == 0:  # image too small for the context: no margin
            ys, xs = np.arange(0, h - p + 1, g), np.arange(0, w - p + 1, g)
        grid = [(int(y), int(x)) for y in ys for x in xs]
        idx = self.rng.choice(len(grid), size=min(k, len(grid)), replace=False)
        return [grid[i] for i in idx]

    def sample(self) -> PatchBatch:
        spec = self.spec
        op = draw_operation(self.augment, self.rng)
        context = 0 if op.is_identity else 24
        n_models = min(spec.models_per_batch, len(self.cameras))
        chosen = self.rng.choice(len(self.cameras), size=n_models, replace=False)
        patches, groups, image_ids, names = [], [], [], []
        for mi, ci in enumerate(chosen):
            cam = self.cameras[ci]
            pool = self.images[cam]
            k = min(spec.images_per_model, len(pool))
            picks = self.rng.choice(len(pool), size=k, replace=False)
            ims = [pool[i] for i in picks]
            positions = self._positions(ims, spec.positions_per_model, context)
            for pi, (y, x) in enumerate(positions):
                for i, im in zip(picks, ims, strict=True):
                    patches.append(apply_to_patch(im, y, x, spec.patch_size, op))
                    groups.append(mi * spec.positions_per_model + pi)
                    image_ids.append(self._image_offset[cam] + int(i))
                    names.append(cam)
        arr = np.stack(patches).astype(np.float32) / 255.0
        return PatchBatch(
            patches=torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous(),
            groups=torch.tensor(groups), image_ids=torch.tensor(image_ids), cameras=names,
            operation=op)
