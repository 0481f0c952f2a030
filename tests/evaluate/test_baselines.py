"""Tests for the classic noise-based localization baselines (noisead.evaluate.baselines)."""

from __future__ import annotations

import io
from math import comb

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from noisead.evaluate.baselines import (
    DB8_DEC_LO,
    HAAR_DEC_LO,
    dwt_hh,
    ela,
    noi1,
    noi1_block_sigma,
    noise_residual_variance,
)
from noisead.evaluate.methods import METHODS, BaselineMethod

#: Every registered baseline's map function, by table name.
BASELINES = {name: m.heatmap for name, m in METHODS.items() if isinstance(m, BaselineMethod)}

# ---------------------------------------------------------------------------------------------
# fixtures: synthetic images
# ---------------------------------------------------------------------------------------------


def _smooth_rgb(h: int, w: int) -> np.ndarray:
    """Smooth, noise-free colour image with values well inside (0, 1) (no clipping of noise)."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = 0.35 + 0.2 * xx + 0.1 * np.sin(2 * np.pi * yy) * np.cos(np.pi * xx)
    return np.stack([base, 0.9 * base + 0.05, 1.1 * base - 0.05], axis=2)


def _planted_noise(seed: int, size: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """Noise sigma 0.01 everywhere except a centred square (size/2.5 side) with sigma 0.05."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), dtype=bool)
    lo, hi = int(size * 0.3), int(size * 0.7)
    mask[lo:hi, lo:hi] = True
    sigma = np.where(mask, 0.05, 0.01)[..., None]
    img = _smooth_rgb(size, size) + rng.normal(size=(size, size, 3)) * sigma
    return np.clip(img, 0.0, 1.0).astype(np.float32), mask


