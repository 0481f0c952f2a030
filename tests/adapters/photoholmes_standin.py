"""A stand-in for photoholmes that follows its protocol, to run ``noisead.Method`` in.

photoholmes (github.com/photoholmes/photoholmes) is installed from its git repository,
which is not on the package index this project installs from, so the adapter's tests run
it through this small re-implementation of what a method meets there, written from
photoholmes' ``methods/base.py``, ``datasets/base.py``, ``benchmark.py`` and
``metrics/IoU_weighted_v1.py``:

* :class:`BaseMethod`: abstract ``benchmark``; ``device``; ``to_device``; ``from_config``.
* :class:`FolderDataset` (photoholmes' ``BaseDataset``): reads each image as a
  C x H x W ``uint8`` tensor through OpenCV (BGR turned RGB, as its ``read_image``), its
  mask as a float 0/1 tensor, an all-zero mask for a pristine image; reads the JPEG luma
  table when the pipeline asks for ``"qtables"`` (a non-JPEG is first compressed at
  quality 100, as photoholmes does); applies the method's preprocessing pipeline;
  yields ``(inputs, mask, name)``, the name being the file's stem.
* :class:`Benchmark` (photoholmes' ``Benchmark.run``): moves the method to its device
  when ``method.device`` differs, casts every input tensor to float32 on the device,
  calls ``method.benchmark(**inputs)``, squeezes a 2-D detection and a 3-D mask or
  heatmap, updates heatmap, mask and detection metrics against the mask and
  ``any(mask)``, saves each output to ``outputs/<name>/output.npz`` under
  ``<folder>/<method class, lower case>/<dataset class, lower case>/`` (extra outputs:
  tensors to an npz, the rest to JSON) and reuses saved outputs on a rerun.
* Metrics with torchmetrics' ``update``/``compute``: :class:`AUROC` (pooled pixels, or
  images for detection) and :class:`WeightedIoU` (photoholmes' ``IoU_weighted_v1``
  formula, which computes ``1 - preds``); both refuse preds and targets of different
  shapes, as torchmetrics does. One deviation: ``run`` takes metric classes instead of a
  ``MetricCollection`` (torchmetrics is not a dependency of noisead).
"""

from __future__ import annotations

import io
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score


class BaseMethod(ABC):
    """photoholmes' ``BaseMethod``: what every method is."""

    device: torch.device

    def __init__(self) -> None:
        self.device = torch.device("cpu")

    @abstractmethod
    def benchmark(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The standard output: heatmap, mask, detection (and extra_outputs)."""

    @classmethod
    def from_config(cls, config: dict[str, Any] | None):
        return cls(**(config or {}))

    def to_device(self, device: str | torch.device) -> None:
        self.device = torch.device("cpu")


def read_image(path: Path) -> torch.Tensor:
    """C x H x W uint8 RGB, decoded by OpenCV as photoholmes' ``read_image``."""
    return torch.from_numpy(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
                            .transpose(2, 0, 1).copy())


def read_luma_table(path: Path) -> torch.Tensor:
    """The file's first JPEG quantization table as 8 x 8; a non-JPEG is compressed at
    quality 100 first (photoholmes' approximation for non-JPEG files)."""
    with Image.open(path) as im:
        if im.format != "JPEG":
            buf = io.BytesIO()
            im.convert("RGB").save(buf, format="JPEG", quality=100)
            return read_luma_table_from(buf)
        return torch.tensor(np.array(im.quantization[0]).reshape(8, 8))


def read_luma_table_from(buf: io.BytesIO) -> torch.Tensor:
    buf.seek(0)
    with Image.open(buf) as im:
        return torch.tensor(np.array(im.quantization[0]).reshape(8, 8))


class FolderDataset:
    """``root/images/<name>.<ext>`` with ``root/masks/<name>.png`` (white = tampered);
    an image without a mask file is pristine."""

    def __init__(self, root: Path, preprocessing_pipeline: Any | None = None,
                 load: tuple[str, ...] = ("image",)) -> None:
        self.load = list(preprocessing_pipeline.inputs) if preprocessing_pipeline else list(load)
        self.preprocessing_pipeline = preprocessing_pipeline
        self.image_paths = sorted(p for p in (root / "images").iterdir() if p.is_file())
        masks = root / "masks"
        self.mask_paths = [masks / f"{p.stem}.png" if (masks / f"{p.stem}.png").exists()
                           else None for p in self.image_paths]
        self.tampered_only = False

    def __len__(self) -> int:
        return len(self.image_paths)

    def __getitem__(self, idx: int) -> tuple[dict[str, Any], torch.Tensor, str]:
        path = self.image_paths[idx]
        image = read_image(path)
        x: dict[str, Any] = {"image": image}
        if "qtables" in self.load:
            x["qtables"] = read_luma_table(path)
        if self.mask_paths[idx] is None:
            mask = torch.zeros(image.shape[-2:], dtype=torch.float32)
        else:
            mask = (read_image(self.mask_paths[idx])[0] > 127).float()
        if self.preprocessing_pipeline is not None:
            x = self.preprocessing_pipeline(**x)
        return x, mask, path.stem


class AUROC:
    """Binary area under the ROC curve over everything updated (float preds only)."""

    def __init__(self) -> None:
        self.preds: list[np.ndarray] = []
        self.target: list[np.ndarray] = []

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        if preds.shape != target.shape:
            raise ValueError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} "
                             "must have the same shape")
        if not preds.is_floating_point():
            raise ValueError(f"AUROC needs float preds, got {preds.dtype}")
        self.preds.append(preds.detach().cpu().flatten().numpy())
        self.target.append(target.detach().cpu().flatten().numpy().astype(int))

    def compute(self) -> torch.Tensor:
        return torch.tensor(roc_auc_score(np.concatenate(self.target),
                                          np.concatenate(self.preds)))


