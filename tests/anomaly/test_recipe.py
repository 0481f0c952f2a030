"""The shipped detectors' recipe (noisead.anomaly.recipe) through ``noisead fit-detector``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from noisead.anomaly.config import DetectorConfig
from noisead.anomaly.detector import Detector
from noisead.anomaly.fit import fit_detector
from noisead.anomaly.recipe import extractor_from_run, pristine_crops
from noisead.cli import main
from noisead.models.registry import create_model, save_extractor

SMALL = ["--patch-size", "32", "--crop-size", "64"]


@pytest.fixture(scope="module")
def cameras(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ROOT/<model>/<image>: three camera models of three 96 x 112 photos each."""
    root = tmp_path_factory.mktemp("cameras")
    rng = np.random.default_rng(0)
    for model in ("camA", "camB", "camC"):
        (root / model).mkdir()
        for i in range(3):
            pixels = rng.integers(0, 256, (96, 112, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / model / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A training run: its last snapshot, a better one, and the validation log."""
    run = tmp_path_factory.mktemp("run")
    for seed, name in ((1, "extractor.safetensors"), (2, "extractor-best.safetensors")):
        torch.manual_seed(seed)
        save_extractor(create_model("dncnn-tiny"), run / name, training={"step": seed})
    rows = [{"step": 10, "loss": 1.0, "val_auc": 0.61234}, {"step": 20, "loss": 0.9}]
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def _fit(tmp_path: Path, cameras: Path, run: Path, *extra: str) -> Path:
    out = tmp_path / "tiny.safetensors"
    assert main(["--quiet", "fit-detector", "--cameras", str(cameras), "--run", str(run),
                 "--holdout", "camC", "--per-camera", "2", "--max-side", "80", *SMALL,
                 "--evidence", "noise-level", "-o", str(out), *extra]) == 0
    return out


def test_fit_from_cameras_is_the_recipe(tmp_path, cameras, run):
    det = Detector.load(_fit(tmp_path, cameras, run))
    assert det.info["pristine"] == {"n_images": 4, "per_camera": 2, "max_side": 80,
                                    "holdout": ["camC"]}
    assert det.info["name"] == "tiny" and det.info["fit_command"]
    assert det.info["extractor_training"] == {"step": 2, "validation_by_step": {"10": 0.6123},
                                              "steps_trained": 20}
    # the same as fitting the best snapshot on the crops by hand
    images, paths = pristine_crops([cameras], ["camC"], 2, 80)
    assert [p.parent.name for p in paths] == ["camA", "camA", "camB", "camB"]
    assert all(im.shape == (80, 80, 3) for im in images)
    extractor, _ = extractor_from_run(run)
    by_hand = fit_detector(extractor, images,
                           DetectorConfig(patch_size=32, crop_size=64, evidence=("noise-level",)),
                           progress=False)
    assert det.config == by_hand.config
    for a, b in ((det.gaussian.mean, by_hand.gaussian.mean),
                 (det.gaussian.whitener, by_hand.gaussian.whitener)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(det.calibration.quantiles, by_hand.calibration.quantiles)


def test_calibrate_only_keeps_the_gaussians(tmp_path, cameras, run):
    fitted = _fit(tmp_path, cameras, run)
    learned = tmp_path / "learned.safetensors"
    assert main(["--quiet", "fit-detector", "--calibrate-only", str(fitted), "--cameras",
                 str(cameras), "--learned-only", "-o", str(learned)]) == 0
    before, after = Detector.load(fitted), Detector.load(learned)
    assert after.config.evidence == () and after.info["name"] == "tiny-learned-only"
    assert "recalibrated_learned_only" in after.info
    np.testing.assert_array_equal(after.gaussian.mean.numpy(), before.gaussian.mean.numpy())
    assert not np.array_equal(after.calibration.quantiles, before.calibration.quantiles)
    assert main(["--quiet", "fit-detector", "--calibrate-only", str(learned), "--cameras",
                 str(cameras), "--evidence", "all"]) == 0
    again = Detector.load(learned)
    assert again.config.evidence == ("noise-level", "noise-spectrum", "jpeg-lattice")
    assert again.info["recalibrated_with_evidence"]["evidence"] == list(again.config.evidence)


def test_the_learned_weight_is_set_by_a_fit_or_a_recalibration(tmp_path, cameras, run):
    fitted = Detector.load(_fit(tmp_path, cameras, run, "--learned-weight", "0"))
    assert fitted.config.learned_weight == 0.0
    one = _fit(tmp_path / "one", cameras, run)
    before = Detector.load(one)
    assert before.config.learned_weight == 1.0
    assert main(["--quiet", "fit-detector", "--calibrate-only", str(one), "--cameras",
                 str(cameras), "--learned-weight", "0"]) == 0
    after = Detector.load(one)
    assert after.config.learned_weight == 0.0
    assert after.info["recalibrated_with_learned_weight"]["learned_weight"] == 0.0
    np.testing.assert_array_equal(after.gaussian.mean.numpy(), before.gaussian.mean.numpy())
    # recalibrated as a fresh fit at weight 0 is calibrated: the same quantiles
    np.testing.assert_array_equal(after.calibration.quantiles, fitted.calibration.quantiles)


def test_calibrate_only_refuses_another_pristine_set(tmp_path, cameras, run, capsys):
    fitted = _fit(tmp_path, cameras, run, "--per-camera", "1")
    assert main(["--quiet", "fit-detector", "--calibrate-only", str(fitted), "--cameras",
                 str(cameras), "--learned-only"]) == 0
    (cameras.parent / "more").mkdir(exist_ok=True)
    moved = cameras.parent / "more" / "camD"
    moved.mkdir(exist_ok=True)
    for i in range(2):
        Image.fromarray(np.zeros((96, 96, 3), np.uint8)).save(moved / f"{i}.png")
    assert main(["--quiet", "fit-detector", "--calibrate-only", str(fitted), "--cameras",
                 str(cameras), str(moved.parent), "--learned-only"]) == 2
    assert "not the same pristine set" in capsys.readouterr().err


def test_fit_from_image_paths_with_an_extractor_file(tmp_path, cameras, run):
    out = tmp_path / "paths.safetensors"
    assert main(["--quiet", "fit-detector", str(cameras / "camA"), str(cameras / "camB"),
                 "--extractor", str(run / "extractor.safetensors"), *SMALL, "--untied",
                 "--max-images", "5", "-o", str(out)]) == 0
    det = Detector.load(out)
    assert det.config.untied and det.info["pristine"] == [str(cameras / "camA"),
                                                          str(cameras / "camB")]
    assert det.info["fit"]["images_fitted"] + det.info["fit"]["images_calibration"] == 5


@pytest.mark.parametrize(("args", "message"), [
    (["--run", "R", "--extractor", "E"], "exactly one of"),
    (["--extractor", "E"], "PRISTINE paths or with --cameras"),
    (["--calibrate-only", "D"], "needs --cameras"),
])
def test_contradictory_or_missing_choices_are_one_line_errors(tmp_path, capsys, args, message):
    assert main(["--quiet", "fit-detector", *args, "-o", str(tmp_path / "x.safetensors")]) == 2
    assert message in capsys.readouterr().err
