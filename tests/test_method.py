"""noisead.Method: photoholmes' method interface over noisead.infer.analyze."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import noisead
from noisead.infer import ImageTooSmallError, analyze
from noisead.io.jpeg import ijg_quant_tables
from noisead.method import Preprocessing, noisead_preprocessing, to_pixels

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def method() -> noisead.Method:
    return noisead.Method()


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    """160 x 160 uint8 RGB of the bundled example, across the pasted region's corner."""
    image = Image.open(resources.files("noisead") / "examples" / "spliced.png").convert("RGB")
    return np.asarray(image)[160:320, 200:360].copy()


def test_method_is_exported_lazily_and_version_matches_pyproject():
    code = ("import sys, noisead; assert 'torch' not in sys.modules, 'import noisead loaded "
            "torch'; m = noisead.Method; assert m is noisead.Noisead; print(noisead.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout.strip()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert out == project["version"] == noisead.__version__
    with pytest.raises(AttributeError):
        noisead.NoSuchThing  # noqa: B018


def test_predict_returns_photoholmes_benchmark_output(method, crop):
    out = method.predict(crop)
    reference = analyze(crop)
    assert set(out) == {"heatmap", "mask", "detection", "extra_outputs"}
    assert out["heatmap"].shape == out["mask"].shape == crop.shape[:2]
    assert out["heatmap"].dtype == out["mask"].dtype == torch.float32
    assert out["detection"].shape == (1,) and out["detection"].dtype == torch.float32
    np.testing.assert_array_equal(out["heatmap"].numpy(), reference.heatmap)
    np.testing.assert_array_equal(out["mask"].numpy(), reference.mask.astype(np.float32))
    assert float(out["detection"]) == pytest.approx(reference.score, abs=1e-7)
    extra = out["extra_outputs"]
    assert extra["decision"] == reference.verdict.decision.value
    assert extra["verdict"] == reference.verdict.text
    assert extra["mode"] == reference.mode and extra["model"] == "default"
    assert extra["fingerprint"].shape == crop.shape[:2]
    json.dumps({k: v for k, v in extra.items() if not isinstance(v, torch.Tensor)})
    bench = method.benchmark(image=crop)
    assert torch.equal(bench["heatmap"], out["heatmap"])


def test_analyze_exposes_the_verdict(method, crop):
    result = method.analyze(crop)
    assert result.verdict is not None and result.verdict.text
    assert result.summary()["decision"]["decision"] == result.verdict.decision.value


def test_mode_and_threshold_reach_the_analysis(crop):
    m = noisead.Method(mode="blind", threshold=0.6)
    out = m.predict(crop)
    assert out["extra_outputs"]["mode"] == "blind"
    np.testing.assert_array_equal(out["mask"].numpy(),
                                  (out["heatmap"].numpy() >= 0.6).astype(np.float32))


def test_two_part_statistics_change_the_heatmap_not_the_detection(method, crop):
    two = noisead.Method.from_config({"parts": "auto"})
    assert two.detector.config.statistics_parts == "auto" and "parts='auto'" in repr(two)
    a, b = method.analyze(crop), two.analyze(crop)
    assert (a.statistics_parts, b.statistics_parts) == ("one", "auto")
    assert a.score == b.score
    assert not np.array_equal(a.raw, b.raw)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="mode"):
        noisead.Method(mode="sideways")
    with pytest.raises(ValueError, match="statistics_parts"):
        noisead.Method(parts="three")
    with pytest.raises(FileNotFoundError, match="no model named"):
        noisead.Method(model="no-such-model")


def test_from_config_dict_and_json(tmp_path, crop):
    assert noisead.Method.from_config({"mode": "blind"}).mode == "blind"
    assert noisead.Method.from_config(None).mode is None
    path = tmp_path / "noisead.json"
    path.write_text(json.dumps({"model": "default", "threshold": 0.9}))
    assert noisead.Method.from_config(path).threshold == 0.9
    with pytest.raises(ValueError, match="unknown noisead method settings"):
        noisead.Method.from_config({"weights": "x.pth"})


