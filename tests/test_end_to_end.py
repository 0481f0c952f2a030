"""End to end: train for seconds on synthetic cameras, fit, and find a planted region.

Two synthetic "camera models" differ only in their noise traces: model A adds noise that
is correlated along rows, model B adds white noise. Content
is the same kind of smooth random field for both. An extractor trained for a few seconds
with the DBL loss, plus the anomaly model, must flag a region of B pasted into an A image.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from noisead.anomaly.detector import Detector, DetectorConfig
from noisead.anomaly.fit import fit_detector
from noisead.cli import main
from noisead.data.patches import BatchSpec
from noisead.infer import analyze
from noisead.models.registry import load_extractor
from noisead.train.extractor import TrainConfig, train_extractor


def _content(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = ndimage.gaussian_filter(rng.random((h, w, 3)), sigma=(6, 6, 0))
    base = (base - base.min()) / (np.ptp(base) + 1e-9)
    return 0.2 + 0.6 * base


def camera_a(rng, h, w):
    noise = ndimage.uniform_filter1d(rng.normal(0, 0.05, (h, w, 3)), 5, axis=1)
    return np.clip(_content(rng, h, w) + noise, 0, 1)


def camera_b(rng, h, w):
    return np.clip(_content(rng, h, w) + rng.normal(0, 0.03, (h, w, 3)), 0, 1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cams")
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, make in (("cam-a", camera_a), ("cam-b", camera_b), ("cam-c", camera_b)):
        (root / name).mkdir()
        for i in range(4):
            img = make(rng, 96, 96) if name != "cam-c" else np.clip(
                _content(rng, 96, 96) + rng.normal(0, 0.01, (96, 96, 3)), 0, 1)
            Image.fromarray((img * 255).round().astype(np.uint8)).save(root / name / f"{i}.png")
    run = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(model="dncnn-tiny", steps=40, lr=1e-3, seed=0, val_fraction=0.0,
                      checkpoint_every=20, precision="fp32",
                      batch=BatchSpec(patch_size=32, models_per_batch=3, images_per_model=3,
                                      positions_per_model=2))
    result = train_extractor([root], run, cfg, progress=False)
    return root, run, result


def test_training_writes_extractor_and_log(trained):
    _, run, result = trained
    assert (run / "extractor.safetensors").is_file()
    meta = json.loads((run / "extractor.json").read_text())
    assert meta["architecture"] == "dncnn" and meta["training"]["cameras"]
    assert len(result.history) == 40


def test_training_lowers_the_loss_on_fixed_batches(trained):
    """Batch losses are noisy; compare initial and trained weights on the same batches."""
    root, run, _ = trained
    from noisead.data.cameras import list_camera_images
    from noisead.data.patches import PatchPairSampler, load_camera_arrays
    from noisead.models.registry import create_model
    from noisead.train.extractor import pair_verification_auc, seed_everything

    arrays = load_camera_arrays(list_camera_images(root), progress=False)
    sampler = PatchPairSampler(arrays, BatchSpec(patch_size=32, models_per_batch=3,
                                                 images_per_model=3, positions_per_model=2),
                               seed=123)
    batches = [sampler.sample() for _ in range(8)]
    seed_everything(0)
    initial = create_model("dncnn-tiny")  # the same initial weights as the training run
    trained_model, _ = load_extractor(run / "extractor.safetensors")
    _, loss_before = pair_verification_auc(initial, batches)
    _, loss_after = pair_verification_auc(trained_model, batches)
    assert loss_after < loss_before


def test_resume_continues_from_checkpoint(trained, tmp_path):
    root, run, _ = trained
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    cfg = json.loads((copy / "train_config.json").read_text())
    cfg["steps"] = 45
    config = TrainConfig.from_dict(cfg)
    result = train_extractor([root], copy, config, progress=False)
    assert [h["step"] for h in result.history][-6:] == [40, 41, 42, 43, 44, 45]


@pytest.mark.parametrize("mode", ["blind", "reference"])
def test_planted_region_stands_out(trained, mode, tmp_path):
    _, run, _ = trained
    model, _ = load_extractor(run / "extractor.safetensors")
    rng = np.random.default_rng(5)
    pristine = [camera_a(rng, 128, 128).astype(np.float32) for _ in range(6)]
    det = fit_detector(model, pristine, DetectorConfig(patch_size=32, crop_size=64, tile=96,
                                                       smoothing_sigma=4, mode=mode),
                       progress=False)
    image = camera_a(rng, 160, 160)
    mask = np.zeros((160, 160), bool)
    mask[48:112, 56:120] = True
    image[mask] = camera_b(rng, 160, 160)[mask]
    result = analyze(image.astype(np.float32), det)
    assert result.heatmap.shape == mask.shape and 0 <= result.heatmap.min() <= 1
    auc = roc_auc_score(mask.ravel(), result.heatmap.ravel())
    assert auc >= 0.9, auc
    assert result.mask[mask].mean() > result.mask[~mask].mean()
    # saved and reloaded detector gives the same heatmap
    path = det.save(tmp_path / "det.safetensors", name="test")
    again = analyze(image.astype(np.float32), path)
    np.testing.assert_allclose(again.heatmap, result.heatmap, atol=1e-5)


def test_cli_batch_reports_bad_file_and_finishes_the_rest(trained, tmp_path):
    _, run, _ = trained
    model, _ = load_extractor(run / "extractor.safetensors")
    rng = np.random.default_rng(9)
    det = fit_detector(model, [camera_a(rng, 128, 128).astype(np.float32) for _ in range(4)],
                       DetectorConfig(patch_size=32, crop_size=64, tile=96), progress=False)
    det_path = det.save(tmp_path / "det.safetensors", name="test")
    from PIL import Image

    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray((camera_a(rng, 96, 96) * 255).astype(np.uint8)).save(inputs / "good.png")
    (inputs / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(inputs / "tiny.png")
    out = tmp_path / "out"
    code = main(["--quiet", "analyze", str(inputs), "-o", str(out), "--model", str(det_path)])
    assert code == 1  # some files failed
    for kind in ("heatmap", "mask", "overlay", "fingerprint"):
        assert (out / f"good.{kind}.png").is_file()
    report = (out / "report.html").read_text()
    assert "thumbs/good.overlay.png" in report and (out / "thumbs/good.overlay.png").is_file()
    assert "broken.jpg" in report  # failures are listed in the report too
    failures = (out / "failures.csv").read_text()
    assert "broken.jpg" in failures and "tiny.png" not in failures
    summary = (out / "summary.csv").read_text()  # too small: judged, not failed
    assert "tiny.png,tiny,not enough texture to judge,," in summary
    # resumable: a second run skips what is done
    code = main(["--quiet", "analyze", str(inputs / "good.png"), "-o", str(out),
                 "--model", str(det_path)])
    assert code == 0


def test_both_modes_are_calibrated_and_survive_a_round_trip(trained, tmp_path):
    """A reference-mode model analysing in blind mode must use a blind calibration: on
    pristine images of the fitted camera, the calibrated heatmap's median is then near the
    middle of the scale in both modes (a false-alarm rate), not pushed to one end."""
    _, run, _ = trained
    model, _ = load_extractor(run / "extractor.safetensors")
    rng = np.random.default_rng(11)
    pristine = [camera_a(rng, 128, 128).astype(np.float32) for _ in range(12)]
    det = fit_detector(model, pristine, DetectorConfig(patch_size=32, crop_size=64, tile=96,
                                                       mode="reference"), progress=False)
    assert set(det.mode_calibrations) == {"blind"}
    again = Detector.load(det.save(tmp_path / "det.safetensors", name="test"))
    np.testing.assert_array_equal(again.mode_calibrations["blind"][0].quantiles,
                                  det.mode_calibrations["blind"][0].quantiles)
    test_images = [camera_a(rng, 128, 128).astype(np.float32) for _ in range(4)]
    for mode in ("blind", "reference"):
        medians = [np.median(analyze(im, again, mode=mode).heatmap) for im in test_images]
        assert 0.2 < np.mean(medians) < 0.8, (mode, medians)
        assert not any("calibrated in" in n for n in analyze(test_images[0], again,
                                                             mode=mode).notes)
    # a model saved before per-mode calibration says that its blind scores are not rates
    again.mode_calibrations.clear()
    assert any("calibrated in reference mode only" in n
               for n in analyze(test_images[0], again, mode="blind").notes)


def test_add_calibrations_matches_a_fit_that_calibrated_both_modes(trained):
    """A model fitted in one mode, calibrated later, ends as if both had been fitted."""
    from noisead.anomaly.fit import add_calibrations

    _, run, _ = trained
    model, _ = load_extractor(run / "extractor.safetensors")
    rng = np.random.default_rng(12)
    pristine = [camera_a(rng, 96, 96).astype(np.float32) for _ in range(8)]
    config = DetectorConfig(patch_size=32, crop_size=64, tile=96, mode="reference")
    both = fit_detector(model, pristine, config, progress=False)
    one = fit_detector(model, pristine, config, calibrate_modes=(), progress=False)
    assert not one.mode_calibrations
    add_calibrations(one, pristine, progress=False)
    np.testing.assert_array_equal(one.mode_calibrations["blind"][0].quantiles,
                                  both.mode_calibrations["blind"][0].quantiles)
    np.testing.assert_array_equal(one.calibration.quantiles, both.calibration.quantiles)


def test_cli_fit_detector_embeds_the_chosen_taps(trained, tmp_path, capsys):
    """``--taps`` picks the layers whose activations make the embedding; a name that is not
    a layer of the extractor is refused with a clear message."""
    root, run, _ = trained
    out = tmp_path / "taps.safetensors"
    args = ["--quiet", "fit-detector", str(root / "cam-a"), "--extractor",
            str(run / "extractor.safetensors"), "--patch-size", "32", "--crop-size", "64",
            "--crops-per-image", "1", "-o", str(out)]
    assert main([*args, "--taps", "layers.1,fingerprint"]) == 0
    det = Detector.load(out)
    assert det.taps == ("layers.1", "fingerprint")
    assert json.loads(out.with_suffix(".json").read_text())["detector"]["taps"] == [
        "layers.1", "fingerprint"]
    assert main([*args, "--taps", "no-such-layer"]) != 0
    assert "no layer named 'no-such-layer'" in capsys.readouterr().err