class WeightedIoU:
    """photoholmes' IoU_weighted_v1: mean over images of TPw / (TPw + FPw + FNw)."""

    def __init__(self) -> None:
        self.total = torch.tensor(0.0)
        self.images = torch.tensor(0.0)

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        if preds.shape != target.shape:
            raise ValueError("preds and target must have the same shape")
        target = target.to(torch.int).flatten()
        pred = preds.flatten()
        tp, fp, fn = (torch.sum(pred * target), torch.sum((1 - pred) * target),
                      torch.sum(pred * (1 - target)))
        if tp + fp + fn != 0:
            self.total += (tp / (tp + fp + fn)).cpu()
        self.images += 1

    def compute(self) -> torch.Tensor:
        return self.total / self.images if self.images else torch.tensor(0.0)


class Benchmark:
    """photoholmes' ``Benchmark``: runs a method over a dataset and scores its outputs."""

    def __init__(self, output_folder: Path, device: str = "cpu",
                 use_existing_output: bool = True, save_extra_outputs: bool = True) -> None:
        self.output_path = Path(output_folder)
        self.device = torch.device(device)
        self.use_existing_output = use_existing_output
        self.save_extra_outputs = save_extra_outputs

    def run(self, method: Any, dataset: FolderDataset,
            metrics: list[type]) -> dict[str, dict[str, float]]:
        if method.device != self.device:
            method.to_device(self.device)
        out_dir = (self.output_path / type(method).__name__.lower()
                   / type(dataset).__name__.lower())
        kinds = ("heatmap", "mask", "detection")
        collections = {k: {m.__name__: m() for m in metrics} for k in kinds}
        seen: set[str] = set()
        for data, mask, name in dataset:
            output = self._load(out_dir, name) if self.use_existing_output else None
            if output is None:
                inputs = {k: v.to(self.device, dtype=torch.float32)
                          if isinstance(v, torch.Tensor) else v for k, v in data.items()}
                output = method.benchmark(**inputs)
                self._save(out_dir, name, output)
            mask = mask.to(self.device)
            for kind in kinds:
                value = output[kind]
                if value is None:
                    continue
                if kind == "detection":
                    value = value.squeeze(0) if value.ndim == 2 else value
                    target = torch.tensor(int(torch.any(mask))).unsqueeze(0).to(self.device)
                else:
                    value = value.squeeze(0) if value.ndim == 3 else value
                    target = mask
                for metric in collections[kind].values():
                    metric.update(value, target)
                seen.add(kind)
        results = {k: {n: float(m.compute()) for n, m in collections[k].items()}
                   for k in kinds if k in seen}
        (out_dir / "metrics").mkdir(parents=True, exist_ok=True)
        (out_dir / "metrics" / "report.json").write_text(json.dumps(results))
        return results

    def _save(self, out_dir: Path, name: str, output: dict[str, Any]) -> None:
        folder = out_dir / "outputs" / name
        folder.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(folder / "output", **{
            k: output[k].cpu().numpy() for k in ("heatmap", "mask", "detection")
            if output[k] is not None})
        extra = output.get("extra_outputs")
        if extra is not None and self.save_extra_outputs:
            arrays = {k: v.cpu() for k, v in extra.items() if isinstance(v, torch.Tensor)}
            np.savez_compressed(folder / "extra_outputs_arrays", **arrays)
            other = {k: v for k, v in extra.items() if not isinstance(v, torch.Tensor)}
            (folder / "extra_outputs_other.json").write_text(json.dumps(other))

    def _load(self, out_dir: Path, name: str) -> dict[str, Any] | None:
        path = out_dir / "outputs" / name / "output.npz"
        if not path.exists():
            return None
        saved = np.load(path, allow_pickle=True)
        return {k: torch.tensor(saved[k], device=self.device) if k in saved else None
                for k in ("heatmap", "mask", "detection")}