def _half_jpeg(seed: int, size: int = 128, quality: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Left half JPEG-compressed once at ``quality``, right half never compressed.

    Returns the image and the mask of the *never-compressed* half (the half ELA scores high).
    The split is at a multiple of 16 so it falls on JPEG block (and 4:2:0 MCU) boundaries.
    """
    rng = np.random.default_rng(seed)
    img = _smooth_rgb(size, size) + rng.normal(size=(size, size, 3)) * 0.03
    u8 = np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        jpeg = np.asarray(im.convert("RGB"))
    half = size // 2
    out = u8.copy()
    out[:, :half] = jpeg[:, :half]
    mask = np.zeros((size, size), dtype=bool)
    mask[:, half:] = True
    return out.astype(np.float32) / 255.0, mask


def _auc(mask: np.ndarray, heat: np.ndarray) -> float:
    return float(roc_auc_score(mask.ravel(), heat.ravel()))


ALL = sorted(BASELINES)

# ---------------------------------------------------------------------------------------------
# API: shapes, dtypes, finiteness, determinism
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("shape", [(37, 53), (53, 37), (16, 16), (5, 3), (1, 1)])
def test_shape_dtype_finite(name: str, shape: tuple[int, int], rng: np.random.Generator) -> None:
    img = rng.random((*shape, 3), dtype=np.float32)
    heat = BASELINES[name](img)
    assert heat.shape == shape
    assert heat.dtype == np.float32
    assert np.all(np.isfinite(heat))


@pytest.mark.parametrize("name", ALL)
def test_gray_inputs_agree(name: str, rng: np.random.Generator) -> None:
    """A channel-replicated gray image, H x W and H x W x 1 input all give the same map."""
    gray = rng.random((37, 53), dtype=np.float32)
    fn = BASELINES[name]
    ref = fn(np.repeat(gray[..., None], 3, axis=2))
    assert ref.shape == (37, 53) and ref.dtype == np.float32 and np.all(np.isfinite(ref))
    np.testing.assert_array_equal(fn(gray), ref)
    np.testing.assert_array_equal(fn(gray[..., None]), ref)


@pytest.mark.parametrize("name", ALL)
def test_deterministic(name: str) -> None:
    img, _ = _planted_noise(seed=3, size=64)
    np.testing.assert_array_equal(BASELINES[name](img), BASELINES[name](img.copy()))


@pytest.mark.parametrize("name", ALL)
def test_constant_image_is_finite(name: str) -> None:
    heat = BASELINES[name](np.full((24, 40, 3), 0.5, dtype=np.float32))
    assert heat.shape == (24, 40) and np.all(np.isfinite(heat))


@pytest.mark.parametrize("name", ALL)
def test_rejects_bad_input(name: str) -> None:
    fn = BASELINES[name]
    with pytest.raises(ValueError):
        fn(np.zeros((8, 8, 4), dtype=np.float32))
    with pytest.raises(ValueError):
        fn(np.zeros((0, 8, 3), dtype=np.float32))
    bad = np.zeros((8, 8, 3), dtype=np.float32)
    bad[2, 2, 1] = np.nan
    with pytest.raises(ValueError):
        fn(bad)


# ---------------------------------------------------------------------------------------------
# wavelet step
# ---------------------------------------------------------------------------------------------


def _daubechies_by_spectral_factorization(p: int) -> np.ndarray:
    """Independent derivation of the Daubechies-p scaling filter (minimum phase)."""
    coeffs = [comb(p - 1 + k, k) for k in range(p)]
    zeros = []
    for y in np.roots(coeffs[::-1]):  # P(y) = sum_k C(p-1+k, k) y^k, y = (2 - z - 1/z) / 4
        r = np.roots([1.0, 4.0 * y - 2.0, 1.0])
        zeros.append(r[np.argmin(np.abs(r))])
    h = np.real(np.poly(np.concatenate([zeros, -np.ones(p)])))
    return h / h.sum() * np.sqrt(2.0)


def test_db8_table_matches_spectral_factorization() -> None:
    lo = np.asarray(DB8_DEC_LO)
    # PyWavelets' dec_lo is the time-reversed minimum-phase filter
    np.testing.assert_allclose(lo[::-1], _daubechies_by_spectral_factorization(8), atol=1e-10)
    assert abs(lo.sum() - np.sqrt(2.0)) < 1e-12
    for m in range(8):  # orthonormal under even shifts (table precision ~1e-12)
        assert abs(np.dot(lo[: 16 - 2 * m], lo[2 * m :]) - (m == 0)) < 1e-10


def _hh_reference(x: np.ndarray, lo: tuple[float, ...]) -> np.ndarray:
    """Direct loop transcription of pywt.dwt(mode='symmetric') detail, applied on both axes."""
    lo_arr = np.asarray(lo)
    n_taps = lo_arr.size
    hi = np.array([(-1) ** (k + 1) * lo_arr[n_taps - 1 - k] for k in range(n_taps)])

    def detail(v: np.ndarray) -> np.ndarray:
        n = v.size

        def ext(i: int) -> float:
            while i < 0 or i >= n:
                i = -1 - i if i < 0 else 2 * n - 1 - i
            return float(v[i])

        return np.array(
            [sum(hi[j] * ext(i - j) for j in range(n_taps)) for i in range(1, n + n_taps - 1, 2)]
        )

    rows = np.array([detail(c) for c in x.T]).T
    return np.array([detail(r) for r in rows])


@pytest.mark.parametrize("wavelet,lo", [("db8", DB8_DEC_LO), ("haar", HAAR_DEC_LO)])
@pytest.mark.parametrize("shape", [(13, 21), (2, 5), (1, 1)])
def test_dwt_hh_matches_reference(wavelet: str, lo: tuple[float, ...], shape, rng) -> None:
    x = rng.random(shape)
    ref = _hh_reference(x, lo)
    got = dwt_hh(x, wavelet)
    assert got.shape == ref.shape == ((shape[0] + len(lo) - 1) // 2, (shape[1] + len(lo) - 1) // 2)
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_dwt_hh_unknown_wavelet() -> None:
    with pytest.raises(ValueError):
        dwt_hh(np.zeros((8, 8)), "sym4")


# ---------------------------------------------------------------------------------------------
# NOI1
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("wavelet", ["db8", "haar"])
@pytest.mark.parametrize("sigma", [0.02, 0.05])
def test_noi1_recovers_white_noise_sigma(sigma: float, wavelet: str) -> None:
    """Flat gray image + white Gaussian noise: the block estimates recover sigma within 15 %.

    The noise is the same in the three channels, so the luma noise sigma equals ``sigma``.
    """
    rng = np.random.default_rng(7)
    noise = rng.normal(size=(128, 128)) * sigma
    img = np.repeat((0.5 + noise)[..., None], 3, axis=2).astype(np.float32)
    # default blocks (8 x 8 subband coefficients): the median over blocks
    blocks = noi1_block_sigma(img, wavelet=wavelet)
    assert blocks.shape == ((128 + (16 if wavelet == "db8" else 2) - 1) // 2 // 8,) * 2
    assert abs(float(np.median(blocks)) / sigma - 1.0) < 0.15
    # big blocks (32 x 32 coefficients): every single block estimate
    big = noi1_block_sigma(img, block_size=32, wavelet=wavelet)
    assert big.size >= 4
    assert np.all(np.abs(big / sigma - 1.0) < 0.15)
    # the heatmap carries the same values
    heat = noi1(img, wavelet=wavelet)
    assert abs(float(np.median(heat)) / sigma - 1.0) < 0.15


@pytest.mark.parametrize("wavelet", ["db8", "haar"])
def test_noi1_localizes_noisier_square(wavelet: str) -> None:
    img, mask = _planted_noise(seed=0)
    auc = _auc(mask, noi1(img, wavelet=wavelet))
    assert auc >= 0.9, auc


# ---------------------------------------------------------------------------------------------
# noise-residual variance
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("residual", ["spam3", "laplacian"])
def test_residual_variance_localizes_noisier_square(residual: str) -> None:
    img, mask = _planted_noise(seed=0)
    heat = noise_residual_variance(img, residual=residual)
    auc = _auc(mask, heat)
    assert auc >= 0.9, auc
    assert heat.min() >= 0.0


def test_residual_variance_flags_cleaner_square_too() -> None:
    """|z| scoring: a region *less* noisy than the host is an inconsistency as well."""
    rng = np.random.default_rng(1)
    size = 160
    mask = np.zeros((size, size), dtype=bool)
    mask[48:112, 48:112] = True
    sigma = np.where(mask, 0.01, 0.05)[..., None]
    img = np.clip(_smooth_rgb(size, size) + rng.normal(size=(size, size, 3)) * sigma, 0, 1)
    assert _auc(mask, noise_residual_variance(img.astype(np.float32))) >= 0.9


def test_residual_variance_quantized_option_runs() -> None:
    img, mask = _planted_noise(seed=0)
    heat = noise_residual_variance(img, quant_step=1.0, truncate=8)
    assert heat.shape == mask.shape and np.all(np.isfinite(heat))
    with pytest.raises(ValueError):
        noise_residual_variance(img, residual="nope")


# ---------------------------------------------------------------------------------------------
# ELA
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("smooth", [1, 8])
def test_ela_separates_previously_compressed_half(smooth: int) -> None:
    """The never-compressed half re-saves with larger error: ELA is HIGH there, LOW on the half
    JPEG-compressed at quality 60 before (AUC measured with the never-compressed half positive).
    """
    img, never_compressed = _half_jpeg(seed=0)
    heat = ela(img, smooth=smooth)
    auc = _auc(never_compressed, heat)
    assert auc > 0.7, auc


def test_ela_zero_on_its_own_fixed_point() -> None:
    """Sanity: a smooth flat image that JPEG reproduces exactly has (near) zero error level."""
    heat = ela(np.full((32, 32, 3), 0.5, dtype=np.float32))
    assert float(heat.max()) < 1.0 / 255.0
