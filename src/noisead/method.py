"""``noisead.Method``: noisead behind the interface of photoholmes' methods.

photoholmes, a library that benchmarks image-forensics methods side by side, runs each
method the same way: a *preprocessing pipeline* (an object with ``inputs``,
``outputs_keys`` and ``__call__(**raw)``) turns what its dataset reads — ``"image"``, a
C x H x W ``uint8`` tensor, and on request the JPEG ``"qtables"`` — into the keyword
arguments of the method's ``benchmark``, which returns a dict of torch tensors:
``heatmap`` (H x W, higher = more suspicious), ``mask`` (H x W, 0/1) and ``detection``
(shape ``(1,)``, 1 = forged), plus ``extra_outputs``. Its ``Benchmark`` also reads
``method.device`` and calls ``method.to_device()``; its factories call
``Method.from_config()``.

:class:`Noisead` (exported as ``noisead.Method``) gives noisead that shape without
depending on photoholmes, so it runs inside photoholmes' ``Benchmark`` as it is, and in
any loop written for photoholmes methods. The detector is loaded once, in the constructor.
docs/ADAPTERS.md has the recipe.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from noisead.anomaly.config import MODES, Mode
from noisead.infer import Analysis, analyze, load_detector, with_statistics_parts
from noisead.io import DEFAULT_MAX_PIXELS, LoadedImage, image_from_array

__all__ = ["Method", "Noisead", "Preprocessing", "noisead_jpeg_preprocessing",
           "noisead_preprocessing", "to_pixels"]

ImageInput = str | Path | np.ndarray | torch.Tensor | LoadedImage


def to_pixels(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """An image as photoholmes passes it, as noisead's float32 H x W x 3 RGB in [0, 1].

    Tensors are C x H x W (photoholmes' layout; a batch of one, 1 x C x H x W, is accepted),
    arrays H x W x C (noisead's and photoholmes' ``ToNumpy`` layout); both may be H x W.
    Values: ``uint8``, ``uint16``, floats in [0, 1], or floats holding whole numbers in
    [0, 255] — what photoholmes' ``Benchmark`` makes of a ``uint8`` tensor, since it casts
    every input tensor to float32 without rescaling. Any other float range raises
    ``ValueError``: a mis-scaled image ruins a noise analysis without any other sign.
    """
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim == 3:
            t = t.permute(1, 2, 0)
        elif t.ndim != 2:
            raise ValueError(f"expected an image tensor C x H x W or H x W, got shape "
                             f"{tuple(image.shape)}")
        array = t.float().numpy() if t.dtype in (torch.float16, torch.bfloat16) else t.numpy()
    elif isinstance(image, np.ndarray):
        array = image
    else:
        raise ValueError(f"expected a numpy array or a torch tensor, got {type(image).__name__}")
    if np.issubdtype(array.dtype, np.floating) and array.size and np.isfinite(array).all():
        top = float(array.max())
        if 1.0 + 1e-3 < top <= 255.0 and float(array.min()) >= 0.0 \
                and np.array_equal(array, np.round(array)):
            array = array.astype(np.float32) / np.float32(255.0)
    return image_from_array(array)


def qtables_to_pil(qtables: Any) -> dict[int, list[int]]:
    """photoholmes' ``qtables`` (the luma table, 8 x 8, or all tables, N x 8 x 8) as the
    ``{0: [64 values]}`` of PIL's ``quantization`` that noisead's JPEG caveat reads."""
    if isinstance(qtables, dict):
        return {int(k): [int(v) for v in table] for k, table in qtables.items()}
    table = qtables.detach().cpu().numpy() if isinstance(qtables, torch.Tensor) \
        else np.asarray(qtables)
    if table.ndim == 3:
        table = table[0]
    if table.size != 64:
        raise ValueError(f"qtables: expected an 8 x 8 quantization table (or N x 8 x 8), "
                         f"got shape {table.shape}")
    return {0: [int(v) for v in table.reshape(-1)]}


class Preprocessing:
    """A preprocessing pipeline in photoholmes' protocol, for :class:`Noisead`.

    ``inputs`` are the raw items the dataset must read (``"image"``, and ``"qtables"``
    for the JPEG caveat); the call returns the keyword arguments of ``predict`` and
    ``benchmark``: the image already converted by :func:`to_pixels` (so photoholmes'
    ``Benchmark``, which casts input tensors to float32, leaves it alone) and the tables
    as a numpy array.
    """

    def __init__(self, inputs: Sequence[str] = ("image",)) -> None:
        unknown = set(inputs) - {"image", "qtables"}
        if "image" not in inputs or unknown:
            raise ValueError(f"inputs must be 'image' and optionally 'qtables', got "
                             f"{list(inputs)}")
        self.inputs = list(inputs)
        self.outputs_keys = list(inputs)

    def __call__(self, **raw: Any) -> dict[str, Any]:
        missing = [k for k in self.inputs if k not in raw]
        if missing:
            raise ValueError(f"missing input {missing[0]!r}: this pipeline takes {self.inputs}")
        out: dict[str, Any] = {"image": to_pixels(raw["image"])}
        if "qtables" in self.inputs:
            q = raw["qtables"]
            out["qtables"] = q.detach().cpu().numpy() if isinstance(q, torch.Tensor) \
                else np.asarray(q)
        return out

    def __repr__(self) -> str:
        return f"Preprocessing(inputs={self.inputs})"


#: The pipeline for :class:`Noisead` on any dataset.
noisead_preprocessing = Preprocessing(("image",))
#: The same, also passing the JPEG tables, so that ``extra_outputs`` carries the caveat
#: of a recompressed JPEG (photoholmes then reads the files' DCT data with jpegio).
noisead_jpeg_preprocessing = Preprocessing(("image", "qtables"))


class Noisead:
    """noisead as a photoholmes method: ``predict``/``benchmark`` return torch tensors.

    Args:
        model: a shipped model name (``noisead models``) or a detector ``.safetensors``;
            the default model if None.
        mode: a :class:`~noisead.anomaly.config.Mode` (or its name, ``"reference"`` or
            ``"blind"``); the model's own default if None.
        threshold: on the calibrated heatmap, for the mask; the model's default if None.
        max_pixels: refuse larger image files (decompression bombs); None disables it.
        device: where the output tensors are put (``to_device``). The analysis itself runs
            on the CPU, where the detector was calibrated.
        parts: ``"auto"`` measures the noise statistics against the larger of two parts of
            each image (for splices covering up to half of it; the heatmap only, the
            detection score is the one-part analysis'); the model's own (``"one"``) if None.
    """

    def __init__(self, model: str | Path | None = None, mode: str | Mode | None = None,
                 threshold: float | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 device: str | torch.device = "cpu", parts: str | None = None) -> None:
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.detector = with_statistics_parts(load_detector(model), parts)
        self.parts = parts
        self.model, self.mode, self.threshold = model, mode, threshold
        self.max_pixels = max_pixels
        self.device = torch.device(device)

    @classmethod
    def from_config(cls, config: str | Path | dict[str, Any] | None) -> Noisead:
        """Build from a dict of constructor arguments, or a ``.json``/``.yaml`` file of them
        (photoholmes' factories configure methods this way)."""
        if isinstance(config, str | Path):
            path = Path(config)
            text = path.read_text(encoding="utf-8")
            if path.suffix.lower() in (".yaml", ".yml"):
                try:
                    import yaml
                except ModuleNotFoundError as e:
                    raise ValueError(f"{path}: reading YAML needs PyYAML (photoholmes "
                                     "installs it); or pass a dict or a .json file") from e
                config = yaml.safe_load(text)
            else:
                config = json.loads(text)
        config = dict(config or {})
        allowed = {"model", "mode", "threshold", "max_pixels", "device", "parts"}
        unknown = sorted(set(config) - allowed)
        if unknown:
            raise ValueError(f"unknown noisead method settings {unknown}; "
                             f"allowed: {sorted(allowed)}")
        return cls(**config)

    def to_device(self, device: str | torch.device) -> None:
        """Put future outputs on ``device`` (photoholmes' ``Benchmark`` compares them with
        ground truth there); the analysis stays on the CPU."""
        self.device = torch.device(device)

    def analyze(self, image: ImageInput, qtables: Any = None) -> Analysis:
        """The full :class:`noisead.infer.Analysis` (verdict, notes, evidence, fingerprint).

        ``image``: a file path (decoded safely, JPEG tables read from the file), a
        ``LoadedImage``, or pixels as :func:`to_pixels` takes them. ``qtables``: the JPEG
        quantization tables of those pixels' file, if any (photoholmes' ``qtables``).
        """
        if isinstance(image, str | Path | LoadedImage):
            if qtables is not None:
                raise ValueError("qtables are read from the file itself; pass them only "
                                 "with pixels")
            source: Any = image
        else:
            pixels = to_pixels(image)
            source = pixels
            if qtables is not None:
                h, w = pixels.shape[:2]
                source = LoadedImage(pixels=pixels, path=None, original_mode="RGB",
                                     original_size=(w, h), notes=(),
                                     jpeg_quality_tables=qtables_to_pil(qtables))
        return analyze(source, self.detector, mode=self.mode, threshold=self.threshold,
                       max_pixels=self.max_pixels)

    def predict(self, image: ImageInput, qtables: Any = None) -> dict[str, Any]:
        """``{"heatmap", "mask", "detection", "extra_outputs"}`` for one image.

        heatmap: H x W float32 in [0, 1], calibrated (a value v: a share v of pristine
        pixels score lower). mask: H x W float32, 1 where the heatmap reaches the threshold
        (float, not bool, so photoholmes' weighted metrics can compute ``1 - mask``).
        detection: shape (1,), the calibrated image score. extra_outputs: the decision
        shown to a person (``decision``, ``verdict`` — its sentence — and ``verdict_details``),
        the ``score_caveat``, the ``texture`` check, the ``fingerprint`` (H x W tensor), the
        ``mode`` and ``model``. The detection is the score even where the decision is "not
        enough texture to judge", so that a benchmark scores every image.
        """
        result = self.analyze(image, qtables)
        verdict = result.verdict
        extra = {"decision": verdict.decision.value if verdict else None,
                 "verdict": verdict.text if verdict else None,
                 "verdict_details": verdict.to_dict() if verdict else None,
                 "score_caveat": result.score_caveat,
                 "texture": result.texture.to_dict() if result.texture else None,
                 "fingerprint": torch.from_numpy(np.asarray(result.fingerprint,
                                                            np.float32)).to(self.device),
                 "mode": result.mode, "model": result.model}
        return {"heatmap": torch.from_numpy(np.asarray(result.heatmap, np.float32)
                                            ).to(self.device),
                "mask": torch.from_numpy(result.mask.astype(np.float32)).to(self.device),
                "detection": torch.tensor([result.score], dtype=torch.float32,
                                          device=self.device),
                "extra_outputs": extra}

    def benchmark(self, image: ImageInput, qtables: Any = None) -> dict[str, Any]:
        """What photoholmes' ``Benchmark`` calls: the same dict as :meth:`predict`."""
        return self.predict(image, qtables)

    def __repr__(self) -> str:
        return (f"noisead.Method(model={self.model!r}, mode={self.mode!r}, "
                f"threshold={self.threshold!r}, device={str(self.device)!r}, "
                f"parts={self.parts!r})")


#: The name the issue tracker and the docs use.
Method = Noisead
