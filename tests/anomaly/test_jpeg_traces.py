"""JPEG lattice consistency: grid phase, quantization steps, and the per-pixel evidence map."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from noisead.anomaly.jpeg_traces import (
    MIN_STEP,
    block_dct,
    estimate_quantization,
    find_jpeg_grid,
    jpeg_lattice,
    jpeg_lattice_deviation,
)
from noisead.io.jpeg import ijg_quant_tables

#: The evidence sources of the noise statistics, and those with the JPEG lattice.
NOISE = ("noise-level", "noise-spectrum")
ALL = (*NOISE, "jpeg-lattice")


def _textured(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A uint8 colour image with texture at every scale (a JPEG of it keeps many
    non-zero coefficients), never clipped."""
    from scipy import ndimage

    base = sum(ndimage.gaussian_filter(rng.normal(size=(h, w, 3)), (s, s, 0)) * s
               for s in (1.0, 3.0, 9.0))
    base = (base - base.mean()) / base.std()
    return np.clip(128 + 35 * base, 5, 250).astype(np.uint8)


def _jpeg(u8: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, "JPEG", quality=quality, subsampling=2)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _luma(u8: np.ndarray) -> np.ndarray:
    return u8.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) - 128


def test_block_dct_is_the_orthonormal_dct_of_each_block(rng) -> None:
    from scipy.fft import dctn

    luma = rng.normal(size=(20, 27)).astype(np.float32)
    coef = block_dct(luma, (3, 2))
    assert coef.shape == (2, 3, 8, 8)
    np.testing.assert_allclose(coef[1, 2], dctn(luma[11:19, 18:26], norm="ortho"), atol=1e-4)


@pytest.mark.parametrize("offset", [(0, 0), (3, 5), (7, 1)])
def test_find_jpeg_grid_recovers_the_phase_of_a_cropped_jpeg(rng, offset) -> None:
    decoded = _jpeg(_textured(rng, 200, 216), 85)
    dy, dx = offset
    cropped = decoded[(8 - dy) % 8:, (8 - dx) % 8:]
    assert find_jpeg_grid(_luma(cropped)) == offset


@pytest.mark.parametrize("quality", [75, 90])
def test_estimated_steps_are_the_encoders_luma_table(rng, quality) -> None:
    decoded = _jpeg(_textured(rng, 384, 384), quality)
    steps, noise = estimate_quantization(block_dct(_luma(decoded)).reshape(-1, 8, 8))
    table = np.array(ijg_quant_tables(quality)[0]).reshape(8, 8)
    found = steps >= MIN_STEP
    assert found.sum() >= 10                      # the low frequencies at least
    np.testing.assert_array_equal(steps[found], table[found])
    assert np.all(noise[found] < 1.0)             # decoder rounding only


def test_no_lattice_without_jpeg_or_after_resampling(rng) -> None:
    raw = _textured(rng, 256, 256)
    assert jpeg_lattice(raw / 255.0) is None
    resized = np.asarray(Image.fromarray(_jpeg(raw, 80)).resize((230, 230), Image.BICUBIC))
    assert jpeg_lattice(resized / 255.0) is None
    assert jpeg_lattice(_jpeg(raw, 80) / 255.0 + 0.3 / 255) is None   # not 8-bit values
    assert jpeg_lattice(_jpeg(raw, 80)[:20, :20] / 255.0) is None       # too small
    assert jpeg_lattice(_jpeg(raw, 80) / 255.0) is not None


@pytest.mark.parametrize("donor", ["other grid", "never compressed", "other quality"])
def test_a_region_off_the_hosts_lattice_stands_out(rng, donor) -> None:
    host = _jpeg(_textured(rng, 256, 256), 80)
    if donor == "other grid":
        paste = _jpeg(_textured(rng, 264, 264), 80)[3:259, 5:261]
    elif donor == "never compressed":
        paste = _textured(rng, 256, 256)
    else:
        paste = _jpeg(_textured(rng, 256, 256), 93)
    mask = np.zeros((256, 256), bool)
    mask[64:160, 96:208] = True
    forged = np.where(mask[..., None], paste, host)
    score = jpeg_lattice_deviation(forged / 255.0)
    assert score is not None and score.shape == mask.shape and score.dtype == np.float32
    assert roc_auc_score(mask.ravel(), score.ravel()) > 0.97
    assert np.median(score[~mask]) < 0 < np.median(score[mask])
    # The pristine host gives no evidence of a foreign region anywhere.
    assert jpeg_lattice_deviation(host / 255.0).max() < np.median(score[mask])


def test_smooth_regions_are_neutral(rng) -> None:
    host = _textured(rng, 256, 256)
    host[:, :96] = 120                                       # flat: every AC coefficient 0
    score = jpeg_lattice_deviation(_jpeg(host, 80) / 255.0)
    assert score is not None
    assert np.abs(score[16:-16, 16:80]).max() < 1.0


