"""Classic, training-free noise-based localization baselines for the benchmark tables.

Why this module exists: a learned detector's numbers mean little without the classic
hand-crafted methods run on the same images, masks and metrics. Each baseline here is a plain
function ``name(image, **params) -> heatmap`` with the house types (image ``float32``
``H x W x 3`` RGB in ``[0, 1]``; heatmap ``float32`` ``H x W``, same size, higher = more
suspicious); :data:`noisead.evaluate.methods.METHODS` registers each under its table row name.

The baselines (see each docstring for the exact recipe and its source):

* :func:`noi1` — Mahdian & Saic (2009) wavelet noise-level map, as implemented in the
  Zampoglou et al. (2017) splicing-localization toolbox and its Python port pyIFD (``NOI1``).
* :func:`ela` — Error Level Analysis (Krawetz 2007), as pyIFD's ``ELA`` plus optional smoothing.
* :func:`noise_residual_variance` — a simple local noise-residual variance statistic in robust
  z-units. It is *not* Splicebuster (no co-occurrence features, no EM / Gaussian-mixture
  modelling); it only borrows Splicebuster's third-order residual filter.
* :func:`noise_statistics_map` — the pixel-wise maximum of that level statistic and of a
  local noise-*spectrum* statistic (seven fixed high-pass residuals, one trimmed Gaussian
  fitted on the image); our own, and what the default detector fuses with its learned map.

* :func:`jpeg_lattice_map` — per 8x8 block, the log-likelihood ratio of "off" against "on"
  the image's own JPEG quantization lattice (Lin et al. 2009; Bianchi & Piva 2012, in a
  simple training-free form); zero everywhere for an image that shows no lattice.

These three live in :mod:`noisead.anomaly`, since the detector uses them.

All of them are deterministic and need only NumPy, SciPy and Pillow (the wavelet step is
implemented here, so PyWavelets is not required).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from noisead.anomaly.jpeg_traces import jpeg_lattice_deviation
from noisead.anomaly.noise_statistics import (
    as_rgb as _as_rgb,
)
from noisead.anomaly.noise_statistics import (
    luma,
    noise_level_deviation,
    noise_statistics_map,
)
from noisead.io import to_uint8
from noisead.io.jpeg import jpeg_round_trip

__all__ = [
    "DB8_DEC_LO",
    "HAAR_DEC_LO",
    "dwt_hh",
    "ela",
    "jpeg_lattice_map",
    "luma",
    "noi1",
    "noi1_block_sigma",
    "noise_residual_variance",
    "noise_statistics_map",
]

#: Robust-scale constants: ``median(|N(0, s)|) = 0.6745 s`` and ``1.4826 * MAD = s`` for normals.
_MAD_TO_SIGMA_NOI1 = 0.6745

#: Daubechies-8 (16 taps, 8 vanishing moments) decomposition low-pass filter in PyWavelets'
#: ``pywt.Wavelet("db8").dec_lo`` order (the published standard values; the test-suite re-derives
#: them by spectral factorization). Kept here so that NOI1 needs no PyWavelets dependency.
DB8_DEC_LO: tuple[float, ...] = (
    -0.00011747678400228192,
    0.0006754494059985568,
    -0.0003917403729959771,
    -0.00487035299301066,
    0.008746094047015655,
    0.013981027917015516,
    -0.04408825393106472,
    -0.01736930100202211,
    0.128747426620186,
    0.00047248457399797254,
    -0.2840155429624281,
    -0.015829105256023893,
    0.5853546836548691,
    0.6756307362980128,
    0.3128715909144659,
    0.05441584224308161,
)

#: Haar (= db1) decomposition low-pass filter.
HAAR_DEC_LO: tuple[float, ...] = (2.0**-0.5, 2.0**-0.5)

_WAVELETS: dict[str, tuple[float, ...]] = {
    "db8": DB8_DEC_LO,
    "haar": HAAR_DEC_LO,
    "db1": HAAR_DEC_LO,
}

# ---------------------------------------------------------------------------------------------
# helpers (``luma`` is BT.601, the Y of OpenCV's ``COLOR_BGR2YCrCb`` that pyIFD's NOI1 uses)
# ---------------------------------------------------------------------------------------------


def _dwt_detail_1d(x: np.ndarray, dec_lo: np.ndarray, axis: int) -> np.ndarray:
    """One-level decimated high-pass (detail) analysis along ``axis``.

    Reproduces ``pywt.dwt(..., mode="symmetric")``: half-sample symmetric extension by
    ``L - 1`` samples on each side, full convolution with the decomposition high-pass
    ``dec_hi[k] = (-1)^(k+1) dec_lo[L-1-k]``, keeping the odd-indexed outputs, so the result has
    ``(n + L - 1) // 2`` samples along ``axis``.
    """
    length = dec_lo.size
    dec_hi = dec_lo[::-1] * np.where(np.arange(length) % 2 == 0, -1.0, 1.0)
    pad = [(0, 0)] * x.ndim
    pad[axis] = (length - 1, length - 1)
    xp = np.pad(x, pad, mode="symmetric")
    # correlate1d with the reversed filter is a convolution; origin shifts it to "valid" alignment
    full = ndimage.correlate1d(xp, dec_hi[::-1], axis=axis, mode="constant", origin=-(length // 2))
    # full[k] = sum_j dec_hi[j] * xp[k + L - 1 - j] for k = 0 .. n + L - 2 (the valid part)
    n_full = x.shape[axis] + length - 1
    index = [slice(None)] * x.ndim
    index[axis] = slice(1, n_full, 2)
    return full[tuple(index)]


def dwt_hh(y: np.ndarray, wavelet: str = "db8") -> np.ndarray:
    """Diagonal-detail (HH) subband of a one-level 2-D DWT of a grayscale image.

    Equals ``pywt.dwt2(y, wavelet, mode="symmetric")[1][2]`` (``cD``) for ``"db8"`` and
    ``"haar"``; implemented with NumPy/SciPy so that the baselines need no PyWavelets. The
    filters are orthonormal, so white noise of standard deviation ``s`` in ``y`` gives HH
    coefficients of standard deviation ``s`` — which is what NOI1's estimator relies on.
    """
    key = wavelet.lower()
    if key not in _WAVELETS:
        raise ValueError(f"unknown wavelet {wavelet!r}; choose from {sorted(_WAVELETS)}")
    dec_lo = np.asarray(_WAVELETS[key], dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {y.shape}")
    return _dwt_detail_1d(_dwt_detail_1d(y, dec_lo, axis=0), dec_lo, axis=1)


def _subband_to_image_index(n_image: int, filter_len: int, block: int, n_blocks: int) -> np.ndarray:
    """Block index, along one axis, of the subband block that covers each image pixel.

    Subband coefficient ``o`` is centred on image coordinate ``2 o + 1 - (L - 1) / 2`` (see
    :func:`_dwt_detail_1d`), so pixel ``p`` maps to ``o = (2 p + L - 3) / 4`` and to block
    ``floor(o / block)``; pixels beyond the cropped grid take the nearest (edge) block. This is
    nearest-neighbour upsampling with the filter's phase taken into account, rather than a plain
    stretch that would misplace the map by ``~ L / 2`` pixels for db8.
    """
    pos = (2.0 * np.arange(n_image) + filter_len - 3) / 4.0
    return np.clip(np.floor(pos / block).astype(np.int64), 0, n_blocks - 1)


# ---------------------------------------------------------------------------------------------
# NOI1: Mahdian & Saic 2009
# ---------------------------------------------------------------------------------------------


def _noi1_blocks(
    image: np.ndarray, block_size: int, wavelet: str, round_luma: bool
) -> tuple[np.ndarray, int, int]:
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    y = luma(image)
    if round_luma:
        # pyIFD analyses the 8-bit Y channel (0..255 integers); keep our [0, 1] units.
        y = np.round(y * 255.0) / 255.0
    hh = dwt_hh(y, wavelet)
    # Tiny images: a subband shorter than one block becomes a single (smaller) block.
    bh = min(block_size, hh.shape[0])
    bw = min(block_size, hh.shape[1])
    nbh, nbw = hh.shape[0] // bh, hh.shape[1] // bw
    # As the reference: crop the remainder, then median(|HH|) / 0.6745 per non-overlapping block.
    blocks = np.abs(hh[: nbh * bh, : nbw * bw]).reshape(nbh, bh, nbw, bw)
    sigma = np.median(blocks, axis=(1, 3)) / _MAD_TO_SIGMA_NOI1
    return sigma, bh, bw


def noi1_block_sigma(
    image: np.ndarray, block_size: int = 8, wavelet: str = "db8", round_luma: bool = True
) -> np.ndarray:
    """NOI1's block noise-level map: one robust sigma estimate per subband block.

    Recipe (Mahdian & Saic 2009, "Using noise inconsistencies for blind image forensics", Image
    and Vision Computing 27(10); implementation as in the Zampoglou et al. 2017 toolbox and
    pyIFD's ``NOI1.GetNoiseMap``): BT.601 luma (rounded to 8 bits when ``round_luma``), one-level
    2-D DWT (``db8``, PyWavelets' ``symmetric`` extension), diagonal subband HH cropped to whole
    ``block_size x block_size`` blocks (in subband units, i.e. ~``2 * block_size`` image pixels),
    and per block the robust median estimator ``sigma = median(|HH|) / 0.6745`` (Donoho's MAD
    estimator; HH of a natural image is dominated by noise). The paper's block-merging /
    segmentation step is omitted, as in the reference toolbox.

    Differences from pyIFD: the image comes in as ``float`` RGB in ``[0, 1]`` rather than a path,
    so sigma is in ``[0, 1]`` intensity units (pyIFD's value / 255); ``"haar"`` is also offered.

    Returns:
        ``float32`` array ``(n_block_rows, n_block_cols)`` of noise standard deviations.
    """
    sigma, _, _ = _noi1_blocks(image, block_size, wavelet, round_luma)
    return sigma.astype(np.float32)


def noi1(
    image: np.ndarray, block_size: int = 8, wavelet: str = "db8", round_luma: bool = True
) -> np.ndarray:
    """NOI1 heatmap: :func:`noi1_block_sigma` upsampled (nearest) back to the image size.

    Why this is a tamper map: a spliced region usually comes from another camera / processing
    chain and carries a different noise level; NOI1 shows the local noise sigma and leaves the
    decision to the threshold, so *higher noise = higher score* (as in the toolbox). Regions
    whose noise is *lower* than the rest therefore score low — a known limitation of the method.

    Upsampling maps each image pixel to the block whose subband coefficients are centred on it
    (wavelet phase accounted for), pixels past the cropped block grid take the edge block.

    Returns:
        ``float32`` ``H x W`` map of local noise sigma (``[0, 1]`` intensity units).
    """
    rgb = _as_rgb(image)
    sigma, bh, bw = _noi1_blocks(rgb, block_size, wavelet, round_luma)
    filter_len = len(_WAVELETS[wavelet.lower()])
    rows = _subband_to_image_index(rgb.shape[0], filter_len, bh, sigma.shape[0])
    cols = _subband_to_image_index(rgb.shape[1], filter_len, bw, sigma.shape[1])
    return np.ascontiguousarray(sigma[np.ix_(rows, cols)], dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# ELA
# ---------------------------------------------------------------------------------------------


def ela(
    image: np.ndarray, quality: int = 90, smooth: int = 8, subsampling: int | None = None
) -> np.ndarray:
    """Error Level Analysis heatmap (Krawetz 2007; pyIFD's ``ELA`` with ``Flatten=True``).

    Recipe: quantize to 8-bit RGB, re-save as JPEG at ``quality`` with Pillow in memory, decode,
    take ``|original - resaved|`` per channel (``[0, 1]`` units), average over the channels, then
    box-filter with a ``smooth x smooth`` window (``smooth <= 1`` disables it and gives pyIFD's
    map up to its display ``Multiplier`` and the JPEG encoder). The smoothing is our addition:
    the raw difference is dominated by per-pixel texture, and a window about one JPEG block wide
    turns it into a region-level score for pixel-AUC tables.

    Why it can localize: content that was already JPEG-compressed at a similar or lower quality
    changes little when re-saved (its DCT coefficients already sit near the quantization grid),
    whereas never-compressed or differently-compressed pasted content changes more. So the map is
    *high where the content was not previously compressed* (or compressed at a higher quality);
    a region that was compressed when the rest was not scores *low*. ``subsampling`` is passed to
    Pillow (``None`` = Pillow's default, 4:2:0, like OpenCV's default in pyIFD).

    Returns:
        ``float32`` ``H x W`` mean absolute error level.
    """
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    rgb = _as_rgb(image)
    u8 = to_uint8(rgb)
    resaved = jpeg_round_trip(u8, int(quality), subsampling=subsampling).astype(np.float64)
    diff = np.abs(u8.astype(np.float64) - resaved).mean(axis=2) / 255.0
    if smooth > 1:
        diff = ndimage.uniform_filter(diff, size=int(smooth), mode="reflect")
    return diff.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Local noise-residual variance (robust z-score)
# ---------------------------------------------------------------------------------------------

#: The benchmarks' name for the local noise-level statistic (moved to the anomaly package,
#: where the detector fuses it; the recipe is in its docstring).
noise_residual_variance = noise_level_deviation


def jpeg_lattice_map(image: np.ndarray) -> np.ndarray:
    """The JPEG lattice evidence alone (:func:`noisead.anomaly.jpeg_traces.jpeg_lattice_deviation`),
    zeros where the image shows no JPEG lattice (an uninformative map: AUC 0.5)."""
    score = jpeg_lattice_deviation(image)
    return score if score is not None else np.zeros(np.asarray(image).shape[:2], np.float32)

