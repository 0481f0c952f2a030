"""Tests of the camera-pipeline simulator: each stage does what it says, and it reproduces."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin
from scipy.ndimage import gaussian_filter

from noisead.data.simulate import (
    CFA_PATTERNS,
    DEMOSAIC_METHODS,
    CameraModelSpec,
    add_sensor_noise,
    cfa_channel_map,
    demosaic,
    downscale_scene,
    mosaic,
    prnu_pattern,
    random_camera_model,
    render,
    simulate_cameras,
)
from noisead.io.jpeg import ijg_quant_tables


def _scene(h: int = 96, w: int = 112, seed: int = 0) -> np.ndarray:
    """A smooth mid-tone colour scene with some texture (no clipping in the pipeline)."""
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([0.3 + 0.3 * yy, 0.4 + 0.2 * xx, 0.5 - 0.2 * yy * xx], axis=-1)
    return np.clip(base + 0.02 * g.standard_normal((h, w, 3)), 0, 1).astype(np.float32)


def _jpeg_model(**kw) -> CameraModelSpec:
    return replace(CameraModelSpec(name="t"), **kw)


# -- models ------------------------------------------------------------------------------


def test_random_model_is_a_function_of_its_seed():
    assert random_camera_model(7) == random_camera_model(7)
    assert random_camera_model(7, name="x") == replace(random_camera_model(7), name="x")
    a, b = random_camera_model(7), random_camera_model(8)
    assert replace(a, name="") != replace(b, name="")


def test_twenty_seeds_give_twenty_distinct_models():
    specs = [random_camera_model(s) for s in range(20)]
    keys = {
        (s.cfa, s.demosaic, s.output, s.quant_tables(), s.subsampling, s.shot_gain) for s in specs
    }
    assert len(keys) == 20
    assert len({(s.cfa, s.demosaic) for s in specs}) >= 8
    assert {s.cfa for s in specs} == set(CFA_PATTERNS)
    assert {s.demosaic for s in specs} == set(DEMOSAIC_METHODS)
    assert len({s.quant_tables() for s in specs if s.output == "jpeg"}) >= 10


def test_spec_round_trips_through_json():
    for seed in range(10):
        spec = random_camera_model(seed)
        d = json.loads(json.dumps(spec.to_dict()))
        assert CameraModelSpec.from_dict(d) == spec
        assert spec.describe().startswith("Simulated camera model")


def test_spec_rejects_bad_values():
    with pytest.raises(ValueError):
        CameraModelSpec(cfa="RGBG")
    with pytest.raises(ValueError):
        CameraModelSpec(demosaic="ahd")
    with pytest.raises(ValueError):
        CameraModelSpec(jpeg_quality=None)
    with pytest.raises(ValueError):
        CameraModelSpec(jpeg_qtables=((0,) * 64,))


# -- stages ------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_mosaic_puts_the_right_channel_at_each_site(pattern):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import colour_demosaicing as cd

    rgb = np.empty((6, 8, 3), np.float32)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 0.1, 0.5, 0.9
    raw = mosaic(rgb, pattern)
    assert raw.shape == (6, 8)
    # The top-left 2x2 cell reads the pattern row-major.
    expected = {"R": 0.1, "G": 0.5, "B": 0.9}
    cell = [raw[0, 0], raw[0, 1], raw[1, 0], raw[1, 1]]
    assert np.allclose(cell, [expected[c] for c in pattern])
    # ... and agrees with colour-demosaicing's own masks everywhere.
    r, g, b = cd.masks_CFA_Bayer((6, 8), pattern)
    ch = cfa_channel_map(pattern, (6, 8))
    assert np.array_equal(ch == 0, r) and np.array_equal(ch == 1, g)
    assert np.array_equal(ch == 2, b)


@pytest.mark.parametrize("method", DEMOSAIC_METHODS)
@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_demosaic_inverts_mosaic_on_flat_colour(pattern, method):
    rgb = np.empty((32, 32, 3), np.float32)
    rgb[:] = (0.2, 0.6, 0.4)
    out = demosaic(mosaic(rgb, pattern), pattern, method)
    assert out.dtype == np.float32 and out.shape == (32, 32, 3)
    assert np.allclose(out[4:-4, 4:-4], (0.2, 0.6, 0.4), atol=1e-3)


def test_poisson_gaussian_variance_is_a_x_plus_b_squared():
    a, b = 2e-3, 4e-3
    g = np.random.default_rng(0)
    levels = np.array([0.05, 0.2, 0.4, 0.7])
    var = []
    for x in levels:
        y = add_sensor_noise(np.full((400, 400), x, np.float32), a, b, g)
        assert abs(float(y.mean()) - x) < 2e-3  # unbiased
        var.append(float(y.var()))
    var = np.array(var)
    assert np.allclose(var, a * levels + b * b, rtol=0.05)
    slope, intercept = np.polyfit(levels, var, 1)
    assert slope == pytest.approx(a, rel=0.05)
    assert intercept == pytest.approx(b * b, rel=0.3, abs=5e-6)
    # Noise-free when both parameters are zero.
    flat = np.full((8, 8), 0.3, np.float32)
    assert np.array_equal(add_sensor_noise(flat, 0.0, 0.0, g), flat)


def test_prnu_pattern_is_fixed_per_position_and_small():
    big = prnu_pattern((150, 130), 0.01, seed=3)
    small = prnu_pattern((100, 70), 0.01, seed=3)
    assert np.array_equal(big[:100, :70], small)
    assert big.std() == pytest.approx(0.01, rel=0.1)
    assert not np.array_equal(prnu_pattern((64, 64), 0.01, seed=4), big[:64, :64])


@pytest.mark.parametrize("quality", [70, 83, 98])
def test_jpeg_output_carries_the_spec_quality_tables(quality):
    spec = _jpeg_model(jpeg_quality=quality)
    _, data = render(_scene(), spec, np.random.default_rng(0))
    assert data is not None and data[:2] == b"\xff\xd8"
    with Image.open(BytesIO(data)) as im:
        q = im.quantization
    assert tuple(q[0]) == ijg_quant_tables(quality)[0]
    assert tuple(q[1]) == ijg_quant_tables(quality)[1]


def test_jpeg_output_carries_custom_tables():
    for seed in range(40):
        spec = random_camera_model(seed)
        if spec.output == "jpeg" and spec.jpeg_qtables is not None:
            break
    else:  # pragma: no cover
        pytest.fail("no custom-table model in 40 seeds")
    _, data = render(_scene(), spec, np.random.default_rng(0))
    with Image.open(BytesIO(data)) as im:
        q = im.quantization
    assert [tuple(q[k]) for k in sorted(q)] == list(spec.jpeg_qtables)


@pytest.mark.parametrize("sub,flag", [("4:4:4", 0), ("4:2:2", 1), ("4:2:0", 2)])
def test_chroma_subsampling_is_honoured(sub, flag):
    _, data = render(_scene(), _jpeg_model(subsampling=sub), np.random.default_rng(0))
    with Image.open(BytesIO(data)) as im:
        assert JpegImagePlugin.get_sampling(im) == flag


def test_output_is_cropped_to_multiples_of_16_and_decoded():
    scene = _scene(70, 53)
    img, data = render(scene, _jpeg_model(), np.random.default_rng(0))
    assert img.shape == (64, 48, 3) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0
    with Image.open(BytesIO(data)) as im:
        assert im.size == (48, 64)
        decoded = np.asarray(im.convert("RGB"), np.float32) / 255
    assert np.array_equal(img, decoded)  # what we return is what the file holds
    with pytest.raises(ValueError):
        render(_scene(15, 40), _jpeg_model(), np.random.default_rng(0))


def test_png_model_returns_no_bytes_and_8bit_values():
    img, data = render(
        _scene(), _jpeg_model(output="png", jpeg_quality=None), np.random.default_rng(0)
    )
    assert data is None
    assert img.dtype == np.float32 and img.shape == (96, 112, 3)
    assert np.allclose(img * 255, np.rint(img * 255), atol=1e-4)


def test_noise_free_pipeline_reproduces_the_scene():
    """Inverse colour matrix / white balance / linearization match their forward stages."""
    spec = random_camera_model(11)
    spec = replace(
        spec,
        shot_gain=0.0,
        read_sigma=0.0,
        prnu_sigma=0.0,
        tone="srgb",
        sharpen_amount=0.0,
        denoise_strength=0.0,
        demosaic="bilinear",
        output="png",
        jpeg_quality=None,
        jpeg_qtables=None,
    )
    smooth = gaussian_filter(_scene(64, 64), (2, 2, 0)).astype(np.float32)
    img, _ = render(smooth, spec, np.random.default_rng(0))
    err = np.abs(img - smooth)[4:-4, 4:-4]
    assert err.max() < 4 / 255


def test_noise_and_seed_change_the_image():
    spec = _jpeg_model(output="png", jpeg_quality=None)
    a, _ = render(_scene(), spec, np.random.default_rng(1))
    b, _ = render(_scene(), spec, np.random.default_rng(1))
    c, _ = render(_scene(), spec, np.random.default_rng(2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_same_rng_gives_identical_jpeg_bytes():
    spec = random_camera_model(4)
    spec = replace(spec, output="jpeg", jpeg_quality=90, jpeg_qtables=None)
    _, d1 = render(_scene(), spec, np.random.default_rng(5))
    _, d2 = render(_scene(), spec, np.random.default_rng(5))
    assert d1 == d2


def test_downscale_scene():
    s = (np.random.default_rng(0).random((40, 62, 3)) * 255).astype(np.uint8)
    one = downscale_scene(s, 1)
    assert one.dtype == np.float32 and np.allclose(one * 255, s)
    two = downscale_scene(s, 2)
    assert two.shape == (20, 31, 3)
    assert np.allclose(two[0, 0], s[:2, :2].reshape(-1, 3).mean(0) / 255, atol=1e-5)


# -- folders -----------------------------------------------------------------------------


def _write_scenes(d: Path) -> list[str]:
    d.mkdir()
    names = []
    for k in range(3):
        arr = (_scene(64, 48, seed=k) * 255).astype(np.uint8)
        Image.fromarray(arr).save(d / f"scene{k}.png")
        names.append(f"scene{k}")
    return names


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_simulate_cameras_layout_cards_and_reproducibility(tmp_path):
    scenes = _write_scenes(tmp_path / "scenes")
    out = tmp_path / "out"
    specs = simulate_cameras(
        tmp_path / "scenes", out, n_models=4, seed=3, downscale=1, progress=False
    )
    assert len(specs) == 4 and len({s.name for s in specs}) == 4
    index = json.loads((out / "models.json").read_text())
    assert [m["name"] for m in index["models"]] == [s.name for s in specs]
    for spec in specs:
        mdir = out / spec.name
        card = json.loads((mdir / "model_card.json").read_text())
        assert CameraModelSpec.from_dict(card["spec"]) == spec
        assert isinstance(card["description"], str) and spec.name in card["description"]
        ext = ".png" if spec.output == "png" else ".jpg"
        files = sorted(p.name for p in mdir.iterdir() if p.suffix in (".png", ".jpg"))
        assert files == sorted(f"{s}{ext}" for s in scenes)
        with Image.open(mdir / f"scene0{ext}") as im:
            assert im.size == (48, 64)
            if ext == ".jpg":
                q = im.quantization
                assert [tuple(q[k]) for k in sorted(q)] == list(spec.quant_tables())
    # Same seed → byte-identical tree (also with 2 worker processes); other seed → not.
    out2 = tmp_path / "out2"
    simulate_cameras(
        tmp_path / "scenes", out2, n_models=4, seed=3, downscale=1, progress=False, workers=2
    )
    assert _tree_bytes(out) == _tree_bytes(out2)
    out3 = tmp_path / "out3"
    specs3 = simulate_cameras(
        tmp_path / "scenes", out3, n_models=4, seed=4, downscale=1, progress=False
    )
    assert [s.to_dict() for s in specs3] != [s.to_dict() for s in specs]


def test_simulate_cameras_subset_and_downscale(tmp_path):
    _write_scenes(tmp_path / "scenes")
    out = tmp_path / "out"
    specs = simulate_cameras(
        tmp_path / "scenes",
        out,
        n_models=2,
        seed=0,
        downscale=2,
        images_per_model=2,
        progress=False,
    )
    for spec in specs:
        imgs = [p for p in (out / spec.name).iterdir() if p.suffix in (".png", ".jpg")]
        assert len(imgs) == 2
        with Image.open(imgs[0]) as im:
            assert im.size == (16, 32)  # 48x64 → 24x32 → cropped to multiples of 16


def test_simulated_models_cover_cfa_and_demosaic_combos(tmp_path):
    _write_scenes(tmp_path / "scenes")
    specs = simulate_cameras(
        tmp_path / "scenes",
        tmp_path / "o",
        n_models=12,
        seed=0,
        downscale=1,
        images_per_model=1,
        progress=False,
    )
    assert len({(s.cfa, s.demosaic) for s in specs}) == 12


def test_each_image_gets_its_own_noise(tmp_path):
    d = tmp_path / "scenes"
    d.mkdir()
    arr = (_scene(48, 48) * 255).astype(np.uint8)
    Image.fromarray(arr).save(d / "a.png")
    Image.fromarray(arr).save(d / "b.png")
    (spec,) = simulate_cameras(d, tmp_path / "o", n_models=1, seed=0, downscale=1, progress=False)
    ext = ".png" if spec.output == "png" else ".jpg"
    a = (tmp_path / "o" / spec.name / f"a{ext}").read_bytes()
    b = (tmp_path / "o" / spec.name / f"b{ext}").read_bytes()
    assert a != b
