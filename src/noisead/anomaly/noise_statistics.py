"""Training-free local noise statistics: the noise *level* and the noise *spectrum* of a region.

Why this module exists: on cameras that the extractor never saw, the learned fingerprint's
per-position Gaussians localize worse than two plain statistics of a fixed high-pass
residual (on both validation sets, docs/BENCHMARKS.md, "noise level + noise spectrum"):

* **level** — how strong the noise residual is in a window, against the image's own median
  (:func:`noise_level_deviation`). A splice from a noisier or cleaner source stands out; a
  region with the same strength but another demosaicing or JPEG history does not.
* **spectrum** — the *shape* of the residual's energy over seven fixed high-pass filters
  (directions, orders, colour channels), scored by one robust Gaussian fitted on the image
  itself (:func:`noise_spectrum_deviation`). Its full covariance absorbs the main axis of
  variation, which is the overall level (texture raises every filter's energy together), so
  it catches other pipelines and misses pure level changes: the two are complementary.

:func:`noise_statistics_map` takes, pixel by pixel, the larger of the two robust z-scores.
Both are *blind*: the image is its own reference, so nothing here depends on a camera
model, and a detector can fuse both with its learned score (the ``noise-level`` and
``noise-spectrum`` sources of :mod:`noisead.anomaly.evidence`).

House types: images are ``float`` ``H x W x 3`` RGB in ``[0, 1]`` (``H x W`` and
``H x W x 1`` are taken as gray); maps are ``float32`` ``H x W``, higher = more suspicious.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from noisead.anomaly.filters import box_mean, box_mean_of_squares, correlate

__all__ = [
    "HIGHPASS_FILTERS",
    "MAD_TO_SIGMA",
    "as_rgb",
    "highpass_residuals",
    "local_log_energy",
    "local_variance",
    "luma",
    "noise_level_deviation",
    "noise_spectrum_deviation",
    "noise_statistics_map",
    "robust_z",
    "trimmed_mahalanobis",
]

#: ``1.4826 * MAD = sigma`` for normal data.
MAD_TO_SIGMA = 1.4826

#: ITU-R BT.601 luma weights (they sum to 1, so noise equal in R, G, B keeps its sigma).
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])

#: Third-order 1-D residual of SPAM / Splicebuster: cancels content up to quadratic ramps.
SPAM3 = np.array([1.0, -3.0, 3.0, -1.0])
_SECOND = np.array([1.0, -2.0, 1.0])
LAPLACIAN = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])

#: The seven fixed high-pass residuals of the spectrum statistic, in output order. Luma
#: filters of several directions and orders see demosaicing and JPEG traces; one Laplacian
#: per colour channel sees the colour filter array (channels interpolated differently).
HIGHPASS_FILTERS: tuple[str, ...] = (
    "luma spam3 horizontal",
    "luma spam3 vertical",
    "luma laplacian",
    "luma second-difference cross (d2/dx2 d2/dy2)",
    "red laplacian",
    "green laplacian",
    "blue laplacian",
)


def as_rgb(image: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """Validate an image and return it as ``H x W x 3`` of ``dtype``.

    Accepts ``H x W x 3`` and, for gray data, ``H x W`` or ``H x W x 1`` (replicated). Rejects
    empty or non-finite input, which every statistic here would silently turn into noise.
    """
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3):
        raise ValueError(f"expected an H x W x 3 (or H x W) image, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"empty image of shape {arr.shape}")
    arr = arr.astype(dtype, copy=False)
    # A finite sum (in float64: no overflow for float32 data) means every value is finite,
    # checked without an image-sized temporary; otherwise the values decide.
    if not np.isfinite(arr.sum(dtype=np.float64)) and not np.all(np.isfinite(arr)):
        raise ValueError("image contains NaN or infinite values")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return arr


def luma(image: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """BT.601 luma ``Y = 0.299 R + 0.587 G + 0.114 B`` as ``H x W`` in ``[0, 1]``."""
    return as_rgb(image, dtype) @ _LUMA_WEIGHTS.astype(dtype)


def local_variance(residual: np.ndarray, window: int) -> np.ndarray:
    """Variance of ``residual`` in a sliding ``window x window`` box centred on every pixel.

    Two separable box means (:mod:`noisead.anomaly.filters`), combined in place: on a
    large image each temporary is as large as the image.
    """
    mean_sq = box_mean_of_squares(residual, window)
    mean = box_mean(residual, window)
    np.square(mean, out=mean)
    mean_sq -= mean
    del mean
    return np.maximum(mean_sq, 0.0, out=mean_sq)


def robust_z(values: np.ndarray, norm: np.ndarray | None = None) -> np.ndarray:
    """``(x - median) / (1.4826 MAD)``: the image's majority sets the norm.

    ``norm``: a boolean map of the values that set the median and MAD (the host part of
    an image explained as two, :mod:`noisead.anomaly.noise_parts`); default all of them.
    """
    med = float(np.median(values if norm is None else values[norm]))
    centred = values - med  # one working copy, then in place (the same arithmetic)
    mad = float(np.median(np.abs(centred if norm is None else centred[norm]),
                          overwrite_input=True))
    centred /= max(MAD_TO_SIGMA * mad, 1e-6)
    return centred.astype(np.float32, copy=False)


def noise_level_deviation(image: np.ndarray, window: int = 32, residual: str = "spam3",
                          quant_step: float | None = None, truncate: int | None = None,
                          floor: float = 1e-3, host: np.ndarray | None = None
                          ) -> np.ndarray:
    """Local noise-residual variance, as an absolute robust z-score against the whole image
    (or against the ``host`` pixels only, a boolean ``H x W`` map, where they set the norm).

    1. ``y`` = BT.601 luma in 8-bit units (``0..255``).
    2. High-pass residual: ``"spam3"`` (default), ``[1, -3, 3, -1]`` horizontally and
       vertically, or ``"laplacian"``, the 3x3 Laplacian; reflecting borders.
    3. Optionally ``r = clip(round(r / quant_step), -truncate, truncate)`` (Splicebuster-style
       quantization); the default keeps the plain residual, better for a variance.
    4. Local variance in a ``window x window`` box, averaged over the residuals.
    5. ``L = log(v + floor * median(v))``: scale-free, and noise-free flat areas stay finite.
    6. ``|L - median(L)| / (1.4826 MAD(L))``: a splice can be noisier *or* cleaner than its
       host, both are inconsistencies; the tampered area is assumed to be the minority.

    Not Splicebuster (no co-occurrences, no EM): a plain statistic, the benchmarks' baseline
    ``noise_residual_variance``. Returns ``float32`` ``H x W`` z-scores ``>= 0``.
    """
    if window < 2:
        raise ValueError(f"window must be >= 2, got {window}")
    if residual == "spam3":
        kernels = [SPAM3[None, :], SPAM3[:, None]]
    elif residual == "laplacian":
        kernels = [LAPLACIAN]
    else:
        raise ValueError(f"unknown residual {residual!r}; choose 'spam3' or 'laplacian'")
    y = luma(image, np.float32)
    y *= np.float32(255.0)
    # the mean of the residuals' variances, as np.mean computes it, one residual at a time
    var = None
    for kernel in kernels:
        r = correlate(y, kernel)
        if quant_step is not None:
            r = np.round(r / quant_step)
            if truncate is not None:
                r = np.clip(r, -truncate, truncate)
        v = local_variance(r, int(window))
        del r
        var = v if var is None else np.add(var, v, out=var)
    del y
    var /= len(kernels)
    var += floor * float(np.median(var))
    var += 1e-12
    log_var = np.log(var, out=var)
    return np.abs(robust_z(log_var, host))


def _iter_highpass(image: np.ndarray):
    """The :data:`HIGHPASS_FILTERS` residuals one at a time (8-bit units, ``float32``).

    ``float32`` halves the memory of a large image (:mod:`noisead.anomaly.filters`).
    """
    rgb = as_rgb(image, np.float32)
    y = luma(rgb, np.float32)
    y *= np.float32(255.0)
    yield correlate(y, SPAM3[None, :])
    yield correlate(y, SPAM3[:, None])
    yield correlate(y, LAPLACIAN)
    yield correlate(correlate(y, _SECOND[:, None]), _SECOND[None, :])
    del y
    for c in range(3):
        yield correlate(rgb[..., c] * np.float32(255.0), LAPLACIAN)


def highpass_residuals(image: np.ndarray) -> np.ndarray:
    """The seven :data:`HIGHPASS_FILTERS` residuals, ``float32`` ``7 x H x W`` (8-bit units)."""
    return np.stack([r.astype(np.float32) for r in _iter_highpass(image)])


def local_log_energy(image: np.ndarray, window: int = 16, step: int = 1,
                     floor: float = 1e-3) -> np.ndarray:
    """``log`` local variance of each high-pass residual, ``float32`` ``7 x H' x W'``.

    Sampled every ``step`` pixels (``H' = ceil(H / step)``): a ``window``-wide statistic
    changes little from one pixel to the next, and the samples are all the Gaussian needs.
    Each channel is floored at ``floor`` times its median, like :func:`noise_level_deviation`.
    """
    if window < 2:
        raise ValueError(f"window must be >= 2, got {window}")
    out = []
    for residual in _iter_highpass(image):
        var = local_variance(residual, int(window))[::step, ::step]
        out.append(np.log(var + floor * float(np.median(var)) + 1e-12).astype(np.float32))
    return np.stack(out)


def trimmed_mahalanobis(features: np.ndarray, trim: float = 0.2, refits: int = 2,
                        ridge: float = 1e-3, fit_on: np.ndarray | None = None) -> np.ndarray:
    """Squared Mahalanobis distance of every sample to one robust Gaussian of all of them.

    The Gaussian is refitted ``refits`` times on the ``1 - trim`` closest samples (the
    concentration steps of Rousseeuw's FastMCD from one start), so a tampered minority does
    not set the norm. A ``ridge`` of the mean variance keeps the covariance invertible on
    flat images.

    Args:
        features: ``D x H x W``.
        fit_on: ``H x W`` bool, the samples the Gaussian may be fitted on (all of them
            by default); every sample is scored.
    Returns:
        ``float32`` ``H x W``.
    """
    if not 0.0 <= trim < 1.0:
        raise ValueError(f"trim must be in [0, 1), got {trim}")
    dim = features.shape[0]
    samples = features.reshape(dim, -1).T.astype(np.float64)
    if len(samples) < 2:  # no spread to measure (a tiny image): nothing stands out
        return np.zeros(features.shape[1:], np.float32)
    eligible = None if fit_on is None else np.asarray(fit_on, bool).ravel()
    if eligible is not None and eligible.sum() < 2:
        eligible = None  # too few to fit on: the whole image sets the norm
    keep = np.ones(len(samples), bool) if eligible is None else eligible.copy()
    for fit in range(refits + 1):
        mean = samples[keep].mean(axis=0)
        cov = np.atleast_2d(np.cov(samples[keep].T))
        cov = cov + ridge * np.eye(dim) * max(float(np.trace(cov)) / dim, 1e-12)
        centred = samples - mean
        dist = np.einsum("nd,de,ne->n", centred, np.linalg.inv(cov), centred)
        if fit < refits:
            if eligible is None:
                keep = dist <= np.quantile(dist, 1.0 - trim)
            else:
                keep = eligible & (dist <= np.quantile(dist[eligible], 1.0 - trim))
            if keep.sum() < 2:
                break
    return dist.reshape(features.shape[1:]).astype(np.float32)


def noise_spectrum_deviation(image: np.ndarray, window: int = 16, smoothing_sigma: float = 4.0,
                             step: int = 4, host: np.ndarray | None = None) -> np.ndarray:
    """Robust z-score of how unlike the image's own noise spectrum each neighbourhood is.

    Local log-energies of the seven :data:`HIGHPASS_FILTERS` residuals in ``window x window``
    boxes every ``step`` pixels, their squared distance to the image's trimmed Gaussian
    (:func:`trimmed_mahalanobis`), smoothed (Gaussian, ``smoothing_sigma`` pixels),
    square-rooted, put in robust z-units (signed: a neighbourhood *closer* to the norm than
    usual is not suspicious) and interpolated back to ``H x W`` (bilinear). ``host``: a
    boolean ``H x W`` map of the pixels that set the norm (the Gaussian and the z-units);
    default the whole image.
    """
    h, w = np.shape(image)[:2]
    step = max(1, min(int(step), h, w))
    on_grid = None if host is None else np.asarray(host, bool)[::step, ::step]
    dist = trimmed_mahalanobis(local_log_energy(image, window, step), fit_on=on_grid)
    dist = ndimage.gaussian_filter(dist, smoothing_sigma / step, mode="reflect")
    z = robust_z(np.sqrt(np.maximum(dist, 0.0)), on_grid)
    return _upsample(z, h, w, step)


def _upsample(grid: np.ndarray, height: int, width: int, step: int) -> np.ndarray:
    """Bilinear interpolation of samples taken at pixels ``0, step, 2 step, ...`` to H x W."""
    if step == 1:
        return grid
    rows = np.minimum(np.arange(height) / step, grid.shape[0] - 1)
    cols = np.minimum(np.arange(width) / step, grid.shape[1] - 1)
    r0 = np.minimum(rows.astype(int), max(grid.shape[0] - 2, 0))
    c0 = np.minimum(cols.astype(int), max(grid.shape[1] - 2, 0))
    r1 = np.minimum(r0 + 1, grid.shape[0] - 1)
    c1 = np.minimum(c0 + 1, grid.shape[1] - 1)
    fr = (rows - r0).astype(np.float32)[:, None]
    fc = (cols - c0).astype(np.float32)[None, :]
    # Along rows first, on the grid's rows only (``step`` times fewer than the image's):
    # the same products, element for element, as interpolating each output row's two
    # grid rows along x, so the values are those of the plain two-pass formula.
    along_x = grid[:, c0] * (1 - fc) + grid[:, c1] * fc
    return (along_x[r0] * (1 - fr) + along_x[r1] * fr).astype(np.float32)


def noise_statistics_map(image: np.ndarray, host: np.ndarray | None = None) -> np.ndarray:
    """Pixel-wise maximum of the level and spectrum z-scores (either inconsistency counts);
    ``host``: the pixels that set the norm of both (default: the whole image)."""
    return np.maximum(noise_spectrum_deviation(image, host=host),
                      noise_level_deviation(image, host=host))