def test_from_config_yaml(tmp_path):
    path = tmp_path / "noisead.yaml"
    path.write_text("mode: blind\n")
    if importlib.util.find_spec("yaml") is None:
        with pytest.raises(ValueError, match="PyYAML"):
            noisead.Method.from_config(path)
    else:
        assert noisead.Method.from_config(path).mode == "blind"


def test_outputs_follow_to_device(crop):
    m = noisead.Method()
    m.to_device("meta")  # a device every torch build has: outputs move, analysis stays
    out = m.predict(crop)
    assert m.device == torch.device("meta")
    assert out["heatmap"].device.type == out["mask"].device.type == "meta"
    assert out["detection"].device.type == "meta"


def test_qtables_give_the_jpeg_caveat(method, crop):
    q90 = torch.tensor(ijg_quant_tables(90)[0]).reshape(8, 8)
    out = method.predict(crop, qtables=q90)
    assert out["extra_outputs"]["score_caveat"] == "JPEG, quality 90"
    q100 = np.stack([np.asarray(t).reshape(8, 8) for t in ijg_quant_tables(100)])
    assert method.predict(crop, qtables=q100)["extra_outputs"]["score_caveat"] is None
    assert method.predict(crop)["extra_outputs"]["score_caveat"] is None
    with pytest.raises(ValueError, match="8 x 8"):
        method.predict(crop, qtables=np.ones(10))
    example = resources.files("noisead") / "examples" / "spliced.png"
    with pytest.raises(ValueError, match="read from the file"):
        method.predict(str(example), qtables=q90)


def test_to_pixels_layouts_and_ranges(crop):
    expected = crop.astype(np.float32) / 255
    chw = torch.from_numpy(crop).permute(2, 0, 1)
    np.testing.assert_array_equal(to_pixels(crop), expected)
    np.testing.assert_array_equal(to_pixels(chw), expected)
    np.testing.assert_array_equal(to_pixels(chw[None]), expected)
    np.testing.assert_array_equal(to_pixels(chw.float()), expected)       # photoholmes' cast
    np.testing.assert_array_equal(to_pixels(chw.float() / 255), expected)
    gray = to_pixels(torch.from_numpy(crop[..., 0]))
    assert gray.shape == crop.shape and np.array_equal(gray[..., 0], gray[..., 2])
    with pytest.raises(ValueError):
        to_pixels(chw.float() + 0.5)            # neither [0, 1] nor whole numbers
    with pytest.raises(ValueError):
        to_pixels(chw.float() * 2)              # whole numbers beyond 255
    with pytest.raises(ValueError, match="C x H x W"):
        to_pixels(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="numpy array or a torch tensor"):
        to_pixels([[0, 1], [1, 0]])


def test_preprocessing_follows_photoholmes_pipeline_protocol(crop):
    chw = torch.from_numpy(crop).permute(2, 0, 1)
    assert noisead_preprocessing.inputs == noisead_preprocessing.outputs_keys == ["image"]
    out = noisead_preprocessing(image=chw)
    assert set(out) == {"image"} and out["image"].shape == crop.shape
    jpeg = Preprocessing(("image", "qtables"))
    out = jpeg(image=chw, qtables=torch.ones(8, 8, dtype=torch.int32))
    assert isinstance(out["qtables"], np.ndarray) and out["qtables"].shape == (8, 8)
    with pytest.raises(ValueError, match="missing input 'qtables'"):
        jpeg(image=chw)
    with pytest.raises(ValueError, match="inputs must be"):
        Preprocessing(("image", "dct_coefficients"))


def test_too_small_an_image_is_refused(method):
    with pytest.raises(ImageTooSmallError):
        method.predict(np.zeros((16, 16, 3), np.uint8))