def _forged_jpeg(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    host = _jpeg(_textured(rng, 128, 128), 80)
    paste = _jpeg(_textured(rng, 136, 136), 85)[5:133, 2:130]
    mask = np.zeros((128, 128), bool)
    mask[32:80, 48:112] = True
    return np.where(mask[..., None], paste, host).astype(np.float32) / 255, mask


def test_detector_fuses_the_lattice_evidence_and_says_so(rng) -> None:
    from scipy import ndimage

    from noisead.anomaly.detector import EVIDENCE, Detector, DetectorConfig
    from noisead.anomaly.evidence.jpeg_lattice import JPEG_SMOOTHING_SIGMA
    from noisead.models.registry import create_model

    image, mask = _forged_jpeg(rng)
    config = dict(patch_size=32, crop_size=64, tile=64, mode="blind")
    extractor = create_model("dncnn-tiny")
    without = Detector(extractor, DetectorConfig(**config, evidence=NOISE)).score_image(image)
    fused = Detector(extractor, DetectorConfig(**config, evidence=ALL,
                                               jpeg_host_discount=0.5)).score_image(image)
    z = ndimage.gaussian_filter(jpeg_lattice_deviation(image), JPEG_SMOOTHING_SIGMA)
    want = np.maximum(z, without.raw - 0.5 * np.maximum(-z, 0))
    np.testing.assert_allclose(fused.raw, want, rtol=1e-5, atol=1e-5)
    code = EVIDENCE.index("JPEG lattice")
    assert (fused.evidence == code).any()
    np.testing.assert_allclose(fused.raw[fused.evidence == code],
                               z[fused.evidence == code], rtol=1e-5)
    assert roc_auc_score(mask.ravel(), fused.raw.ravel()) > max(
        0.95, roc_auc_score(mask.ravel(), without.raw.ravel()))
    # An image with no lattice is scored exactly as without the option.
    raw = _textured(rng, 96, 96).astype(np.float32) / 255
    np.testing.assert_array_equal(
        Detector(extractor, DetectorConfig(**config, evidence=NOISE)).score_image(raw).raw,
        Detector(extractor, DetectorConfig(**config, evidence=ALL)).score_image(raw).raw)


def test_a_quarter_turn_keeps_the_lattice(rng) -> None:
    """EXIF orientation is applied on decoding: a rotated JPEG must still be read."""
    host = _jpeg(_textured(rng, 200, 236), 80)
    paste = _textured(rng, 200, 236)
    mask = np.zeros((200, 236), bool)
    mask[40:120, 60:160] = True
    forged = np.rot90(np.where(mask[..., None], paste, host))
    score = jpeg_lattice_deviation(np.ascontiguousarray(forged) / 255.0)
    assert score is not None
    assert roc_auc_score(np.rot90(mask).ravel(), score.ravel()) > 0.97


def test_a_finer_recompression_keeps_the_first_lattice(rng) -> None:
    """Aligned double JPEG: the host's first (coarser) steps survive a finer second pass,
    so a region compressed only by the second is still off the lattice that is found."""
    host = _jpeg(_textured(rng, 256, 256), 75)
    mask = np.zeros((256, 256), bool)
    mask[64:160, 96:208] = True
    forged = _jpeg(np.where(mask[..., None], _textured(rng, 256, 256), host), 95)
    score = jpeg_lattice_deviation(forged / 255.0)
    assert score is not None
    assert roc_auc_score(mask.ravel(), score.ravel()) > 0.95


def test_image_statistic_discounts_what_the_lattice_vouches_for(rng) -> None:
    from scipy import ndimage

    from noisead.anomaly.detector import Detector, DetectorConfig
    from noisead.anomaly.evidence.jpeg_lattice import JPEG_SMOOTHING_SIGMA
    from noisead.anomaly.score import region_quantile
    from noisead.models.registry import create_model

    image, _ = _forged_jpeg(rng)
    config = dict(patch_size=32, crop_size=64, tile=64, mode="blind")
    extractor = create_model("dncnn-tiny")
    plain = Detector(extractor, DetectorConfig(**config, evidence=NOISE)).score_image(image)
    detector = Detector(extractor, DetectorConfig(**config, evidence=ALL,
                                                  jpeg_image_discount=0.5,
                                                  jpeg_image_weight=1.5))
    maps = detector.score_image(image)
    z = ndimage.gaussian_filter(jpeg_lattice_deviation(image), JPEG_SMOOTHING_SIGMA)
    image_map = np.maximum(plain.raw - 0.5 * np.maximum(-z, 0), 1.5 * z)
    cfg = detector.config
    want = region_quantile(image_map, cfg.image_quantile, cfg.image_smoothing)
    assert maps.image_statistic == pytest.approx(want, rel=1e-5)
    assert detector.image_statistic(maps) == maps.image_statistic
    # the heatmap itself is not discounted (jpeg_host_discount 0): only the image score is
    np.testing.assert_allclose(maps.raw, np.maximum(plain.raw, z), rtol=1e-6)
    # no lattice: the plain quantile of the raw map
    raw_image = _textured(rng, 96, 96).astype(np.float32) / 255
    maps = detector.score_image(raw_image)
    assert maps.image_statistic is None
    assert detector.image_statistic(maps) == pytest.approx(
        region_quantile(maps.raw, cfg.image_quantile, cfg.image_smoothing))


def test_jpeg_settings_survive_save_and_load(rng, tmp_path) -> None:
    from noisead.anomaly.detector import Detector, DetectorConfig
    from noisead.anomaly.fit import fit_detector
    from noisead.models.registry import create_model

    pristine = [_jpeg(_textured(rng, 96, 96), 85).astype(np.float32) / 255 for _ in range(3)]
    config = DetectorConfig(patch_size=32, crop_size=64, tile=128, evidence=ALL,
                            jpeg_window=2, jpeg_image_discount=0.25)
    detector = fit_detector(create_model("dncnn-tiny"), pristine, config, progress=False)
    detector.save(tmp_path / "d.safetensors")
    loaded = Detector.load(tmp_path / "d.safetensors")
    assert loaded.config == detector.config
    image, _ = _forged_jpeg(rng)
    a, b = detector.score_image(image), loaded.score_image(image)
    np.testing.assert_array_equal(a.raw, b.raw)
    assert a.image_statistic == b.image_statistic is not None
