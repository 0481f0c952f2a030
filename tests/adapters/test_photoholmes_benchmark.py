"""noisead.Method run inside a photoholmes-protocol benchmark (photoholmes_standin.py).

The tiny dataset is cut from the bundled example: two crops that hold part of the pasted
region (with their masks) and two crops of untouched astronaut, one of them saved as a
JPEG at quality 90.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from photoholmes_standin import AUROC, BaseMethod, Benchmark, FolderDataset, WeightedIoU
from PIL import Image
from sklearn.metrics import roc_auc_score

import noisead
from noisead.method import noisead_jpeg_preprocessing, noisead_preprocessing

CROP = 192
FORGED = {"forged_a": (151, 186), "forged_b": (200, 250)}
PRISTINE = {"pristine_a": (0, 0), "pristine_b": (320, 0)}


@pytest.fixture(scope="module")
def method() -> noisead.Method:
    return noisead.Method()


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    examples = resources.files("noisead") / "examples"
    image = np.asarray(Image.open(examples / "spliced.png").convert("RGB"))
    mask = np.asarray(Image.open(examples / "spliced.mask.png").convert("L")) > 127
    root = tmp_path_factory.mktemp("photoholmes-dataset")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for name, (y, x) in {**FORGED, **PRISTINE}.items():
        crop, crop_mask = image[y:y + CROP, x:x + CROP], mask[y:y + CROP, x:x + CROP]
        if name in FORGED:
            assert 0.2 < crop_mask.mean() < 0.8
            Image.fromarray(crop_mask.astype(np.uint8) * 255).save(root / "masks" / f"{name}.png")
        else:
            assert not crop_mask.any()
        if name == "pristine_b":
            Image.fromarray(crop).save(root / "images" / f"{name}.jpg", quality=90)
        else:
            Image.fromarray(crop).save(root / "images" / f"{name}.png")
    return root


def test_benchmark_scores_noisead_and_reuses_saved_outputs(method, dataset_root, tmp_path):
    dataset = FolderDataset(dataset_root, preprocessing_pipeline=noisead_preprocessing)
    bench = Benchmark(tmp_path / "output")
    metrics = bench.run(method, dataset, [AUROC, WeightedIoU])

    assert set(metrics) == {"heatmap", "mask", "detection"}
    # both forged crops score far above both untouched ones
    assert metrics["detection"]["AUROC"] == 1.0
    assert metrics["heatmap"]["AUROC"] > 0.7
    assert 0.0 < metrics["mask"]["WeightedIoU"] <= 1.0

    # the saved outputs are what the metrics saw: recompute the pixel AUROC from them
    out = tmp_path / "output" / "noisead" / "folderdataset"
    heat, truth = [], []
    for p in dataset.image_paths:
        saved = np.load(out / "outputs" / p.stem / "output.npz")
        assert saved["heatmap"].shape == (CROP, CROP) and saved["heatmap"].dtype == np.float32
        assert set(np.unique(saved["mask"])) <= {0.0, 1.0}
        assert saved["detection"].shape == (1,)
        heat.append(saved["heatmap"].ravel())
        mask_file = dataset_root / "masks" / f"{p.stem}.png"
        truth.append((np.asarray(Image.open(mask_file).convert("L")) > 127).ravel()
                     if mask_file.exists() else np.zeros(CROP * CROP, bool))
        extra = json.loads((out / "outputs" / p.stem / "extra_outputs_other.json").read_text())
        assert extra["decision"] in ("flagged", "not flagged", "not enough texture to judge")
        assert extra["verdict"] == extra["verdict_details"]["text"]
        fingerprint = np.load(out / "outputs" / p.stem / "extra_outputs_arrays.npz")
        assert fingerprint["fingerprint"].shape == (CROP, CROP)
    pooled = roc_auc_score(np.concatenate(truth), np.concatenate(heat))
    assert pooled == pytest.approx(metrics["heatmap"]["AUROC"], abs=1e-6)

    # a rerun reads the saved outputs instead of analysing again (photoholmes' default)
    class Refuses(BaseMethod):
        def benchmark(self, **_):
            raise AssertionError("the benchmark should have reused the saved outputs")

    Refuses.__name__ = "Noisead"
    assert bench.run(Refuses(), dataset, [AUROC, WeightedIoU]) == metrics


def test_jpeg_pipeline_passes_the_tables_and_the_caveat_comes_out(method, dataset_root, tmp_path):
    dataset = FolderDataset(dataset_root, preprocessing_pipeline=noisead_jpeg_preprocessing)
    assert dataset.load == ["image", "qtables"]
    bench = Benchmark(tmp_path / "output")
    bench.run(method, dataset, [AUROC])
    out = tmp_path / "output" / "noisead" / "folderdataset" / "outputs"
    caveats = {p.stem: json.loads((out / p.stem / "extra_outputs_other.json").read_text())
               ["score_caveat"] for p in dataset.image_paths}
    # the PNGs get photoholmes' quality-100 approximation, which weakens nothing
    assert caveats == {"forged_a": None, "forged_b": None, "pristine_a": None,
                       "pristine_b": "JPEG, quality 90"}


def test_the_photoholmes_float32_cast_of_raw_tensors_gives_the_same_analysis(method, dataset_root):
    """Without noisead's pipeline, photoholmes' Benchmark hands the method the uint8 tensor
    cast to float32 (0..255): the result must equal the analysis of the file itself."""
    path = dataset_root / "images" / "forged_a.png"
    raw = FolderDataset(dataset_root)[0][0]["image"]
    from_cast = method.benchmark(image=raw.to(torch.float32))
    from_file = method.predict(path)
    assert torch.equal(from_cast["heatmap"], from_file["heatmap"])
    assert torch.equal(from_cast["detection"], from_file["detection"])


def test_a_photoholmes_subclass_is_a_base_method_and_runs(method, dataset_root, tmp_path):
    """The docs' recipe for code that checks ``isinstance(m, BaseMethod)``."""

    class NoiseadMethod(noisead.Method, BaseMethod):
        pass

    m = NoiseadMethod()
    assert isinstance(m, BaseMethod)
    dataset = FolderDataset(dataset_root, preprocessing_pipeline=noisead_preprocessing)
    metrics = Benchmark(tmp_path / "o").run(m, dataset, [AUROC])
    assert metrics["detection"]["AUROC"] == 1.0
    assert (tmp_path / "o" / "noiseadmethod" / "folderdataset" / "outputs").is_dir()
